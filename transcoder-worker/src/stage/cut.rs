//! The cut: ffmpeg run on the staged copy or through the range proxy, its progress recorded,
//! the probe's verdict beside it.

use super::clip::{check_clip, poster_time, Clip};
use super::{Run, Transcoder, PROBE_DEADLINE};
use crate::ffmpeg::{self, Cut, ProgressParser};
use crate::probe::{self, Input};
use crate::transfer::fetch;
use crate::workdir::{path_str, WorkDir};
use hopster_common::store::StoreError;
use hopster_common::worker::{JobTracker, StageError};
use shared_proto::{Accuracy, ErrorCode, JobStatus, Method, Profile, Timecode, TranscodeJob};

/// The longest stream copy that makes its poster in its own run (see `poster_in_copy`): at a
/// GOP of 2 s, ten keyframes decoded, about what a poster run of its own costs to start.
const COPY_POSTER_MAX: Timecode = Timecode::from_micros(20_000_000);
use std::time::Duration;

/// What a cut produced besides the output file.
pub(super) struct CutDone {
    pub(super) start_achieved: Option<Timecode>,
    /// Where in the clip the poster is (to be) taken.
    pub(super) poster_at: Timecode,
    /// ffmpeg wrote the poster already, as a second output.
    pub(super) poster_in_run: bool,
    /// How the clip was made, and how much of it was copied and encoded.
    pub(super) method: Method,
    pub(super) copied_secs: Option<f64>,
    pub(super) encoded_secs: Option<f64>,
}

