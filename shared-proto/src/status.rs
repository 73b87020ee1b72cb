//! The status model: one JSON document per job, shared by every service and gateway replica.
//! The v1 status and the seed's `/progress` are two views of it.

use crate::{ErrorCode, JobId, JobSpec, Profile, Timecode};
use serde::{Deserialize, Serialize};

/// Where a job is. The order of the variants is the order of the pipeline.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Downloading,
    Transcoding,
    Uploading,
    Completed,
    Failed,
    Cancelled,
}

impl JobState {
    /// Every state, in the order a job moves through them.
    pub const ALL: [JobState; 7] = [
        JobState::Queued,
        JobState::Downloading,
        JobState::Transcoding,
        JobState::Uploading,
        JobState::Completed,
        JobState::Failed,
        JobState::Cancelled,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Cancelled
        )
    }

    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Downloading => "downloading",
            JobState::Transcoding => "transcoding",
            JobState::Uploading => "uploading",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

/// Bytes of a transfer (download or upload).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TransferProgress {
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
    /// The source was already staged by an earlier job of the same URL.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
    /// Only the byte ranges the clip needs were read from the source (no full download).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ranged: bool,
    /// HLS sources: segments fetched so far…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<u32>,
    /// …of the segments the clip overlaps (the only ones fetched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_segments: Option<u32>,
}

/// ffmpeg's progress through the clip.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TranscodeProgress {
    pub percent: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_time: Option<Timecode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
}

/// When the job reached each step of its way, in milliseconds since the Unix epoch: where its
/// time went. It starts at `created_at_ms`; a finished job's `updated_at_ms` is its end. A step
/// tried again records its latest start.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// A downloader took the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_started_ms: Option<u64>,
    /// A transcoder took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcode_started_ms: Option<u64>,
    /// ffmpeg started cutting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ffmpeg_started_ms: Option<u64>,
    /// The result began uploading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_started_ms: Option<u64>,
}

impl Timeline {
    pub fn is_empty(&self) -> bool {
        *self == Timeline::default()
    }

    /// Records that the job entered `state` at `now_ms` (the states that start a step).
    pub fn entered(&mut self, state: JobState, now_ms: u64) {
        match state {
            JobState::Downloading => self.download_started_ms = Some(now_ms),
            JobState::Transcoding => self.transcode_started_ms = Some(now_ms),
            JobState::Uploading => self.upload_started_ms = Some(now_ms),
            _ => {}
        }
    }
}

/// Per-stage progress.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub download: TransferProgress,
    pub transcode: TranscodeProgress,
    pub upload: TransferProgress,
}

/// A finished job's output.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// The result object (for HLS: the playlist; its segments are beside it).
    pub key: String,
    /// Bytes (for HLS: the playlist and all segments).
    pub size: u64,
    pub duration_secs: f64,
    pub mime: String,
    /// The output profile.
    #[serde(default, skip_serializing_if = "Profile::is_default")]
    pub profile: Profile,
    /// Empty for the audio profiles.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub video_codec: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_codec: Option<String>,
    /// 0 for the audio profiles.
    #[serde(default)]
    pub width: u32,
    #[serde(default)]
    pub height: u32,
    /// SHA-256 of the result object (for HLS: of the playlist).
    pub sha256: String,
    /// The poster JPEG's key (video profiles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poster_key: Option<String>,
    /// HLS: the segment file names, in playlist order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<String>,
    /// With `keyframe` accuracy: where the clip actually starts in the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_achieved: Option<Timecode>,
    /// How the result was made: copied, smart-cut, or encoded. Absent in results written
    /// before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// Seconds of the result's video that are the source's own packets, copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied_secs: Option<f64>,
    /// Seconds of the result's video that were encoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoded_secs: Option<f64>,
    /// HLS sources: how many of the playlist's segments were fetched (those the clip
    /// overlaps; the rest were never downloaded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_segments: Option<u32>,
}

/// How a result was made.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Every packet copied from the source (keyframe accuracy, passthrough).
    Copy,
    /// The edges re-encoded, the whole groups of pictures between copied.
    Smart,
    /// Every frame encoded.
    Encoded,
}

/// One delivery attempt of the job's callback.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyAttempt {
    /// 1-based.
    pub attempt: u32,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The receiver's HTTP status, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Why the attempt failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A 2xx answer: no more attempts.
    pub delivered: bool,
    /// Set on the last failed attempt when retries ran out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gave_up: bool,
}

/// Why a job failed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFailure {
    pub code: ErrorCode,
    pub message: String,
}

/// The status document (`jobs/{id}.json`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    pub id: JobId,
    pub state: JobState,
    pub spec: JobSpec,
    /// Milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    /// The current try of the current stage (1-based).
    pub attempt: u32,
    /// Tries, over all stages, that were retries of a transient failure.
    #[serde(default)]
    pub retries: u32,
    pub progress: Progress,
    #[serde(default, skip_serializing_if = "Timeline::is_empty")]
    pub timeline: Timeline,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<JobResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobFailure>,
    /// The worker that last worked on the job (`host:pid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Deliveries of `spec.callback_url`, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<NotifyAttempt>,
}

impl JobStatus {
    /// A new job, queued.
    pub fn queued(spec: JobSpec, now_ms: u64) -> Self {
        JobStatus {
            id: spec.job_id(),
            state: JobState::Queued,
            spec,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            attempt: 1,
            retries: 0,
            progress: Progress::default(),
            timeline: Timeline::default(),
            result: None,
            error: None,
            worker: None,
            notifications: Vec::new(),
        }
    }

