//! The transcode stage driven directly (no broker) against an `fs` store, with fake ffmpeg
//! binaries where the test needs ffmpeg to misbehave.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers

use hopster_common::settings::{Backend, Settings};
use hopster_common::worker::{Stage, StageError};
use hopster_common::Store;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use shared_proto::{
    keys, ErrorCode, JobSpec, JobState, JobStatus, Timecode, TranscodeJob, MESSAGE_VERSION,
};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use transcoder_worker::Transcoder;

struct Fixture {
    dir: PathBuf,
    settings: Settings,
    store: Store,
    job: TranscodeJob,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A queued job whose 4 s source is staged in a fresh fs store.
async fn fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("hopster-stage-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let video = dir.join("source.mp4");
    let status = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=25:duration=4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&video)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    let mut settings = Settings::default();
    settings.store.backend = Backend::Fs;
    settings.store.root = dir.join("store");
    settings.transcoder.work_dir = Some(dir.join("work"));
    let store = Store::from_settings(&settings.store).unwrap();
    let spec = JobSpec::new(
        "http://h/v.mp4",
        None,
        Some(Timecode::parse("00:00:01").unwrap()),
        Some(Timecode::parse("00:00:03").unwrap()),
    )
    .unwrap();
    let source_key = keys::source_key(&spec.url);
    store
        .objects()
        .put(
            &Path::from(source_key.as_str()),
            PutPayload::from(std::fs::read(&video).unwrap()),
        )
        .await
        .unwrap();
    let status = JobStatus::queued(spec.clone(), 1);
    store.put_status(&status).await.unwrap();
    let job = TranscodeJob {
        version: MESSAGE_VERSION,
        job_id: spec.job_id(),
        spec,
        source_key,
        source_url: None,
        hls: None,
        attempt: 1,
    };
    Fixture {
        dir,
        settings,
        store,
        job,
    }
}

