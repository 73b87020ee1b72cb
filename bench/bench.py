#!/usr/bin/env python3
"""Measurement primitives of the Hopster benchmark (python3 stdlib only).

Each subcommand takes ONE measurement and appends one JSON record to --results (JSON lines),
labelled with --section/--name/--kind/--run. `bench/run` calls them in order; `report.py`
turns the records into RESULTS.md.

  job    submit a job, poll GET /v1/jobs/{id}/video until it answers 200 with the whole body
  bare   run a command (bare ffmpeg) and time it
  timed  run any command (curl -o) and time it
  stage  submit a whole-source job and time the downloader's staging; its peak RSS
  batch  submit several clips at once and time the batch until the last is downloadable
  wrk    run wrk with one of the Lua scripts and keep the JSON its done() prints
  util   small helpers for bench/run: free-port, wait-http, stats, hhmmss, consumers
"""

import argparse
import hashlib
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.parse

POLL = float(os.environ.get("BENCH_POLL_SECS", "0.025"))


# ---------------------------------------------------------------------------------------------
# HTTP


class Http:
    """One keep-alive connection to a base URL, reconnecting when the server closes it."""

    def __init__(self, base, timeout=30):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.timeout = timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("connection", "").lower() == "close":
                    self.close()
                return resp.status, resp, data
            except (http.client.HTTPException, ConnectionError, socket.timeout, OSError):
                self.close()
                if attempt == 2:
                    raise
        raise RuntimeError("unreachable")

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None


def jloads(data):
    try:
        return json.loads(data)
    except (ValueError, TypeError):
        return None


def source_stats(stats_url, tag, settle=0.3):
    """Bytes and requests the source server attributed to `tag` (its URLs' r= parameter)."""
    if not stats_url or not tag:
        return {}
    time.sleep(settle)  # let connections a client just dropped finish their accounting
    try:
        st, _, data = Http(stats_url, timeout=5).request("GET", "/__stats")
        s = (jloads(data) or {}).get(tag) or {}
        return {"src_bytes": s.get("bytes", 0), "src_requests": s.get("requests", 0),
                "src_ranges": s.get("ranges", [])[:12]}
    except OSError as e:
        return {"src_error": str(e)}


