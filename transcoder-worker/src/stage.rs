//! The transcode stage.

use crate::ffmpeg::{self, Cut, ProgressParser};
use crate::probe::{self, Probe};
use crate::process::{ProcessError, Runner};
use crate::workdir::WorkDir;
use futures::StreamExt;
use hopster_common::settings::{Settings, TranscoderSettings, WorkerSettings};
use hopster_common::store::StoreError;
use hopster_common::worker::{JobTracker, Stage, StageError};
use hopster_common::Store;
use object_store::path::Path;
use object_store::{ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};
use shared_proto::{
    keys, topology, ErrorCode, JobResult, JobState, JobStatus, Timecode, TranscodeJob,
};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PROBE_DEADLINE: Duration = Duration::from_secs(60);
const UPLOAD_PART: usize = 8 * 1024 * 1024;

pub struct Transcoder {
    store: Store,
    runner: Runner,
    settings: TranscoderSettings,
    worker: WorkerSettings,
}

impl Transcoder {
    pub fn new(settings: &Settings, store: Store) -> Self {
        Transcoder {
            store,
            runner: Runner::new(settings.transcoder.max_processes),
            settings: settings.transcoder.clone(),
            worker: settings.worker.clone(),
        }
    }

    async fn probe(&self, file: &str) -> Result<Probe, StageError> {
        let out = self
            .runner
            .run(
                &self.settings.ffprobe,
                &probe::args(file),
                PROBE_DEADLINE,
                None,
            )
            .await
            .map_err(|e| match e {
                ProcessError::Failed { stderr, .. } => StageError::abort(
                    ErrorCode::NotAVideo,
                    format!("ffprobe cannot read the source: {stderr}"),
                ),
                other => StageError::retry(ErrorCode::TranscodeFailed, other.to_string()),
            })?;
        Probe::parse(&out).map_err(|e| {
            StageError::abort(
                ErrorCode::NotAVideo,
                format!("ffprobe gave no usable description: {e}"),
            )
        })
    }

    /// ffmpeg's deadline: a fixed part plus a per-second allowance for the clip.
    fn deadline(&self, clip: Timecode) -> Duration {
        Duration::from_secs(self.settings.timeout_base_secs)
            + Duration::from_secs_f64(
                clip.as_secs_f64() * self.settings.timeout_per_clip_sec.max(0.0),
            )
    }
}

impl Stage for Transcoder {
    type Message = TranscodeJob;
    const KEY: &'static str = topology::TRANSCODE;

