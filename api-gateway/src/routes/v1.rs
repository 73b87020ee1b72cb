//! The v1 jobs API.

use super::body::{self, InputError};
use crate::error::ApiError;
use crate::jobs::{self, Submitted};
use crate::range;
use crate::startup::AppState;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use shared_proto::spec::{parse_bound, url_for_video_id};
use shared_proto::{Accuracy, ErrorCode, JobSpec, JobState, JobStatus};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/jobs", web::post().to(create))
        .route("/v1/jobs", web::get().to(list))
        .route("/v1/jobs/{id}", web::get().to(show))
        .route("/v1/jobs/{id}", web::delete().to(cancel))
        .route("/v1/jobs/{id}/video", web::get().to(video));
}

/// A job as the v1 API shows it: the status document plus links.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobView {
    #[serde(flatten)]
    status: JobStatus,
    links: Links,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Links {
    #[serde(rename = "self")]
    this: String,
    video: String,
}

impl From<JobStatus> for JobView {
    fn from(status: JobStatus) -> Self {
        let this = format!("/v1/jobs/{}", status.id);
        JobView {
            links: Links {
                video: format!("{this}/video"),
                this,
            },
            status,
        }
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        let code = match e {
            InputError::TooLarge(_) => ErrorCode::BodyTooLarge,
            InputError::NotJson(_) | InputError::NotAnObject => ErrorCode::InvalidJson,
            InputError::WrongType { .. }
            | InputError::UnknownField(_)
            | InputError::BadQuery(_) => ErrorCode::InvalidRequest,
        };
        ApiError::new(code, e.to_string())
    }
}

/// `POST /v1/jobs` `{"url" | "video_id", "start"?, "stop"?}` → `202` with the new job, or
/// `200` with the existing one when the same clip was asked for before.
#[utoipa::path(post, path = "/v1/jobs", tag = "v1", request_body = crate::openapi::CreateJob,
    responses(
        (status = 202, description = "A new job, queued", body = JobView),
        (status = 200, description = "The same clip was asked for before: that job", body = JobView),
        (status = 400, description = "`invalid_json`, `invalid_request`, `missing_source`, `invalid_url`, `invalid_video_id`, `invalid_timecode`, `invalid_clip_range`, `clip_too_long`, `source_forbidden`", body = crate::openapi::ErrorBody),
        (status = 401, description = "`unauthorized`", body = crate::openapi::ErrorBody),
        (status = 413, description = "`body_too_large`", body = crate::openapi::ErrorBody),
        (status = 503, description = "`broker_unavailable`, `store_unavailable`", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn create(
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let obj = body::json_object(payload, state.max_body_bytes).await?;
    body::only_fields(&obj, &["url", "video_id", "start", "stop", "accuracy"])?;
    let accuracy = match body::string_field(&obj, "accuracy")?.as_deref() {
        None | Some("frame") => Accuracy::Frame,
        Some("keyframe") => Accuracy::Keyframe,
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "`accuracy` must be `frame` or `keyframe`, not `{}`",
                    other.chars().take(40).collect::<String>()
                ),
            ))
        }
    };
    let url = body::string_field(&obj, "url")?;
    let video_id = body::string_field(&obj, "video_id")?;
    let start = parse_bound("start", body::string_field(&obj, "start")?.as_deref())?;
    let stop = parse_bound("stop", body::string_field(&obj, "stop")?.as_deref())?;
    let url = match (url, &video_id) {
        (Some(url), None) => url,
        (None, Some(id)) => url_for_video_id(&state.video_url_template, id)?,
        _ => {
            return Err(ApiError::new(
                ErrorCode::MissingSource,
                "give exactly one of `url` and `video_id`",
            ))
        }
    };
    let mut spec = JobSpec::new(&url, video_id, start, stop)?;
    spec.accuracy = accuracy;
    let (status, submitted) = jobs::submit(&state, spec).await?;
    let view = JobView::from(status);
    let mut response = match submitted {
        Submitted::New => HttpResponse::Accepted(),
        Submitted::Existing => HttpResponse::Ok(),
    };
    Ok(response
        .insert_header((header::LOCATION, view.links.this.clone()))
        .json(view))
}

/// Largest and default page of `GET /v1/jobs`.
const MAX_LIST: usize = 100;
const DEFAULT_LIST: usize = 20;

