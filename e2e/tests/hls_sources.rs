//! HLS sources, end to end with the SSRF guard on: renditions made by ffmpeg's hls muxer are
//! served on loopback by a server the settings trust by its exact `ip:port`
//! (`sources.trusted_addresses`); a second, untrusted loopback server stands for an internal
//! host. Every clip is measured with ffprobe, and the servers' logs show what was fetched.
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

use e2e::media::{frame_hashes, probe_bytes};
use e2e::source::SourceServer;
use e2e::stack::{Options, Stack};
use e2e::TempDir;
use hopster_common::settings::Backend;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const JOB_DEADLINE: Duration = Duration::from_secs(180);
/// The renditions' segment length.
const SEGMENT_SECS: &str = "4";

/// Writes an HLS rendition of `video` into `dir/name/` (`index.m3u8`), 4 s segments, stream
/// copied, plus the hls muxer's `extra` options.
fn rendition(video: &Path, dir: &Path, name: &str, segment: &str, extra: &[&str]) {
    let out = dir.join(name);
    std::fs::create_dir_all(&out).expect("rendition dir");
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(video)
        .args(["-c", "copy", "-f", "hls", "-hls_time", SEGMENT_SECS])
        .args(["-hls_playlist_type", "vod", "-hls_segment_filename"])
        .arg(out.join(segment))
        .args(extra)
        .arg(out.join("index.m3u8"))
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "making the {name} rendition");
}

/// The renditions every test uses, under one directory: `ts`, `fmp4` (`EXT-X-MAP`), `aes`
/// (AES-128, the IV from the sequence number), `single` (one file, `EXT-X-BYTERANGE`), `high`
/// (640×360) and `master.m3u8` listing `ts` (320×240) and `high`.
fn renditions() -> TempDir {
    let dir = TempDir::new("hopster-hls");
    let sixty = e2e::media::sixty_second_video();
    rendition(sixty, &dir.0, "ts", "seg%03d.ts", &[]);
    rendition(
        sixty,
        &dir.0,
        "fmp4",
        "seg%03d.m4s",
        &[
            "-hls_segment_type",
            "fmp4",
            "-hls_fmp4_init_filename",
            "init.mp4",
        ],
    );
    let aes = dir.0.join("aes");
    std::fs::create_dir_all(&aes).expect("aes dir");
    std::fs::write(aes.join("key.bin"), [0x5au8; 16]).expect("key");
    let info = dir.0.join("aes.keyinfo");
    std::fs::write(
        &info,
        format!("key.bin\n{}\n", aes.join("key.bin").display()),
    )
    .expect("key info");
    let info = info.display().to_string();
    rendition(
        sixty,
        &dir.0,
        "aes",
        "seg%03d.ts",
        &["-hls_key_info_file", &info],
    );
    rendition(
        sixty,
        &dir.0,
        "single",
        "all.ts",
        &["-hls_flags", "single_file"],
    );
    rendition(
        e2e::media::large_faststart_video(),
        &dir.0,
        "high",
        "seg%03d.ts",
        &[],
    );
    std::fs::write(
        dir.0.join("master.m3u8"),
        "#EXTM3U\n\
         #EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=320x240\nts/index.m3u8\n\
         #EXT-X-STREAM-INF:BANDWIDTH=2200000,RESOLUTION=640x360\nhigh/index.m3u8\n",
    )
    .expect("master");
    dir
}

/// The media playlist `dir/name/index.m3u8`, parsed.
fn media_playlist(dir: &Path, name: &str) -> m3u8_rs::MediaPlaylist {
    let text = std::fs::read(dir.join(name).join("index.m3u8")).expect("playlist");
    match m3u8_rs::parse_playlist_res(&text).expect("parses") {
        m3u8_rs::Playlist::MediaPlaylist(m) => m,
        m3u8_rs::Playlist::MasterPlaylist(_) => panic!("{name} is a master playlist"),
    }
}

/// The segment URIs of `name` that overlap `[start, stop)` seconds, by their EXTINFs.
fn overlapping(dir: &Path, name: &str, start: f64, stop: f64) -> Vec<String> {
    let mut at = 0.0;
    let mut out = Vec::new();
    for s in media_playlist(dir, name).segments {
        let end = at + f64::from(s.duration);
        if at < stop && end > start {
            out.push(s.uri.clone());
        }
        at = end;
    }
    out
}