fn fake_ffmpeg(dir: &std::path::Path, script: &str) -> String {
    let path = dir.join("fake-ffmpeg");
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn a_clip_is_cut_stored_and_described() {
    // ffmpeg's choice of threads, and a one-thread budget (held by the decoder, the filters
    // and both outputs) alike.
    for threads in [0, 1] {
        let mut f = fixture(&format!("ok-{threads}")).await;
        f.settings.transcoder.threads = threads;
        Transcoder::new(&f.settings, f.store.clone())
            .unwrap()
            .handle(f.job.clone())
            .await
            .unwrap();
        let status = f.store.status(&f.job.job_id).await.unwrap().unwrap();
        assert_eq!(status.state, JobState::Completed);
        let result = status.result.unwrap();
        assert!(
            (result.duration_secs - 2.0).abs() <= 0.05,
            "threads {threads}: {}",
            result.duration_secs
        );
        let stored = f
            .store
            .objects()
            .get(&Path::from(result.key.as_str()))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(stored.len() as u64, result.size);
        let poster = result.poster_key.expect("a poster");
        assert!(f.store.head(&poster).await.unwrap().is_some());
        // The work directory is gone.
        assert_eq!(std::fs::read_dir(f.dir.join("work")).unwrap().count(), 0);
    }
}

#[tokio::test]
async fn a_stalled_ffmpeg_is_killed_and_the_try_is_retried() {
    let mut f = fixture("stall").await;
    let pid_file = f.dir.join("ffmpeg.pid");
    f.settings.transcoder.ffmpeg = fake_ffmpeg(
        &f.dir,
        &format!(
            "echo $$ > {}\necho out_time_us=1000000\necho progress=continue\nexec sleep 60",
            pid_file.display()
        ),
    );
    f.settings.transcoder.stall_timeout_secs = 1;
    let started = std::time::Instant::now();
    let err = Transcoder::new(&f.settings, f.store.clone())
        .unwrap()
        .handle(f.job.clone())
        .await
        .unwrap_err();
    match err {
        StageError::Retry { code, message } => {
            assert_eq!(code, ErrorCode::TranscodeFailed);
            assert!(message.contains("no progress"), "{message}");
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    assert!(started.elapsed().as_secs() < 30, "the stall was noticed");
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_owned();
    // kill_on_drop reaps asynchronously: give it a moment, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "ffmpeg ({pid}) still runs"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Runs the fixture's job to the end; its result.
async fn complete(f: &Fixture) -> shared_proto::JobResult {
    Transcoder::new(&f.settings, f.store.clone())
        .unwrap()
        .handle(f.job.clone())
        .await
        .unwrap();
    let status = f.store.status(&f.job.job_id).await.unwrap().unwrap();
    status.result.unwrap()
}

#[tokio::test]
async fn a_stored_result_is_finished_without_transcoding_again() {
    let mut f = fixture("redelivered").await;
    // A first try completes...
    let first = complete(&f).await;
    // ...but suppose it died before writing the final status.
    let mut status = f.store.status(&f.job.job_id).await.unwrap().unwrap();
    status.state = JobState::Uploading;
    status.result = None;
    f.store.put_status(&status).await.unwrap();
    // The redelivered message must not run ffmpeg (it would fail) and must finish the job.
    f.settings.transcoder.ffmpeg = fake_ffmpeg(&f.dir, "exit 1");
    Transcoder::new(&f.settings, f.store.clone())
        .unwrap()
        .handle(f.job.clone())
        .await
        .unwrap();
    let status = f.store.status(&f.job.job_id).await.unwrap().unwrap();
    assert_eq!(status.state, JobState::Completed);
    // The same result, but how it was made died with the first try: not claimed.
    let expected = shared_proto::JobResult {
        method: None,
        copied_secs: None,
        encoded_secs: None,
        source_segments: None,
        ..first
    };
    assert_eq!(status.result.unwrap(), expected);
}

#[tokio::test]
async fn a_result_another_worker_stored_during_the_cut_is_not_written_again() {
    use std::os::unix::fs::MetadataExt;
    let mut f = fixture("stored-meanwhile").await;
    let first = complete(&f).await;
    // Another worker has the job (the broker redelivered it): its result is not there yet
    // when this try starts, and lands while this try's ffmpeg runs.
    let stored = f.settings.store.root.join(&first.key);
    let aside = f.dir.join("other-workers-result.mp4");
    std::fs::rename(&stored, &aside).unwrap();
    let others = std::fs::metadata(&aside).unwrap().ino();
    let mut status = f.store.status(&f.job.job_id).await.unwrap().unwrap();
    status.state = JobState::Transcoding;
    status.result = None;
    f.store.put_status(&status).await.unwrap();
    f.settings.transcoder.ffmpeg = fake_ffmpeg(
        &f.dir,
        &format!(
            "mv '{}' '{}' 2>/dev/null; exec ffmpeg \"$@\"",
            aside.display(),
            stored.display()
        ),
    );
    Transcoder::new(&f.settings, f.store.clone())
        .unwrap()
        .handle(f.job.clone())
        .await
        .unwrap();
    assert!(!aside.exists(), "the other worker's result landed");
    // Still the other worker's file (a write would have replaced it), and the job is finished
    // from it.
    assert_eq!(std::fs::metadata(&stored).unwrap().ino(), others);
    let status = f.store.status(&f.job.job_id).await.unwrap().unwrap();
    assert_eq!(status.state, JobState::Completed);
    let result = status.result.unwrap();
    assert_eq!((result.size, &result.sha256), (first.size, &first.sha256));
}

#[tokio::test]
async fn ffmpeg_that_fails_on_the_input_fails_the_job_permanently() {
    let mut f = fixture("broken").await;
    f.settings.transcoder.ffmpeg = fake_ffmpeg(
        &f.dir,
        "echo 'Invalid data found when processing input' >&2; exit 1",
    );
    match Transcoder::new(&f.settings, f.store.clone())
        .unwrap()
        .handle(f.job.clone())
        .await
    {
        Err(StageError::Abort { code, message }) => {
            assert_eq!(code, ErrorCode::TranscodeFailed);
            assert!(message.contains("Invalid data"), "{message}");
        }
        other => panic!("expected an abort, got {other:?}"),
    }
}

/// Runs the job with `script` as ffmpeg and the given thread budget on a source that `limit`
/// makes unacceptable: the probe's refusal, with `code`, must be the outcome.
async fn refused_by(
    name: &str,
    script: impl Fn(&std::path::Path) -> String,
    threads: u32,
    limit: impl Fn(&mut Settings),
    code: ErrorCode,
) -> Fixture {
    let mut f = fixture(name).await;
    f.settings.transcoder.ffmpeg = fake_ffmpeg(&f.dir, &script(&f.dir));
    f.settings.transcoder.threads = threads;
    limit(&mut f.settings);
    let err = Transcoder::new(&f.settings, f.store.clone())
        .unwrap()
        .handle(f.job.clone())
        .await
        .unwrap_err();
    match err {
        StageError::Abort { code: got, .. } => assert_eq!(got, code),
        other => panic!("expected the probe's refusal, got {other:?}"),
    }
    f
}

/// [`refused_by`] a source longer than allowed (4 s against 2).
async fn refused(name: &str, script: impl Fn(&std::path::Path) -> String, threads: u32) -> Fixture {
    let too_long = |s: &mut Settings| s.sources.max_duration_secs = 2;
    refused_by(name, script, threads, too_long, ErrorCode::SourceTooLong).await
}

/// The fake ffmpeg that writes its pid and waits, and the wait until that process is gone.
fn pid_writer(dir: &std::path::Path) -> String {
    format!(
        "echo $$ > {}\nexec sleep 60",
        dir.join("ffmpeg.pid").display()
    )
}

async fn ffmpeg_started_and_is_gone(f: &Fixture) {
    let pid_file = f.dir.join("ffmpeg.pid");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let pid = loop {
        if let Ok(pid) = std::fs::read_to_string(&pid_file) {
            break pid.trim().to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "ffmpeg never started");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "ffmpeg ({pid}) still runs"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let status = f.store.status(&f.job.job_id).await.unwrap().unwrap();
    assert!(status.result.is_none());
}

#[tokio::test]
async fn a_source_the_probe_refuses_kills_the_ffmpeg_that_started_beside_it() {
    // The clip has a stop, so ffmpeg starts before the probe answers; the probe's verdict
    // must win and stop ffmpeg.
    let f = refused("refused", pid_writer, 0).await;
    // The fake ffmpeg did start (the speculative run) and is gone now.
    ffmpeg_started_and_is_gone(&f).await;
}

#[tokio::test]
async fn frames_larger_than_allowed_are_refused_from_the_probe_and_stop_the_ffmpeg_beside_it() {
    // The 160×120 source against a 100-pixel width, then against 10,000 pixels a frame.
    let narrow = |s: &mut Settings| s.sources.max_width = 100;
    let f = refused_by("narrow", pid_writer, 0, narrow, ErrorCode::SourceDimensions).await;
    ffmpeg_started_and_is_gone(&f).await;
    let small = |s: &mut Settings| s.sources.max_pixels = 10_000;
    refused_by("small", pid_writer, 1, small, ErrorCode::SourceDimensions).await;
    let slow = |s: &mut Settings| s.sources.max_fps = 24;
    refused_by("slow", pid_writer, 1, slow, ErrorCode::SourceDimensions).await;
    let few = |s: &mut Settings| s.sources.max_streams = 0;
    refused_by("few", pid_writer, 1, few, ErrorCode::SourceStreams).await;
}

#[tokio::test]
async fn an_ffmpeg_over_its_cpu_time_cap_fails_the_job_with_resource_limit() {
    // A deadline of 4 s, capped at a quarter of it: the spinning ffmpeg is stopped by the
    // kernel after one CPU-second, and the job fails for good (the same work would again).
    let mut f = fixture("cpu").await;
    f.settings.transcoder.ffmpeg = fake_ffmpeg(&f.dir, "while :; do :; done");
    f.settings.transcoder.timeout_base_secs = 4;
    f.settings.transcoder.timeout_per_clip_sec = 0.0;
    f.settings.transcoder.cpu_time_factor = 0.25;
    match Transcoder::new(&f.settings, f.store.clone())
        .unwrap()
        .handle(f.job.clone())
        .await
    {
        Err(StageError::Abort { code, message }) => {
            assert_eq!(code, ErrorCode::ResourceLimit);
            assert!(message.contains("CPU-time cap of 1 s"), "{message}");
        }
        other => panic!("expected resource_limit, got {other:?}"),
    }
}

#[tokio::test]
async fn with_a_thread_budget_the_probe_runs_first_and_a_refused_source_never_starts_ffmpeg() {
    // `transcoder.threads` is a per-job CPU budget: no probe beside ffmpeg. The probe's
    // refusal then comes before any ffmpeg process exists.
    let script = |dir: &std::path::Path| {
        format!(
            "touch {}\nexec sleep 60",
            dir.join("ffmpeg.started").display()
        )
    };
    let f = refused("budget", script, 1).await;
    assert!(
        !f.dir.join("ffmpeg.started").exists(),
        "ffmpeg ran before the probe's verdict"
    );
}

#[tokio::test]
async fn a_source_the_guard_refuses_through_the_range_proxy_fails_with_source_forbidden() {
    // The machine's host name resolves to loopback (/etc/hosts): the range proxy's guarded
    // client refuses it where it resolves, and the proxy reports that as a typed refusal, so
    // the ffmpeg and ffprobe failures it causes are blamed on the source's address.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let name = std::fs::read_to_string("/etc/hostname")
        .unwrap()
        .trim()
        .to_owned();
    let mut f = fixture("forbidden").await;
    f.settings.sources.allow_private_networks = false;
    f.job.source_url = Some(format!("http://{name}:{port}/v.mp4"));
    match Transcoder::new(&f.settings, f.store.clone())
        .unwrap()
        .handle(f.job.clone())
        .await
    {
        Err(StageError::Abort { code, message }) => {
            assert_eq!(code, ErrorCode::SourceForbidden, "{message}");
            assert!(message.contains("loopback"), "{message}");
        }
        other => panic!("expected source_forbidden, got {other:?}"),
    }
    assert!(
        listener.accept().is_err(),
        "the internal address was never connected to"
    );
}
