//! The transcode stage.

use crate::ffmpeg::{self, Cut, ProgressParser};
use crate::probe::{self, Input, Probe};
use crate::process::{Caps, Limit, ProcessError, Runner};
use crate::proxy::RangeProxy;
use crate::transfer::{fetch, put_file, sha256_file, upload};
use crate::workdir::WorkDir;
use hopster_common::settings::{Settings, SourceSettings, TranscoderSettings, WorkerSettings};
use hopster_common::store::StoreError;
use hopster_common::worker::{JobTracker, Stage, StageError};
use hopster_common::Store;
use shared_proto::{
    keys, topology, Accuracy, ErrorCode, JobResult, JobState, JobStatus, Profile, Timecode,
    TranscodeJob,
};
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
            allow_private: settings.downloader.allow_private_networks,
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
            .map_err(|e| match e {
                ProcessError::Failed { stderr, .. } => StageError::abort(
                    ErrorCode::NotAVideo,
                    format!("ffprobe cannot read the source: {stderr}"),
                ),
                other => over_limit(other),
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

/// A run that went over a cap fails the job for good (the same source would go over it on
/// every try); any other failure to run is retried.
fn over_limit(error: ProcessError) -> StageError {
    match error {
        ProcessError::OverLimit {
            limit: Limit::Pixels,
            ..
        } => StageError::abort(ErrorCode::SourceDimensions, error.to_string()),
        ProcessError::OverLimit { .. } => {
            StageError::abort(ErrorCode::ResourceLimit, error.to_string())
        }
        other => StageError::retry(ErrorCode::TranscodeFailed, other.to_string()),
    }
}

/// What was stored of the result.
struct Uploaded {
    size: u64,
    sha256: String,
    segments: Vec<String>,
}

/// What a cut produced besides the output file.
struct CutDone {
    start_achieved: Option<Timecode>,
    /// Where in the clip the poster is (to be) taken.
    poster_at: Timecode,
    /// ffmpeg wrote the poster already, as a second output.
    poster_in_run: bool,
}

/// Where the poster is taken: `poster_at`, or one second in (the first frame of a clip
/// shorter than two seconds). An explicit time past the clip is refused.
fn poster_time(spec: &shared_proto::JobSpec, length: Timecode) -> Result<Timecode, StageError> {
    match spec.poster_at {
        Some(at) if at >= length => Err(StageError::abort(
            ErrorCode::ClipOutOfRange,
            format!("`poster_at` {at} is at or past the end of the clip ({length})"),
        )),
        Some(at) => Ok(at),
        None if length.as_micros() >= 2_000_000 => Ok(Timecode::from_micros(1_000_000)),
        None => Ok(Timecode::ZERO),
    }
}

/// The sum of an HLS playlist's `#EXTINF` durations.
async fn hls_duration(playlist: &std::path::Path) -> Result<f64, StageError> {
    let text = tokio::fs::read_to_string(playlist).await.map_err(|e| {
        StageError::retry(
            ErrorCode::TranscodeFailed,
            format!("reading the playlist: {e}"),
        )
    })?;
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .filter_map(|l| l.split(',').next()?.trim().parse::<f64>().ok())
        .sum())
}

impl Transcoder {
    /// Stores the result: one object, or for HLS every segment and then the playlist (so a
    /// stored playlist always has its segments).
    async fn store_result(
        &self,
        output: &std::path::Path,
        key: &str,
        profile: Profile,
        tracker: &mut JobTracker,
    ) -> Result<Uploaded, StageError> {
        if profile != Profile::Hls {
            let (size, sha256) = upload(output, key, tracker).await?;
            return Ok(Uploaded {
                size,
                sha256,
                segments: Vec::new(),
            });
        }
        let dir = output.parent().unwrap_or(std::path::Path::new("."));
        let playlist = tokio::fs::read_to_string(output).await.map_err(|e| {
            StageError::retry(
                ErrorCode::TranscodeFailed,
                format!("reading the playlist: {e}"),
            )
        })?;
        let segments: Vec<String> = playlist
            .lines()
            .filter(|l| ffmpeg::is_segment_name(l.trim()))
            .map(|l| l.trim().to_owned())
            .collect();
        let prefix = keys::hls_prefix(&tracker.status().id);
        let mut total = 0u64;
        for name in &segments {
            total += put_file(&self.store, &dir.join(name), &format!("{prefix}{name}")).await?;
            JobStatus::record_transfer(&mut tracker.status_mut().progress.upload, total, None);
            tracker.flush_throttled().await?;
        }
        let (size, sha256) = sha256_file(output).await?;
        put_file(&self.store, output, key).await?;
        Ok(Uploaded {
            size: total + size,
            sha256,
            segments,
        })
    }

    /// Stores the poster ffmpeg wrote; `None` when it wrote none (an audio profile).
    async fn store_poster(
        &self,
        id: &shared_proto::JobId,
        file: &std::path::Path,
    ) -> Result<Option<String>, StageError> {
        if !file.exists() {
            return Ok(None);
        }
        let key = keys::poster_key(id);
        put_file(&self.store, file, &key).await?;
        Ok(Some(key))
    }

    /// Takes the poster from the finished clip and stores it (video profiles only).
    async fn poster_after(
        &self,
        job: &TranscodeJob,
        clip: &std::path::Path,
        file: &std::path::Path,
        at: Timecode,
    ) -> Result<Option<String>, StageError> {
        if !job.spec.profile.has_video() || job.spec.profile == Profile::Hls {
            return Ok(None);
        }
        let args = ffmpeg::poster_args(&Input::output(clip), at, path_str(file)?);
        self.runner
            .run(&self.settings.ffmpeg, &args, PROBE_DEADLINE, None)
            .await
            .map_err(|e| {
                StageError::retry(
                    ErrorCode::TranscodeFailed,
                    format!("taking the poster: {e}"),
                )
            })?;
        self.store_poster(&job.job_id, file).await
    }
}

impl Transcoder {
    /// Cuts the clip from the staged copy, or through the range proxy when the downloader
    /// found the source answers Range requests. Returns the start achieved (keyframe mode).
    async fn cut(
        &self,
        tracker: &mut JobTracker,
        job: &TranscodeJob,
        dir: &WorkDir,
        output: &std::path::Path,
        poster: &std::path::Path,
    ) -> Result<CutDone, StageError> {
        let Some(url) = &job.source_url else {
            let source = dir.file("source");
            fetch(&self.store, &job.source_key, &source).await?;
            return self
                .transcode(
                    tracker,
                    job,
                    &Input::file(&source).capped(self.limits.max_pixels),
                    output,
                    poster,
                )
                .await;
        };
        // The downloader checked this URL; the proxy fetches it again, so it checks it again.
        hopster_common::guard::check_literal(url, self.allow_private)
            .map_err(|e| StageError::abort(ErrorCode::SourceForbidden, e.to_string()))?;
        let proxy = RangeProxy::start(self.http.clone(), url.clone(), self.limits.max_bytes)
            .await
            .map_err(|e| {
                StageError::retry(
                    ErrorCode::TranscodeFailed,
                    format!("starting the range proxy: {e}"),
                )
            })?;
        let cut = self
            .transcode(
                tracker,
                job,
                &Input::proxied(proxy.url.clone()).capped(self.limits.max_pixels),
                output,
                poster,
            )
            .await;
        hopster_common::metrics::count(
            "hopster_downloaded_bytes_total",
            &[("how", "ranged")],
            proxy.bytes() as f64,
        );
        let progress = &mut tracker.status_mut().progress.download;
        JobStatus::record_transfer(progress, proxy.bytes(), None);
        progress.percent = Some(100.0);
        progress.ranged = true;
        log::info!(
            "job {}: read {} bytes of the source by range",
            job.job_id,
            proxy.bytes()
        );
        match (cut, proxy.upstream_error()) {
            (Ok(start), _) => Ok(start),
            // ffmpeg failed because the source did: that is the source's failure, not the media's.
            (Err(_), Some(why)) if why.contains("only public addresses") => {
                Err(StageError::abort(ErrorCode::SourceForbidden, why))
            }
            (Err(_), Some(why)) if why.contains("limit of") => {
                Err(StageError::abort(ErrorCode::SourceTooLarge, why))
            }
            (Err(_), Some(why)) => Err(StageError::retry(ErrorCode::SourceUnreachable, why)),
            (Err(e), None) => Err(e),
        }
    }

    /// Probes the input, checks the clip and runs ffmpeg, recording its progress. ffmpeg is
    /// killed when it passes its deadline or reports no progress for the stall timeout.
    async fn transcode(
        &self,
        tracker: &mut JobTracker,
        job: &TranscodeJob,
        input: &Input,
        output: &std::path::Path,
        poster: &std::path::Path,
    ) -> Result<CutDone, StageError> {
        let id = &job.job_id;
        let spec = &job.spec;
        // With a `stop`, the clip is known from the spec alone: ffmpeg starts at once and the
        // source probe runs beside it (its verdict still decides: a refused source kills
        // ffmpeg). That takes one process start and a read of the source's index off the
        // critical path. Without one, the probe must say where the source ends first. With a
        // thread budget per job (`transcoder.threads`), the probe would spend a core the
        // budget does not give: it runs first, and workers packed one per core stay so.
        let speculate = self.settings.threads == 0;
        let known = spec.stop.filter(|_| speculate).and_then(|stop| {
            let start = spec.start.unwrap_or(Timecode::ZERO);
            stop.checked_sub(start).map(|length| Clip { start, length })
        });
        let (clip, format) = match known {
            Some(clip) => (clip, None),
            None => {
                let probe = self.probe(input).await?;
                let clip = check_clip(&probe, job, &self.limits)?;
                (clip, Some(probe.format.format_name))
            }
        };
        let checked = async {
            if format.is_some() {
                return Ok(());
            }
            let probe = self.probe(input).await?;
            check_clip(&probe, job, &self.limits).map(|_| ())
        };
        log::info!(
            "job {id}: transcoding {} from {} to {}",
            clip.length,
            clip.start,
            spec.profile.as_str()
        );
        // Only a plain mp4 can be a stream copy (the gateway refuses other combinations).
        let copy = spec.accuracy == Accuracy::Keyframe
            && spec.profile == Profile::Mp4
            && spec.max_height.is_none();
        let poster_at = poster_time(spec, clip.length)?;
        let poster_in_run = spec.profile.has_video() && !copy;
        // In keyframe mode the start achieved is the keyframe at or before `start`; finding it
        // is a probe of its own, run while ffmpeg copies.
        let keyframe = async {
            match (copy, job.spec.start) {
                (true, Some(start)) => {
                    let out = self
                        .runner
                        .run(
                            &self.settings.ffprobe,
                            &probe::keyframe_args(input, start),
                            PROBE_DEADLINE,
                            None,
                        )
                        .await
                        .map_err(over_limit)?;
                    Ok(Some(
                        probe::keyframe_at_or_before(&out, start).unwrap_or(start),
                    ))
                }
                (true, None) => Ok::<_, StageError>(Some(Timecode::ZERO)),
                (false, _) => Ok(None),
            }
        };
        let cut = Cut {
            input,
            copy,
            format: format.as_deref(),
            output: path_str(output)?,
            start: Some(clip.start),
            length: job.spec.stop.map(|_| clip.length),
            profile: spec.profile,
            max_height: spec.max_height,
            poster: poster_in_run.then_some((path_str(poster)?, poster_at)),
        };
        let began = std::time::Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let args = ffmpeg::cut_args(&cut, &self.settings);
        let run = self.runner.run(
            &self.settings.ffmpeg,
            &args,
            self.deadline(clip.length),
            Some(tx),
        );
        let stall = Duration::from_secs(self.settings.stall_timeout_secs.max(1));
        let mut parser = ProgressParser::default();
        // Owns `run`: returning from this block drops it, which kills ffmpeg.
        let encode = async move {
            tokio::pin!(run);
            let ran = loop {
                tokio::select! {
                    ran = &mut run => break ran,
                    line = tokio::time::timeout(stall, rx.recv()) => match line {
                        Ok(Some(line)) => {
                            if let Some(tick) = parser.push(&line) {
                                tracker.status_mut().record_transcode(tick.out_time, clip.length, tick.speed);
                                match tracker.flush_throttled().await {
                                    Err(StoreError::Cancelled(_)) => return Err(StageError::Cancelled),
                                    Err(e) => log::warn!("job {id}: progress write failed: {e}"),
                                    Ok(()) => {}
                                }
                            }
                        }
                        Ok(None) => break (&mut run).await,
                        Err(_) => {
                            return Err(StageError::retry(
                                ErrorCode::TranscodeFailed,
                                format!("ffmpeg reported no progress for {stall:?} and was killed"),
                            ))
                        }
                    },
                }
            };
            ran.map_err(|e| match e {
                ProcessError::Failed { stderr, .. } => StageError::abort(
                    ErrorCode::TranscodeFailed,
                    format!("ffmpeg failed: {stderr}"),
                ),
                other => over_limit(other),
            })?;
            Ok::<(), StageError>(())
        };
        let work = async { tokio::join!(encode, keyframe) };
        tokio::pin!(checked, work);
        // The probe's verdict wins: when it refuses the source, ffmpeg is killed (dropped) at
        // once; when ffmpeg ends first, its result counts only if the probe then accepts.
        let (encoded, start_achieved) = tokio::select! {
            verdict = &mut checked => {
                verdict?;
                (&mut work).await
            }
            done = &mut work => {
                (&mut checked).await?;
                done
            }
        };
        encoded?;
        let wall = began.elapsed().as_secs_f64();
        if wall > 0.0 {
            hopster_common::metrics::observe(
                "hopster_ffmpeg_speed",
                &[("profile", spec.profile.as_str())],
                clip.length.as_secs_f64() / wall,
            );
        }
        Ok(CutDone {
            start_achieved: start_achieved?,
            poster_at,
            poster_in_run,
        })
    }
}

/// The result's description from a probe of the stored clip (for HLS: of a segment).
fn describe(
    made: &Probe,
    key: String,
    profile: Profile,
    uploaded: &Uploaded,
) -> Result<JobResult, StageError> {
    let video = made.video();
    if profile.has_video() && video.is_none() {
        return Err(StageError::abort(
            ErrorCode::TranscodeFailed,
            "ffmpeg produced no video stream",
        ));
    }
    Ok(JobResult {
        key,
        size: uploaded.size,
        duration_secs: made.duration().map_or(0.0, Timecode::as_secs_f64),
        mime: profile.mime().into(),
        profile,
        video_codec: video.and_then(|v| v.codec_name.clone()).unwrap_or_default(),
        audio_codec: made.audio().and_then(|a| a.codec_name.clone()),
        width: video.and_then(|v| v.width).unwrap_or(0),
        height: video.and_then(|v| v.height).unwrap_or(0),
        sha256: uploaded.sha256.clone(),
        poster_key: None,
        segments: uploaded.segments.clone(),
        start_achieved: None,
    })
}

/// The clip in source time.
struct Clip {
    start: Timecode,
    length: Timecode,
}

/// Checks the source and the clip against what the probe found.
fn check_clip(
    probe: &Probe,
    job: &TranscodeJob,
    limits: &SourceSettings,
) -> Result<Clip, StageError> {
    if !probe.container_allowed() {
        return Err(StageError::abort(
            ErrorCode::NotAVideo,
            format!(
                "the source's container `{}` is not accepted",
                probe.format.format_name
            ),
        ));
    }
    crate::limits::check(probe, limits)?;
    if job.spec.profile.has_video() && probe.video().is_none() {
        return Err(StageError::abort(
            ErrorCode::NotAVideo,
            "the source has no video stream",
        ));
    }
    if !job.spec.profile.has_video() && probe.audio().is_none() {
        return Err(StageError::abort(
            ErrorCode::NoAudio,
            format!(
                "the `{}` profile keeps only the audio, and the source has no audio stream",
                job.spec.profile.as_str()
            ),
        ));
    }
    let duration = probe
        .duration()
        .ok_or_else(|| StageError::abort(ErrorCode::NotAVideo, "the source has no duration"))?;
    if duration.as_secs_f64() > limits.max_duration_secs as f64 {
        return Err(StageError::abort(
            ErrorCode::SourceTooLong,
            format!(
                "the source is {duration} long; at most {} s are accepted",
                limits.max_duration_secs
            ),
        ));
    }
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
    if length.as_secs_f64() > limits.max_clip_secs as f64 {
        return Err(StageError::abort(
            ErrorCode::ClipTooLong,
            format!(
                "the clip would be {length} long; at most {} s are allowed",
                limits.max_clip_secs
            ),
        ));
    }
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
            source_url: None,
            attempt: 1,
        }
    }

    fn check_clip_default(job: &TranscodeJob) -> Result<Clip, StageError> {
        check_clip(&probe(), job, &SourceSettings::default())
    }

    #[test]
    fn sources_and_clips_over_the_limits_are_refused() {
        let tight = SourceSettings {
            max_duration_secs: 3,
            ..SourceSettings::default()
        };
        let err = check_clip(&probe(), &job("00:00:01", Some("00:00:02")), &tight)
            .err()
            .unwrap();
        assert!(
            matches!(
                err,
                StageError::Abort {
                    code: ErrorCode::SourceTooLong,
                    ..
                }
            ),
            "{err}"
        );
        let tight = SourceSettings {
            max_clip_secs: 1,
            ..SourceSettings::default()
        };
        let err = check_clip(&probe(), &job("00:00:01", None), &tight)
            .err()
            .unwrap();
        assert!(
            matches!(
                err,
                StageError::Abort {
                    code: ErrorCode::ClipTooLong,
                    ..
                }
            ),
            "{err}"
        );
    }

    fn probe() -> Probe {
        Probe::parse(include_str!("../tests/fixtures/probe-mp4.json")).unwrap()
    }

    #[test]
    fn a_clip_inside_the_source_is_accepted_with_its_exact_length() {
        let clip = check_clip_default(&job("00:00:01", Some("00:00:03.5"))).unwrap();
        assert_eq!(clip.length, Timecode::parse("00:00:02.5").unwrap());
        let open = check_clip_default(&job("00:00:01", None)).unwrap();
        assert_eq!(open.length, Timecode::parse("00:00:03").unwrap());
    }

    #[test]
    fn a_clip_past_the_end_is_refused_with_clip_out_of_range() {
        for (start, stop) in [
            ("00:00:04", None),
            ("00:00:10", Some("00:00:12")),
            ("00:00:02", Some("00:00:05")),
        ] {
            match check_clip_default(&job(start, stop)) {
                Err(StageError::Abort { code, message }) => {
                    assert_eq!(code, ErrorCode::ClipOutOfRange);
                    assert!(message.contains("00:00:04"), "{message}");
                }
                other => panic!("{start}: {:?}", other.map(|c| c.length)),
            }
        }
    }
}