    async fn handle(&self, job: TranscodeJob) -> Result<(), StageError> {
        let id = job.job_id.clone();
        let Some(status) = self.store.status(&id).await? else {
            log::warn!("job {id}: no status document; dropping the transcode message");
            return Ok(());
        };
        if status.state.is_terminal() {
            log::info!(
                "job {id}: already {}; nothing to transcode",
                status.state.as_str()
            );
            return Ok(());
        }
        let mut tracker = JobTracker::new(self.store.clone(), status, &self.worker);
        tracker.status_mut().advance(JobState::Transcoding);
        tracker.status_mut().worker = Some(hopster_common::worker_id());
        tracker.flush().await?;

        let dir = WorkDir::create(self.settings.work_dir.as_deref(), id.as_str()).map_err(|e| {
            StageError::retry(
                ErrorCode::TranscodeFailed,
                format!("creating a work directory: {e}"),
            )
        })?;
        let source = dir.file("source");
        let output = dir.file("clip.mp4");
        let (source_str, output_str) = (path_str(&source)?, path_str(&output)?);
        fetch(&self.store, &job.source_key, &source).await?;

        let probe = self.probe(source_str).await?;
        let clip = check_clip(&probe, &job)?;
        log::info!("job {id}: transcoding {} from {}", clip.length, clip.start);

        let cut = Cut {
            input: source_str,
            output: output_str,
            start: Some(clip.start),
            length: job.spec.stop.map(|_| clip.length),
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let args = ffmpeg::cut_args(&cut, &self.settings);
        let run = self.runner.run(
            &self.settings.ffmpeg,
            &args,
            self.deadline(clip.length),
            Some(tx),
        );
        let watch = async {
            let mut parser = ProgressParser::default();
            while let Some(line) = rx.recv().await {
                if let Some(tick) = parser.push(&line) {
                    tracker
                        .status_mut()
                        .record_transcode(tick.out_time, clip.length, tick.speed);
                    if let Err(e) = tracker.flush_throttled().await {
                        log::warn!("job {id}: progress write failed: {e}");
                    }
                }
            }
        };
        let (ran, ()) = tokio::join!(run, watch);
        ran.map_err(|e| match e {
            ProcessError::Failed { stderr, .. } => StageError::abort(
                ErrorCode::TranscodeFailed,
                format!("ffmpeg failed: {stderr}"),
            ),
            other => StageError::retry(ErrorCode::TranscodeFailed, other.to_string()),
        })?;

        let made = self.probe(output_str).await?;
        let video = made.video().ok_or_else(|| {
            StageError::abort(
                ErrorCode::TranscodeFailed,
                "ffmpeg produced no video stream",
            )
        })?;
        let (width, height) = (video.width.unwrap_or(0), video.height.unwrap_or(0));
        let video_codec = video.codec_name.clone().unwrap_or_default();
        let audio_codec = made.audio().and_then(|a| a.codec_name.clone());
        let duration_secs = made.duration().map_or(0.0, Timecode::as_secs_f64);

        tracker.status_mut().advance(JobState::Uploading);
        tracker.status_mut().progress.transcode.percent = 100.0;
        tracker.flush().await?;
        let result_key = keys::result_key(&id);
        let (size, sha256) = upload(&output, &result_key, &mut tracker).await?;
        let completed = tracker.status_mut().complete(JobResult {
            key: result_key,
            size,
            duration_secs,
            mime: "video/mp4".into(),
            video_codec,
            audio_codec,
            width,
            height,
            sha256,
        });
        tracker.flush().await?;
        log::info!(
            "job {id}: completed ({size} bytes, {duration_secs:.3} s, recorded: {completed})"
        );
        Ok(())
    }
}

/// The clip in source time.
struct Clip {
    start: Timecode,
    length: Timecode,
}

/// Checks the source and the clip against what the probe found.
fn check_clip(probe: &Probe, job: &TranscodeJob) -> Result<Clip, StageError> {
    if !probe.container_allowed() {
        return Err(StageError::abort(
            ErrorCode::NotAVideo,
            format!(
                "the source's container `{}` is not accepted",
                probe.format.format_name
            ),
        ));
    }
    if probe.video().is_none() {
        return Err(StageError::abort(
            ErrorCode::NotAVideo,
            "the source has no video stream",
        ));
    }
    let duration = probe
        .duration()
        .ok_or_else(|| StageError::abort(ErrorCode::NotAVideo, "the source has no duration"))?;
    let start = job.spec.start.unwrap_or(Timecode::ZERO);
    if start >= duration {
        return Err(StageError::abort(
            ErrorCode::ClipOutOfRange,
            format!("start {start} is at or past the end of the source ({duration})"),
        ));
    }
    let stop = job.spec.stop.unwrap_or(duration);
    if stop > duration {
        return Err(StageError::abort(
            ErrorCode::ClipOutOfRange,
            format!("stop {stop} is past the end of the source ({duration})"),
        ));
    }
    let length = stop
        .checked_sub(start)
        .filter(|l| l.as_micros() > 0)
        .ok_or_else(|| {
            StageError::abort(
                ErrorCode::ClipOutOfRange,
                format!("the clip {start}–{stop} is empty"),
            )
        })?;
    Ok(Clip { start, length })
}

fn path_str(path: &std::path::Path) -> Result<&str, StageError> {
    path.to_str().ok_or_else(|| {
        StageError::abort(
            ErrorCode::Internal,
            format!("work path {} is not UTF-8", path.display()),
        )
    })
}

/// Copies the staged source from the store to a local file, streaming.
async fn fetch(store: &Store, key: &str, to: &std::path::Path) -> Result<(), StageError> {
    let got = store
        .objects()
        .get(&Path::from(key))
        .await
        .map_err(|e| match e {
            object_store::Error::NotFound { .. } => StageError::abort(
                ErrorCode::Internal,
                format!("the staged source {key} is missing from the store"),
            ),
            other => StageError::from(StoreError::from(other)),
        })?;
    let local = |e: std::io::Error| {
        StageError::retry(
            ErrorCode::TranscodeFailed,
            format!("writing the source locally: {e}"),
        )
    };
    let mut file = tokio::fs::File::create(to).await.map_err(local)?;
    let mut stream = got.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(StoreError::from)?;
        file.write_all(&chunk).await.map_err(local)?;
    }
    file.flush().await.map_err(local)?;
    Ok(())
}

