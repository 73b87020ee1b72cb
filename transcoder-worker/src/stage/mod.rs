//! The transcode stage: a job's message in, its result stored and its status completed.
//! The clip arithmetic (`clip`), the cut with ffmpeg (`cut`) and the outputs stored (`outputs`)
//! are its parts.

mod clip;
mod cut;
mod inspect;
mod outputs;
mod smart;

pub use inspect::Inspector;

use clip::poster_time;
use outputs::{describe, hls_duration, Uploaded};

use crate::probe::{self, Input, Probe};
use crate::process::{Caps, Limit, ProcessError, Runner};
use crate::transfer::{fetch, sha256_file};
use crate::workdir::WorkDir;
use hopster_common::settings::{Settings, SourceSettings, TranscoderSettings, WorkerSettings};
use hopster_common::worker::{JobTracker, Stage, StageError};
use hopster_common::Store;
use shared_proto::{keys, topology, ErrorCode, JobState, Method, Profile, Timecode, TranscodeJob};
use std::time::Duration;

/// What a try made: the stored result, its description, its poster's key, the start it
/// achieved, and how it was cut (method, seconds copied, seconds encoded).
type Made = (
    Uploaded,
    Probe,
    Option<String>,
    Option<Timecode>,
    Option<(shared_proto::Method, Option<f64>, Option<f64>)>,
);

const PROBE_DEADLINE: Duration = Duration::from_secs(60);

pub struct Transcoder {
    store: Store,
    /// For queueing the callback when the job completes (none in stage-only tests).
    broker: Option<hopster_common::Broker>,
    /// The guarded source client, for the range proxy.
    http: reqwest::Client,
    /// A client of this worker's own range proxy (loopback, no proxy of its own; the range
    /// proxy is what is guarded).
    loopback: reqwest::Client,
    guard: hopster_common::guard::Policy,
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
            loopback: reqwest::Client::builder().no_proxy().build()?,
            guard: hopster_common::guard::Policy::of(&settings.sources),
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
        self.probe_with(&probe::args(input)).await
    }

    /// Probes a source; with `keyframe_at`, the same ffprobe also finds the keyframe at or
    /// before it ([`probe::args_with_keyframe`]).
    async fn probe_source(
        &self,
        input: &Input,
        keyframe_at: Option<Timecode>,
    ) -> Result<Probe, StageError> {
        match keyframe_at {
            Some(at) => match self.describe_by_index(input).await {
                Some(described) => Ok(described),
                None => self.probe_with(&probe::args_with_keyframe(input, at)).await,
            },
            None => self.probe(input).await,
        }
    }

    /// An mp4 described from its index (`moov`, read in this process: by range through the
    /// proxy, or from the staged file) with every keyframe listed: what a keyframe copy needs,
    /// without an ffprobe process beside the copy (it costs about 65 ms to start here, and the
    /// copy shares the cores with it). Only for video shown in the order it is decoded: with
    /// B-frames, ffmpeg's seek finds the keyframe by decode time, which ffprobe's packets tell
    /// and the presentation times of the index do not. `None`, and the caller probes, for
    /// anything else: no `moov` where a walk of the top-level boxes finds it, a track it cannot
    /// read, B-frames.
    async fn describe_by_index(&self, input: &Input) -> Option<Probe> {
        let moov = self.source_moov(input).await?;
        if crate::mp4info::reorders(&moov)? {
            return None;
        }
        Self::described_with_keyframes(&moov)
    }

    fn described_with_keyframes(moov: &[u8]) -> Option<Probe> {
        let mut described = crate::mp4info::describe(moov)?;
        let video = described.video()?.index;
        described.packets = crate::mp4info::keyframes(moov)?
            .into_iter()
            .map(|time| probe::Packet {
                stream_index: video,
                pts_time: Some(format!("{time:.6}")),
                flags: "K".into(),
            })
            .collect();
        Some(described)
    }

    /// The frames `start`–`stop` of the source, when a stream copy gives exactly them
    /// ([`crate::mp4info::copy_span`]), and the source described, both from its index; `None`
    /// when not, or when the index cannot tell. The description is
    /// [`Transcoder::describe_by_index`]'s, B-frames or not: the copy seeks to the very keyframe it starts at. With it no ffprobe runs before
    /// the copy (nor reads ahead: about 3 MiB of a 15 MiB source); the pixel format comes from
    /// the codec configuration (`avcC`).
    async fn copy_span(
        &self,
        input: &Input,
        start: Option<Timecode>,
        stop: Option<Timecode>,
    ) -> Option<(crate::mp4info::CopySpan, Probe)> {
        let moov = self.source_moov(input).await?;
        let from = start.unwrap_or(Timecode::ZERO).as_secs_f64();
        let to = stop.map(|t| t.as_secs_f64());
        // A sample table of up to a million entries: off the async threads.
        tokio::task::spawn_blocking(move || {
            let span = crate::mp4info::copy_span(&moov, from, to)?;
            Some((span, Self::described_with_keyframes(&moov)?))
        })
        .await
        .ok()?
    }

    /// The source's `moov`, when it is an mp4 read through the range proxy or staged.
    async fn source_moov(&self, input: &Input) -> Option<Vec<u8>> {
        match (input.proxy_url(), input.file_path()) {
            (Some(url), _) => inspect::read_moov(&self.loopback, url).await,
            (None, Some(path)) => inspect::read_moov_file(path).await,
            (None, None) => None,
        }
    }

    async fn probe_with(&self, args: &[String]) -> Result<Probe, StageError> {
        let out = self
            .runner
            .run(&self.settings.ffprobe, args, PROBE_DEADLINE, None)
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
    /// ffmpeg measuring the clip's loudness (normalization's first pass).
    Loudness,
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
            (Run::Cut | Run::Loudness, ProcessError::Failed { stderr, .. }) => StageError::abort(
                ErrorCode::TranscodeFailed,
                format!("ffmpeg failed: {stderr}"),
            ),
            (Run::Poster, e) => StageError::retry(
                ErrorCode::TranscodeFailed,
                format!("taking the poster: {e}"),
            ),
            (Run::Probe | Run::Keyframes | Run::Cut | Run::Loudness, e) => {
                StageError::retry(ErrorCode::TranscodeFailed, e.to_string())
            }
        }
    }
}

