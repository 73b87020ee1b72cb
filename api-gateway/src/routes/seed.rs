//! The seed's API, kept for old clients: the same paths, status codes, bodies and numeric
//! error codes, without the seed's defects (unknown names are errors, names are parsed and
//! looked up, never joined into a path, and failures are reported).

use super::body;
use crate::error::ApiError;
use crate::jobs;
use crate::range;
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use shared_proto::api::{BodyError, Schedule, SeedErrorBody, SeedProgress, VideoFile, Welcome};
use shared_proto::naming::{parse_seed_name, seed_name};
use shared_proto::spec::url_for_video_id;
use shared_proto::{ErrorCode, JobSpec, JobState, JobStatus};

/// The seed's numeric codes, plus 400 (job failed) and 500 (service unavailable), which the
/// seed never answered because it never noticed either.
const BAD_INPUT: u16 = 100;
const NO_VIDEO: u16 = 200;
const BAD_TIME: u16 = 300;
const JOB_FAILED: u16 = 400;
const UNAVAILABLE: u16 = 500;
/// Too many new jobs from this client (the HTTP status, as 401 is).
const RATE_LIMITED: u16 = 429;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(welcome))
        .route("/schedule", web::post().to(schedule))
        .route("/progress", web::get().to(progress))
        .route("/download", web::get().to(download));
}

/// `{"error": {"message": "...", "code": N}}` with HTTP 400 (503 when we are unavailable).
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub(crate) struct SeedError {
    code: u16,
    message: String,
    retry_after_secs: Option<u64>,
}

fn seed_error(code: u16, message: impl Into<String>) -> SeedError {
    SeedError {
        code,
        message: message.into(),
        retry_after_secs: None,
    }
}

impl ResponseError for SeedError {
    fn status_code(&self) -> StatusCode {
        match self.code {
            UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
            RATE_LIMITED => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(secs) = self.retry_after_secs {
            response.insert_header((actix_web::http::header::RETRY_AFTER, secs.to_string()));
        }
        response.json(SeedErrorBody::new(self.code, self.message.as_str()))
    }
}

impl From<ApiError> for SeedError {
    fn from(e: ApiError) -> Self {
        if e.code == ErrorCode::RateLimited {
            return SeedError {
                retry_after_secs: e.retry_after_secs,
                ..seed_error(RATE_LIMITED, e.message)
            };
        }
        let code = match e.code {
            ErrorCode::InvalidTimecode | ErrorCode::InvalidClipRange | ErrorCode::ClipTooLong => {
                BAD_TIME
            }
            ErrorCode::InvalidVideoId
            | ErrorCode::InvalidUrl
            | ErrorCode::UnknownJob
            | ErrorCode::SourceForbidden => NO_VIDEO,
            ErrorCode::StoreUnavailable | ErrorCode::BrokerUnavailable | ErrorCode::Internal => {
                UNAVAILABLE
            }
            _ => BAD_INPUT,
        };
        seed_error(code, e.message)
    }
}

impl From<BodyError> for SeedError {
    fn from(e: BodyError) -> Self {
        SeedError::from(ApiError::from(e))
    }
}

/// The seed's welcome.
#[utoipa::path(get, path = "/", tag = "seed",
    responses((status = 200, description = "Welcome", body = Welcome)))]
pub(crate) async fn welcome() -> HttpResponse {
    HttpResponse::Ok().json(Welcome {
        message: "Welcome to Hopster's Video Downloading Service!".to_owned(),
    })
}

/// `POST /schedule {"video_id", "start"?, "stop"?}` → `{"video_file": NAME}`.
#[utoipa::path(post, path = "/schedule", tag = "seed", request_body = Schedule,
    responses(
        (status = 200, description = "Scheduled (or already scheduled)", body = VideoFile),
        (status = 400, description = "Codes 100, 200, 300", body = SeedErrorBody),
        (status = 401, description = "Code 401", body = SeedErrorBody),
        (status = 429, description = "Code 429: more than `limits.submissions_per_minute` new jobs from this client; `Retry-After` says when to try again", body = SeedErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a submission is accepted again"))),
        (status = 503, description = "Code 500", body = SeedErrorBody),
    ))]
