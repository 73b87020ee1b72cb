//! The transcode stage: a job's message in, its result stored and its status completed.
//! The clip arithmetic (`clip`), the cut with ffmpeg (`cut`) and the outputs stored (`outputs`)
//! are its parts.

mod clip;
mod cut;
mod outputs;

use clip::poster_time;
use outputs::{describe, hls_duration, Uploaded};

use crate::probe::{self, Input, Probe};
use crate::process::{Caps, Limit, ProcessError, Runner};
use crate::transfer::{fetch, sha256_file};
use crate::workdir::WorkDir;
use hopster_common::settings::{Settings, SourceSettings, TranscoderSettings, WorkerSettings};
use hopster_common::worker::{JobTracker, Stage, StageError};
use hopster_common::Store;
use shared_proto::{keys, topology, ErrorCode, JobState, Profile, Timecode, TranscodeJob};
use std::time::Duration;

const PROBE_DEADLINE: Duration = Duration::from_secs(60);

pub struct Transcoder {
    store: Store,
    /// For queueing the callback when the job completes (none in stage-only tests).
    broker: Option<hopster_common::Broker>,
    /// The guarded source client, for the range proxy.
    http: reqwest::Client,
    allow_private: bool,
    runner: Runner,
    settings: TranscoderSettings,
    worker: WorkerSettings,
    limits: SourceSettings,
}

impl Transcoder {
    pub fn new(settings: &Settings, store: Store) -> anyhow::Result<Self> {
        Ok(Transcoder {
            store,
            broker: None,
            http: hopster_common::source_client(settings)?,
            allow_private: settings.sources.allow_private_networks,
            runner: Runner::new(settings.transcoder.max_processes).with_caps(Caps {
                memory_mib: settings.transcoder.max_memory_mib,
                cpu_time_factor: settings.transcoder.cpu_time_factor,
            }),
            settings: settings.transcoder.clone(),
            worker: settings.worker.clone(),
            limits: settings.sources.clone(),
        })
    }

    /// Queues callbacks through `broker` when jobs complete.
    pub fn with_notifications(mut self, broker: hopster_common::Broker) -> Self {
        self.broker = Some(broker);
        self
    }