/// Uploads the result in parts, hashing it on the way. Returns its size and SHA-256.
async fn upload(
    file: &std::path::Path,
    key: &str,
    tracker: &mut JobTracker,
) -> Result<(u64, String), StageError> {
    let local = |e: std::io::Error| {
        StageError::retry(ErrorCode::TranscodeFailed, format!("reading the clip: {e}"))
    };
    let mut input = tokio::fs::File::open(file).await.map_err(local)?;
    let total = input.metadata().await.map_err(local)?.len();
    let upload = tracker
        .store()
        .objects()
        .put_multipart(&Path::from(key))
        .await
        .map_err(StoreError::from)?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, UPLOAD_PART);
    let mut hasher = Sha256::new();
    let mut sent = 0u64;
    let mut buf = vec![0u8; 1024 * 1024];
    let copied: Result<(), StageError> = async {
        loop {
            let n = input.read(&mut buf).await.map_err(local)?;
            if n == 0 {
                return Ok(());
            }
            hasher.update(&buf[..n]);
            writer
                .wait_for_capacity(2)
                .await
                .map_err(StoreError::from)?;
            writer.write(&buf[..n]);
            sent += n as u64;
            JobStatus::record_transfer(
                &mut tracker.status_mut().progress.upload,
                sent,
                Some(total),
            );
            tracker.flush_throttled().await?;
        }
    }
    .await;
    if let Err(e) = copied {
        if let Err(abort) = writer.abort().await {
            log::warn!("aborting the partial upload of {key}: {abort}");
        }
        return Err(e);
    }
    writer.finish().await.map_err(StoreError::from)?;
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((sent, digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_proto::{JobSpec, MESSAGE_VERSION};

    fn job(start: &str, stop: Option<&str>) -> TranscodeJob {
        let tc = |s: &str| Timecode::parse(s).unwrap();
        let spec = JobSpec::new("http://h/v", None, Some(tc(start)), stop.map(tc)).unwrap();
        TranscodeJob {
            version: MESSAGE_VERSION,
            job_id: spec.job_id(),
            spec,
            source_key: "k".into(),
            attempt: 1,
        }
    }

    fn probe() -> Probe {
        Probe::parse(include_str!("../tests/fixtures/probe-mp4.json")).unwrap()
    }

    #[test]
    fn a_clip_inside_the_source_is_accepted_with_its_exact_length() {
        let clip = check_clip(&probe(), &job("00:00:01", Some("00:00:03.5"))).unwrap();
        assert_eq!(clip.length, Timecode::parse("00:00:02.5").unwrap());
        let open = check_clip(&probe(), &job("00:00:01", None)).unwrap();
        assert_eq!(open.length, Timecode::parse("00:00:03").unwrap());
    }

    #[test]
    fn a_clip_past_the_end_is_refused_with_clip_out_of_range() {
        for (start, stop) in [
            ("00:00:04", None),
            ("00:00:10", Some("00:00:12")),
            ("00:00:02", Some("00:00:05")),
        ] {
            match check_clip(&probe(), &job(start, stop)) {
                Err(StageError::Abort { code, message }) => {
                    assert_eq!(code, ErrorCode::ClipOutOfRange);
                    assert!(message.contains("00:00:04"), "{message}");
                }
                other => panic!("{start}: {:?}", other.map(|c| c.length)),
            }
        }
    }
}
