//! Stable error codes. Clients match on these strings; never rename one.

use serde::{Deserialize, Serialize};

/// Every failure a client can see, in the v1 API and in a failed job's status.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not a JSON object.
    InvalidJson,
    /// A field has the wrong type, is unknown, or the body is malformed in another way.
    InvalidRequest,
    /// Neither `url` nor `video_id` was given, or both were.
    MissingSource,
    /// `url` is not an absolute http(s) URL.
    InvalidUrl,
    /// `video_id` does not match `[A-Za-z0-9_-]{1,128}`.
    InvalidVideoId,
    /// `start` or `stop` does not parse as `HH:MM:SS[.ffffff]`.
    InvalidTimecode,
    /// `start` is not before `stop`.
    InvalidClipRange,
    /// The request body is larger than `gateway.max_body_bytes`.
    BodyTooLarge,
    /// No such route.
    UnknownRoute,
    /// The path exists but not with this method; `Allow` lists the methods it takes.
    MethodNotAllowed,
    /// `Authorization: Bearer KEY` is missing or wrong (only when API keys are configured).
    Unauthorized,
    /// The source's address is loopback, private, link-local or otherwise internal.
    SourceForbidden,
    /// The source is longer than `sources.max_duration_secs`.
    SourceTooLong,
    /// The clip is longer than `sources.max_clip_secs` (an animation: `max_animation_secs`).
    ClipTooLong,
    /// No job has that id (or the id is malformed).
    UnknownJob,
    /// No source inspection has that id (or the id is malformed).
    UnknownSource,
    /// The job has not completed yet.
    NotReady,
    /// The job failed; its status carries the reason.
    JobFailed,
    /// The job already completed or failed, so it cannot be cancelled.
    JobFinished,
    /// The source answered 404 or 410.
    SourceNotFound,
    /// The source refused the request (another 4xx) or could not be reached after retries.
    SourceUnreachable,
    /// The source is larger than `sources.max_bytes`.
    SourceTooLarge,
    /// The source is not a video ffprobe can read, or has no video stream.
    NotAVideo,
    /// The clip starts or ends past the end of the source.
    ClipOutOfRange,
    /// The profile is audio-only but the source has no audio stream.
    NoAudio,
    /// The job's profile has no video, so it has no poster.
    NoPoster,
    /// ffmpeg failed or timed out on this input.
    TranscodeFailed,
    /// The source's frames are larger or more frequent than `[sources] max_width`,
    /// `max_height`, `max_pixels` or `max_fps` allow (read from the probe, before any decode).
    SourceDimensions,
    /// The source has more streams than `[sources] max_streams`.
    SourceStreams,
    /// ffmpeg or ffprobe went over its memory cap (`[transcoder] max_memory_mib`) or its
    /// CPU-time cap on this source.
    ResourceLimit,
    /// The source is a live HLS playlist (no `EXT-X-ENDLIST`): only finished streams are cut.
    LiveSource,
    /// Too many submissions or event streams from this client; retry after `Retry-After`.
    RateLimited,
    /// The store failed repeatedly (transient errors exhausted their retries).
    StoreUnavailable,
    /// The broker is unreachable; the submission was not accepted.
    BrokerUnavailable,
    /// A bug: the message could not be decoded or a task panicked.
    Internal,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 35] = [
        ErrorCode::InvalidJson,
        ErrorCode::InvalidRequest,
        ErrorCode::MissingSource,
        ErrorCode::InvalidUrl,
        ErrorCode::InvalidVideoId,
        ErrorCode::InvalidTimecode,
        ErrorCode::InvalidClipRange,
        ErrorCode::BodyTooLarge,
        ErrorCode::UnknownRoute,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Unauthorized,
        ErrorCode::SourceForbidden,
        ErrorCode::SourceTooLong,
        ErrorCode::ClipTooLong,
        ErrorCode::UnknownJob,
        ErrorCode::UnknownSource,
        ErrorCode::NotReady,
        ErrorCode::JobFailed,
        ErrorCode::JobFinished,
        ErrorCode::SourceNotFound,
        ErrorCode::SourceUnreachable,
        ErrorCode::SourceTooLarge,
        ErrorCode::NotAVideo,
        ErrorCode::ClipOutOfRange,
        ErrorCode::NoAudio,
        ErrorCode::NoPoster,
        ErrorCode::TranscodeFailed,
        ErrorCode::SourceDimensions,
        ErrorCode::SourceStreams,
        ErrorCode::ResourceLimit,
        ErrorCode::LiveSource,
        ErrorCode::RateLimited,
        ErrorCode::StoreUnavailable,
        ErrorCode::BrokerUnavailable,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::MissingSource => "missing_source",
            ErrorCode::InvalidUrl => "invalid_url",
            ErrorCode::InvalidVideoId => "invalid_video_id",
            ErrorCode::InvalidTimecode => "invalid_timecode",
            ErrorCode::InvalidClipRange => "invalid_clip_range",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::UnknownRoute => "unknown_route",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::SourceForbidden => "source_forbidden",
            ErrorCode::SourceTooLong => "source_too_long",
            ErrorCode::ClipTooLong => "clip_too_long",
            ErrorCode::UnknownJob => "unknown_job",
            ErrorCode::UnknownSource => "unknown_source",
            ErrorCode::NotReady => "not_ready",
            ErrorCode::JobFailed => "job_failed",
            ErrorCode::JobFinished => "job_finished",
            ErrorCode::SourceNotFound => "source_not_found",
            ErrorCode::SourceUnreachable => "source_unreachable",
            ErrorCode::SourceTooLarge => "source_too_large",
            ErrorCode::NotAVideo => "not_a_video",
            ErrorCode::ClipOutOfRange => "clip_out_of_range",
            ErrorCode::NoAudio => "no_audio",
            ErrorCode::NoPoster => "no_poster",
            ErrorCode::TranscodeFailed => "transcode_failed",
            ErrorCode::SourceDimensions => "source_dimensions",
            ErrorCode::SourceStreams => "source_streams",
            ErrorCode::ResourceLimit => "resource_limit",
            ErrorCode::LiveSource => "live_source",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::BrokerUnavailable => "broker_unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_and_as_str_agree() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