pub(crate) async fn schedule(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, SeedError> {
    let body: Schedule = body::read(payload, state.max_body_bytes).await?;
    let spec = body.to_spec(&state.video_url_template)?;
    jobs::submit(&state, spec, &crate::limits::Client::of(&req)).await?;
    Ok(HttpResponse::Ok().json(VideoFile {
        video_file: seed_name(&body.video_id, body.start, body.stop),
    }))
}

/// Finds the job a seed name stands for. Malformed and unknown names get the same answer, so
/// the endpoint reveals nothing about what exists.
async fn lookup(
    state: &AppState,
    name: Option<String>,
    param: &str,
) -> Result<(String, JobStatus), SeedError> {
    let name = name.ok_or_else(|| seed_error(BAD_INPUT, format!("`{param}` is missing")))?;
    let no_such = || {
        seed_error(
            NO_VIDEO,
            format!(
                "no such video: {}",
                name.chars().take(200).collect::<String>()
            ),
        )
    };
    let parsed = parse_seed_name(&name).ok_or_else(no_such)?;
    let url =
        url_for_video_id(&state.video_url_template, &parsed.video_id).map_err(|_| no_such())?;
    let spec = JobSpec::new(&url, None, parsed.start, parsed.stop).map_err(|_| no_such())?;
    let status = jobs::find(state, spec.job_id().as_str())
        .await
        .map_err(|e| match e.code {
            ErrorCode::UnknownJob => no_such(),
            _ => SeedError::from(e),
        })?;
    Ok((name, status))
}

fn failure(status: &JobStatus) -> SeedError {
    let detail = status.error.as_ref().map_or_else(
        || "unknown error".to_owned(),
        |e| format!("{}: {}", e.code, e.message),
    );
    seed_error(JOB_FAILED, format!("the job failed: {detail}"))
}

/// `GET /progress?reference=NAME` → `{"is_finished": bool}`.
#[utoipa::path(get, path = "/progress", tag = "seed",
    params(("reference" = String, Query, pattern = r"^[A-Za-z0-9_-]{1,128}_from_([0-9]{12}|start)_till_([0-9]{12}|end)\.mp4$", description = "The seed name from /schedule")),
    responses(
        (status = 200, description = "Whether the video is ready", body = SeedProgress),
        (status = 400, description = "Codes 100, 200, 400", body = SeedErrorBody),
        (status = 401, description = "Code 401", body = SeedErrorBody),
        (status = 503, description = "Code 500", body = SeedErrorBody),
    ))]
pub(crate) async fn progress(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, SeedError> {
    let reference = body::query_param(req.query_string(), "reference")?;
    let (_, status) = lookup(&state, reference, "reference").await?;
    if status.state == JobState::Failed {
        return Err(failure(&status));
    }
    Ok(HttpResponse::Ok().json(SeedProgress {
        is_finished: status.state == JobState::Completed,
        state: status.state,
    }))
}

/// `GET /download?video_file=NAME` → the mp4.
#[utoipa::path(get, path = "/download", tag = "seed",
    params(("video_file" = String, Query, pattern = r"^[A-Za-z0-9_-]{1,128}_from_([0-9]{12}|start)_till_([0-9]{12}|end)\.mp4$", description = "The seed name from /schedule")),
    responses(
        (status = 200, description = "The mp4", body = crate::schemas::Bytes, content_type = "video/mp4"),
        (status = 206, description = "The requested range", body = crate::schemas::Bytes, content_type = "video/mp4"),
        (status = 416, description = "The range starts past the end (`Content-Range: bytes */SIZE`)"),
        (status = 400, description = "Codes 100, 200, 400", body = SeedErrorBody),
        (status = 401, description = "Code 401", body = SeedErrorBody),
        (status = 503, description = "Code 500", body = SeedErrorBody),
    ))]
pub(crate) async fn download(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, SeedError> {
    let video_file = body::query_param(req.query_string(), "video_file")?;
    let (name, status) = lookup(&state, video_file, "video_file").await?;
    match (&status.state, &status.result) {
        (JobState::Completed, Some(result)) => {
            Ok(range::serve(&state, &req, &result.key, result.size, &result.mime, &name).await?)
        }
        (JobState::Failed, _) => Err(failure(&status)),
        _ => Err(seed_error(NO_VIDEO, format!("{name} is not ready yet"))),
    }
}