def emit(args, record):
    base = {"section": args.section, "name": args.name, "kind": args.kind, "run": args.run,
            "t": time.time(), "load1": os.getloadavg()[0]}
    base.update(record)
    with open(args.results, "a") as fh:
        fh.write(json.dumps(base) + "\n")
    secs = base.get("secs")
    summary = f"{args.section}/{args.name}/{args.kind} run {args.run}: " + (
        f"{secs:.3f} s" if isinstance(secs, (int, float)) else f"{base.get('error') or 'n/a'}")
    extra = []
    for k in ("src_bytes", "vmhwm_kib", "rps", "ok_rps", "p99_ms", "cpu_gateway_us", "cpu_gateway_system_us", "cpu_rabbitmq_us"):
        if base.get(k) is not None:
            extra.append(f"{k}={base[k]}")
    print(summary + (" (" + ", ".join(extra) + ")" if extra else ""), file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# job: one clip (or the whole video) end to end


def submit(gw, url, start=None, stop=None, accuracy=None):
    body = {"url": url}
    if start:
        body["start"] = start
    if stop:
        body["stop"] = stop
    if accuracy:
        body["accuracy"] = accuracy
    st, _, data = gw.request("POST", "/v1/jobs", body)
    return st, jloads(data) or {"raw": data[:300].decode("utf-8", "replace")}


def wait_downloadable(gw, jid, deadline, sent=None):
    """Polls the video route until 200 (returns body) or the job failed (returns None, error).
    `sent`, a dict, gets the wall-clock ms at which the answering request was sent."""
    started = time.monotonic()
    while True:
        sent_ms = time.time() * 1000
        st, _, data = gw.request("GET", f"/v1/jobs/{jid}/video")
        if st == 200:
            if sent is not None:
                sent["ms"] = sent_ms
            return data, None
        err = (jloads(data) or {}).get("error") or {}
        if st != 409 or err.get("code") == "job_failed":
            return None, err or {"code": f"http_{st}"}
        if time.monotonic() > deadline:
            return None, {"code": "bench_timeout"}
        # 25 ms while a clip could be finishing; 100 ms once it is clearly a long job (whole
        # video), so the poller does not compete with the transcode for CPU.
        time.sleep(POLL if time.monotonic() - started < 10 else max(POLL, 0.1))


def wait_events(base, jid, timeout):
    """Follows GET /v1/jobs/{id}/events (Server-Sent Events, `event:` = the state) until the job
    ends, as `hopster clip` does; returns the last state seen."""
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    state = None
    try:
        conn.request("GET", f"/v1/jobs/{jid}/events")
        resp = conn.getresponse()
        while True:
            line = resp.fp.readline()
            if not line:
                break
            line = line.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith("event:"):
                state = line[len("event:"):].strip()
                if state in ("completed", "failed", "cancelled"):
                    break
    finally:
        conn.close()
    return state


def status_fields(status):
    status = status or {}
    prog = status.get("progress") or {}
    dl = prog.get("download") or {}
    res = status.get("result") or {}
    return {
        "state": status.get("state"),
        "dl_bytes": dl.get("bytes"),
        "dl_total": dl.get("total_bytes"),
        "dl_cached": dl.get("cached"),
        "dl_ranged": dl.get("ranged"),  # None: the service does not report it
        "start_achieved": res.get("start_achieved"),
        "method": res.get("method"),
        "copied_secs": res.get("copied_secs"),
        "encoded_secs": res.get("encoded_secs"),
        "source_segments": res.get("source_segments"),
        "result_size": res.get("size"),
        "result_duration": res.get("duration_secs"),
        "result_wh": f"{res.get('width')}x{res.get('height')}" if res else None,
        "worker": status.get("worker"),
        "job_error": status.get("error"),
        "created_at_ms": status.get("created_at_ms"),
        "updated_at_ms": status.get("updated_at_ms"),
        # where the job's time went (issue 18's fixed-cost breakdown); absent from older services
        "timeline": status.get("timeline"),
    }


def cmd_job(a):
    gw = Http(a.gw)
    submit_ms = time.time() * 1000  # wall clock, to line up with the status's timestamps
    t0 = time.perf_counter()
    st, job = submit(gw, a.url, a.start, a.stop, a.accuracy)
    if st not in (200, 202):
        err = (job.get("error") or {}) if isinstance(job, dict) else {}
        rec = {"secs": None, "http": st, "error": err.get("code") or f"http_{st}",
               "message": err.get("message")}
        if a.accuracy and st == 400:
            rec["available"] = False
        return emit(a, rec)
    jid = job.get("id")
    sent = {}
    if a.wait == "events":
        wait_events(a.gw, jid, a.timeout)
    body, err = wait_downloadable(gw, jid, time.monotonic() + a.timeout, sent)
    t1 = time.perf_counter()
    seen_ms = time.time() * 1000
    _, _, sdata = gw.request("GET", f"/v1/jobs/{jid}")
    status = jloads(sdata) or {}
    rec = {"http": st, "id": jid, "available": True, "submit_ms": submit_ms, "seen_ms": seen_ms,
           "fetch_sent_ms": sent.get("ms")}
    rec.update(status_fields(status))
    if body is None:
        rec.update({"secs": None, "error": err.get("code"), "message": err.get("message")})
    else:
        rec.update({"secs": t1 - t0, "body_bytes": len(body),
                    "body_complete": rec.get("result_size") in (None, len(body))})
        if a.out:
            with open(a.out, "wb") as fh:
                fh.write(body)
    rec.update(source_stats(a.src_stats, a.tag))
    emit(a, rec)


# ---------------------------------------------------------------------------------------------
# bare / timed: a reference command


def probe(path):
    try:
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration,start_time",
             "-of", "json", path], capture_output=True, timeout=30).stdout
        fmt = (jloads(out) or {}).get("format") or {}
        return float(fmt.get("duration")) if fmt.get("duration") else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def cmd_bare(a):
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    t1 = time.perf_counter()
    rec = {"secs": (t1 - t0) if p.returncode == 0 else None, "rc": p.returncode,
           "cmd": " ".join(cmd)[:400]}
    if p.returncode != 0:
        rec["error"] = f"exit {p.returncode}: " + p.stderr.decode("utf-8", "replace")[-300:]
    if a.out and p.returncode == 0:
        rec["result_duration"] = probe(a.out)
        try:
            rec["result_size"] = os.path.getsize(a.out)
        except OSError:
            pass
    rec.update(source_stats(a.src_stats, a.tag))
    emit(a, rec)


