#!/usr/bin/env python3
"""Renders a benchmark run (bench/.work/run-*/results.jsonl + params.env) as RESULTS.md.

    report.py --rundir bench/.work/latest [--out bench/RESULTS.md]

Medians over the runs; ratios are ratios of medians (ours / reference for times); every goal
gets PASS, FAIL or N/A with the measured figure.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20, cwd=ROOT).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine(params):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    # The commit the run measured, recorded at its start (a report may be rendered later);
    # the checkout's own for a run that did not record it.
    if params.get("COMMIT"):
        commit, subject = params["COMMIT"], params.get("COMMIT_SUBJECT", "")
        dirty = params.get("COMMIT_DIRTY", "0") not in ("", "0")
    else:
        commit = sh("git", "rev-parse", "HEAD") or "?"
        subject = sh("git", "log", "-1", "--format=%s")
        dirty = sh("git", "status", "--porcelain", "--untracked-files=no")
    return {
        "nproc": sh("nproc") or str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit[:12] + (" (+ uncommitted changes)" if dirty else ""),
        "subject": subject,
        "ffmpeg": (sh("ffmpeg", "-version").splitlines() or ["?"])[0],
        "rustc": sh("rustc", "-V"),
    }


def load(rundir):
    recs = []
    with open(os.path.join(rundir, "results.jsonl")) as fh:
        for line in fh:
            line = line.strip()
            if line:
                recs.append(json.loads(line))
    params = {}
    try:
        with open(os.path.join(rundir, "params.env")) as fh:
            for line in fh:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    params[k] = v
    except OSError:
        pass
    return recs, params


class Data:
    def __init__(self, recs):
        self.recs = recs

    def sel(self, section, name, kind=None):
        return [r for r in self.recs if r["section"] == section and r["name"] == name
                and (kind is None or r.get("kind") == kind)]

    def vals(self, section, name, kind, key="secs"):
        return [r[key] for r in self.sel(section, name, kind) if isinstance(r.get(key), (int, float))]

    def med(self, section, name, kind, key="secs"):
        v = self.vals(section, name, kind, key)
        return statistics.median(v) if v else None

    def errors(self, section, name, kind=None):
        return [r for r in self.sel(section, name, kind) if r.get("secs") is None]


def f_s(x):
    return "—" if x is None else (f"{x:.2f} s" if x < 100 else f"{x:.0f} s")


def f_ms(x):
    return "—" if x is None else f"{x * 1000:.0f} ms"


def f_x(x):
    return "—" if x is None else f"{x:.2f}×"


def f_mib(b):
    return "—" if b is None else f"{b / (1 << 20):.1f} MiB"


def f_num(x, unit=""):
    return "—" if x is None else f"{x:,.0f}{unit}"


def verdict(ok, na_reason=None):
    if ok is None:
        return f"N/A ({na_reason})" if na_reason else "N/A"
    return "**PASS**" if ok else "**FAIL**"


def err_text(recs):
    out = []
    for r in recs:
        e = r.get("error") or "?"
        m = r.get("message")
        out.append(f"run {r.get('run')}: {e}" + (f" ({m})" if m else ""))
    return "; ".join(out[:3])


def spread(vals, fmt=f_s):
    if not vals:
        return "—"
    if len(vals) == 1:
        return fmt(vals[0])
    return f"{fmt(min(vals))} – {fmt(max(vals))}"


def runs_list(vals, fmt="{:.2f}"):
    return ", ".join(fmt.format(v) for v in vals) if vals else "—"


def render(recs, params, m):
    d = Data(recs)
    quick = params.get("QUICK", "0") not in ("", "0")
    video_bytes = int(params.get("VIDEO_BYTES") or 0) or None
    L = []
    w = L.append
    w("# Hopster benchmark (issue 8)")
    w("")
    if params.get("INCOMPLETE"):
        w(f"> **INCOMPLETE run**: bench/run stopped early ({params['INCOMPLETE']}); "
          "only what was measured before that is below.")
        w("")
    if quick:
        w("> **QUICK smoke run** (QUICK=1): a tiny workload and one run, to check the harness. "
          "These figures say nothing about the goals; run `bench/run` for the benchmark.")
        w("")
    w(f"Generated by `bench/run` on {m['date']}, commit `{m['commit']}` ({m['subject']}). "
      f"{params.get('RUNS', '?')} run(s) per measurement; medians; took "
      f"{int(params.get('ELAPSED_SECS', 0)) // 60} min {int(params.get('ELAPSED_SECS', 0)) % 60} s.")
    w("")
    w("## Machine")
    w("")
    w("| | |")
    w("|---|---|")
    w(f"| CPUs (`nproc`) | {m['nproc']} |")
    w(f"| CPU | {m['cpu']} |")
    w(f"| memory | {m['memory']} |")
    w(f"| kernel | {m['kernel']} |")
    w(f"| ffmpeg | {m['ffmpeg']} |")
    w(f"| rustc | {m['rustc']} |")
    w(f"| load average at start / end | {params.get('LOAD_START', '?')} / {params.get('LOAD_END', '?')} |")
    w("")
    w("## Workload")
    w("")
    w(f"- Source: `{params.get('VIDEO')}` — {params.get('VIDEO_SECS')} s, {params.get('VIDEO_SIZE')}, "
      f"{params.get('VIDEO_FPS')} fps, H.264 (x264 ultrafast, GOP 2 s) + AAC, faststart, "
      f"{f_mib(video_bytes)}; served on loopback by `bench/source_server.py` (Range; `/norange/` without).")
    w(f"- Clips: {params.get('CLIP_SECS')} s at {params.get('EARLY')} (early), {params.get('MID')} (mid), "
      f"{params.get('LATE')} (late); the whole video.")
    w(f"- Encode settings, service and bare ffmpeg alike: libx264 `-preset {params.get('PRESET')} "
      f"-crf {params.get('CRF')}`, yuv420p, AAC 128k, `+faststart`; `-ss` before `-i`, `-t` after.")
    w(f"- Staging source: {params.get('BIG_MIB')} MiB of random bytes.")
    w(f"- Load: wrk, {params.get('LOAD_THREADS')} thread(s), {params.get('LOAD_CONNS')} connections, "
      f"{params.get('LOAD_SECS')} s per run, stores: {params.get('LOAD_STORES')}; "
      f"s3s-fs keeps its files in `{params.get('S3_DATA', '?')}`"
      + (f"; the `fs` store is on {params['GW_FS_USED']}" if params.get('GW_FS_USED') else "") + ".")
    w(f"- Scaling: {params.get('BATCH')} clips of {params.get('CLIP_SECS')} s, "
      f"`HOPSTER__TRANSCODER__THREADS=1`, source mode `{params.get('SCALE_SOURCE')}`.")
    w(f"- Sections run: {params.get('ONLY')}. Raw records: `{os.path.relpath(params.get('RUNDIR', ''), ROOT)}/results.jsonl`.")
    w("")

    # ------------------------------------------------------------------------------- summary
    rows = []

    def time_goal(goal, label, name, target):
        ours, ref = d.med("clips", name, "ours"), d.med("clips", name, "ref")
        errs = d.errors("clips", name)
        if not d.sel("clips", name):
            rows.append((goal, label, "—", "—", "—", f"≤ {target:.2f}×" if target else "—", verdict(None, "not run")))
            return
        ratio = ours / ref if ours and ref else None
        ok = None if ratio is None or target is None else ratio <= target
        if errs and ratio is None:
            v = verdict(None, err_text(errs))
        elif target is None:
            v = "info"
        else:
            v = verdict(ok)
            if errs:
                v += f" ({len(errs)} failed run(s): {err_text(errs)})"
        # How the service made it: a frame-accurate clip a copy gives exactly is a passthrough
        # (issue 18) against bare ffmpeg's re-encode.
        methods = "/".join(sorted({str(r["method"]) for r in d.sel("clips", name, "ours") if r.get("method")}))
        rows.append((goal, label, f_s(ours) + (f"; method {methods}" if methods else ""), f_s(ref),
                     f_x(ratio), f"≤ {target:.2f}×" if target else "—", v))

    time_goal("1", f"late clip ({params.get('LATE')}) submit → downloadable vs bare ffmpeg", "late", 1.3)
    time_goal("1", f"early clip ({params.get('EARLY')})", "early", 1.5)
    time_goal("1", "whole video vs bare ffmpeg transcoding it", "whole", 1.1)
    time_goal("", f"mid clip ({params.get('MID')}) (no target)", "mid", None)

    # goal 2: bytes
    late = [r for r in d.sel("clips", "late", "ours") if r.get("secs") is not None]
    src_b = [r["src_bytes"] for r in late if isinstance(r.get("src_bytes"), int)]
    svc_b = [r["dl_bytes"] for r in late if isinstance(r.get("dl_bytes"), int)]
    ranged = {r.get("dl_ranged") for r in late}
    if src_b and video_bytes:
        mb = statistics.median(src_b)
        pct = mb / video_bytes * 100
        svc = (f"; service reports {f_mib(statistics.median(svc_b))}" if svc_b else "") + (
            ", ranged: " + "/".join(sorted("absent" if x is None else str(x).lower() for x in ranged))
            if ranged != {None}
            else ", `ranged` not reported")
        rows.append(("2", "late clip: bytes sent by the source (counted at the server)",
                     f"{f_mib(mb)} = {pct:.1f} %{svc}", f"{f_mib(video_bytes)} file", "—", "≤ 5 %",
                     verdict(pct <= 5.0)))
    else:
        rows.append(("2", "late clip: bytes sent by the source", "—", "—", "—", "≤ 5 %",
                     verdict(None, "no completed late clip" if not late else "no byte count")))

    # goal 3: keyframe
    kf = d.sel("clips", "late-keyframe", "ours")
    if not kf:
        rows.append(("3", "late clip, keyframe accuracy", "—", "—", "—", "reported", verdict(None, "not run")))
    elif any(r.get("available") is False for r in kf):
        r0 = next(r for r in kf if r.get("available") is False)
        rows.append(("3", "late clip, keyframe accuracy", "—", "—", "—", "reported",
                     f"N/A (not available: HTTP {r0.get('http')} {r0.get('error')})"))
    else:
        ours, ref = d.med("clips", "late-keyframe", "ours"), d.med("clips", "late-keyframe", "ref")
        ach = sorted({str(r.get("start_achieved")) for r in kf if r.get("secs") is not None})
        ok_runs = [r for r in kf if r.get("secs") is not None]
        ok = bool(ok_runs) and all(r.get("start_achieved") is not None for r in ok_runs)
        note = f"start_achieved {', '.join(ach) if ach else '—'} (asked {params.get('LATE')})"
        v = verdict(ok) if ok_runs else verdict(None, err_text(d.errors("clips", "late-keyframe", "ours")))
        if ok_runs and not ok:
            v += " (start_achieved missing)"
        rows.append(("3", "late clip, keyframe (stream copy) vs bare `-c copy`",
                     f"{f_s(ours)}; {note}", f_s(ref), f_x(ours / ref if ours and ref else None),
                     "completes, reports start_achieved", v))

    # issue 18: smart cut and passthrough
    def smart_row(label, name, target, ref_label):
        recs = [r for r in d.sel("clips", name, "ours") if r.get("secs") is not None]
        ours, ref = d.med("clips", name, "ours"), d.med("clips", name, "ref")
        if not d.sel("clips", name):
            rows.append(("18", label, "—", "—", "—", f"≤ {target:.2f}×", verdict(None, "not run")))
            return
        methods = sorted({str(r.get("method")) for r in recs})
        copied = [r["copied_secs"] for r in recs if isinstance(r.get("copied_secs"), (int, float))]
        note = f"; method {'/'.join(methods) or '—'}" + (
            f", {statistics.median(copied):.1f} s copied" if copied else "")
        ratio = ours / ref if ours and ref else None
        rows.append(("18", label, f"{f_s(ours)}{note}", f"{f_s(ref)} ({ref_label})", f_x(ratio),
                     f"≤ {target:.2f}×",
                     verdict(ratio <= target if ratio else None,
                             err_text(d.errors("clips", name)) or "no figure")))

    smart_row(f"{params.get('SMART_SECS', '?')} s clip from {params.get('MID')}.4, `accuracy: smart`",
              "smart-long", 0.15, "bare frame-accurate re-encode")
    smart_row("late clip, `accuracy: smart`", "late-smart", 1.0, "bare frame-accurate re-encode")
    whole = [r for r in d.sel("clips", "whole", "ours") if r.get("secs") is not None]
    ours, ref = d.med("clips", "whole", "ours"), d.med("clips", "whole-copy", "ref")
    if whole and ref:
        methods = "/".join(sorted({str(r.get("method")) for r in whole}))
        ratio = ours / ref if ours else None
        rows.append(("18", "whole video (passthrough) vs bare `ffmpeg -c copy`",
                     f"{f_s(ours)}; method {methods}", f_s(ref), f_x(ratio), "≤ 2.00×",
                     verdict(ratio <= 2.0 if ratio else None)))
    else:
        rows.append(("18", "whole video (passthrough)", "—", "—", "—", "≤ 2.00×", verdict(None, "not run")))

    # issue 18 goal 5: the fixed cost per job
    fx = [r for r in d.sel("fixed", "late-keyframe", "ours") if r.get("secs") is not None]
    if d.sel("fixed", "late-keyframe"):
        ours, ref = d.med("fixed", "late-keyframe", "ours"), d.med("fixed", "late-keyframe", "ref")
        ratio = ours / ref if ours and ref else None
        rows.append(("18", f"late keyframe clip, {len(fx)} runs (fixed cost; breakdown below) vs bare `-c copy`",
                     f_s(ours), f_s(ref), f_x(ratio), "≤ 2.00×",
                     verdict(ratio <= 2.0 if ratio else None,
                             err_text(d.errors("fixed", "late-keyframe")) or "no figure")))
    else:
        rows.append(("18", "late keyframe clip (fixed cost)", "—", "—", "—", "≤ 2.00×", verdict(None, "not run")))

    # issue 21: HLS sources
    hls = [r for r in d.sel("hls", "late-hls", "ours") if r.get("secs") is not None]
    ours, ref = d.med("hls", "late-hls", "ours"), d.med("hls", "late-hls", "ref")
    hls_bytes = int(params.get("HLS_BYTES") or 0)
    if d.sel("hls", "late-hls"):
        segs = sorted({str(r.get("source_segments")) for r in hls})
        ratio = ours / ref if ours and ref else None
        rows.append(("21", "late clip from the HLS rendition (4 s segments) vs bare `ffmpeg -ss … -i URL.m3u8`",
                     f"{f_s(ours)}; {'/'.join(segs) or '—'} segment(s) fetched", f_s(ref), f_x(ratio),
                     "≤ 1.30×",
                     verdict(ratio <= 1.3 if ratio else None,
                             err_text(d.errors("hls", "late-hls")) or "no figure")))
        src_b = [r["src_bytes"] for r in hls if isinstance(r.get("src_bytes"), int)]
        ref_b = [r["src_bytes"] for r in d.sel("hls", "late-hls", "ref") if isinstance(r.get("src_bytes"), int)]
        if src_b and hls_bytes:
            mb = statistics.median(src_b)
            pct = mb / hls_bytes * 100
            rows.append(("21", "late HLS clip: bytes sent by the source (playlist and segments)",
                         f"{f_mib(mb)} = {pct:.1f} %",
                         f"{f_mib(hls_bytes)} rendition; bare ffmpeg read "
                         + (f_mib(statistics.median(ref_b)) if ref_b else "—"),
                         "—", "≤ 5 %", verdict(pct <= 5.0)))
    else:
        rows.append(("21", "late clip from an HLS rendition", "—", "—", "—", "≤ 1.30×", verdict(None, "not run")))

    # goal 4: staging
    st = d.sel("staging", "stage", "ours")
    if st:
        hwm = [r["vmhwm_kib"] for r in st if isinstance(r.get("vmhwm_kib"), int)]
        mx = max(hwm) if hwm else None
        rows.append(("4", f"downloader peak RSS (VmHWM) staging {params.get('BIG_MIB')} MiB",
                     f"{mx / 1024:.1f} MiB (max of {len(hwm)})" if mx else "—", "—", "—", "≤ 64 MiB",
                     verdict(mx <= 64 * 1024 if mx else None, err_text(d.errors('staging', 'stage', 'ours')) or "no figure")))
        ours = d.med("staging", "stage", "ours", "mib_per_s")
        ref = d.med("staging", "stage", "ref", "mib_per_s")
        ratio = ours / ref if ours and ref else None
        rows.append(("4", "downloader throughput (submit → staged) vs `curl -o`",
                     f_num(ours, " MiB/s"), f_num(ref, " MiB/s"), f_x(ratio), "≥ 0.80×",
                     verdict(ratio >= 0.8 if ratio else None, err_text(d.errors("staging", "stage")) or "no figure")))
    else:
        rows.append(("4", "downloader staging", "—", "—", "—", "≤ 64 MiB, ≥ 0.80×", verdict(None, "not run")))

    # goal 5: gateway
    for backend in (params.get("LOAD_STORES") or "fs s3").split():
        sub = d.sel("gateway", f"submit-{backend}")
        if not sub:
            rows.append(("5", f"gateway ({backend})", "—", "—", "—", "", verdict(None, "not run")))
            continue
        rps = d.med("gateway", f"submit-{backend}", "ours", "ok_rps")
        p99 = d.med("gateway", f"submit-{backend}", "ours", "p99_ms")
        bad = sum((r.get("status_other") or 0) + (r.get("status_200") or 0) for r in sub)
        ok = None if rps is None or p99 is None else (rps >= 2000 and p99 < 50)
        rows.append(("5", f"confirmed submissions/s, `{backend}` store",
                     (f"{f_num(rps, '/s')}, p99 {p99:.1f} ms" if p99 is not None else f_num(rps, "/s"))
                     + (f" ({bad} non-202)" if bad else ""), "—", "—", "≥ 2,000/s, p99 < 50 ms",
                     verdict(ok, err_text(d.errors("gateway", f"submit-{backend}")))))
        rrps = d.med("gateway", f"read-{backend}", "ours", "ok_rps")
        rp99 = d.med("gateway", f"read-{backend}", "ours", "p99_ms")
        rows.append(("5", f"status reads/s, `{backend}` store",
                     f"{f_num(rrps, '/s')}, p99 {rp99:.1f} ms" if rp99 is not None else "—", "—", "—",
                     "≥ 10,000/s", verdict(rrps >= 10000 if rrps else None,
                                           err_text(d.errors("gateway", f"read-{backend}")))))

    # issue 18 goal 7: the cost of a submission
    for backend in (params.get("LOAD_STORES") or "fs s3").split():
        name = f"submit-{backend}"
        if not d.sel("gateway", name, "ours"):
            rows.append(("18", f"gateway CPU per submission, `{backend}` store", "—", "—", "—", "", verdict(None, "not run")))
            continue
        limit = 100 if backend == "fs" else 150
        cpu = d.med("gateway", name, "ours", "cpu_gateway_us")
        rows.append(("18", f"gateway CPU per confirmed submission, `{backend}` store",
                     f_num(cpu, " µs"), "—", "—", f"≤ {limit} µs",
                     verdict(cpu <= limit if cpu else None, "no figure")))
        rps, bare = d.med("gateway", name, "ours", "ok_rps"), d.med("gateway", name, "ref", "ok_rps")
        ratio = rps / bare if rps and bare else None
        rows.append(("18", f"confirmed submissions/s, `{backend}` store, vs a bare lapin publisher",
                     f_num(rps, "/s"), f_num(bare, "/s"), f_x(ratio), "≥ 0.70×",
                     verdict(ratio >= 0.7 if ratio else None,
                             err_text(d.errors("gateway", name)) or "no figure")))
        p99 = d.med("gateway", name, "ours", "p99_ms")
        rows.append(("18", f"submission p99, `{backend}` store", f_num(p99, " ms"), "—", "—", "< 50 ms",
                     verdict(p99 < 50 if p99 is not None else None, "no figure")))

    # goal 6: scaling
    t1, t2 = d.med("scaling", "transcoders-1", "ours"), d.med("scaling", "transcoders-2", "ours")
    if d.sel("scaling", "transcoders-1") or d.sel("scaling", "transcoders-2"):
        sp = t1 / t2 if t1 and t2 else None
        rows.append(("6", f"{params.get('BATCH')}-clip batch, 2 transcoders vs 1 (THREADS=1)",
                     f"{f_s(t2)} with 2", f"{f_s(t1)} with 1", f"{sp:.2f}× faster" if sp else "—", "≥ 1.70×",
                     verdict(sp >= 1.7 if sp else None,
                             err_text(d.errors("scaling", "transcoders-1") + d.errors("scaling", "transcoders-2")))))
    else:
        rows.append(("6", "horizontal scaling", "—", "—", "—", "≥ 1.70×", verdict(None, "not run")))

    w("## Summary")
    w("")
    if quick:
        w("_QUICK run: the targets are the issue's, for the full workload; PASS/FAIL here only shows the harness works._")
        w("")
    w("| goal | measurement | Hopster | reference | ratio | target | result |")
    w("|---|---|---|---|---|---|---|")
    for row in rows:
        w("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    w("")
    failing = [r for r in rows if "FAIL" in r[6]]
    na = [r for r in rows if r[6].startswith("N/A")]
    if failing or na:
        w("Not met: " + ("; ".join(f"goal {r[0]} {r[1]} — measured {r[2]}" + (f" vs {r[3]}" if r[3] != "—" else "")
                                    + (f", {r[4]}" if r[4] != "—" else "") + f" (target {r[5]})" for r in failing)
                         or "none") + ".")
        if na:
            w("")
            w("Not measured: " + "; ".join(f"goal {r[0]} {r[1]}: {r[6]}" for r in na) + ".")
        w("")

    # ------------------------------------------------------------------------------- details
    w("## Details")
    w("")
    w("### Clips, end to end (goals 1–3)")
    w("")
    w("Hopster: `POST /v1/jobs` until `GET /v1/jobs/{id}/video` answers 200 with the whole body "
      "(polled every 25 ms; every 100 ms once a job has run 10 s). Reference: the bare `ffmpeg` command on the same URL, timed in the same run "
      "(order alternates per run). Server span: the job's `updated_at_ms − created_at_ms` (from the "
      "status written at creation to the final status); the rest of the median is the client's view "
      "(submission, seeing completion, the download). Source bytes: counted by the source server per "
      "run (`?r=` tag).")
    w("")
    w("| clip | kind | median | min – max | per run (s) | server span | source bytes (median) | service: download bytes / ranged | output duration |")
    w("|---|---|---|---|---|---|---|---|---|")
    for name in ("early", "mid", "late", "late-keyframe", "late-norange", "whole"):
        for kind in ("ours", "ref"):
            rs = d.sel("clips", name, kind)
            if not rs:
                continue
            v = d.vals("clips", name, kind)
            sb = [r["src_bytes"] for r in rs if isinstance(r.get("src_bytes"), int)]
            sbt = f_mib(statistics.median(sb)) if sb else "—"
            if sb and video_bytes:
                sbt += f" ({statistics.median(sb) / video_bytes * 100:.1f} %)"
            svc = "—"
            if kind == "ours":
                db = [r["dl_bytes"] for r in rs if isinstance(r.get("dl_bytes"), int)]
                rg = {"absent" if r.get("dl_ranged") is None else str(r.get("dl_ranged")).lower()
                      for r in rs if r.get("secs") is not None}
                svc = (f_mib(statistics.median(db)) if db else "—") + " / " + ("/".join(sorted(rg)) if rg else "—")
            du = [r["result_duration"] for r in rs if isinstance(r.get("result_duration"), (int, float))]
            span = [(r["updated_at_ms"] - r["created_at_ms"]) / 1000 for r in rs
                    if r.get("secs") is not None and isinstance(r.get("updated_at_ms"), int)
                    and isinstance(r.get("created_at_ms"), int)]
            spant = f_s(statistics.median(span)) if span else "—"
            errs = d.errors("clips", name, kind)
            label = {"ours": "Hopster", "ref": "bare ffmpeg"}[kind]
            if name == "late-keyframe":
                label += " (stream copy)"
            w(f"| {name} | {label} | {f_s(statistics.median(v) if v else None)} | {spread(v)} | {runs_list(v)}"
              + (f" ({len(errs)} failed: {err_text(errs)})" if errs else "")
              + f" | {spant} | {sbt} | {svc} | {spread(du, lambda x: f'{x:.2f} s')} |")
    w("")
    kf = [r for r in d.sel("clips", "late-keyframe", "ours") if r.get("secs") is not None]
    if kf:
        w("Keyframe mode: `start_achieved` per run: " + ", ".join(str(r.get("start_achieved")) for r in kf) + ".")
        w("")
    nr = d.med("clips", "late-norange", "ours")
    if nr is not None:
        lr = d.med("clips", "late", "ref")
        w(f"Fallback (source without Range, staged whole): late clip {f_s(nr)}"
          + (f", {nr / lr:.2f}× bare ffmpeg's ranged read" if lr else "") + ".")
        w("")
    ranges = [r.get("src_ranges") for r in d.sel("clips", "late", "ours") if r.get("src_ranges")]
    if ranges:
        w("First requests the source saw for the late clip (run 1): `" + "`, `".join(ranges[0][:8]) + "`.")
        w("")

    if fx:
        w("### The fixed cost per job (issue 18 goal 5)")
        w("")
        w("The late keyframe clip (3 s stream copy at the end of the source) through the whole "
          "pipeline, and where its time went: each step's median over the runs, from the job's "
          "status `timeline` and the client's own clock (same machine). The client learns of the "
          "end from the job's events stream (`GET /v1/jobs/{id}/events`), as `hopster clip` does, "
          "then fetches the video. Bare `ffmpeg -c copy` of "
          f"the same clip: {f_s(d.med('fixed', 'late-keyframe', 'ref'))} median.")
        w("")
        steps = [
            ("submit → status created (gateway)", "submit_ms", "created_at_ms"),
            ("created → a downloader starts (publish, broker hop)", "created_at_ms", "download_started_ms"),
            ("downloader's work → a transcoder starts (sniff, status, publish, hop)", "download_started_ms", "transcode_started_ms"),
            ("transcoder starts → ffmpeg starts (status, result check, range proxy)", "transcode_started_ms", "ffmpeg_started_ms"),
            ("ffmpeg runs (stream copy through the range proxy)", "ffmpeg_started_ms", "upload_started_ms"),
            ("upload, describe, poster, status `completed`", "upload_started_ms", "updated_at_ms"),
            ("completed → the client asks for the file (told by the events stream)", "updated_at_ms", "fetch_sent_ms"),
            ("that `GET /video` until the body is in hand", "fetch_sent_ms", "seen_ms"),
        ]

        def at(r, key):
            v = r.get(key)
            if v is None:
                v = (r.get("timeline") or {}).get(key)
            return v if isinstance(v, (int, float)) else None

        w("| step | median | min – max |")
        w("|---|---|---|")
        for label, a, b in steps:
            v = [(at(r, b) - at(r, a)) / 1000 for r in fx if at(r, a) is not None and at(r, b) is not None]
            w(f"| {label} | {f_ms(statistics.median(v)) if v else '—'} | "
              f"{(f_ms(min(v)) + ' – ' + f_ms(max(v))) if v else '—'} |")
        tot = [r["secs"] for r in fx]
        w(f"| **total** (submit → file in hand) | **{f_ms(statistics.median(tot))}** | "
          f"{f_ms(min(tot))} – {f_ms(max(tot))} |")
        w("")

    w("### Staging (goal 4)")
    w("")
    w("A whole-source job (no start/stop) on the random file, only the gateway and a fresh "
      "`downloader-worker` per run; time from `POST` until the staged object exists in the store "
      "(the multipart upload completed). Peak RSS = `VmHWM` of the downloader process right after. "
      "Reference: `curl -s -o FILE URL` on the same store disk.")
    w("")
    w("| kind | median time | min – max | median MiB/s | peak RSS (VmHWM) per run | RSS before the job |")
    w("|---|---|---|---|---|---|")
    for kind, label in (("ours", "downloader-worker"), ("ref", "curl -o")):
        rs = d.sel("staging", "stage", kind)
        if not rs:
            continue
        v = d.vals("staging", "stage", kind)
        mbs = d.med("staging", "stage", kind, "mib_per_s")
        hwm = [f"{r['vmhwm_kib'] / 1024:.1f}" for r in rs if isinstance(r.get("vmhwm_kib"), int)]
        idle = [f"{r['idle_vmhwm_kib'] / 1024:.1f}" for r in rs if isinstance(r.get("idle_vmhwm_kib"), int)]
        errs = d.errors("staging", "stage", kind)
        w(f"| {label} | {f_s(statistics.median(v) if v else None)} | {spread(v)} | {f_num(mbs)} | "
          f"{(', '.join(hwm) + ' MiB') if hwm else '—'} | {(', '.join(idle) + ' MiB') if idle else '—'} |"
          + (f" {len(errs)} failed: {err_text(errs)}" if errs else ""))
    w("")

    w("### Gateway under load (goal 5)")
    w("")
    w("The gateway alone (no workers: messages queue up and are purged after each run, and every run starts from the same store: on `fs` a fresh filesystem or directory for each run, the gateway started again on it; s3s-fs's objects deleted). "
      "Submissions: `POST /v1/jobs`, every body a new clip (`bench/lua/submit.lua`); the rate counts "
      "`202` answers (published and confirmed by RabbitMQ). Reads: `GET /v1/jobs/{id}` of one queued job.")
    w("")
    w("| load | store | confirmed/s (median) | per run | p50 / p90 / p99 ms (median) | max ms | non-2xx / socket errors |")
    w("|---|---|---|---|---|---|---|")
    for backend in (params.get("LOAD_STORES") or "fs s3").split():
        for what in ("submit", "read"):
            rs = [r for r in d.sel("gateway", f"{what}-{backend}", "ours") if r.get("secs") is not None]
            if not rs:
                errs = d.errors("gateway", f"{what}-{backend}", "ours")
                if errs:
                    w(f"| {what} | {backend} | failed: {err_text(errs)} | | | | |")
                continue
            med = lambda k: statistics.median([r[k] for r in rs])
            nb = sum(r.get("status_other", 0) + (r.get("status_200", 0) if what == "submit" else 0) for r in rs)
            se = sum(r.get("err_connect", 0) + r.get("err_read", 0) + r.get("err_write", 0) + r.get("err_timeout", 0) for r in rs)
            w(f"| {what} | {backend} | {med('ok_rps'):,.0f} | {runs_list([r['ok_rps'] for r in rs], '{:,.0f}')} | "
              f"{med('p50_ms'):.1f} / {med('p90_ms'):.1f} / {med('p99_ms'):.1f} | {max(r['max_ms'] for r in rs):.0f} | {nb} / {se} |")
    w("")

    w("### The cost of a submission (issue 18 goal 7)")
    w("")
    w("The same submission runs, with the CPU time (user + system, from `/proc/PID/stat`) the gateway "
      "and RabbitMQ spent during each, divided by the `202` answers. The limit: "
      "`common/examples/bare_publisher.rs`, lapin alone publishing persistent, mandatory messages of "
      f"{params.get('PUB_BYTES') or '—'} bytes (a submission's message) through one confirming channel, "
      f"{params.get('LOAD_CONNS')} at a time as wrk's connections are, to a durable queue of its own, "
      "for as long as a run; the order of the two alternates per run.")
    w("")
    w("| store | confirmed/s: gateway | bare lapin publisher | ratio | gateway CPU per submission (of it in the kernel) | the S3 server's CPU per submission | bare publisher's own CPU per message | RabbitMQ CPU per message: gateway's / bare | p99 ms: gateway / bare |")
    w("|---|---|---|---|---|---|---|---|---|")
    for backend in (params.get("LOAD_STORES") or "fs s3").split():
        name = f"submit-{backend}"
        if not d.sel("gateway", name):
            continue
        rps, bare = d.med("gateway", name, "ours", "ok_rps"), d.med("gateway", name, "ref", "ok_rps")
        g = lambda k, kind="ours": d.med("gateway", name, kind, k)
        w(f"| {backend} | {f_num(rps, '/s')} | {f_num(bare, '/s')} | {f_x(rps / bare if rps and bare else None)} | "
          f"{f_num(g('cpu_gateway_us'), ' µs')} ({f_num(g('cpu_gateway_system_us'), ' µs')}) | "
          f"{f_num(g('cpu_s3_us'), ' µs')} | "
          f"{f_num(g('cpu_publisher_us', 'ref'), ' µs')} | "
          f"{f_num(g('cpu_rabbitmq_us'), ' µs')} / {f_num(g('cpu_rabbitmq_us', 'ref'), ' µs')} | "
          f"{f_num(g('p99_ms'))} / {f_num(g('p99_ms', 'ref'))} |")
    w("")
    http = d.med("gateway", "http-floor", "ref", "cpu_http_us")
    if http is not None:
        http_rps = d.med("gateway", "http-floor", "ref", "ok_rps")
        http_sys = d.med("gateway", "http-floor", "ref", "cpu_http_system_us")
        pubs = [v for v in (d.med("gateway", f"submit-{b}", "ref", "cpu_publisher_us")
                            for b in (params.get("LOAD_STORES") or "fs s3").split()) if v is not None]
        lapin = statistics.median(pubs) if pubs else None
        w("The floor under a submission, in the same runs: actix-web alone "
          "(`common/examples/bare_http.rs`: the same bodies read into a struct, a `202` with a JSON "
          f"body after a wait of {params.get('HTTP_HOLD_US') or '—'} µs in place of the confirm, no store, "
          f"no broker) spent {f_num(http, ' µs')} of CPU per request ({f_num(http_sys, ' µs')} in the "
          f"kernel) at {f_num(http_rps, '/s')}; lapin alone (the bare publisher's own CPU) "
          f"{f_num(lapin, ' µs')} per confirmed message, at its own, higher rate (more confirms per "
          f"wake-up). Together, {f_num(http + lapin if lapin is not None else None, ' µs')}: what a "
          "gateway made of these two spends before its store and its own work.")
        w("")

    w("### Horizontal scaling (goal 6)")
    w("")
    w("`HOPSTER__TRANSCODER__THREADS=1`; one or two `transcoder-worker` processes (both consuming before "
      "the first submit); a warm-up clip first; batch time from the first `POST` until the last clip is downloadable.")
    w("")
    w("| transcoders | median batch time | min – max | per run (s) | jobs per worker (last run) |")
    w("|---|---|---|---|---|")
    for n in (1, 2):
        rs = d.sel("scaling", f"transcoders-{n}")
        if not rs:
            continue
        v = d.vals("scaling", f"transcoders-{n}", "ours")
        last = rs[-1].get("workers") or {}
        errs = d.errors("scaling", f"transcoders-{n}")
        w(f"| {n} | {f_s(statistics.median(v) if v else None)} | {spread(v)} | {runs_list(v)} | "
          f"{', '.join(str(c) for c in sorted(last.values(), reverse=True)) or '—'} |"
          + (f" {len(errs)} failed: {err_text(errs)}" if errs else ""))
    w("")
    w("## How to read this")
    w("")
    w("See `bench/README.md`. Ratios are median(Hopster) / median(reference) for times (lower is "
      "better), reference / Hopster time for throughput. Every figure comes from the same run on the same "
      "machine; a busy machine (see the load average) makes every figure worse, the references included.")
    w("")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rundir", required=True)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    a = ap.parse_args()
    recs, params = load(a.rundir)
    text = render(recs, params, machine(params))
    with open(a.out, "w") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