    async fn probe(&self, input: &Input) -> Result<Probe, StageError> {
        let out = self
            .runner
            .run(
                &self.settings.ffprobe,
                &probe::args(input),
                PROBE_DEADLINE,
                None,
            )
            .await
            .map_err(|e| Run::Probe.failed(e))?;
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

/// The child processes of the stage, for what their failures mean.
#[derive(Debug, Clone, Copy)]
enum Run {
    /// ffprobe describing the source (or an output).
    Probe,
    /// ffprobe listing the keyframes before the start.
    Keyframes,
    /// ffmpeg cutting the clip.
    Cut,
    /// ffmpeg taking the poster from the finished clip.
    Poster,
}

impl Run {
    /// The one place a child's failure becomes the stage's. Going over a cap fails the job for
    /// good (the same source would go over it on every try); a program that failed on the
    /// source does too, where only the source can be the cause; anything else (not started, out
    /// of time) is retried.
    fn failed(self, error: ProcessError) -> StageError {
        match (self, error) {
            (
                _,
                e @ ProcessError::OverLimit {
                    limit: Limit::Pixels,
                    ..
                },
            ) => StageError::abort(ErrorCode::SourceDimensions, e.to_string()),
            (_, e @ ProcessError::OverLimit { .. }) => {
                StageError::abort(ErrorCode::ResourceLimit, e.to_string())
            }
            (Run::Probe, ProcessError::Failed { stderr, .. }) => StageError::abort(
                ErrorCode::NotAVideo,
                format!("ffprobe cannot read the source: {stderr}"),
            ),
            (Run::Cut, ProcessError::Failed { stderr, .. }) => StageError::abort(
                ErrorCode::TranscodeFailed,
                format!("ffmpeg failed: {stderr}"),
            ),
            (Run::Poster, e) => StageError::retry(
                ErrorCode::TranscodeFailed,
                format!("taking the poster: {e}"),
            ),
            (Run::Probe | Run::Keyframes | Run::Cut, e) => {
                StageError::retry(ErrorCode::TranscodeFailed, e.to_string())
            }
        }
    }
}

impl Stage for Transcoder {
    type Message = TranscodeJob;
    const KEY: &'static str = topology::TRANSCODE;

    fn retry_policy(&self) -> hopster_common::retry::RetryPolicy {
        hopster_common::retry::RetryPolicy::of_jobs(&self.worker)
    }

    async fn handle(&self, job: TranscodeJob) -> Result<(), StageError> {
        let id = job.job_id.clone();
        let outcome = self.transcode_job(job).await;
        if matches!(outcome, Err(StageError::Cancelled)) {
            // Cancelled while storing (HLS segments, the poster) or at the last moment: the
            // outputs must not outlive the job.
            if let Err(e) = self.store.delete_job_outputs(&id).await {
                log::warn!("job {id}: removing the outputs of the cancelled job: {e}");
            }
        }
        outcome
    }
}

impl Transcoder {
    async fn transcode_job(&self, job: TranscodeJob) -> Result<(), StageError> {
        let id = job.job_id.clone();
        let resumed = JobTracker::resume(
            self.store.clone(),
            &id,
            JobState::Transcoding,
            job.attempt,
            &self.worker,
            |_| false,
        )
        .await?;
        let Some(mut tracker) = resumed else {
            return Ok(());
        };

        let dir = WorkDir::create(self.settings.work_dir.as_deref(), id.as_str()).map_err(|e| {
            StageError::retry(
                ErrorCode::TranscodeFailed,
                format!("creating a work directory: {e}"),
            )
        })?;
        let spec = &job.spec;
        let profile = spec.profile;
        let output = if profile == Profile::Hls {
            let hls = dir.file("hls");
            std::fs::create_dir_all(&hls).map_err(|e| {
                StageError::retry(
                    ErrorCode::TranscodeFailed,
                    format!("creating {}: {e}", hls.display()),
                )
            })?;
            hls.join("index.m3u8")
        } else {
            dir.file(&format!("clip.{}", profile.extension()))
        };
        let poster = dir.file("poster.jpg");
        let result_key = keys::result_key(&id, profile);
        let output_input = Input::output(&output);
        let stored = profile != Profile::Hls && self.store.head(&result_key).await?.is_some();
        let (uploaded, made, posted, start_achieved) = if stored {
            // An earlier try stored the result and died before finishing the status: finish
            // it from the stored object instead of transcoding again.
            log::info!("job {id}: result already stored; finishing its status");
            fetch(&self.store, &result_key, &output).await?;
            let (size, sha256) = sha256_file(&output).await?;
            let made = self.probe(&output_input).await?;
            let poster_key = keys::poster_key(&id);
            let posted = if self.store.head(&poster_key).await?.is_some() {
                Some(poster_key)
            } else {
                let at = poster_time(spec, made.duration().unwrap_or(Timecode::ZERO))?;
                self.poster_after(&job, &output, &poster, at).await?
            };
            let uploaded = Uploaded {
                size,
                sha256,
                segments: Vec::new(),
            };
            (uploaded, made, posted, None)
        } else {
            let cut = self.cut(&mut tracker, &job, &dir, &output, &poster).await?;
            tracker.status_mut().advance(JobState::Uploading);
            tracker.status_mut().progress.transcode.percent = 100.0;
            tracker.flush().await?;
            // Storing the clip, describing it and storing its poster are independent: do
            // them at once. After a stream copy the poster is taken from the clip.
            let described = async {
                match profile {
                    Profile::Hls => {
                        let first = output.with_file_name("seg_00000.ts");
                        self.probe(&Input::output(&first)).await
                    }
                    // An mp4 describes itself in its `moov`: no ffprobe process needed.
                    Profile::Mp4 => match crate::mp4info::describe_file(&output).await {
                        Some(made) => Ok(made),
                        None => self.probe(&output_input).await,
                    },
                    _ => self.probe(&output_input).await,
                }
            };
            let posted = async {
                if cut.poster_in_run {
                    self.store_poster(&id, &poster).await
                } else {
                    self.poster_after(&job, &output, &poster, cut.poster_at)
                        .await
                }
            };
            let (uploaded, made, posted) = tokio::join!(
                self.store_result(&output, &result_key, profile, &mut tracker),
                described,
                posted
            );
            (uploaded?, made?, posted?, cut.start_achieved)
        };
        let mut result = describe(&made, result_key.clone(), profile, &uploaded)?;
        if profile == Profile::Hls {
            result.duration_secs = hls_duration(&output).await?;
        }
        result.start_achieved = start_achieved;
        result.poster_key = posted;
        let duration = result.duration_secs;
        let size = result.size;
        let completed = tracker.status_mut().complete(result);
        tracker.flush().await?;
        if let Some(broker) = self.broker.as_ref().filter(|_| completed) {
            hopster_common::notify::queue_if_wanted(broker, tracker.status()).await;
        }
        log::info!("job {id}: completed ({size} bytes, {duration:.3} s, recorded: {completed})");
        Ok(())
    }
}