# ---------------------------------------------------------------------------------------------
# stage: the downloader staging a whole source


def vm(pid, key):
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])  # kB
    except OSError:
        return None
    return None


def cmd_stage(a):
    gw = Http(a.gw)
    idle_hwm = vm(a.pid, "VmHWM")
    t0 = time.perf_counter()
    st, job = submit(gw, a.url)
    if st not in (200, 202):
        return emit(a, {"secs": None, "http": st, "error": str(job)[:300]})
    spec_url = ((job.get("spec") or {}).get("url")) or a.url
    key = "sources/" + hashlib.sha256(spec_url.encode()).hexdigest()
    staged = os.path.join(a.store_root, key)
    deadline = time.monotonic() + a.timeout
    jid = job.get("id")
    t1, how, status, last_status_poll = None, None, {}, 0.0
    fs_store = os.path.isdir(a.store_root)
    peak_rss = 0
    while time.monotonic() < deadline:
        peak_rss = max(peak_rss, vm(a.pid, "VmRSS") or 0)
        # fs store: the multipart upload writes a staging file and renames it into place when
        # it completes, so the object's appearance is the end of the staging.
        if fs_store and os.path.exists(staged):
            t1, how = time.perf_counter(), "object"
            break
        now = time.monotonic()
        if now - last_status_poll > 0.1:
            last_status_poll = now
            _, _, sdata = gw.request("GET", f"/v1/jobs/{jid}")
            status = jloads(sdata) or {}
            state = status.get("state")
            dl = (status.get("progress") or {}).get("download") or {}
            if state == "failed":
                break
            if state not in ("queued", "downloading") or (
                    not fs_store and (dl.get("percent") or 0) >= 100):
                t1, how = time.perf_counter(), "status"
                break
        time.sleep(0.01)
    hwm = vm(a.pid, "VmHWM")
    time.sleep(0.3)
    _, _, sdata = gw.request("GET", f"/v1/jobs/{jid}")
    status = jloads(sdata) or status
    rec = status_fields(status)
    size = None
    try:
        size = os.path.getsize(staged)
    except OSError:
        pass
    rec.update({"secs": (t1 - t0) if t1 else None, "end_signal": how, "vmhwm_kib": hwm,
                "idle_vmhwm_kib": idle_hwm, "sampled_peak_rss_kib": peak_rss,
                "staged_bytes": size, "pid": a.pid})
    if t1 is None:
        rec["error"] = ((status.get("error") or {}).get("code")) or "bench_timeout"
    if t1 and size:
        rec["mib_per_s"] = size / (1 << 20) / (t1 - t0)
    rec.update(source_stats(a.src_stats, a.tag, settle=0.0))
    emit(a, rec)


def cmd_timed(a):
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    t1 = time.perf_counter()
    rec = {"secs": (t1 - t0) if p.returncode == 0 else None, "rc": p.returncode,
           "cmd": " ".join(cmd)[:400]}
    if a.out:
        try:
            size = os.path.getsize(a.out)
            rec["bytes"] = size
            if p.returncode == 0:
                rec["mib_per_s"] = size / (1 << 20) / (t1 - t0)
        except OSError:
            pass
    if p.returncode != 0:
        rec["error"] = f"exit {p.returncode}: " + p.stderr.decode("utf-8", "replace")[-300:]
    rec.update(source_stats(a.src_stats, a.tag, settle=0.0))
    emit(a, rec)


# ---------------------------------------------------------------------------------------------
# batch: several clips at once