impl Transcoder {
    /// The guarded range proxy in front of `url` (checked here first, as the guard checks
    /// every address the proxy reaches), reading `window` bytes at first.
    async fn proxy(&self, url: &str, window: u64) -> Result<crate::proxy::RangeProxy, StageError> {
        hopster_common::guard::check_literal(url, &self.guard)
            .map_err(|e| StageError::abort(ErrorCode::SourceForbidden, e.to_string()))?;
        crate::proxy::RangeProxy::start(
            self.http.clone(),
            url.to_owned(),
            self.limits.max_bytes,
            window,
        )
        .await
        .map_err(|e| {
            StageError::retry(
                ErrorCode::TranscodeFailed,
                format!("starting the range proxy: {e}"),
            )
        })
    }
}

/// The outcome of reading through the range proxy: a failure because the source failed is the
/// source's (refused, too large, gone, no ranges, unreachable), not the media's.
fn through_proxy<T>(
    result: Result<T, StageError>,
    upstream: Option<crate::proxy::Upstream>,
) -> Result<T, StageError> {
    use crate::proxy::Upstream;
    match (result, upstream) {
        (Ok(done), _) => Ok(done),
        (Err(_), Some(Upstream::Forbidden(why))) => {
            Err(StageError::abort(ErrorCode::SourceForbidden, why))
        }
        (Err(_), Some(Upstream::TooLarge(why))) => {
            Err(StageError::abort(ErrorCode::SourceTooLarge, why))
        }
        (Err(_), Some(Upstream::NotFound(why))) => {
            Err(StageError::abort(ErrorCode::SourceNotFound, why))
        }
        (Err(_), Some(Upstream::NoRanges(why))) => {
            Err(StageError::abort(ErrorCode::SourceUnreachable, why))
        }
        (Err(_), Some(Upstream::Failed(why))) => {
            Err(StageError::retry(ErrorCode::SourceUnreachable, why))
        }
        (Err(e), None) => Err(e),
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
        let hls = job.hls.clone();
        let job = clip::relative_to_fetched(job);
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
        let stored = profile != Profile::Hls && self.store.head(&result_key).await?.is_some();
        let (uploaded, made, posted, start_achieved, how) = if stored {
            // An earlier try stored the result and died before finishing the status: finish
            // it from the stored object instead of transcoding again.
            log::info!("job {id}: result already stored; finishing its status");
            let (uploaded, made, posted) = self
                .stored_result(&job, &result_key, &output, &poster)
                .await?;
            // How it was made was recorded with a result this job never finished: unknown.
            (uploaded, made, posted, None, None)
        } else {
            let cut = self.cut(&mut tracker, &job, &dir, &output, &poster).await?;
            // Another transcoder may have finished this job meanwhile (the broker redelivered
            // it while this one, cut off, still worked): its result stands, this one is not
            // written over it.
            if let Some(now) = self.store.status(&id).await? {
                if now.state.is_terminal() {
                    log::info!(
                        "job {id}: already {} by another worker; not storing this result",
                        now.state.as_str()
                    );
                    return Ok(());
                }
            }
            // Or stored its result and was cut off before finishing the status: finish it from
            // that object rather than write the result a second time.
            if profile != Profile::Hls && self.store.head(&result_key).await?.is_some() {
                log::info!(
                    "job {id}: another worker stored the result meanwhile; finishing its status"
                );
                let (uploaded, made, posted) = self
                    .stored_result(&job, &result_key, &output, &poster)
                    .await?;
                let how = (cut.method, cut.copied_secs, cut.encoded_secs);
                return self
                    .finish(
                        tracker,
                        hls,
                        &output,
                        &result_key,
                        (uploaded, made, posted, cut.start_achieved, Some(how)),
                    )
                    .await;
            }
            tracker.enter(JobState::Uploading);
            tracker.status_mut().progress.transcode.percent = 100.0;
            tracker.flush().await?;
            // Storing the clip, describing it and storing its poster are independent: do
            // them at once. After a stream copy the poster is taken from the clip.
            let described = self.describe_output(profile, &output);
            let posted = async {
                // A stream copy's own run finds no keyframe for its poster when none follows
                // the start within the clip: then the poster comes from the clip.
                let missing = cut.method == Method::Copy && !poster.exists();
                if cut.poster_in_run && !missing {
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
            if let Ok(stored) = &uploaded {
                log::info!("job {id}: result stored ({} bytes)", stored.size);
            }
            let how = (cut.method, cut.copied_secs, cut.encoded_secs);
            (uploaded?, made?, posted?, cut.start_achieved, Some(how))
        };
        self.finish(
            tracker,
            hls,
            &output,
            &result_key,
            (uploaded, made, posted, start_achieved, how),
        )
        .await
    }

    /// The stored result of this job (an earlier try's, or another worker's), fetched to
    /// `output` and described, and its poster (made again if it is missing).
    async fn stored_result(
        &self,
        job: &TranscodeJob,
        result_key: &str,
        output: &std::path::Path,
        poster: &std::path::Path,
    ) -> Result<(Uploaded, Probe, Option<String>), StageError> {
        fetch(&self.store, result_key, output).await?;
        let (size, sha256) = sha256_file(output).await?;
        let made = self.describe_output(job.spec.profile, output).await?;
        let poster_key = keys::poster_key(&job.job_id);
        let posted = if self.store.head(&poster_key).await?.is_some() {
            Some(poster_key)
        } else {
            let at = poster_time(&job.spec, made.duration().unwrap_or(Timecode::ZERO))?;
            self.poster_after(job, output, poster, at).await?
        };
        let uploaded = Uploaded {
            size,
            sha256,
            segments: Vec::new(),
        };
        Ok((uploaded, made, posted))
    }

    /// What was made: its streams and length.
    async fn describe_output(
        &self,
        profile: Profile,
        output: &std::path::Path,
    ) -> Result<Probe, StageError> {
        match profile {
            Profile::Hls => {
                let first = output.with_file_name("seg_00000.ts");
                self.probe(&Input::output(&first)).await
            }
            // An mp4 describes itself in its `moov`: no ffprobe process needed.
            Profile::Mp4 => match crate::mp4info::describe_file(output).await {
                Some(made) => Ok(made),
                None => self.probe(&Input::output(output)).await,
            },
            // ffprobe reads neither the size nor the length of an animated WebP.
            Profile::Webp => crate::webpinfo::describe_file(output).await.ok_or_else(|| {
                StageError::abort(
                    ErrorCode::TranscodeFailed,
                    "ffmpeg wrote no readable animated WebP",
                )
            }),
            _ => self.probe(&Input::output(output)).await,
        }
    }

    /// Completes the job's status with its result.
    async fn finish(
        &self,
        mut tracker: JobTracker,
        hls: Option<shared_proto::HlsSource>,
        output: &std::path::Path,
        result_key: &str,
        (uploaded, made, posted, start_achieved, how): Made,
    ) -> Result<(), StageError> {
        let id = tracker.status().id.clone();
        let profile = tracker.status().spec.profile;
        let mut result = describe(&made, result_key.to_owned(), profile, &uploaded)?;
        if profile == Profile::Hls {
            result.duration_secs = hls_duration(output).await?;
        }
        // In stream time, like the request's own.
        result.start_achieved = match (&hls, start_achieved) {
            (Some(h), Some(at)) => {
                Some(Timecode::from_micros(at.as_micros() + h.offset.as_micros()))
            }
            (_, at) => at,
        };
        result.source_segments = hls.map(|h| h.segments);
        if let Some((method, copied, encoded)) = how {
            result.method = Some(method);
            result.copied_secs = copied;
            result.encoded_secs = encoded;
        }
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
