//! The cut: ffmpeg run on the staged copy or through the range proxy, its progress recorded,
//! the probe's verdict beside it.

use super::clip::{check_clip, poster_time, Clip};
use super::{Run, Transcoder, PROBE_DEADLINE};
use crate::ffmpeg::{self, Cut, ProgressParser};
use crate::probe::{self, Input};
use crate::proxy::{RangeProxy, Upstream};
use crate::transfer::fetch;
use crate::workdir::{path_str, WorkDir};
use hopster_common::store::StoreError;
use hopster_common::worker::{JobTracker, StageError};
use shared_proto::{Accuracy, ErrorCode, JobStatus, Profile, Timecode, TranscodeJob};
use std::time::Duration;

/// What a cut produced besides the output file.
pub(super) struct CutDone {
    pub(super) start_achieved: Option<Timecode>,
    /// Where in the clip the poster is (to be) taken.
    pub(super) poster_at: Timecode,
    /// ffmpeg wrote the poster already, as a second output.
    pub(super) poster_in_run: bool,
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
            (Err(_), Some(Upstream::Forbidden(why))) => {
                Err(StageError::abort(ErrorCode::SourceForbidden, why))
            }
            (Err(_), Some(Upstream::TooLarge(why))) => {
                Err(StageError::abort(ErrorCode::SourceTooLarge, why))
            }
            (Err(_), Some(Upstream::Failed(why))) => {
                Err(StageError::retry(ErrorCode::SourceUnreachable, why))
            }
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
                        .map_err(|e| Run::Keyframes.failed(e))?;
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
            ran.map_err(|e| Run::Cut.failed(e))?;
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
