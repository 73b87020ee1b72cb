//! Output profiles, posters, HLS and presigned URLs, end to end: every output is probed with
//! ffprobe, every HLS segment is fetched, every presigned URL is followed.
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

use e2e::media::{frame_hashes, integrated_loudness, probe_bytes, webp_animation, Probed};
use e2e::stack::{Options, Stack};
use hopster_common::settings::Backend;
use serde_json::{json, Value};
use std::time::Duration;

const JOB_DEADLINE: Duration = Duration::from_secs(180);

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn submit(stack: &Stack, extra: Value) -> String {
    let mut body = json!({
        "url": format!("{}/sixty.mp4", stack.source.base_url),
        "start": "00:00:10",
        "stop": "00:00:13",
    });
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    let (code, job) = stack.post("/v1/jobs", &body).await;
    assert_eq!(code, 202, "{job}");
    job["id"].as_str().expect("id").to_owned()
}

fn check(probed: &Probed, format: &str, video: &str, audio: &str, height: u64) {
    assert!(probed.format.contains(format), "{probed:?}");
    assert_eq!(probed.video_codec, video, "{probed:?}");
    assert_eq!(probed.audio_codec.as_deref(), Some(audio), "{probed:?}");
    assert_eq!(probed.height, height, "{probed:?}");
    assert!((probed.duration - 3.0).abs() < 0.1, "{probed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_is_made_probed_and_served() {
    let stack = Stack::spawn_with(
        Options {
            backend: Backend::S3,
            workers: true,
        },
        |s| s.transcoder.hls_segment_secs = 1,
    )
    .await;
    let mp4 = submit(&stack, json!({"max_height": 120})).await;
    let webm = submit(&stack, json!({"profile": "webm", "max_height": 121})).await;
    let audio = submit(&stack, json!({"profile": "audio"})).await;
    let mp3 = submit(&stack, json!({"profile": "mp3"})).await;
    let hls = submit(&stack, json!({"profile": "hls", "poster_at": "00:00:02"})).await;
    let mut results = std::collections::HashMap::new();
    for id in [&mp4, &webm, &audio, &mp3, &hls] {
        let (status, _) = stack.wait_for_job(id, JOB_DEADLINE).await;
        assert_eq!(status["state"], "completed", "{status}");
        results.insert(id.clone(), status["result"].clone());
    }

    // mp4 scaled to 120 lines (320x240 → 160x120), webm to an even 120 (121 rounds down).
    let (code, kind, body) = stack.get_bytes(&format!("/v1/jobs/{mp4}/video")).await;
    assert_eq!((code, kind.as_str()), (200, "video/mp4"));
    check(&probe_bytes(&body), "mp4", "h264", "aac", 120);
    assert_eq!(results[&mp4]["width"], 160);
    let (code, kind, body) = stack.get_bytes(&format!("/v1/jobs/{webm}/video")).await;
    assert_eq!((code, kind.as_str()), (200, "video/webm"));
    check(&probe_bytes(&body), "webm", "vp9", "opus", 120);
    assert_eq!(results[&webm]["key"], format!("results/{webm}.webm"));

    // Audio only: no video stream, and so no poster.
    let (code, kind, body) = stack.get_bytes(&format!("/v1/jobs/{audio}/video")).await;
    assert_eq!((code, kind.as_str()), (200, "audio/mp4"));
    check(&probe_bytes(&body), "mp4", "", "aac", 0);
    let (code, kind, body) = stack.get_bytes(&format!("/v1/jobs/{mp3}/video")).await;
    assert_eq!((code, kind.as_str()), (200, "audio/mpeg"));
    check(&probe_bytes(&body), "mp3", "", "mp3", 0);
    let (code, body) = stack.get_json(&format!("/v1/jobs/{mp3}/poster")).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (404, Some("no_poster"))
    );

    // Posters: JPEGs of the video's own size.
    for (id, height) in [(&mp4, 120), (&webm, 120), (&hls, 240)] {
        let (code, kind, body) = stack.get_bytes(&format!("/v1/jobs/{id}/poster")).await;
        assert_eq!((code, kind.as_str()), (200, "image/jpeg"), "{id}");
        assert_eq!(&body[..3], &[0xFF, 0xD8, 0xFF], "JPEG magic");
        let probed = probe_bytes(&body);
        assert_eq!(probed.video_codec, "mjpeg");
        assert_eq!(probed.height, height);
        assert_eq!(probed.width, height * 4 / 3);
    }

    // HLS: a VOD playlist whose segments, fetched through the gateway, add up to the clip.
    let (code, kind, playlist) = stack.get_bytes(&format!("/v1/jobs/{hls}/video")).await;
    assert_eq!(
        (code, kind.as_str()),
        (200, "application/vnd.apple.mpegurl")
    );
    let playlist = String::from_utf8(playlist).expect("text");
    assert!(playlist.starts_with("#EXTM3U") && playlist.contains("#EXT-X-ENDLIST"));
    let total: f64 = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| l.trim_end_matches(',').parse::<f64>().expect("EXTINF"))
        .sum();
    assert!((total - 3.0).abs() < 0.1, "{playlist}");
    let uris: Vec<&str> = playlist
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert!(uris.len() >= 3, "1 s segments of a 3 s clip: {playlist}");
    let mut joined = Vec::new();
    for uri in &uris {
        assert!(
            uri.starts_with(&format!("/v1/jobs/{hls}/hls/seg_")),
            "{uri}"
        );
        let (code, kind, body) = stack.get_bytes(uri).await;
        assert_eq!((code, kind.as_str()), (200, "video/mp2t"), "{uri}");
        let probed = probe_bytes(&body);
        assert_eq!(
            (probed.video_codec.as_str(), probed.format.as_str()),
            ("h264", "mpegts")
        );
        joined.extend(body);
    }
    let whole = probe_bytes(&joined);
    assert!((whole.duration - 3.0).abs() < 0.15, "{whole:?}");
    assert_eq!(
        results[&hls]["segments"].as_array().map(Vec::len),
        Some(uris.len())
    );
    let (code, _) = stack
        .get_json(&format!("/v1/jobs/{hls}/hls/..%2Fx.ts"))
        .await;
    assert_eq!(code, 404);

    // Presigned: a 302 to the bucket, whose bytes are the gateway's.
    let direct = no_redirects();
    let r = direct
        .get(stack.url(&format!("/v1/jobs/{mp4}/video?redirect=1")))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status().as_u16(), 302);
    let location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(location.contains("X-Amz-Signature="), "{location}");
    let signed = direct.get(&location).send().await.expect("GET signed");
    assert_eq!(signed.status().as_u16(), 200, "{location}");
    let (_, _, through_gateway) = stack.get_bytes(&format!("/v1/jobs/{mp4}/video")).await;
    assert_eq!(
        signed.bytes().await.expect("body").to_vec(),
        through_gateway
    );
    // A tampered signature is refused by the bucket: the URL is the credential.
    let at = location.find("X-Amz-Signature=").expect("signature") + "X-Amz-Signature=".len();
    let flipped = if &location[at..=at] == "0" { "1" } else { "0" };
    let tampered = format!("{}{flipped}{}", &location[..at], &location[at + 1..]);
    let refused = direct.get(&tampered).send().await.expect("GET tampered");
    assert_eq!(refused.status().as_u16(), 403);
    // HLS with redirect=1: a playlist of presigned segment URLs, playable without the gateway.
    let (code, _, playlist) = stack
        .get_bytes(&format!("/v1/jobs/{hls}/video?redirect=1"))
        .await;
    assert_eq!(code, 200);
    let playlist = String::from_utf8(playlist).expect("text");
    let first = playlist
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .expect("a segment");
    assert!(
        first.starts_with("http") && first.contains("X-Amz-Signature="),
        "{first}"
    );
    let segment = direct.get(first).send().await.expect("GET segment");
    assert_eq!(segment.status().as_u16(), 200);
    assert_eq!(
        probe_bytes(&segment.bytes().await.expect("body")).video_codec,
        "h264"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn animations_are_made_at_their_frame_rate_without_sound_and_within_their_limit() {
    let stack = Stack::spawn_with(
        Options {
            backend: Backend::Fs,
            workers: true,
        },
        |_| {},
    )
    .await;
    // 3 s of the 25 fps 320×240 source: a GIF at 10 fps scaled to 120 lines, a WebP at the
    // default 12 fps; and one from 00:00:20 to the source's end (40 s), over the 30 s limit
    // for animations, which only the transcoder's probe can find.
    let gif = submit(
        &stack,
        json!({"profile": "gif", "fps": 10, "max_height": 120}),
    )
    .await;
    let webp = submit(&stack, json!({"profile": "webp"})).await;
    let (code, long) = stack
        .post(
            "/v1/jobs",
            &json!({"url": format!("{}/sixty.mp4", stack.source.base_url),
                    "start": "00:00:20", "profile": "gif"}),
        )
        .await;
    assert_eq!(code, 202, "{long}");
    let long = long["id"].as_str().expect("id").to_owned();

    let (status, _) = stack.wait_for_job(&gif, JOB_DEADLINE).await;
    assert_eq!(status["state"], "completed", "{status}");
    let result = &status["result"];
    assert_eq!(
        (
            result["mime"].as_str(),
            result["width"].as_u64(),
            result["height"].as_u64()
        ),
        (Some("image/gif"), Some(160), Some(120)),
        "{result}"
    );
    assert!(result["audio_codec"].is_null(), "{result}");
    let (code, kind, body) = stack.get_bytes(&format!("/v1/jobs/{gif}/video")).await;
    assert_eq!((code, kind.as_str()), (200, "image/gif"));
    assert_eq!(&body[..6], b"GIF89a");
    let probed = probe_bytes(&body);
    assert_eq!((probed.video_codec.as_str(), probed.height), ("gif", 120));
    assert_eq!(probed.audio_codec, None);
    let frames = frame_hashes(&body).len();
    assert!(
        (29..=31).contains(&frames),
        "3 s at 10 fps: {frames} frames"
    );
    assert!(
        (result["duration_secs"].as_f64().unwrap_or(0.0) - 3.0).abs() < 0.15,
        "{result}"
    );
    // Its poster is a JPEG of the animation's size.
    let (code, kind, poster) = stack.get_bytes(&format!("/v1/jobs/{gif}/poster")).await;
    assert_eq!((code, kind.as_str()), (200, "image/jpeg"));
    assert_eq!(probe_bytes(&poster).height, 120);

    let (status, _) = stack.wait_for_job(&webp, JOB_DEADLINE).await;
    assert_eq!(status["state"], "completed", "{status}");
    let (code, kind, body) = stack.get_bytes(&format!("/v1/jobs/{webp}/video")).await;
    assert_eq!((code, kind.as_str()), (200, "image/webp"));
    let (width, height, frames, millis) = webp_animation(&body).expect("an animated WebP");
    assert_eq!((width, height), (320, 240));
    assert!(
        (35..=37).contains(&frames),
        "3 s at 12 fps: {frames} frames"
    );
    assert!((2900..=3100).contains(&millis), "{millis} ms");
    let result = &status["result"];
    assert_eq!(
        (result["width"].as_u64(), result["video_codec"].as_str()),
        (Some(320), Some("webp")),
        "{result}"
    );
    assert!(
        (result["duration_secs"].as_f64().unwrap_or(0.0) - 3.0).abs() < 0.15,
        "{result}"
    );

    let (status, _) = stack.wait_for_job(&long, JOB_DEADLINE).await;
    assert_eq!(status["state"], "failed", "{status}");
    assert_eq!(status["error"]["code"], "clip_too_long", "{status}");
    let message = status["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("an animation may be at most 30 s"),
        "{message}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loudness_is_normalized_to_its_target_within_one_lu_also_over_joined_clips() {
    let stack = Stack::spawn_with(
        Options {
            backend: Backend::Fs,
            workers: true,
        },
        |_| {},
    )
    .await;
    std::fs::copy(
        e2e::media::silent_film(),
        stack.media_dir.join("nosound.mp4"),
    )
    .expect("the silent film");
    // The source's tone measures about -21.8 LUFS: both targets are well away from it.
    let source = std::fs::read(e2e::media::sixty_second_video()).expect("source");
    let before = integrated_loudness(&source);
    let default = submit(&stack, json!({"audio": {"normalize": true}})).await;
    let quiet = submit(
        &stack,
        json!({"profile": "mp3", "audio": {"normalize": true, "target_lufs": -30}}),
    )
    .await;
    // Two clips joined (read through the range proxy, one input each), normalized over their
    // joined sound, with a poster from the second clip.
    let joined = submit(
        &stack,
        json!({"start": null, "stop": null, "poster_at": "00:00:02",
               "clips": [{"start": "00:00:30", "stop": "00:00:31.5"},
                         {"start": "00:00:05", "stop": "00:00:06.5"}],
               "audio": {"normalize": true}}),
    )
    .await;
    let (code, silent) = stack
        .post(
            "/v1/jobs",
            &json!({"url": format!("{}/nosound.mp4", stack.source.base_url),
                    "stop": "00:00:02", "audio": {"normalize": true}}),
        )
        .await;
    assert_eq!(code, 202, "{silent}");
    let silent = silent["id"].as_str().expect("id").to_owned();
    for (id, target) in [(&default, -16.0), (&quiet, -30.0), (&joined, -16.0)] {
        assert!((before - target).abs() > 4.0, "source {before} LUFS");
        let (status, _) = stack.wait_for_job(id, JOB_DEADLINE).await;
        assert_eq!(status["state"], "completed", "{status}");
        let (code, _, body) = stack.get_bytes(&format!("/v1/jobs/{id}/video")).await;
        assert_eq!(code, 200);
        let after = integrated_loudness(&body);
        assert!(
            (after - target).abs() <= 1.0,
            "{id}: {after} LUFS for a target of {target} (the source: {before})"
        );
        assert!((probe_bytes(&body).duration - 3.0).abs() < 0.1);
    }
    let (code, kind, poster) = stack.get_bytes(&format!("/v1/jobs/{joined}/poster")).await;
    assert_eq!((code, kind.as_str()), (200, "image/jpeg"));
    assert_eq!(probe_bytes(&poster).height, 240);
    let (status, _) = stack.wait_for_job(&silent, JOB_DEADLINE).await;
    assert_eq!(status["state"], "failed", "{status}");
    assert_eq!(status["error"]["code"], "no_audio", "{status}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_output_options_are_refused_naming_the_field() {
    // The SSRF guard on, as in production; no workers, so the public URL is never fetched.
    let stack = Stack::spawn_with(
        Options {
            backend: Backend::Fs,
            workers: false,
        },
        |s| s.sources.allow_private_networks = false,
    )
    .await;
    let url = "http://example.com/v.mp4";
    let cases = [
        (json!({"profile": "avi"}), "invalid_request", "`profile`"),
        (
            json!({"profile": "mp3", "max_height": 240}),
            "invalid_request",
            "`max_height`",
        ),
        (json!({"max_height": 8}), "invalid_request", "`max_height`"),
        (
            json!({"max_height": "240"}),
            "invalid_request",
            "`max_height`",
        ),
        (
            json!({"profile": "audio", "poster_at": "00:00:01"}),
            "invalid_request",
            "`poster_at`",
        ),
        (
            json!({"poster_at": "00:00:05"}),
            "invalid_clip_range",
            "`poster_at`",
        ),
        (
            json!({"poster_at": "soon"}),
            "invalid_timecode",
            "`poster_at`",
        ),
        (
            json!({"accuracy": "keyframe", "profile": "webm"}),
            "invalid_request",
            "keyframe",
        ),
        (
            json!({"callback_url": "ftp://x/y"}),
            "invalid_url",
            "`callback_url`",
        ),
        (json!({"fps": 10}), "invalid_request", "`fps`"),
        (
            json!({"audio": {"normalize": true, "target_lufs": 0}}),
            "invalid_request",
            "`audio.target_lufs`",
        ),
        (
            json!({"profile": "webp", "audio": {"normalize": true}}),
            "invalid_request",
            "`audio.normalize`",
        ),
        (
            json!({"profile": "gif", "fps": 60}),
            "invalid_request",
            "`fps`",
        ),
        (
            json!({"profile": "webp", "accuracy": "smart"}),
            "invalid_request",
            "smart",
        ),
        (
            json!({"profile": "gif", "start": "00:00:00", "stop": "00:00:31"}),
            "clip_too_long",
            "an animation may be at most 30 s",
        ),
        (
            json!({"callback_url": "http://127.0.0.1:9/hook"}),
            "source_forbidden",
            "`callback_url`",
        ),
    ];
    for (extra, code, names) in cases {
        let mut body = json!({"url": url, "start": "00:00:01", "stop": "00:00:04"});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        let (status, answer) = stack.post("/v1/jobs", &body).await;
        assert_eq!(status, 400, "{extra}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{extra}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{extra}: {message}");
    }
    // Different outputs of one clip are different jobs; the same output twice is one.
    let base = json!({"url": url, "start": "00:00:01", "stop": "00:00:04"});
    let mut ids = std::collections::HashSet::new();
    for profile in ["mp4", "webm", "audio", "mp3", "hls", "gif", "webp"] {
        let mut body = base.clone();
        body["profile"] = json!(profile);
        let (code, job) = stack.post("/v1/jobs", &body).await;
        assert!(code == 202 || code == 200, "{job}");
        assert!(ids.insert(job["id"].as_str().expect("id").to_owned()));
    }
    let (code, _) = stack.post("/v1/jobs", &base).await;
    assert_eq!(code, 200, "mp4 is the default profile: the same job");
    stack.stop().await;
}
