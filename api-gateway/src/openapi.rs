//! The OpenAPI 3 document at `GET /openapi.json`, generated from the handlers' annotations and
//! the contract's types, so it cannot drift from the code unnoticed (a test checks every route
//! and every error code appear in it).

use actix_web::{web, HttpResponse};
use serde::Serialize;
use shared_proto::{ErrorCode, JobState};
use utoipa::{OpenApi, ToSchema};

/// `POST /v1/jobs`: exactly one of `url` and `video_id`.
#[allow(dead_code)] // documentation only: the handler reads the body field by field
#[derive(ToSchema)]
pub struct CreateJob {
    /// An absolute http(s) URL without credentials, on a public address.
    url: Option<String>,
    /// A catalogue id (`[A-Za-z0-9_-]{1,128}`), mapped to a URL by `sources.video_url_template`.
    video_id: Option<String>,
    /// Clip start (`HH:MM:SS[.ffffff]`); the beginning when absent.
    start: Option<String>,
    /// Clip end; the end of the source when absent. Must be after `start`.
    stop: Option<String>,
    /// `frame` (default: re-encode, frame-accurate) or `keyframe` (stream copy from the
    /// keyframe at or before `start`; the result reports `start_achieved`).
    accuracy: Option<shared_proto::Accuracy>,
    /// `mp4` (default, H.264/AAC), `webm` (VP9/Opus), `audio` (AAC in m4a), `mp3`, or `hls`
    /// (H.264/AAC playlist and segments).
    profile: Option<shared_proto::Profile>,
    /// Scale the video down to at most this height (16–4320), keeping the aspect ratio.
    max_height: Option<u32>,
    /// Where in the clip the poster is taken (`HH:MM:SS[.ffffff]`); default one second in.
    poster_at: Option<String>,
    /// POSTed the signed status when the job completes, fails or is cancelled.
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
    jobs: Vec<crate::routes::JobView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// `POST /schedule` (the seed's API).
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct Schedule {
    video_id: String,
    start: Option<String>,
    stop: Option<String>,
}

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

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hopster",
        description = "Cut, transcode and store video clips. With API keys configured \
            (HOPSTER__AUTH__API_KEYS), every route but `GET /`, `/healthz` and `/readyz` needs \
            `Authorization: Bearer KEY`; the video routes also accept `?key=KEY`."
    ),
    paths(
        crate::routes::v1::create,
        crate::routes::v1::list,
        crate::routes::v1::show,
        crate::routes::v1::cancel,
        crate::routes::v1::video,
        crate::routes::v1::poster,
        crate::routes::v1::segment,
        crate::events::stream,
        crate::routes::seed::welcome,
        crate::routes::seed::schedule,
        crate::routes::seed::progress,
        crate::routes::seed::download,
        crate::routes::health::healthz,
        crate::routes::health::readyz,
        crate::routes::health::metrics,
        openapi_json,
    ),
    components(schemas(ErrorCode, ErrorBody, SeedErrorBody, CreateJob, Schedule)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            "api_key",
            Vec::<String>::new(),
        )]);
    }
}

/// The OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "This document", content_type = "application/json"),
              (status = 401, description = "`unauthorized`", body = ErrorBody)))]
pub async fn openapi_json() -> HttpResponse {
    #[derive(Serialize)]
    struct Failed<'a> {
        error: &'a str,
    }
    match ApiDoc::openapi().to_pretty_json() {
        Ok(json) => HttpResponse::Ok()
            .content_type("application/json")
            .body(json),
        Err(e) => HttpResponse::InternalServerError().json(Failed {
            error: &e.to_string(),
        }),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi_json));
}
