//! The outputs: the clip (or every HLS segment, then the playlist), its poster, and the
//! result's description.

use super::{Run, Transcoder, PROBE_DEADLINE};
use crate::ffmpeg;
use crate::probe::{Input, Probe};
use crate::transfer::{put_file, sha256_file, upload};
use crate::workdir::path_str;
use hopster_common::worker::{JobTracker, StageError};
use shared_proto::{keys, ErrorCode, JobResult, JobStatus, Profile, Timecode, TranscodeJob};

/// What was stored of the result.
pub(super) struct Uploaded {
    pub(super) size: u64,
    pub(super) sha256: String,
    pub(super) segments: Vec<String>,
}

/// The sum of an HLS playlist's `#EXTINF` durations.
pub(super) async fn hls_duration(playlist: &std::path::Path) -> Result<f64, StageError> {
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
    pub(super) async fn store_result(
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
    pub(super) async fn store_poster(
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
    pub(super) async fn poster_after(
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
            .map_err(|e| Run::Poster.failed(e))?;
        self.store_poster(&job.job_id, file).await
    }
}

/// The result's description from a probe of the stored clip (for HLS: of a segment).
pub(super) fn describe(
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
        method: None,
        copied_secs: None,
        encoded_secs: None,
        source_segments: None,
    })
}