/// A stack with the guard on that trusts `media` (and only it).
async fn guarded_stack(
    media: &SourceServer,
    tune: impl FnOnce(&mut hopster_common::settings::Settings),
) -> Stack {
    let trusted: std::net::SocketAddr = media
        .base_url
        .trim_start_matches("http://")
        .parse()
        .expect("the media server's address");
    Stack::spawn_with(
        Options {
            backend: Backend::Fs,
            workers: true,
        },
        move |s| {
            s.sources.allow_private_networks = false;
            s.sources.trusted_addresses = vec![trusted];
            tune(s);
        },
    )
    .await
}

async fn run(stack: &Stack, body: Value) -> Value {
    let (code, job) = stack.post("/v1/jobs", &body).await;
    assert_eq!(code, 202, "{job}");
    let (done, _) = stack
        .wait_for_job(job["id"].as_str().expect("id"), JOB_DEADLINE)
        .await;
    done
}

async fn video_of(stack: &Stack, id: &str) -> Vec<u8> {
    let r = stack
        .http
        .get(stack.url(&format!("/v1/jobs/{id}/video")))
        .send()
        .await
        .expect("GET video");
    assert_eq!(r.status().as_u16(), 200);
    r.bytes().await.expect("body").to_vec()
}

/// The requests the media server saw under `prefix/`, by path, without the prefix.
fn fetched(media: &SourceServer, prefix: &str) -> Vec<(String, u64)> {
    media
        .tree_requests()
        .into_iter()
        .filter_map(|(p, n)| Some((p.strip_prefix(&format!("{prefix}/"))?.to_owned(), n)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vod_playlists_are_clipped_from_only_the_segments_the_clip_overlaps() {
    let dir = renditions();
    let media = SourceServer::start(dir.0.clone());
    // Every clip encoded, the mp4's too: its 00:00:10 is a keyframe, and a passthrough would
    // give the source's own frames, not the encoder's.
    let stack = guarded_stack(&media, |s| s.transcoder.passthrough = false).await;
    // The same clip of the mp4 the renditions were made from: the reference frames.
    std::fs::copy(e2e::media::sixty_second_video(), dir.0.join("sixty.mp4")).expect("mp4");
    let done = run(
        &stack,
        json!({"url": format!("{}/tree/sixty.mp4", media.base_url), "start": "00:00:10", "stop": "00:00:13"}),
    )
    .await;
    assert_eq!(done["state"], "completed", "{done}");
    let reference = frame_hashes(&video_of(&stack, done["id"].as_str().expect("id")).await);
    assert_eq!(reference.len(), 75, "3 s at 25 fps");
    for name in ["ts", "fmp4", "aes", "single"] {
        let url = format!("{}/tree/{name}/index.m3u8", media.base_url);
        let done = run(
            &stack,
            json!({"url": url, "start": "00:00:10", "stop": "00:00:13"}),
        )
        .await;
        assert_eq!(done["state"], "completed", "{name}: {done}");
        let id = done["id"].as_str().expect("id");
        let bytes = video_of(&stack, id).await;
        let clip = probe_bytes(&bytes);
        assert!(
            (clip.duration - 3.0).abs() <= 0.05,
            "{name}: {}",
            clip.duration
        );
        assert_eq!((clip.width, clip.height), (320, 240), "{name}");
        // Exact to the frame: the very frames of the clip cut from the mp4.
        assert_eq!(frame_hashes(&bytes), reference, "{name}");
        let needed = overlapping(&dir.0, name, 10.0, 13.0);
        let listed = media_playlist(&dir.0, name).segments.len();
        assert!(
            needed.len() < listed,
            "{name}: the clip must not need them all"
        );
        assert_eq!(
            done["result"]["source_segments"],
            json!(needed.len()),
            "{name}: {done}"
        );
        assert_eq!(
            done["progress"]["download"]["segments"],
            json!(needed.len())
        );
        // What the server sent: the playlist (a 16-byte look at what the source is, then the
        // whole of it), the init section or the key where there is one, and the segments
        // the clip overlaps, each once. Nothing else.
        let log = fetched(&media, name);
        let playlist = std::fs::metadata(dir.0.join(name).join("index.m3u8"))
            .expect("playlist")
            .len();
        let playlist_sent: u64 = log
            .iter()
            .filter(|(p, _)| p == "index.m3u8")
            .map(|(_, n)| n)
            .sum();
        assert_eq!(playlist_sent, playlist + 16, "{name}: {log:?}");
        let mut others: Vec<&str> = log
            .iter()
            .map(|(p, _)| p.as_str())
            .filter(|p| *p != "index.m3u8")
            .collect();
        others.sort_unstable();
        let mut expected: Vec<&str> = needed.iter().map(String::as_str).collect();
        match name {
            "fmp4" => expected.push("init.mp4"),
            "aes" => expected.push("key.bin"),
            _ => {}
        }
        if name == "single" {
            // One file, read by the byte ranges of the overlapping segments only.
            assert_eq!(others, vec!["all.ts"; needed.len()], "{log:?}");
            let file = std::fs::metadata(dir.0.join("single/all.ts"))
                .expect("all.ts")
                .len();
            let sent: u64 = log
                .iter()
                .filter(|(p, _)| p == "all.ts")
                .map(|(_, n)| n)
                .sum();
            assert!(sent * 3 < file, "{sent} of {file} bytes sent");
        } else {
            expected.sort_unstable();
            assert_eq!(others, expected, "{name}");
        }
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_master_playlist_gives_the_highest_variant_within_max_height() {
    let dir = renditions();
    let media = SourceServer::start(dir.0.clone());
    let stack = guarded_stack(&media, |_| {}).await;
    let url = format!("{}/tree/master.m3u8", media.base_url);
    for (max_height, variant, height) in [(None, "high", 360), (Some(300), "ts", 240)] {
        let mut body = json!({"url": url, "start": "00:00:10", "stop": "00:00:13"});
        if let Some(h) = max_height {
            body["max_height"] = json!(h);
        }
        let before = media.tree_requests().len();
        let done = run(&stack, body).await;
        assert_eq!(done["state"], "completed", "{done}");
        let clip = probe_bytes(&video_of(&stack, done["id"].as_str().expect("id")).await);
        assert_eq!(clip.height, height, "{max_height:?}");
        assert!((clip.duration - 3.0).abs() <= 0.05, "{}", clip.duration);
        let other = if variant == "ts" { "high/" } else { "ts/" };
        let log: Vec<String> = media.tree_requests()[before..]
            .iter()
            .map(|(p, _)| p.clone())
            .collect();
        assert!(
            log.iter().any(|p| p.starts_with(&format!("{variant}/seg"))),
            "{log:?}"
        );
        assert!(!log.iter().any(|p| p.starts_with(other)), "{log:?}");
    }
    stack.stop().await;
}

/// Playlists on the trusted server whose URIs lead to the untrusted one, in every way; each
/// job fails `source_forbidden` and the internal server is never contacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn internal_uris_in_a_playlist_are_refused_without_contacting_them() {
    let dir = renditions();
    let media = SourceServer::start(dir.0.clone());
    let internal = SourceServer::start(dir.0.clone());
    let port = internal
        .base_url
        .rsplit(':')
        .next()
        .expect("port")
        .to_owned();
    let host = std::fs::read_to_string("/etc/hostname")
        .expect("/etc/hostname")
        .trim()
        .to_owned();
    let ts = std::fs::read_to_string(dir.0.join("ts/index.m3u8")).expect("ts playlist");
    let aes = std::fs::read_to_string(dir.0.join("aes/index.m3u8")).expect("aes playlist");
    let inside = format!("http://127.0.0.1:{port}/tree/ts/seg001.ts");
    let cases = [
        ("literal", ts.replace("seg001.ts", &inside)),
        (
            "spelling",
            ts.replace(
                "seg001.ts",
                &format!("http://2130706433:{port}/tree/ts/seg001.ts"),
            ),
        ),
        (
            "name",
            ts.replace(
                "seg001.ts",
                &format!("http://{host}:{port}/tree/ts/seg001.ts"),
            ),
        ),
        (
            "redirect",
            ts.replace(
                "seg001.ts",
                &format!("{}/special/redirect?to={inside}", media.base_url),
            ),
        ),
        ("file", ts.replace("seg001.ts", "file:///etc/passwd")),
        (
            "key",
            aes.replace(
                "URI=\"key.bin\"",
                &format!("URI=\"http://127.0.0.1:{port}/tree/aes/key.bin\""),
            ),
        ),
        (
            "variant",
            format!(
                "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=320x240\n\
                 http://[::ffff:127.0.0.1]:{port}/tree/ts/index.m3u8\n"
            ),
        ),
    ];
    for (name, text) in &cases {
        let case = dir.0.join(format!("case-{name}"));
        std::fs::create_dir_all(&case).expect("case dir");
        std::fs::write(case.join("index.m3u8"), text).expect("playlist");
        // The segments the playlist names relatively are beside it, as in the rendition.
        for entry in std::fs::read_dir(dir.0.join(if *name == "key" { "aes" } else { "ts" }))
            .expect("rendition")
            .flatten()
        {
            if entry.file_name() != "index.m3u8" {
                std::fs::copy(entry.path(), case.join(entry.file_name())).expect("segment");
            }
        }
    }
    let stack = guarded_stack(&media, |_| {}).await;
    for (name, _) in &cases {
        let url = format!("{}/tree/case-{name}/index.m3u8", media.base_url);
        // The clip overlaps seg001 (4–8 s), so the job reaches that URI.
        let done = run(
            &stack,
            json!({"url": url, "start": "00:00:05", "stop": "00:00:06"}),
        )
        .await;
        assert_eq!(
            (done["state"].as_str(), done["error"]["code"].as_str()),
            (Some("failed"), Some("source_forbidden")),
            "{name}: {done}"
        );
        assert_eq!(done["attempt"], 1, "{name}: never retried");
    }
    assert_eq!(
        internal.request_count(),
        0,
        "the internal server was never contacted"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn huge_live_and_long_playlists_get_their_codes_and_the_seed_api_clips_hls() {
    let dir = renditions();
    let ts = std::fs::read_to_string(dir.0.join("ts/index.m3u8")).expect("ts playlist");
    let live = dir.0.join("live");
    std::fs::create_dir_all(&live).expect("live dir");
    std::fs::write(live.join("index.m3u8"), ts.replace("#EXT-X-ENDLIST\n", "")).expect("live");
    let huge = dir.0.join("huge");
    std::fs::create_dir_all(&huge).expect("huge dir");
    let mut text = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:4\n");
    while text.len() < 2 * 1024 * 1024 {
        text.push_str("#EXTINF:4.0,\nseg000.ts\n");
    }
    text.push_str("#EXT-X-ENDLIST\n");
    std::fs::write(huge.join("index.m3u8"), text).expect("huge");
    let media = SourceServer::start(dir.0.clone());
    let base = media.base_url.clone();
    let stack = guarded_stack(&media, move |s| {
        s.sources.max_segments = 2;
        s.sources.video_url_template = format!("{base}/tree/{{video_id}}/index.m3u8");
    })
    .await;
    let at = |name: &str| format!("{}/tree/{name}/index.m3u8", media.base_url);
    for (url, start, stop, code) in [
        (at("huge"), "00:00:01", "00:00:02", "source_too_large"),
        (at("live"), "00:00:01", "00:00:02", "live_source"),
        // 3–13 s overlaps three segments; at most two are fetched here.
        (at("ts"), "00:00:03", "00:00:13", "source_too_large"),
        (at("ts"), "00:01:10", "00:01:12", "clip_out_of_range"),
    ] {
        let done = run(&stack, json!({"url": url, "start": start, "stop": stop})).await;
        assert_eq!(
            (done["state"].as_str(), done["error"]["code"].as_str()),
            (Some("failed"), Some(code)),
            "{url}: {done}"
        );
    }
    assert!(fetched(&media, "live")
        .iter()
        .all(|(p, _)| p == "index.m3u8"));

    // The seed API, with a catalogue id that maps to a playlist.
    let (code, body) = stack
        .post(
            "/schedule",
            &json!({"video_id": "fmp4", "start": "00:00:20", "stop": "00:00:22.5"}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let name = body["video_file"].as_str().expect("video_file").to_owned();
    stack
        .wait_until(JOB_DEADLINE, "the seed job to finish", || async {
            let (_, p) = stack.get_json(&format!("/progress?reference={name}")).await;
            p["is_finished"] == true
        })
        .await;
    let r = stack
        .http
        .get(stack.url(&format!("/download?video_file={name}")))
        .send()
        .await
        .expect("download");
    assert_eq!(r.status().as_u16(), 200);
    let clip = probe_bytes(&r.bytes().await.expect("body"));
    assert!((clip.duration - 2.5).abs() <= 0.05, "{}", clip.duration);
    stack.stop().await;
}
