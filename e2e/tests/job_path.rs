//! The job path end to end: real RabbitMQ, a real S3 API (s3s-fs) or a directory, real ffmpeg.
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

use e2e::media::probe_bytes;
use e2e::stack::{Options, Stack};
use futures::StreamExt;
use hopster_common::settings::Backend;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use serde_json::{json, Value};
use shared_proto::topology;
use std::time::Duration;

const JOB_DEADLINE: Duration = Duration::from_secs(120);

async fn full(backend: Backend) -> Stack {
    Stack::spawn(Options {
        backend,
        workers: true,
    })
    .await
}

async fn bytes_of(
    stack: &Stack,
    path: &str,
    range: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = stack.http.get(stack.url(path));
    if let Some(range) = range {
        req = req.header("Range", range);
    }
    let r = req.send().await.expect("GET");
    let (code, headers) = (r.status().as_u16(), r.headers().clone());
    (code, headers, r.bytes().await.expect("body").to_vec())
}

/// Submits a 3 s clip from 00:00:10 through v1 and checks the whole contract of the result.
async fn three_second_clip_through_v1(backend: Backend) {
    let stack = full(backend).await;
    let url = format!("{}/sixty.mp4", stack.source.base_url);
    let (code, job) = stack
        .post(
            "/v1/jobs",
            &json!({"url": url, "start": "00:00:10", "stop": "00:00:13"}),
        )
        .await;
    assert_eq!(code, 202, "{job}");
    let id = job["id"].as_str().expect("an id").to_owned();
    assert_eq!(job["state"], "queued");
    assert_eq!(job["links"]["video"], format!("/v1/jobs/{id}/video"));

    let (status, seen) = stack.wait_for_job(&id, JOB_DEADLINE).await;
    assert_eq!(status["state"], "completed", "{status}");
    assert_eq!(seen.last().map(String::as_str), Some("completed"));
    assert_eq!(status["progress"]["transcode"]["percent"], 100.0);
    assert_eq!(status["progress"]["download"]["percent"], 100.0);
    let size = status["result"]["size"].as_u64().expect("a size");
    // Where its time went: each step after the one before, the end after them all.
    let steps: Vec<u64> = [
        &status["created_at_ms"],
        &status["timeline"]["download_started_ms"],
        &status["timeline"]["transcode_started_ms"],
        &status["timeline"]["ffmpeg_started_ms"],
        &status["timeline"]["upload_started_ms"],
        &status["updated_at_ms"],
    ]
    .iter()
    .map(|v| v.as_u64().unwrap_or_else(|| panic!("a timeline: {status}")))
    .collect();
    assert!(steps.windows(2).all(|w| w[0] <= w[1]), "{steps:?}");

    let (code, headers, body) = bytes_of(&stack, &format!("/v1/jobs/{id}/video"), None).await;
    assert_eq!(code, 200);
    assert_eq!(headers["content-type"], "video/mp4");
    assert_eq!(body.len() as u64, size);
    let probed = probe_bytes(&body);
    assert!(
        (probed.duration - 3.0).abs() <= 0.05,
        "duration {}",
        probed.duration
    );
    assert_eq!(probed.video_codec, "h264");
    assert_eq!(probed.audio_codec.as_deref(), Some("aac"));
    assert!(probed.format.contains("mp4"));

    // The bytes served are the bytes in the bucket.
    let key = status["result"]["key"].as_str().expect("a key");
    assert_eq!(key, format!("results/{id}.mp4"));
    let stored = stack
        .store
        .objects()
        .get(&Path::from(key))
        .await
        .expect("result in bucket")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(stored.as_ref(), body.as_slice());

    // Range: a middle slice, a suffix, and past the end.
    let (code, headers, part) = bytes_of(
        &stack,
        &format!("/v1/jobs/{id}/video"),
        Some("bytes=100-1123"),
    )
    .await;
    assert_eq!(code, 206);
    assert_eq!(headers["content-range"], format!("bytes 100-1123/{size}"));
    assert_eq!(part.as_slice(), &body[100..1124]);
    let (code, _, tail) =
        bytes_of(&stack, &format!("/v1/jobs/{id}/video"), Some("bytes=-10")).await;
    assert_eq!((code, tail.as_slice()), (206, &body[body.len() - 10..]));
    let (code, headers, _) = bytes_of(
        &stack,
        &format!("/v1/jobs/{id}/video"),
        Some(&format!("bytes={size}-")),
    )
    .await;
    assert_eq!(code, 416);
    assert_eq!(headers["content-range"], format!("bytes */{size}"));

    // The same request again is the same job, already done: no new work.
    let requests = stack.source.request_count();
    let (code, again) = stack
        .post(
            "/v1/jobs",
            &json!({"url": url, "start": "00:00:10.000", "stop": "00:00:13"}),
        )
        .await;
    assert_eq!((code, again["id"].as_str()), (200, Some(id.as_str())));
    assert_eq!(again["state"], "completed");
    assert_eq!(stack.source.request_count(), requests);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_three_second_clip_from_ten_seconds_is_three_seconds_long_on_s3() {
    three_second_clip_through_v1(Backend::S3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_three_second_clip_from_ten_seconds_is_three_seconds_long_on_the_fs_store() {
    three_second_clip_through_v1(Backend::Fs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_seed_api_schedules_polls_and_downloads_a_whole_video_and_a_clip() {
    let stack = full(Backend::S3).await;
    let (code, body) = stack.get_json("/").await;
    assert_eq!(
        (code, body["message"].as_str()),
        (200, Some("Welcome to Hopster's Video Downloading Service!"))
    );

    for (request, name, expected) in [
        (
            json!({"video_id": "sixty"}),
            "sixty_from_start_till_end.mp4",
            60.0,
        ),
        (
            json!({"video_id": "sixty", "start": "00:00:04.5", "stop": "00:00:07"}),
            "sixty_from_000004500000_till_000007000000.mp4",
            2.5,
        ),
    ] {
        let (code, body) = stack.post("/schedule", &request).await;
        assert_eq!(
            (code, body["video_file"].as_str()),
            (200, Some(name)),
            "{body}"
        );
        let progress = format!("/progress?reference={name}");
        let mut polls = 0;
        loop {
            let (code, body) = stack.get_json(&progress).await;
            assert_eq!(code, 200, "{body}");
            if body["is_finished"] == true {
                break;
            }
            polls += 1;
            assert!(polls < 1200, "{name} never finished");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (code, headers, bytes) =
            bytes_of(&stack, &format!("/download?video_file={name}"), None).await;
        assert_eq!(code, 200);
        assert_eq!(headers["content-type"], "video/mp4");
        let duration = probe_bytes(&bytes).duration;
        assert!((duration - expected).abs() <= 0.05, "{name}: {duration}");
    }
    // The second job reused the staged source: the source was fetched once, after one probe
    // for Range (a whole mp4 might be remuxed through the range proxy; this server has none).
    assert_eq!(stack.source.request_count(), 2);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_source_and_a_clip_past_the_end_fail_with_their_codes_and_are_not_retried() {
    let stack = full(Backend::Fs).await;
    let base = stack.source.base_url.clone();
    let (_, missing) = stack
        .post("/v1/jobs", &json!({"url": format!("{base}/missing.mp4")}))
        .await;
    let (_, late) = stack
        .post(
            "/v1/jobs",
            &json!({"url": format!("{base}/sixty.mp4"), "start": "00:01:10", "stop": "00:01:13"}),
        )
        .await;
    let (_, long) = stack
        .post(
            "/v1/jobs",
            &json!({"url": format!("{base}/sixty.mp4"), "start": "00:00:50", "stop": "00:01:13"}),
        )
        .await;
    for (job, code) in [
        (&missing, "source_not_found"),
        (&late, "clip_out_of_range"),
        (&long, "clip_out_of_range"),
    ] {
        let id = job["id"].as_str().expect("an id");
        let (status, _) = stack.wait_for_job(id, JOB_DEADLINE).await;
        assert_eq!(status["state"], "failed", "{status}");
        assert_eq!(status["error"]["code"], code, "{status}");
        assert_eq!(
            status["attempt"], 1,
            "a permanent failure is never retried: {status}"
        );
        let (http, body) = stack.get_json(&format!("/v1/jobs/{id}/video")).await;
        assert_eq!(
            (http, body["error"]["code"].as_str()),
            (409, Some("job_failed")),
            "{body}"
        );
    }
    let message = late_message(&stack, &late).await;
    assert!(
        message.contains("00:01:10") && message.contains("00:01:00"),
        "{message}"
    );
    // The seed API reports the failure instead of "not finished" forever. Scheduling the
    // failed job again (same URL as above) retries it, and it fails again.
    let (code, _) = stack
        .post("/schedule", &json!({"video_id": "missing"}))
        .await;
    assert_eq!(code, 200);
    let progress = "/progress?reference=missing_from_start_till_end.mp4";
    let mut answer = stack.get_json(progress).await;
    let deadline = std::time::Instant::now() + JOB_DEADLINE;
    while answer.0 == 200 && std::time::Instant::now() < deadline {
        assert_eq!(answer.1["is_finished"], false, "{}", answer.1);
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = stack.get_json(progress).await;
    }
    let (code, body) = answer;
    assert_eq!(code, 400);
    assert_eq!(body["error"]["code"], 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("source_not_found"),
        "{body}"
    );
    // Nothing was requeued or parked: permanent failures are acked once.
    for key in [topology::DOWNLOAD, topology::TRANSCODE, topology::DEAD] {
        assert_eq!(stack.queue_len(key).await, 0, "{key}");
    }
    stack.stop().await;
}

async fn late_message(stack: &Stack, job: &Value) -> String {
    let (_, status) = stack
        .get_json(&format!(
            "/v1/jobs/{}",
            job["id"].as_str().unwrap_or_default()
        ))
        .await;
    status["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_message_goes_to_the_dead_letter_queue_once_and_the_worker_keeps_serving() {
    let stack = full(Backend::Fs).await;
    stack
        .publish_raw(topology::DOWNLOAD, b"this is not json")
        .await;
    stack
        .publish_raw(topology::TRANSCODE, b"{\"version\":1}")
        .await;
    stack
        .wait_until(Duration::from_secs(30), "two dead letters", || async {
            stack.queue_len(topology::DEAD).await == 2
        })
        .await;
    let url = format!("{}/sixty.mp4", stack.source.base_url);
    let (_, job) = stack
        .post(
            "/v1/jobs",
            &json!({"url": url, "start": "00:00:01", "stop": "00:00:02"}),
        )
        .await;
    let (status, _) = stack
        .wait_for_job(job["id"].as_str().expect("id"), JOB_DEADLINE)
        .await;
    assert_eq!(status["state"], "completed", "{status}");
    assert_eq!(stack.queue_len(topology::DEAD).await, 2);
    assert_eq!(stack.queue_len(topology::DOWNLOAD).await, 0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_clip_of_a_source_that_serves_ranges_reads_only_what_it_needs() {
    let stack = full(Backend::S3).await;
    std::fs::copy(
        e2e::media::large_faststart_video(),
        stack.media_dir.join("large.mp4"),
    )
    .expect("media");
    let url = format!("{}/ranged/large.mp4", stack.source.base_url);
    let size = std::fs::metadata(stack.media_dir.join("large.mp4"))
        .expect("size")
        .len();
    let (code, job) = stack
        .post(
            "/v1/jobs",
            &json!({"url": url, "start": "00:00:50", "stop": "00:00:53"}),
        )
        .await;
    assert_eq!(code, 202, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();
    let (status, _) = stack.wait_for_job(&id, JOB_DEADLINE).await;
    assert_eq!(status["state"], "completed", "{status}");
    assert_eq!(status["progress"]["download"]["ranged"], true, "{status}");
    let read = status["progress"]["download"]["bytes"]
        .as_u64()
        .expect("bytes read");
    let sent = stack
        .source
        .ranged_bytes
        .load(std::sync::atomic::Ordering::SeqCst);
    // 3 s of a 60 s video plus its index: far from the whole file, counted on both sides.
    assert!(read > 0 && read * 5 < size, "read {read} of {size}");
    assert!(sent * 5 < size, "the source sent {sent} of {size}");
    eprintln!("FIGURE ranged clip: read {read} bytes ({:.1} %) of a {size}-byte source; the source sent {sent}", read as f64 * 100.0 / size as f64);
    let (_, _, bytes) = bytes_of(&stack, &format!("/v1/jobs/{id}/video"), None).await;
    let d = probe_bytes(&bytes).duration;
    assert!((d - 3.0).abs() <= 0.05, "{d}");
    // Nothing was staged.
    assert_nothing_staged(&stack).await;
    stack.stop().await;
}

/// No source object in the store: the source was read through the range proxy.
async fn assert_nothing_staged(stack: &Stack) {
    let staged = stack
        .store
        .objects()
        .list(Some(&Path::from("sources")))
        .collect::<Vec<_>>()
        .await;
    assert!(staged.is_empty(), "{} staged objects", staged.len());
}

/// A whole mp4 job whose source is H.264/AAC already and serves ranges is remuxed as it is,
/// read once through the range proxy: not staged, not encoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_whole_source_in_the_profile_is_remuxed_through_the_proxy_not_staged() {
    let stack = full(Backend::Fs).await;
    let url = format!("{}/ranged/sixty.mp4", stack.source.base_url);
    let (code, job) = stack.post("/v1/jobs", &json!({"url": url})).await;
    assert_eq!(code, 202, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();
    let (status, _) = stack.wait_for_job(&id, JOB_DEADLINE).await;
    assert_eq!(status["state"], "completed", "{status}");
    assert_eq!(status["result"]["method"], "copy", "{status}");
    assert_eq!(status["progress"]["download"]["ranged"], true, "{status}");
    let (_, _, bytes) = bytes_of(&stack, &format!("/v1/jobs/{id}/video"), None).await;
    let d = probe_bytes(&bytes).duration;
    assert!((d - 60.0).abs() <= 0.1, "{d}");
    assert_nothing_staged(&stack).await;
    stack.stop().await;
}

/// The frame `at` seconds into the mp4 `clip`, as the service encodes posters (mjpeg, `-q:v 3`).
fn frame_jpeg(clip: &[u8], at: &str) -> Vec<u8> {
    let dir = e2e::TempDir::new("hopster-poster");
    let path = dir.0.join("clip.mp4");
    std::fs::write(&path, clip).expect("the clip");
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-ss", at, "-i"])
        .arg(&path)
        .args([
            "-frames:v",
            "1",
            "-an",
            "-c:v",
            "mjpeg",
            "-q:v",
            "3",
            "-f",
            "image2",
            "-",
        ])
        .output()
        .expect("ffmpeg");
    assert!(out.status.success(), "{out:?}");
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keyframe_accuracy_copies_the_streams_and_reports_the_start_achieved() {
    let stack = full(Backend::Fs).await;
    // The test video has a keyframe every 2 s. (start, stop, where the copy starts, its
    // length, where in the clip the poster is: the first keyframe at or after the start.)
    // The second clip ends between keyframes, where the copy must end too.
    let cases = [
        ("00:00:05.3", "00:00:08", "00:00:04", 4.0, "2"),
        ("00:00:04", "00:00:07", "00:00:04", 3.0, "0"),
    ];
    for url in [
        format!("{}/sixty.mp4", stack.source.base_url),
        format!("{}/ranged/sixty.mp4", stack.source.base_url),
    ] {
        for (start, stop, achieved, length, poster_in_clip) in cases {
            let body = json!({"url": url, "start": start, "stop": stop, "accuracy": "keyframe"});
            let (code, job) = stack.post("/v1/jobs", &body).await;
            assert_eq!(code, 202, "{job}");
            assert_eq!(job["spec"]["accuracy"], "keyframe");
            let id = job["id"].as_str().expect("id").to_owned();
            let (status, _) = stack.wait_for_job(&id, JOB_DEADLINE).await;
            assert_eq!(status["state"], "completed", "{status}");
            assert_eq!(status["result"]["start_achieved"], achieved, "{status}");
            let (_, _, bytes) = bytes_of(&stack, &format!("/v1/jobs/{id}/video"), None).await;
            let probed = probe_bytes(&bytes);
            assert!(
                (probed.duration - length).abs() <= 0.1,
                "{url} {start}–{stop}: {}",
                probed.duration
            );
            assert_eq!(probed.video_codec, "h264");
            let (code, headers, poster) =
                bytes_of(&stack, &format!("/v1/jobs/{id}/poster"), None).await;
            assert_eq!(
                (code, headers["content-type"].to_str().ok()),
                (200, Some("image/jpeg"))
            );
            assert_eq!(
                poster,
                frame_jpeg(&bytes, poster_in_clip),
                "{url} {start}–{stop}"
            );
        }
    }
    // The same clip frame-accurate is another job.
    let (code, job) = stack.post("/v1/jobs", &json!({"url": format!("{}/sixty.mp4", stack.source.base_url), "start": "00:00:05.3", "stop": "00:00:08"})).await;
    assert_eq!(code, 202, "{job}");
    let (code, body) = stack
        .post(
            "/v1/jobs",
            &json!({"url": "http://example.com/v.mp4", "accuracy": "exact"}),
        )
        .await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_keyframe_copy_through_the_range_proxy_is_described_from_the_index_without_ffprobe() {
    // ffprobe fails whenever it runs: an mp4 read by range is described from its `moov`,
    // keyframes included, in the worker itself, and the clip (an mp4 this worker wrote) too.
    // The keyframe clip 00:00:05.3–00:00:08 of the ranged 60 s source, on a stack whose
    // ffprobe always fails and whose frame-rate limit is `max_fps`: its final status.
    async fn keyframe_clip_without_ffprobe(max_fps: u32) -> (Stack, String, Value) {
        let stack = Stack::spawn_with(
            Options {
                backend: Backend::Fs,
                workers: true,
            },
            |s| {
                s.transcoder.ffprobe = "false".into();
                s.sources.max_fps = max_fps;
            },
        )
        .await;
        let url = format!("{}/ranged/sixty.mp4", stack.source.base_url);
        let body =
            json!({"url": url, "start": "00:00:05.3", "stop": "00:00:08", "accuracy": "keyframe"});
        let (code, job) = stack.post("/v1/jobs", &body).await;
        assert_eq!(code, 202, "{job}");
        let id = job["id"].as_str().expect("id").to_owned();
        let (status, _) = stack.wait_for_job(&id, JOB_DEADLINE).await;
        (stack, id, status)
    }
    let (stack, id, status) = keyframe_clip_without_ffprobe(240).await; // the default limit
    assert_eq!(status["state"], "completed", "{status}");
    assert_eq!(status["result"]["start_achieved"], "00:00:04", "{status}");
    let (_, _, bytes) = bytes_of(&stack, &format!("/v1/jobs/{id}/video"), None).await;
    assert!((probe_bytes(&bytes).duration - 4.0).abs() <= 0.1);
    stack.stop().await;
    // The check still holds: a source over the frame-rate limit is refused from the index.
    let (strict, _, status) = keyframe_clip_without_ffprobe(24).await;
    assert_eq!(status["state"], "failed", "{status}");
    assert_eq!(status["error"]["code"], "source_dimensions", "{status}");
    strict.stop().await;
}

/// ffmpeg processes working on `job` (their work directory carries the job id). ffmpeg runs
/// by its full path (prlimit executes it).
fn ffmpeg_pids_of(job: &str) -> Vec<String> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let program = text.split(' ').next().unwrap_or_default();
        if program.rsplit('/').next() == Some("ffmpeg") && text.contains(&format!("hopster-{job}"))
        {
            pids.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    pids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_a_running_job_kills_ffmpeg_and_leaves_no_output() {
    let stack = Stack::spawn_with(
        Options {
            backend: Backend::Fs,
            workers: true,
        },
        |s| {
            s.transcoder.preset = "veryslow".into();
            s.transcoder.threads = 1;
            // The whole video encoded (a long job to cancel), not remuxed as it is.
            s.transcoder.passthrough = false;
        },
    )
    .await;
    let url = format!("{}/sixty.mp4", stack.source.base_url);
    let (_, job) = stack.post("/v1/jobs", &json!({"url": url})).await;
    let id = job["id"].as_str().expect("id").to_owned();
    stack
        .wait_until(JOB_DEADLINE, "the middle of the transcode", || async {
            let (_, s) = stack.get_json(&format!("/v1/jobs/{id}")).await;
            s["progress"]["transcode"]["percent"]
                .as_f64()
                .unwrap_or(0.0)
                >= 5.0
                && !ffmpeg_pids_of(&id).is_empty()
        })
        .await;
    let asked = std::time::Instant::now();
    let r = stack
        .http
        .delete(stack.url(&format!("/v1/jobs/{id}")))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["state"], "cancelled");
    stack
        .wait_until(Duration::from_secs(5), "ffmpeg to be killed", || async {
            ffmpeg_pids_of(&id).is_empty()
        })
        .await;
    eprintln!(
        "FIGURE cancel: ffmpeg gone {:?} after DELETE",
        asked.elapsed()
    );
    // No output, no work directory, and the job stays cancelled.
    stack
        .wait_until(
            Duration::from_secs(10),
            "the work directory to go",
            || async {
                !std::fs::read_dir(stack.work_dir())
                    .expect("the work directory's parent")
                    .flatten()
                    .any(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(&format!("hopster-{id}"))
                    })
            },
        )
        .await;
    let results = stack
        .store
        .objects()
        .list(Some(&Path::from("results")))
        .collect::<Vec<_>>()
        .await;
    assert!(results.is_empty(), "no result is stored");
    let (_, status) = stack.get_json(&format!("/v1/jobs/{id}")).await;
    assert_eq!(status["state"], "cancelled", "{status}");
    // Cancelling again is fine; a finished job cannot be cancelled.
    let again = stack
        .http
        .delete(stack.url(&format!("/v1/jobs/{id}")))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(again.status().as_u16(), 200);
    let (_, done) = stack
        .post(
            "/v1/jobs",
            &json!({"url": url, "start": "00:00:01", "stop": "00:00:02", "accuracy": "keyframe"}),
        )
        .await;
    let done_id = done["id"].as_str().expect("id").to_owned();
    let (status, _) = stack.wait_for_job(&done_id, JOB_DEADLINE).await;
    assert_eq!(status["state"], "completed");
    let r = stack
        .http
        .delete(stack.url(&format!("/v1/jobs/{done_id}")))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status().as_u16(), 409);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "job_finished");
    stack.stop().await;
}