def cmd_batch(a):
    gw = Http(a.gw)
    starts = [s for s in a.starts.split(",") if s]
    t0 = time.perf_counter()
    jobs = []
    for s in starts:
        stop = hhmmss(parse_secs(s) + a.length)
        st, job = submit(gw, a.url, s, stop)
        if st not in (200, 202):
            return emit(a, {"secs": None, "http": st, "error": str(job)[:300]})
        jobs.append(job["id"])
    pending = {j: None for j in jobs}
    done_at, failed = {}, {}
    deadline = time.monotonic() + a.timeout
    while pending and time.monotonic() < deadline:
        for jid in list(pending):
            st, _, data = gw.request("GET", f"/v1/jobs/{jid}/video")
            if st == 200:
                done_at[jid] = time.perf_counter() - t0
                del pending[jid]
            elif st != 409 or ((jloads(data) or {}).get("error") or {}).get("code") == "job_failed":
                failed[jid] = ((jloads(data) or {}).get("error") or {}).get("code") or st
                del pending[jid]
        time.sleep(0.05)
    workers, created, updated = {}, [], []
    for jid in jobs:
        _, _, sdata = gw.request("GET", f"/v1/jobs/{jid}")
        f = status_fields(jloads(sdata))
        workers[f.get("worker") or "?"] = workers.get(f.get("worker") or "?", 0) + 1
        if f.get("created_at_ms"):
            created.append(f["created_at_ms"])
        if f.get("updated_at_ms"):
            updated.append(f["updated_at_ms"])
    ok = not pending and not failed
    rec = {"secs": max(done_at.values()) if ok else None, "jobs": len(jobs),
           "completed": len(done_at), "failed": failed, "timed_out": len(pending),
           "workers": workers,
           "server_span_secs": (max(updated) - min(created)) / 1000 if created and updated else None}
    if not ok:
        rec["error"] = f"{len(failed)} failed, {len(pending)} timed out"
    emit(a, rec)


# ---------------------------------------------------------------------------------------------
# wrk