    /// Moves the job forward. Progress never goes backwards: a move to an earlier state, or
    /// out of a terminal one, is refused and returns `false`.
    pub fn advance(&mut self, to: JobState) -> bool {
        if self.state.is_terminal() || to < self.state {
            return false;
        }
        self.state = to;
        true
    }

    /// Cancels the job unless it already completed or failed; cancelling twice is fine.
    pub fn cancel(&mut self) -> bool {
        match self.state {
            JobState::Completed | JobState::Failed => false,
            _ => {
                self.state = JobState::Cancelled;
                true
            }
        }
    }

    /// Ends the job as failed, unless it already ended.
    pub fn fail(&mut self, code: ErrorCode, message: impl Into<String>) -> bool {
        if self.state.is_terminal() {
            return false;
        }
        self.state = JobState::Failed;
        self.error = Some(JobFailure {
            code,
            message: message.into(),
        });
        true
    }

    /// Ends the job as completed with its result, unless it already ended.
    pub fn complete(&mut self, result: JobResult) -> bool {
        if !self.advance(JobState::Completed) {
            return false;
        }
        self.progress.transcode.percent = 100.0;
        self.progress.upload.bytes = result.size;
        self.progress.upload.total_bytes = Some(result.size);
        self.progress.upload.percent = Some(100.0);
        self.result = Some(result);
        true
    }

    /// Records transferred bytes without ever lowering them.
    pub fn record_transfer(progress: &mut TransferProgress, bytes: u64, total: Option<u64>) {
        progress.bytes = progress.bytes.max(bytes);
        if total.is_some() {
            progress.total_bytes = total;
        }
        progress.percent = progress
            .total_bytes
            .filter(|t| *t > 0)
            .map(|t| (progress.bytes as f64 * 100.0 / t as f64).min(100.0));
    }

    /// Records ffmpeg's position without ever lowering it.
    pub fn record_transcode(&mut self, out_time: Timecode, clip: Timecode, speed: Option<f64>) {
        let p = &mut self.progress.transcode;
        if p.out_time.is_some_and(|t| t > out_time) {
            return;
        }
        p.out_time = Some(out_time);
        p.speed = speed.or(p.speed);
        if clip.as_micros() > 0 {
            let percent = out_time.as_micros() as f64 * 100.0 / clip.as_micros() as f64;
            p.percent = p.percent.max(percent.min(99.9));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_records_the_latest_start_of_each_step() {
        let mut t = Timeline::default();
        assert!(t.is_empty());
        t.entered(JobState::Downloading, 10);
        t.entered(JobState::Transcoding, 20);
        t.entered(JobState::Transcoding, 25);
        t.entered(JobState::Uploading, 30);
        t.entered(JobState::Completed, 40);
        assert_eq!(
            t,
            Timeline {
                download_started_ms: Some(10),
                transcode_started_ms: Some(25),
                ffmpeg_started_ms: None,
                upload_started_ms: Some(30),
            }
        );
        let json = serde_json::to_value(t).unwrap();
        assert_eq!(json["transcode_started_ms"], 25);
        assert!(json.get("ffmpeg_started_ms").is_none());
    }

    fn status() -> JobStatus {
        JobStatus::queued(JobSpec::new("http://h/v", None, None, None).unwrap(), 1)
    }

    #[test]
    fn state_names_match_their_json() {
        for state in [JobState::Queued, JobState::Uploading, JobState::Cancelled] {
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{}\"", state.as_str())
            );
        }
    }

    #[test]
    fn states_only_move_forward() {
        let mut s = status();
        assert!(s.advance(JobState::Downloading));
        assert!(s.advance(JobState::Transcoding));
        assert!(!s.advance(JobState::Downloading));
        assert_eq!(s.state, JobState::Transcoding);
        assert!(s.advance(JobState::Transcoding));
    }

    #[test]
    fn a_terminal_state_is_final() {
        let mut s = status();
        assert!(s.fail(ErrorCode::SourceNotFound, "404"));
        assert!(!s.advance(JobState::Transcoding));
        assert!(!s.fail(ErrorCode::Internal, "again"));
        assert_eq!(
            s.error.as_ref().map(|e| e.code),
            Some(ErrorCode::SourceNotFound)
        );
    }

    #[test]
    fn progress_never_goes_backwards() {
        let mut s = status();
        JobStatus::record_transfer(&mut s.progress.download, 50, Some(100));
        JobStatus::record_transfer(&mut s.progress.download, 10, None);
        assert_eq!(s.progress.download.bytes, 50);
        assert_eq!(s.progress.download.percent, Some(50.0));
        let clip = Timecode::from_micros(4_000_000);
        s.record_transcode(Timecode::from_micros(2_000_000), clip, Some(1.5));
        s.record_transcode(Timecode::from_micros(1_000_000), clip, None);
        assert_eq!(s.progress.transcode.percent, 50.0);
        assert_eq!(s.progress.transcode.speed, Some(1.5));
    }

    #[test]
    fn the_document_round_trips_as_json() {
        let mut s = status();
        s.fail(ErrorCode::ClipOutOfRange, "start past end");
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"state\":\"failed\"") && json.contains("clip_out_of_range"));
        assert_eq!(serde_json::from_str::<JobStatus>(&json).unwrap(), s);
    }
}
