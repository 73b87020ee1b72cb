//! The request and response bodies the OpenAPI document names that are not (yet) shared-proto
//! types: documentation of what the handlers read and write. Kept apart from the document
//! itself so the handlers can name them without importing the document that names the
//! handlers.

use serde::Deserialize;
use shared_proto::{ErrorCode, JobState, Timecode};
use utoipa::ToSchema;

/// `POST /v1/jobs`: exactly one of `url` and `video_id` (a `null` field counts as absent).
/// Rules between fields are the handler's: `start` before `stop`, the clip at most
/// `sources.max_clip_secs` long, `poster_at` inside it, `max_height` and `poster_at` only
/// with video profiles, `accuracy: keyframe` only with `mp4` and no `max_height`.
#[allow(dead_code)] // documentation only: the handler reads the body field by field
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"video_id": "sample", "start": "00:00:10", "stop": "00:00:13"}))]
pub struct CreateJob {
    /// An absolute http(s) URL without credentials, on a public address. The pattern is a
    /// safe subset, for generated examples; any URL the WHATWG parser takes is accepted.
    #[schema(
        max_length = 2048,
        pattern = r"^https?://[a-z][a-z0-9]{0,15}(\.[a-z][a-z0-9]{0,15}){0,3}(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]{0,16}){0,4}$"
    )]
    url: Option<String>,
    /// A catalogue id, mapped to a URL by `sources.video_url_template`.
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,128}$")]
    video_id: Option<String>,
    /// Clip start; the beginning when absent.
    start: Option<Timecode>,
    /// Clip end; the end of the source when absent. Must be after `start`.
    stop: Option<Timecode>,
    /// `frame` (default: re-encode, frame-accurate) or `keyframe` (stream copy from the
    /// keyframe at or before `start`; the result reports `start_achieved`).
    accuracy: Option<shared_proto::Accuracy>,
    /// `mp4` (default, H.264/AAC), `webm` (VP9/Opus), `audio` (AAC in m4a), `mp3`, or `hls`
    /// (H.264/AAC playlist and segments).
    profile: Option<shared_proto::Profile>,
    /// Scale the video down to at most this height, keeping the aspect ratio.
    #[schema(minimum = 16, maximum = 4320)]
    max_height: Option<u32>,
    /// Where in the clip the poster is taken; default one second in.
    poster_at: Option<Timecode>,
    /// POSTed the signed status when the job completes, fails or is cancelled (an absolute
    /// http(s) URL; the pattern is a safe subset, as for `url`).
    #[schema(
        max_length = 2048,
        pattern = r"^https?://[a-z][a-z0-9]{0,15}(\.[a-z][a-z0-9]{0,15}){0,3}(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]{0,16}){0,4}$"
    )]
    callback_url: Option<String>,
}

/// The v1 error format.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[allow(dead_code)]
#[derive(ToSchema)]
pub struct ErrorDetail {
    code: ErrorCode,
    message: String,
}

/// `GET /v1/jobs`.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct JobList {
    jobs: Vec<shared_proto::JobView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// `POST /schedule` (the seed's API).
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(example = json!({"video_id": "sample", "start": "00:00:03", "stop": "00:00:06"}))]
pub struct Schedule {
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,128}$")]
    video_id: String,
    start: Option<Timecode>,
    stop: Option<Timecode>,
}

/// `GET /healthz`.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: String,
}

/// `GET /readyz`: what answers.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct Readiness {
    broker: bool,
    store: bool,
}

/// A result's bytes (`GET /v1/jobs/{id}/video` and the like).
pub struct Bytes;

impl utoipa::PartialSchema for Bytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .into()
    }
}

impl ToSchema for Bytes {}

/// The seed's answer to `POST /schedule`.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct VideoFile {
    /// `{video_id}_from_{HHMMSSffffff|start}_till_{HHMMSSffffff|end}.mp4`
    video_file: String,
}

/// The seed's answer to `GET /progress`.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct SeedProgress {
    is_finished: bool,
    state: JobState,
}

/// The seed's error format. Codes: 100 malformed request or missing parameter, 200 no such
/// video (or not ready), 300 bad time or range, 400 the job failed, 401 API key missing or
/// wrong, 429 too many new jobs from this client, 500 service unavailable.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct SeedErrorBody {
    error: SeedErrorDetail,
}

#[allow(dead_code)]
#[derive(ToSchema)]
pub struct SeedErrorDetail {
    message: String,
    code: u16,
}

/// A plain message.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct Message {
    message: String,
}
