//! Resource bombs: small or crafted sources that would make ffmpeg and ffprobe take the
//! host's memory or time. Each runs through the real transcode stage with real ffmpeg, and the
//! peak resident memory of the stage's children (ffprobe, ffmpeg) is measured from /proc while
//! it runs. Every bomb must end in its documented outcome with the children inside their caps.
//! `cargo test -p transcoder-worker --test bombs -- --nocapture` prints one `FIGURE` line per
//! bomb; `bench/bombs` records them in `bench/BOMBS.md`.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test code

use hopster_common::settings::{Backend, Settings};
use hopster_common::worker::{Stage, StageError};
use hopster_common::Store;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use shared_proto::{keys, JobSpec, JobState, JobStatus, Timecode, TranscodeJob, MESSAGE_VERSION};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use transcoder_worker::Transcoder;

/// A directory removed when the test ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The resident memory of this process's children, summed, in KiB.
fn children_rss_kib() -> u64 {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
        .filter(|status| {
            status
                .lines()
                .any(|l| l.strip_prefix("PPid:").map(str::trim) == Some(me.as_str()))
        })
        .filter_map(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum()
}

/// Samples the children's memory every few milliseconds until dropped; keeps the peak.
struct PeakRss {
    peak_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakRss {
    fn start() -> PeakRss {
        let peak_kib = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak_kib.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(children_rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        PeakRss {
            peak_kib,
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.peak_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

/// Stages `source` in a fresh fs store and runs a 00:00:00–00:00:01 clip of it through the
/// stage with `settings`; returns the outcome, the children's peak RSS (MiB) and the time.
async fn run(
    dir: &std::path::Path,
    source: &std::path::Path,
    settings: &Settings,
) -> (Result<(), StageError>, f64, Duration) {
    let mut settings = settings.clone();
    settings.store.backend = Backend::Fs;
    settings.store.root = dir.join("store");
    settings.transcoder.work_dir = Some(dir.join("work"));
    let store = Store::from_settings(&settings.store).unwrap();
    let spec = JobSpec::new(
        &format!("http://h/{}", source.file_name().unwrap().to_string_lossy()),
        None,
        Some(Timecode::ZERO),
        Some(Timecode::parse("00:00:01").unwrap()),
    )
    .unwrap();
    let source_key = keys::source_key(&spec.url);
    let bytes = std::fs::read(source).unwrap();
    store
        .objects()
        .put(&Path::from(source_key.as_str()), PutPayload::from(bytes))
        .await
        .unwrap();
    store
        .put_status(&JobStatus::queued(spec.clone(), 1))
        .await
        .unwrap();
    let job = TranscodeJob {
        version: MESSAGE_VERSION,
        job_id: spec.job_id(),
        spec,
        source_key,
        source_url: None,
        hls: None,
        attempt: 1,
    };
    let stage = Transcoder::new(&settings, store.clone()).unwrap();
    let peak = PeakRss::start();
    let began = Instant::now();
    let outcome = stage.handle(job.clone()).await;
    let took = began.elapsed();
    let rss = peak.finish();
    if outcome.is_ok() {
        let status = store.status(&job.job_id).await.unwrap().unwrap();
        assert_eq!(status.state, JobState::Completed);
    }
    (outcome, rss, took)
}

fn code(outcome: &Result<(), StageError>) -> String {
    match outcome {
        Ok(()) => "completed".into(),
        Err(StageError::Abort { code, .. }) => code.as_str().into(),
        Err(other) => format!("retry: {other}"),
    }
}

/// An mp4 of one 64×48 frame whose sample tables claim `samples` samples.
fn moov_bomb(dir: &std::path::Path, samples: u32) -> PathBuf {
    let one = dir.join("one.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=s=64x48:r=25:d=0.04",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-frames:v",
        "1",
        one.to_str().unwrap(),
    ]);
    let mut data = std::fs::read(&one).unwrap();
    let at = |data: &[u8], name: &[u8; 4]| {
        data.windows(4)
            .position(|w| w == name)
            .unwrap_or_else(|| panic!("no {name:?} box"))
    };
    let put = |data: &mut Vec<u8>, offset: usize, value: u32| {
        data[offset..offset + 4].copy_from_slice(&value.to_be_bytes());
    };
    // stts: version/flags, entry count, then (sample count, delta).
    let stts = at(&data, b"stts");
    put(&mut data, stts + 12, samples);
    // stsc: version/flags, entry count, then (first chunk, samples per chunk, description).
    let stsc = at(&data, b"stsc");
    put(&mut data, stsc + 16, samples);
    // stsz: version/flags, one size for every sample, sample count.
    let stsz = at(&data, b"stsz");
    put(&mut data, stsz + 12, samples);
    let bomb = dir.join("moov-bomb.mp4");
    std::fs::write(&bomb, data).unwrap();
    bomb
}

#[tokio::test]
async fn resource_bombs_end_in_their_codes_with_the_children_inside_their_caps() {
    let dir = std::env::temp_dir().join(format!("hopster-bombs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _scratch = Scratch(dir.clone());
    let path = |name: &str| dir.join(name);
    let s = |p: &PathBuf| p.to_str().unwrap().to_owned();

    // 1. 8192×8192 H.264 frames, about 200 KB on disk.
    let huge = path("huge.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=gray:s=8192x8192:r=2:d=2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        &s(&huge),
    ]);
    // 2. 1,000 streams: one video and 999 copies of a tone, in Matroska.
    let tone = path("tone.mka");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=d=2",
        "-c:a",
        "libopus",
        "-b:a",
        "16k",
        &s(&tone),
    ]);
    let small = path("small.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=s=64x48:r=25:d=2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        &s(&small),
    ]);
    let streams = path("streams.mkv");
    let mut args: Vec<String> = ["-i", &s(&small), "-i", &s(&tone), "-map", "0:v"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    for _ in 0..999 {
        args.extend(["-map".into(), "1:a".into()]);
    }
    args.extend(["-c".into(), "copy".into(), s(&streams)]);
    ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // 3. An mp4 whose sample tables declare 100 million samples in 3 KB.
    let moov = moov_bomb(&dir, 100_000_000);
    // 4. Matroska with a 256 MiB attachment.
    let blob = path("blob.bin");
    std::fs::write(&blob, vec![0u8; 256 << 20]).unwrap();
    let attached = path("attached.mkv");
    ffmpeg(&[
        "-i",
        &s(&small),
        "-attach",
        &s(&blob),
        "-metadata:s:t",
        "mimetype=application/octet-stream",
        "-c",
        "copy",
        &s(&attached),
    ]);
    std::fs::remove_file(&blob).unwrap();
    // 5. 1,000 frames a second.
    let fast = path("fast.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=s=64x48:r=1000:d=2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        &s(&fast),
    ]);

    let defaults = Settings::default();
    // The 8192×8192 source with the frame limits lifted: only the memory cap stands.
    let mut lifted = defaults.clone();
    lifted.sources.max_width = 100_000;
    lifted.sources.max_height = 100_000;
    lifted.sources.max_pixels = u64::MAX / 2;
    lifted.transcoder.max_memory_mib = 1024;

    let cases: [(&str, &PathBuf, &Settings, &str); 6] = [
        ("8192x8192 H.264", &huge, &defaults, "source_dimensions"),
        (
            "8192x8192, frame limits lifted, 1 GiB cap",
            &huge,
            &lifted,
            "resource_limit",
        ),
        ("1,000 streams", &streams, &defaults, "source_streams"),
        (
            "moov declaring 100M samples",
            &moov,
            &defaults,
            "clip_out_of_range",
        ),
        (
            "256 MiB Matroska attachment",
            &attached,
            &defaults,
            "completed",
        ),
        ("1,000 fps", &fast, &defaults, "source_dimensions"),
    ];
    for (index, (name, source, settings, expected)) in cases.into_iter().enumerate() {
        let case_dir = dir.join(format!("case-{index}"));
        let (outcome, rss_mib, took) = run(&case_dir, source, settings).await;
        let size = std::fs::metadata(source).unwrap().len();
        println!(
            "FIGURE bomb={name:?} bytes={size} outcome={} peak_children_rss_mib={rss_mib:.0} secs={:.2}",
            code(&outcome),
            took.as_secs_f64()
        );
        assert_eq!(code(&outcome), expected, "{name}");
        // No child ever holds more than its cap, and at most two run at once.
        let cap = settings.transcoder.max_memory_mib as f64;
        assert!(
            rss_mib < 2.0 * cap,
            "{name}: the children peaked at {rss_mib:.0} MiB"
        );
        if expected != "completed" {
            assert!(
                matches!(outcome, Err(StageError::Abort { .. })),
                "{name}: a refusal is permanent"
            );
        }
        let _ = std::fs::remove_dir_all(&case_dir);
    }
}