def cpu_secs(pid):
    """(user, system) CPU time of a process so far, from /proc/PID/stat (fields 14 and 15;
    the name in parentheses may hold spaces, so the fields are counted after it)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cmd_wrk(a):
    """A load run (wrk, or the bare publisher, which prints the same BENCHJSON keys). With
    --cpu LABEL=PID, the CPU each such process spent during the run, in all and per
    confirmed submission (cpu_LABEL_s, cpu_LABEL_us; in the kernel: cpu_LABEL_system_us); with
    --cpu-self LABEL, the command's own CPU the same way (the bare publisher's)."""
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    watched = [c.split("=", 1) for c in a.cpu]
    before = {label: cpu_secs(pid) for label, pid in watched}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    spent = {}
    for label, pid in watched:
        (user, system), (user0, system0) = cpu_secs(pid), before[label]
        spent[label] = (user - user0, system - system0)
    if a.cpu_self:
        # The command's own CPU: what this process's waited-for children spent, before and
        # after (it runs one command).
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        spent[a.cpu_self] = (after.ru_utime - children.ru_utime, after.ru_stime - children.ru_stime)
    if a.log:
        with open(a.log, "a") as fh:
            fh.write("$ " + " ".join(cmd) + "\n" + p.stdout + p.stderr + "\n")
    rec = None
    for line in p.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            rec = jloads(line[len("BENCHJSON "):])
    if rec is None:
        return emit(a, {"secs": None, "error": f"wrk exit {p.returncode}: {p.stderr[-300:]}"})
    rec["secs"] = rec.get("duration_s")
    confirmed = rec.get("status_202", rec.get("confirmed"))
    for label, (user, system) in spent.items():
        rec[f"cpu_{label}_s"] = round(user + system, 3)
        if confirmed:
            rec[f"cpu_{label}_us"] = round((user + system) / confirmed * 1e6, 1)
            rec[f"cpu_{label}_system_us"] = round(system / confirmed * 1e6, 1)
    emit(a, rec)


# ---------------------------------------------------------------------------------------------
# utilities


def parse_secs(tc):
    tc = str(tc)
    if ":" not in tc:
        return float(tc)
    h, m, s = tc.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def hhmmss(secs):
    us = int(round(secs * 1_000_000))
    s, frac = divmod(us, 1_000_000)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    out = f"{h:02d}:{m:02d}:{s:02d}"
    return out + (f".{frac:06d}" if frac else "")


def cmd_util(a):
    what, rest = a.what, a.rest
    if what == "free-port":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            print(s.getsockname()[1])
    elif what == "wait-http":  # URL TIMEOUT [STATUS]: until GET URL answers STATUS (200)
        url, timeout = rest[0], float(rest[1])
        want = int(rest[2]) if len(rest) > 2 else 200
        u = urllib.parse.urlsplit(url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                st, _, _ = Http(url, timeout=2).request("GET", u.path + (("?" + u.query) if u.query else ""))
                if st == want:
                    return 0
            except OSError:
                pass
            time.sleep(0.1)
        return 1
    elif what == "hhmmss":
        print(hhmmss(float(rest[0])))
    elif what == "secs":
        print(parse_secs(rest[0]))
    elif what == "submit":  # GW URL [START STOP]: prints the job id
        st, job = submit(Http(rest[0]), rest[1], *(rest[2:4] if len(rest) >= 4 else ()))
        if st not in (200, 202):
            print(f"submit failed: {st} {job}", file=sys.stderr)
            return 1
        print(job["id"])
    elif what == "consumers":  # VHOST QUEUE: consumer count via rabbitmqctl
        p = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", rest[0], "name", "consumers"],
                           capture_output=True, text=True, timeout=60)
        for line in p.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == rest[1]:
                print(parts[1])
                return 0
        print(0)
    elif what == "duration":
        d = probe(rest[0])
        print(d if d is not None else "")
    else:
        print(f"unknown util {what}", file=sys.stderr)
        return 2
    return 0


def main():
    ap = argparse.ArgumentParser(description="Hopster benchmark measurements")
    sub = ap.add_subparsers(dest="cmd_name", required=True)

    def common(p):
        p.add_argument("--results", required=True)
        p.add_argument("--section", required=True)
        p.add_argument("--name", required=True)
        p.add_argument("--kind", default="ours")
        p.add_argument("--run", type=int, default=0)
        p.add_argument("--src-stats", help="base URL of the source server (for /__stats)")
        p.add_argument("--tag", help="the source URL's r= tag whose bytes to count")
        p.add_argument("--timeout", type=float, default=1800)

    p = sub.add_parser("job")
    common(p)
    p.add_argument("--gw", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--start")
    p.add_argument("--stop")
    p.add_argument("--accuracy")
    p.add_argument("--out")
    p.add_argument("--wait", choices=("poll", "events"), default="poll",
                   help="learn of the end by polling the video route, or from the job's events "
                        "stream (as `hopster clip` does), then fetch the video")
    p.set_defaults(fn=cmd_job)

    for name, fn in (("bare", cmd_bare), ("timed", cmd_timed)):
        p = sub.add_parser(name)
        common(p)
        p.add_argument("--out")
        p.add_argument("cmd", nargs=argparse.REMAINDER)
        p.set_defaults(fn=fn)

    p = sub.add_parser("stage")
    common(p)
    p.add_argument("--gw", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--store-root", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.set_defaults(fn=cmd_stage)

    p = sub.add_parser("batch")
    common(p)
    p.add_argument("--gw", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--starts", required=True, help="comma-separated start times")
    p.add_argument("--length", type=float, default=3.0)
    p.set_defaults(fn=cmd_batch)

    p = sub.add_parser("wrk")
    common(p)
    p.add_argument("--log")
    p.add_argument("--cpu", action="append", default=[], metavar="LABEL=PID",
                   help="a process whose CPU time during the run to record")
    p.add_argument("--cpu-self", metavar="LABEL",
                   help="also the command's own CPU, as cpu_LABEL_us (a reference's client)")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_wrk)

    p = sub.add_parser("util")
    p.add_argument("what")
    p.add_argument("rest", nargs="*")
    p.set_defaults(fn=cmd_util)

    a = ap.parse_args()
    if a.cmd_name == "util":
        return a.fn(a) or 0
    try:
        return a.fn(a) or 0
    except Exception as e:  # a measurement that broke is a record too, and the run goes on
        emit(a, {"secs": None, "error": f"bench error: {type(e).__name__}: {e}"})
        return 1


if __name__ == "__main__":
    sys.exit(main())