/// `GET /v1/jobs?state=&limit=` → `{"jobs": [...]}`, newest first.
#[utoipa::path(get, path = "/v1/jobs", tag = "v1",
    params(("limit" = Option<u32>, Query, description = "1 to 100, default 20"),
           ("state" = Option<JobState>, Query, description = "Only jobs in this state")),
    responses(
        (status = 200, description = "Jobs, newest first", body = crate::openapi::JobList),
        (status = 400, description = "`invalid_request`", body = crate::openapi::ErrorBody),
        (status = 401, description = "`unauthorized`", body = crate::openapi::ErrorBody),
        (status = 503, description = "`store_unavailable`", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = req.query_string();
    let limit = match body::query_param(query, "limit")? {
        None => DEFAULT_LIST,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIST).contains(n))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("`limit` must be a whole number from 1 to {MAX_LIST}"),
                )
            })?,
    };
    let wanted = match body::query_param(query, "state")? {
        None => None,
        Some(text) => Some(serde_json::from_value::<JobState>(serde_json::Value::String(text.clone())).map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("`state` must be one of queued, downloading, transcoding, uploading, completed, failed, cancelled, not `{}`", text.chars().take(40).collect::<String>()),
            )
        })?),
    };
    let mut jobs = state
        .store
        .recent_statuses(limit, |s| wanted.is_none_or(|w| s.state == w))
        .await?;
    jobs.sort_by_key(|j| std::cmp::Reverse(j.created_at_ms));
    let jobs: Vec<JobView> = jobs.into_iter().map(JobView::from).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "jobs": jobs })))
}

/// `GET /v1/jobs/{id}`.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "v1",
    params(("id" = String, Path, description = "The job id")),
    responses(
        (status = 200, description = "The job: state, progress, result or error", body = JobView),
        (status = 401, description = "`unauthorized`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`unknown_job`", body = crate::openapi::ErrorBody),
        (status = 503, description = "`store_unavailable`", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn show(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let status = jobs::find(&state, &id).await?;
    Ok(HttpResponse::Ok().json(JobView::from(status)))
}

/// `DELETE /v1/jobs/{id}`: cancels a queued or running job. The workers notice within about
/// a second (their next progress write), stop (killing ffmpeg) and leave no output behind;
/// a message for it that arrives later is dropped.
#[utoipa::path(delete, path = "/v1/jobs/{id}", tag = "v1",
    params(("id" = String, Path, description = "The job id")),
    responses(
        (status = 200, description = "The job, now cancelled (also when it already was)", body = JobView),
        (status = 401, description = "`unauthorized`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`unknown_job`", body = crate::openapi::ErrorBody),
        (status = 409, description = "`job_finished`: it already completed or failed", body = crate::openapi::ErrorBody),
        (status = 503, description = "`store_unavailable`", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn cancel(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut status = jobs::find(&state, &id).await?;
    // Read the store, not the hot copy: the decision must see the latest state.
    if let Some(fresh) = state.store.status(&status.id).await? {
        status = fresh;
    }
    if !status.cancel() {
        return Err(ApiError::new(
            ErrorCode::JobFinished,
            format!(
                "the job already {}; only queued or running jobs can be cancelled",
                status.state.as_str()
            ),
        ));
    }
    status.updated_at_ms = hopster_common::now_ms();
    state.store.put_status(&status).await?;
    state.hot.put(&status);
    log::info!("job {}: cancelled", status.id);
    Ok(HttpResponse::Ok().json(JobView::from(status)))
}

/// `GET /v1/jobs/{id}/video`: the mp4, with Range; `409` until it is ready.
#[utoipa::path(get, path = "/v1/jobs/{id}/video", tag = "v1",
    params(("id" = String, Path, description = "The job id"),
           ("key" = Option<String>, Query, description = "The API key, for players that cannot send headers"),
           ("Range" = Option<String>, Header, description = "`bytes=FIRST-LAST`, `bytes=FIRST-` or `bytes=-SUFFIX`")),
    responses(
        (status = 200, description = "The whole mp4", content_type = "video/mp4"),
        (status = 206, description = "The requested range", content_type = "video/mp4"),
        (status = 416, description = "The range starts past the end"),
        (status = 401, description = "`unauthorized`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`unknown_job`", body = crate::openapi::ErrorBody),
        (status = 409, description = "`not_ready`, `job_failed`", body = crate::openapi::ErrorBody),
        (status = 503, description = "`store_unavailable`", body = crate::openapi::ErrorBody),
    ))]
pub(crate) async fn video(
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let status = jobs::find(&state, &id).await?;
    match (&status.state, &status.result) {
        (JobState::Completed, Some(result)) => {
            range::serve(&state, &req, result, &format!("{}.mp4", status.id)).await
        }
        (JobState::Failed, _) => Err(ApiError::new(
            ErrorCode::JobFailed,
            match &status.error {
                Some(e) => format!("the job failed: {}: {}", e.code, e.message),
                None => "the job failed".to_owned(),
            },
        )),
        (state, _) => Err(ApiError::new(
            ErrorCode::NotReady,
            format!("the job is {}; the video is not ready yet", state.as_str()),
        )),
    }
}