impl Transcoder {
    /// Cuts the clip from the staged copy, or through the range proxy when the downloader
    /// found the source answers Range requests. Returns the start achieved (keyframe mode).
    pub(super) async fn cut(
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
                    dir,
                    output,
                    poster,
                )
                .await;
        };
        // The downloader checked this URL; the proxy fetches it again, so it checks it again.
        let proxy = self.proxy(url, crate::proxy::WINDOW).await?;
        let cut = self
            .transcode(
                tracker,
                job,
                &Input::proxied(proxy.url.clone()).capped(self.limits.max_pixels),
                dir,
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
        super::through_proxy(cut, proxy.upstream_error())
    }

    /// Loudness normalization's first pass: `loudnorm` measures the clip's sound. `None` for
    /// a silent clip, which has no loudness to bring anywhere (it is left as it is).
    async fn measure_loudness(
        &self,
        job: &TranscodeJob,
        input: &Input,
        probe: &probe::Probe,
        clip: &Clip,
        target_lufs: i32,
    ) -> Result<Option<ffmpeg::Loudness>, StageError> {
        if probe.audio().is_none() {
            return Err(StageError::abort(
                ErrorCode::NoAudio,
                "the source has no sound to normalize",
            ));
        }
        let args = ffmpeg::loudness_args(
            input,
            Some(&probe.format.format_name),
            (Some(clip.start), job.spec.stop.map(|_| clip.length)),
            job.spec.clips.as_deref().unwrap_or_default(),
            target_lufs,
        );
        let (_, log) = self
            .runner
            .run_with_log(
                &self.settings.ffmpeg,
                &args,
                self.deadline(clip.length),
                None,
            )
            .await
            .map_err(|e| Run::Loudness.failed(e))?;
        match ffmpeg::Loudness::parse(&log) {
            Some(ffmpeg::Measured::Level(m)) => {
                log::info!(
                "job {}: loudness {} LUFS (true peak {} dBTP, range {} LU); normalizing to {target_lufs}",
                job.job_id,
                m.input_i,
                m.input_tp,
                m.input_lra
                );
                Ok(Some(m))
            }
            Some(ffmpeg::Measured::Silent) => {
                log::info!("job {}: the clip is silent; not normalized", job.job_id);
                Ok(None)
            }
            None => Err(StageError::retry(
                ErrorCode::TranscodeFailed,
                "ffmpeg's loudnorm reported no measurement",
            )),
        }
    }

    /// Probes the input, checks the clip and runs ffmpeg, recording its progress. ffmpeg is
    /// killed when it passes its deadline or reports no progress for the stall timeout.
    async fn transcode(
        &self,
        tracker: &mut JobTracker,
        job: &TranscodeJob,
        input: &Input,
        dir: &WorkDir,
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
        // A smart cut, and a passthrough, decide from the probe: no speculation for them; nor
        // for loudness normalization, whose first pass needs the source's sound.
        let smart = spec.accuracy == Accuracy::Smart;
        let loudness_target = spec.loudness_target();
        // Passthrough of a clip: a frame-accurate mp4 clip whose frames a stream copy gives
        // exactly (its first frame a keyframe, the groups of pictures closed where it cuts),
        // found in the source's index; copied if the source's description (from that index,
        // or ffprobe's when the index cannot tell) finds it in the target profile.
        let indexed = match spec.span() {
            (None, None) => None,
            _ if !self.settings.passthrough
                || spec.accuracy != Accuracy::Frame
                || spec.profile != Profile::Mp4
                || spec.clips.is_some()
                || loudness_target.is_some() =>
            {
                None
            }
            (start, stop) => self.copy_span(input, start, stop).await,
        };
        let speculate =
            self.settings.threads == 0 && !smart && loudness_target.is_none() && indexed.is_none();
        let known = spec.stop.filter(|_| speculate).and_then(|stop| {
            let start = spec.start.unwrap_or(Timecode::ZERO);
            stop.checked_sub(start).map(|length| Clip { start, length })
        });
        // Only a plain mp4 can be a stream copy (the gateway refuses other combinations). A
        // copy starts at the keyframe at or before `start`: the source's probe finds that
        // keyframe too (one process, not two: starting ffprobe alone costs about 65 ms here).
        let keyframe_copy = spec.accuracy == Accuracy::Keyframe
            && spec.profile == Profile::Mp4
            && spec.max_height.is_none();
        let keyframe_at = spec.start.filter(|_| keyframe_copy);
        let (clip, probed) = match known {
            Some(clip) => (clip, None),
            None => {
                let probe = match &indexed {
                    Some((_, described)) => described.clone(),
                    None => self.probe_source(input, keyframe_at).await?,
                };
                let clip = check_clip(&probe, job, &self.limits)?;
                (clip, Some(probe))
            }
        };
        let format = probed.as_ref().map(|p| p.format.format_name.clone());
        let poster_at = poster_time(spec, clip.length)?;
        // Passthrough: the whole source, already in the target profile, is remuxed as it is.
        let passthrough = self.settings.passthrough
            && spec.span() == (None, None)
            && spec.profile == Profile::Mp4
            && probed
                .as_ref()
                .is_some_and(|p| in_target_profile(p, spec.max_height));
        // Several clips: with `smart`, each is smart-cut and the clips are joined as they are;
        // otherwise (or when one does not qualify) one encode joins them (`concat`), each
        // exact to the frame.
        let span = indexed.map(|(span, _)| span).filter(|_| {
            probed
                .as_ref()
                .is_some_and(|p| in_target_profile(p, spec.max_height))
        });
        let joined = spec.clips.as_deref().unwrap_or_default();
        if let (true, false, Some(probe)) = (smart && !joined.is_empty(), passthrough, &probed) {
            match self
                .smart_cut_clips(tracker, input, probe, joined, dir, output)
                .await?
            {
                Ok(done) => {
                    return Ok(CutDone {
                        start_achieved: None,
                        poster_at,
                        poster_in_run: false,
                        method: Method::Smart,
                        copied_secs: Some(done.copied_secs),
                        encoded_secs: Some(done.encoded_secs),
                    })
                }
                Err(why) => log::info!("job {id}: clips not smart-cut, every frame encoded: {why}"),
            }
        }
        if let (true, false, true, Some(probe)) = (smart, passthrough, joined.is_empty(), &probed) {
            let made = self
                .smart_cut(
                    tracker,
                    input,
                    probe,
                    (clip, spec.stop.is_some()),
                    dir,
                    output,
                )
                .await?;
            match made {
                Ok(done) => {
                    return Ok(CutDone {
                        start_achieved: None,
                        poster_at,
                        poster_in_run: false,
                        method: Method::Smart,
                        copied_secs: Some(done.copied_secs),
                        encoded_secs: Some(done.encoded_secs),
                    })
                }
                Err(why) => log::info!("job {id}: not smart-cut, every frame encoded: {why}"),
            }
        }
        log::info!(
            "job {id}: transcoding {} from {} to {}",
            clip.length,
            clip.start,
            spec.profile.as_str()
        );
        let copy = passthrough || keyframe_copy || span.is_some();
        // A short stream copy takes its poster beside the copy, from the source: the first
        // keyframe at or after the start (the clip's first frame when the start is a
        // keyframe), decoded with every other frame skipped; with no keyframe there, the
        // poster is taken from the clip after. A long copy (the poster run would decode a
        // keyframe every GOP until it finds one) and a `poster_at` the job asked for take it
        // from the clip after, as before.
        let poster_in_copy = keyframe_copy
            && !passthrough
            && spec.poster_at.is_none()
            && spec.profile.has_video()
            && clip.length <= COPY_POSTER_MAX;
        let poster_in_run = spec.profile.has_video() && (!copy || poster_in_copy);
        let poster_at = if poster_in_copy {
            Timecode::ZERO
        } else {
            poster_at
        };
        // The probe, unless it ran already; either way, the keyframe a copy starts at.
        let checked = async {
            let keyframe = |probe: &probe::Probe| {
                keyframe_at.map(|at| probe.keyframe_at_or_before(at).unwrap_or(at))
            };
            if let Some(probe) = &probed {
                return Ok::<_, StageError>(keyframe(probe));
            }
            let probe = self.probe_source(input, keyframe_at).await?;
            check_clip(&probe, job, &self.limits)?;
            Ok(keyframe(&probe))
        };
        let audio_filter = match (loudness_target, &probed) {
            (Some(target), Some(probe)) => {
                let measured = self
                    .measure_loudness(job, input, probe, &clip, target)
                    .await?;
                measured.map(|m| m.filter(target))
            }
            _ => None,
        };
        // A clip's passthrough starts at its first frame, a keyframe, shown at most a frame
        // after `start`: seeking to that time (rounded up) finds it, and no earlier one.
        let (start, length) = match span {
            Some(span) => {
                let first = Timecode::from_micros((span.start * 1e6).ceil() as u64);
                let rest = spec
                    .stop
                    .map(|stop| stop.checked_sub(first).unwrap_or(Timecode::ZERO));
                (first, rest)
            }
            None => (
                clip.start,
                // An animation is always bounded (see `cut_args`): to the source's end at most.
                (spec.stop.is_some() || spec.profile.is_animation()).then_some(clip.length),
            ),
        };
        let cut = Cut {
            input,
            copy,
            frames: span.map(|s| s.frames),
            format: format.as_deref(),
            output: path_str(output)?,
            start: Some(start),
            length,
            profile: spec.profile,
            max_height: spec.max_height,
            poster: (poster_in_run && !copy).then_some((path_str(poster)?, poster_at)),
            fps: spec.animation_fps(),
            audio_filter: audio_filter.as_deref(),
            pieces: joined,
            // Several clips are probed first (they have no `stop`); one clip maps its sound
            // as optional and needs no answer.
            source_audio: probed.as_ref().is_none_or(|p| p.audio().is_some()),
        };
        let began = std::time::Instant::now();
        tracker.status_mut().timeline.ffmpeg_started_ms = Some(hopster_common::now_ms());
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
            ran.map_err(|e| Run::Cut.failed(e))?;
            Ok::<(), StageError>(())
        };
        let poster_file = path_str(poster)?;
        let copy_poster = async {
            if !poster_in_copy {
                return;
            }
            let args = ffmpeg::keyframe_poster_args(
                input,
                Some(clip.start),
                job.spec.stop.map(|_| clip.length),
                poster_file,
            );
            // No poster is no failure: the clip's own first frame is taken after.
            if let Err(e) = self
                .runner
                .run(&self.settings.ffmpeg, &args, PROBE_DEADLINE, None)
                .await
            {
                log::warn!("job {id}: the poster beside the copy failed: {e}");
                let _ = std::fs::remove_file(poster);
            }
        };
        let work = async {
            let (encoded, ()) = tokio::join!(encode, copy_poster);
            encoded
        };
        tokio::pin!(checked, work);
        // The probe's verdict wins: when it refuses the source, ffmpeg is killed (dropped) at
        // once; when ffmpeg ends first, its result counts only if the probe then accepts.
        let (encoded, keyframe) = tokio::select! {
            verdict = &mut checked => {
                let keyframe = verdict?;
                ((&mut work).await, keyframe)
            }
            encoded = &mut work => (encoded, (&mut checked).await?),
        };
        encoded?;
        // In keyframe mode the start achieved is the keyframe at or before `start` (a copy
        // with no `start` starts at zero).
        let start_achieved =
            (keyframe_copy && !passthrough).then(|| keyframe.unwrap_or(Timecode::ZERO));
        let wall = began.elapsed().as_secs_f64();
        if wall > 0.0 {
            hopster_common::metrics::observe(
                "hopster_ffmpeg_speed",
                &[("profile", spec.profile.as_str())],
                clip.length.as_secs_f64() / wall,
            );
        }
        let length = clip.length.as_secs_f64();
        Ok(CutDone {
            start_achieved,
            poster_at,
            poster_in_run,
            method: if copy { Method::Copy } else { Method::Encoded },
            copied_secs: copy.then_some(length),
            encoded_secs: (!copy).then_some(length),
        })
    }
}

/// The source is what an mp4 job would make of it: H.264 in 8-bit 4:2:0 within `max_height`,
/// with AAC sound or none, one stream of each at most.
fn in_target_profile(probe: &crate::probe::Probe, max_height: Option<u32>) -> bool {
    let count = |kind: &str| {
        probe
            .streams
            .iter()
            .filter(|s| s.codec_type == kind)
            .count()
    };
    let video_ok = probe.video().is_some_and(|v| {
        v.codec_name.as_deref() == Some("h264")
            && v.pix_fmt.as_deref() == Some("yuv420p")
            && max_height.is_none_or(|max| v.height.is_some_and(|h| h <= max))
    });
    let audio_ok = probe
        .audio()
        .is_none_or(|a| a.codec_name.as_deref() == Some("aac"));
    video_ok && audio_ok && count("video") == 1 && count("audio") <= 1
}
