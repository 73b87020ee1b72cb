//! Source inspection (`POST /v1/sources`), end to end: the streams, the keyframes read from
//! the mp4's index through the range proxy, a storyboard of keyframes (sprite and WebVTT), the
//! bytes of the source that took, and every refusal with its code.
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

use e2e::media::probe_bytes;
use e2e::stack::{Options, Stack};
use hopster_common::settings::Backend;
use serde_json::{json, Value};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(120);

/// Polls the inspection until it is ready or failed.
async fn settled(stack: &Stack, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let (code, view) = stack.get_json(&format!("/v1/sources/{id}")).await;
        assert_eq!(code, 200, "{view}");
        if matches!(view["state"].as_str(), Some("ready" | "failed")) {
            return view;
        }
        assert!(started.elapsed() < DEADLINE, "still {view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The keyframe times ffprobe finds reading every packet of the file.
fn keyframes_by_ffprobe(path: &std::path::Path) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["packet=pts_time,flags", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    doc["packets"]
        .as_array()
        .expect("packets")
        .iter()
        .filter(|p| p["flags"].as_str().unwrap_or("").contains('K'))
        .filter_map(|p| p["pts_time"].as_str()?.parse().ok())
        .collect()
}

/// Tile 12 of `sprite` (row 1, column 2, tiles `w`×`h`) is the source's keyframe at 24 s, not
/// the one after it: its PSNR against the frame at 24 s is high, and clearly above 26 s's.
fn assert_tile_12_is_24_s(sprite: &[u8], (w, h): (u32, u32), source: &std::path::Path) {
    let dir = e2e::TempDir::new("hopster-sprite");
    let file = dir.0.join("sprite.jpg");
    std::fs::write(&file, sprite).expect("sprite");
    let right = tile_psnr(&file, (2 * w, h, w, h), source, "24");
    let wrong = tile_psnr(&file, (2 * w, h, w, h), source, "26");
    assert!(
        right > 25.0 && right > wrong + 3.0,
        "tile 12: {right:.1} dB at 24 s, {wrong:.1} at 26 s"
    );
}

/// PSNR (dB) of the sprite's tile `(x, y, width, height)` against the source's frame at `at`,
/// scaled to the tile.
fn tile_psnr(
    sprite: &std::path::Path,
    (x, y, w, h): (u32, u32, u32, u32),
    source: &std::path::Path,
    at: &str,
) -> f64 {
    let graph = format!(
        "[0:v]crop={w}:{h}:{x}:{y},format=yuv420p[a];[1:v]scale={w}:{h},format=yuv420p,setsar=1[b];[a][b]psnr"
    );
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-i"])
        .arg(sprite)
        .args(["-ss", at, "-i"])
        .arg(source)
        .args(["-lavfi", &graph, "-frames:v", "1", "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let log = String::from_utf8_lossy(&out.stderr);
    log.rsplit("average:")
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| {
            if v == "inf" {
                Some(100.0)
            } else {
                v.parse().ok()
            }
        })
        .unwrap_or_else(|| panic!("no PSNR in {log}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_is_inspected_from_its_index_and_a_storyboard_of_keyframes() {
    let stack = Stack::spawn_with(
        Options {
            backend: Backend::Fs,
            workers: true,
        },
        |_| {},
    )
    .await;
    let original = e2e::media::large_faststart_video();
    std::fs::copy(original, stack.media_dir.join("large.mp4")).expect("the source");
    let size = std::fs::metadata(original).expect("size").len();
    let url = format!("{}/ranged/large.mp4", stack.source.base_url);

    let (code, first) = stack.post("/v1/sources", &json!({"url": url})).await;
    assert_eq!(code, 202, "{first}");
    assert_eq!(first["state"], "queued");
    let id = first["id"].as_str().expect("id").to_owned();
    assert_eq!(first["links"]["self"], format!("/v1/sources/{id}"));
    // The same source again is the same inspection.
    let (code, again) = stack.post("/v1/sources", &json!({"url": url})).await;
    assert_eq!(
        (code, again["id"].as_str()),
        (200, Some(id.as_str())),
        "{again}"
    );

    let view = settled(&stack, &id).await;
    assert_eq!(view["state"], "ready", "{view}");
    let found = &view["inspection"];
    assert!(
        (found["duration_secs"].as_f64().unwrap_or(0.0) - 60.0).abs() < 0.1,
        "{found}"
    );
    assert!(
        found["container"]
            .as_str()
            .unwrap_or("")
            .starts_with("mov,mp4"),
        "{found}"
    );
    let streams = found["streams"].as_array().expect("streams");
    let video = streams
        .iter()
        .find(|s| s["kind"] == "video")
        .expect("video");
    assert_eq!(
        (
            video["codec"].as_str(),
            video["width"].as_u64(),
            video["height"].as_u64()
        ),
        (Some("h264"), Some(640), Some(360)),
        "{video}"
    );
    assert_eq!(video["fps"].as_f64(), Some(25.0), "{video}");
    assert!(
        video["bit_rate"].as_u64().unwrap_or(0) > 1_000_000,
        "{video}"
    );
    let audio = streams
        .iter()
        .find(|s| s["kind"] == "audio")
        .expect("audio");
    assert_eq!(
        (
            audio["codec"].as_str(),
            audio["channels"].as_u64(),
            audio["sample_rate"].as_u64()
        ),
        (Some("aac"), Some(1), Some(44100)),
        "{audio}"
    );
    // The keyframes from the index are the ones ffprobe finds reading every packet.
    let expected = keyframes_by_ffprobe(original);
    let listed: Vec<f64> = found["keyframes"]
        .as_array()
        .expect("keyframes")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert_eq!(listed.len(), expected.len(), "{listed:?} vs {expected:?}");
    assert_eq!(listed.len(), 30, "a keyframe every 2 s");
    for (l, e) in listed.iter().zip(&expected) {
        assert!((l - e).abs() < 0.001, "{listed:?} vs {expected:?}");
    }

    // The storyboard: 30 tiles of 160×90, 10 a row, one every 2 s.
    let board = &found["storyboard"];
    assert_eq!(
        board,
        &json!({"tiles": 30, "columns": 10, "rows": 3, "tile_width": 160, "tile_height": 90,
                "interval_secs": 2.0}),
    );
    let (code, kind, sprite) = stack
        .get_bytes(&format!("/v1/sources/{id}/storyboard.jpg"))
        .await;
    assert_eq!((code, kind.as_str()), (200, "image/jpeg"));
    let probed = probe_bytes(&sprite);
    assert_eq!((probed.width, probed.height), (1600, 270));
    assert_tile_12_is_24_s(&sprite, (160, 90), original);
    let (code, kind, vtt) = stack
        .get_bytes(&format!("/v1/sources/{id}/storyboard.vtt"))
        .await;
    assert_eq!((code, kind.as_str()), (200, "text/vtt; charset=utf-8"));
    let vtt = String::from_utf8(vtt).expect("text");
    assert!(vtt.starts_with("WEBVTT\n"), "{vtt}");
    assert_eq!(vtt.matches(" --> ").count(), 30, "{vtt}");
    assert!(
        vtt.contains("\n00:00:24.000 --> 00:00:26.000\nstoryboard.jpg#xywh=320,90,160,90\n"),
        "{vtt}"
    );
    assert!(vtt.contains("\n00:00:58.000 --> 00:01:00.000\nstoryboard.jpg#xywh=1440,180,160,90\n"));

    // Only the probe, the index and one keyframe a tile were read, not the media: the 30
    // keyframes are 4.1 % of this file; with the probe and the index, 5 to 8 % here.
    let read = stack.source.ranged_bytes.load(Ordering::SeqCst);
    eprintln!(
        "FIGURE inspection: {read} of {size} bytes of the source read ({:.1} %)",
        read as f64 * 100.0 / size as f64
    );
    assert!(read < size * 15 / 100, "{read} of {size} bytes read");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_without_an_mp4_index_gets_its_storyboard_by_seeking() {
    let stack = Stack::spawn_with(
        Options {
            backend: Backend::Fs,
            workers: true,
        },
        |_| {},
    )
    .await;
    // The 60 s 320×240 video remuxed into Matroska: no `moov`, so no keyframes listed, and
    // the storyboard's keyframes are found by seeking, an input a tile.
    let mkv = stack.media_dir.join("sixty.mkv");
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(e2e::media::sixty_second_video())
        .args(["-c", "copy", "-y"])
        .arg(&mkv)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    let url = format!("{}/ranged/sixty.mkv", stack.source.base_url);
    let (code, view) = stack.post("/v1/sources", &json!({"url": url})).await;
    assert_eq!(code, 202, "{view}");
    let view = settled(&stack, view["id"].as_str().expect("id")).await;
    assert_eq!(view["state"], "ready", "{view}");
    let found = &view["inspection"];
    assert!(
        found["container"]
            .as_str()
            .unwrap_or("")
            .starts_with("matroska"),
        "{found}"
    );
    assert!(found["keyframes"].is_null(), "{found}");
    // A tile every 2 s of the whole (Matroska says 60.023 s: 31 tiles, 4 rows).
    let duration = found["duration_secs"].as_f64().unwrap_or(0.0);
    let tiles = (duration / 2.0).ceil() as u64;
    assert_eq!(
        found["storyboard"]["tiles"].as_u64(),
        Some(tiles),
        "{found}"
    );
    assert_eq!(found["storyboard"]["tile_height"], 120, "{found}");
    let id = view["id"].as_str().expect("id");
    let (code, _, sprite) = stack
        .get_bytes(&format!("/v1/sources/{id}/storyboard.jpg"))
        .await;
    assert_eq!(code, 200);
    let probed = probe_bytes(&sprite);
    assert_eq!(
        (probed.width, probed.height),
        (1600, 120 * tiles.div_ceil(10))
    );
    assert_tile_12_is_24_s(&sprite, (160, 120), e2e::media::sixty_second_video());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sources_fail_their_inspection_with_their_codes() {
    // Frames wider than 200 pixels are over this stack's limit (the 60 s video is 320 wide).
    let stack = Stack::spawn_with(
        Options {
            backend: Backend::Fs,
            workers: true,
        },
        |s| s.sources.max_width = 200,
    )
    .await;
    std::fs::write(
        stack.media_dir.join("notes.mp4"),
        b"this is not a video\n".repeat(100),
    )
    .expect("the text file");
    let base = &stack.source.base_url;
    let mut ids = Vec::new();
    for (url, code) in [
        (format!("{base}/ranged/notes.mp4"), "not_a_video"),
        (format!("{base}/ranged/missing.mp4"), "source_not_found"),
        // Inspection reads by range: a source that takes none says so.
        (format!("{base}/sixty.mp4"), "source_unreachable"),
        // The source limits hold for an inspection as for a job, read before any decode.
        (format!("{base}/ranged/sixty.mp4"), "source_dimensions"),
    ] {
        let (status, view) = stack.post("/v1/sources", &json!({"url": url})).await;
        assert_eq!(status, 202, "{view}");
        ids.push((view["id"].as_str().expect("id").to_owned(), code));
    }
    for (id, code) in ids {
        let view = settled(&stack, &id).await;
        assert_eq!(view["state"], "failed", "{view}");
        assert_eq!(view["error"]["code"], code, "{view}");
        let (status, body) = stack
            .get_json(&format!("/v1/sources/{id}/storyboard.jpg"))
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("not_ready"))
        );
    }
    // Unknown ids.
    for path in [
        "/v1/sources/0123456789abcdef0123456789abcdef",
        "/v1/sources/nothex",
    ] {
        let (status, body) = stack.get_json(path).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("unknown_source"))
        );
    }
    let (status, body) = stack
        .get_json("/v1/sources/0123456789abcdef0123456789abcdef/storyboard.vtt")
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_source"))
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_inspected_is_refused_naming_why() {
    // The SSRF guard on, as in production; no workers; an unfinished inspection asked for
    // again after a second is queued again.
    let stack = Stack::spawn_with(
        Options {
            backend: Backend::Fs,
            workers: false,
        },
        |s| {
            s.sources.allow_private_networks = false;
            s.recovery.requeue_after_secs = 1;
        },
    )
    .await;
    for (body, code) in [
        (json!({}), "missing_source"),
        (
            json!({"url": "http://a.example/v.mp4", "video_id": "v"}),
            "missing_source",
        ),
        (json!({"url": "ftp://a.example/v.mp4"}), "invalid_url"),
        (json!({"video_id": "../etc"}), "invalid_video_id"),
        (
            json!({"url": "http://127.0.0.1:9/v.mp4"}),
            "source_forbidden",
        ),
        (
            json!({"url": "http://[::ffff:10.0.0.1]/v.mp4"}),
            "source_forbidden",
        ),
        (
            json!({"url": "http://a.example/v.mp4", "start": "00:00:01"}),
            "invalid_request",
        ),
        (json!([1]), "invalid_json"),
    ] {
        let (status, answer) = stack.post("/v1/sources", &body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }

    // Asked for twice at once: one inspection, one message. Asked for again once it has sat
    // unfinished for `recovery.requeue_after_secs`: queued again (its first message may never
    // have gone out).
    let source = json!({"url": "http://a.example/v.mp4"});
    let (status, first) = stack.post("/v1/sources", &source).await;
    assert_eq!(status, 202, "{first}");
    let (status, again) = stack.post("/v1/sources", &source).await;
    assert_eq!((status, &again["id"]), (200, &first["id"]), "{again}");
    let amqp = lapin::Connection::connect(&stack.settings.amqp.url, Default::default())
        .await
        .expect("connect");
    let channel = amqp.create_channel().await.expect("channel");
    let topology = stack.topology();
    let queued = || e2e::stack::queue_counts(&channel, &topology, "inspect");
    assert_eq!(queued().await.0, 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, later) = stack.post("/v1/sources", &source).await;
    assert_eq!((status, &later["id"]), (202, &first["id"]), "{later}");
    assert_eq!(queued().await.0, 2);
    let _ = amqp.close(0, "done".into()).await;
    stack.stop().await;
}
