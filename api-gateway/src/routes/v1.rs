//! The v1 jobs API.

use super::body;
use crate::error::ApiError;
use crate::jobs::{self, Submitted};
use crate::range;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use object_store::ObjectStoreExt;
use shared_proto::api::{BodyError, RejectedUrl};
use shared_proto::{CreateJob, ErrorCode, JobList, JobState, JobStatus, JobView, Profile};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/jobs", web::post().to(create))
        .route("/v1/jobs", web::get().to(list))
        .route("/v1/jobs/{id}", web::get().to(show))
        .route("/v1/jobs/{id}", web::delete().to(cancel))
        .route("/v1/jobs/{id}/video", web::get().to(video))
        .route("/v1/jobs/{id}/poster", web::get().to(poster))
        .route("/v1/jobs/{id}/hls/{segment}", web::get().to(segment))
        .route("/v1/jobs/{id}/events", web::get().to(super::events::stream))
        .route("/v1/vocabulary", web::get().to(vocabulary));
}

/// `GET /v1/vocabulary`: the profiles, accuracies, job states and error codes, with words for
/// people. The web page takes its lists from here. Public: the page needs it before a key.
#[utoipa::path(get, path = "/v1/vocabulary", tag = "v1",
    responses((status = 200, description = "The lists", body = shared_proto::api::Vocabulary)))]
pub(crate) async fn vocabulary() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "max-age=300"))
        .json(shared_proto::api::Vocabulary::new())
}

/// `POST /v1/jobs` `{"url" | "video_id", "start"?, "stop"?}` → `202` with the new job, or
/// `200` with the existing one when the same clip was asked for before.
#[utoipa::path(post, path = "/v1/jobs", tag = "v1", request_body = shared_proto::api::CreateJobSchema,
    responses(
        (status = 202, description = "A new job, queued", body = JobView,
            headers(("Location" = String, description = "The job's URL"))),
        (status = 200, description = "The same clip was asked for before: that job", body = JobView,
            headers(("Location" = String, description = "The job's URL"))),
        (status = 400, description = "`invalid_json`, `invalid_request`, `missing_source`, `invalid_url`, `invalid_video_id`, `invalid_timecode`, `invalid_clip_range`, `clip_too_long`, `source_forbidden`", body = shared_proto::ErrorBody),
        (status = 401, description = "`unauthorized`", body = shared_proto::ErrorBody),
        (status = 413, description = "`body_too_large`", body = shared_proto::ErrorBody),
        (status = 429, description = "`rate_limited`: more than `limits.submissions_per_minute` new jobs from this client; `Retry-After` says when to try again (a repeat of an existing job is still answered)", body = shared_proto::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a submission is accepted again"))),
        (status = 503, description = "`broker_unavailable`, `store_unavailable`", body = shared_proto::ErrorBody),
    ))]
pub(crate) async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: CreateJob = body::read(payload, state.max_body_bytes).await?;
    let spec = body
        .into_spec(&state.video_url_template)
        .map_err(|e| refused(&state, e))?;
    let client = crate::limits::Client::of(&req);
    let (status, submitted) = jobs::submit(&state, spec, &client).await?;
    let view = JobView::from(status);
    let mut response = match submitted {
        Submitted::New => HttpResponse::Accepted(),
        Submitted::Existing => HttpResponse::Ok(),
    };
    Ok(response
        .insert_header((header::LOCATION, view.links.this.clone()))
        .json(view))
}

/// A refused body's answer: `source_forbidden` when a refused URL still names an internal
/// address, however it is spelled.
pub(super) fn refused(state: &AppState, e: BodyError) -> ApiError {
    match e.rejected_url.clone() {
        Some(RejectedUrl { field, text }) => {
            let what = match field {
                "url" => "the source".to_owned(),
                other => format!("`{other}`"),
            };
            jobs::refuse_unacceptable(state, &what, &text, e.into())
        }
        None => e.into(),
    }
}

/// Largest and default page of `GET /v1/jobs`.
const MAX_LIST: usize = 100;
const DEFAULT_LIST: usize = 20;

/// `GET /v1/jobs?state=&limit=&cursor=` → `{"jobs": [...], "next_cursor": ...}`, newest
/// first. `next_cursor` is `null` on the last page.
#[utoipa::path(get, path = "/v1/jobs", tag = "v1",
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "1 to 100, default 20"),
           ("state" = Option<JobState>, Query, description = "Only jobs in this state"),
           ("cursor" = Option<String>, Query, pattern = r"^index/[0-9a-f]{1,16}-[0-9a-f]{32}$", description = "`next_cursor` of the previous page")),
    responses(
        (status = 200, description = "Jobs, newest first", body = JobList),
        (status = 400, description = "`invalid_request`", body = shared_proto::ErrorBody),
        (status = 401, description = "`unauthorized`", body = shared_proto::ErrorBody),
        (status = 503, description = "`store_unavailable`", body = shared_proto::ErrorBody),
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
    let cursor = body::query_param(query, "cursor")?;
    if let Some(c) = &cursor {
        if shared_proto::keys::parse_index_key(c).is_none() {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "`cursor` is not one this API handed out (use `next_cursor` of a previous page)",
            ));
        }
    }
    let (jobs, next) = state
        .store
        .list_jobs(limit, cursor.as_deref(), |s| {
            wanted.is_none_or(|w| s.state == w)
        })
        .await?;
    Ok(HttpResponse::Ok().json(JobList {
        jobs: jobs.into_iter().map(JobView::from).collect(),
        next_cursor: next,
    }))
}

/// `GET /v1/jobs/{id}`.
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "v1",
    params(("id" = shared_proto::JobId, Path, description = "The job id")),
    responses(
        (status = 200, description = "The job: state, progress, result or error", body = JobView),
        (status = 401, description = "`unauthorized`", body = shared_proto::ErrorBody),
        (status = 404, description = "`unknown_job`", body = shared_proto::ErrorBody),
        (status = 503, description = "`store_unavailable`", body = shared_proto::ErrorBody),
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
    params(("id" = shared_proto::JobId, Path, description = "The job id")),
    responses(
        (status = 200, description = "The job, now cancelled (also when it already was)", body = JobView),
        (status = 401, description = "`unauthorized`", body = shared_proto::ErrorBody),
        (status = 404, description = "`unknown_job`", body = shared_proto::ErrorBody),
        (status = 409, description = "`job_finished`: it already completed or failed", body = shared_proto::ErrorBody),
        (status = 503, description = "`store_unavailable`", body = shared_proto::ErrorBody),
    ))]
pub(crate) async fn cancel(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // The store, not the hot copy: the decision must see the latest state.
    let mut status = jobs::find_stored(&state, &id).await?;
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
    hopster_common::metrics::job_entered(JobState::Cancelled);
    hopster_common::notify::queue_if_wanted(&state.broker, &status).await;
    log::info!("job {}: cancelled", status.id);
    Ok(HttpResponse::Ok().json(JobView::from(status)))
}

/// `GET /v1/jobs/{id}/video`: the result, with Range; `409` until it is ready. With
/// `?redirect=1`, a `302` to a presigned URL of the bucket instead (s3 store). An HLS result
/// is its playlist, whose segment URIs point back here (`/hls/{segment}`) or, with
/// `?redirect=1`, are presigned.
#[utoipa::path(get, path = "/v1/jobs/{id}/video", tag = "v1",
    params(("id" = shared_proto::JobId, Path, description = "The job id"),
           ("key" = Option<String>, Query, description = "The API key, for players that cannot send headers"),
           ("redirect" = Option<String>, Query, description = "`1`: answer 302 to a presigned bucket URL (HLS: a playlist of presigned segment URLs)"),
           ("Range" = Option<String>, Header, description = "`bytes=FIRST-LAST`, `bytes=FIRST-` or `bytes=-SUFFIX`")),
    responses(
        (status = 200, description = "The whole result (mp4, webm, m4a, mp3, or an m3u8 playlist)",
            content((crate::schemas::Bytes = "video/mp4"), (crate::schemas::Bytes = "video/webm"),
                    (crate::schemas::Bytes = "audio/mp4"), (crate::schemas::Bytes = "audio/mpeg"),
                    (String = "application/vnd.apple.mpegurl"))),
        (status = 206, description = "The requested range",
            content((crate::schemas::Bytes = "video/mp4"), (crate::schemas::Bytes = "video/webm"),
                    (crate::schemas::Bytes = "audio/mp4"), (crate::schemas::Bytes = "audio/mpeg"))),
        (status = 302, description = "`?redirect=1`: the presigned URL is in `Location`",
            headers(("Location" = String, description = "The presigned URL"))),
        (status = 416, description = "The range starts past the end (`Content-Range: bytes */SIZE`)"),
        (status = 401, description = "`unauthorized`", body = shared_proto::ErrorBody),
        (status = 404, description = "`unknown_job`", body = shared_proto::ErrorBody),
        (status = 409, description = "`not_ready`, `job_failed`", body = shared_proto::ErrorBody),
        (status = 503, description = "`store_unavailable`", body = shared_proto::ErrorBody),
    ))]
pub(crate) async fn video(
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let status = jobs::find(&state, &id).await?;
    let result = completed(&status)?;
    let redirect = wants_redirect(&req);
    if result.profile == Profile::Hls {
        return playlist(&state, &req, &status, result, redirect).await;
    }
    if redirect {
        if let Some(url) = state.store.presigned_get(&result.key).await? {
            return Ok(found(url));
        }
    }
    let name = format!("{}.{}", status.id, result.profile.extension());
    range::serve(&state, &req, &result.key, result.size, &result.mime, &name).await
}

/// `GET /v1/jobs/{id}/poster`: the poster JPEG (video profiles), or `?redirect=1` → `302`.
#[utoipa::path(get, path = "/v1/jobs/{id}/poster", tag = "v1",
    params(("id" = shared_proto::JobId, Path, description = "The job id"),
           ("key" = Option<String>, Query, description = "The API key, for `<img src>`"),
           ("redirect" = Option<String>, Query, description = "`1`: answer 302 to a presigned bucket URL")),
    responses(
        (status = 200, description = "The poster", body = crate::schemas::Bytes, content_type = "image/jpeg"),
        (status = 206, description = "The requested range", body = crate::schemas::Bytes, content_type = "image/jpeg"),
        (status = 302, description = "`?redirect=1`: the presigned URL is in `Location`",
            headers(("Location" = String, description = "The presigned URL"))),
        (status = 416, description = "The range starts past the end (`Content-Range: bytes */SIZE`)"),
        (status = 401, description = "`unauthorized`", body = shared_proto::ErrorBody),
        (status = 404, description = "`unknown_job`, `no_poster` (audio profiles)", body = shared_proto::ErrorBody),
        (status = 409, description = "`not_ready`, `job_failed`", body = shared_proto::ErrorBody),
        (status = 503, description = "`store_unavailable`", body = shared_proto::ErrorBody),
    ))]
pub(crate) async fn poster(
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let status = jobs::find(&state, &id).await?;
    let result = completed(&status)?;
    let key = result.poster_key.as_deref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NoPoster,
            format!(
                "the `{}` profile has no video, so the job has no poster",
                result.profile.as_str()
            ),
        )
    })?;
    if wants_redirect(&req) {
        if let Some(url) = state.store.presigned_get(key).await? {
            return Ok(found(url));
        }
    }
    let meta =
        state.store.head(key).await?.ok_or_else(|| {
            ApiError::new(ErrorCode::UnknownJob, "the poster is no longer stored")
        })?;
    let name = format!("{}.jpg", status.id);
    range::serve(&state, &req, key, meta.size, "image/jpeg", &name).await
}

/// `GET /v1/jobs/{id}/hls/{segment}`: one segment of an HLS result.
#[utoipa::path(get, path = "/v1/jobs/{id}/hls/{segment}", tag = "v1",
    params(("id" = shared_proto::JobId, Path, description = "The job id"),
           ("segment" = String, Path, description = "A segment name from the playlist (`seg_00000.ts`)"),
           ("key" = Option<String>, Query, description = "The API key, for players that cannot send headers")),
    responses(
        (status = 200, description = "The segment", body = crate::schemas::Bytes, content_type = "video/mp2t"),
        (status = 206, description = "The requested range", body = crate::schemas::Bytes, content_type = "video/mp2t"),
        (status = 416, description = "The range starts past the end (`Content-Range: bytes */SIZE`)"),
        (status = 401, description = "`unauthorized`", body = shared_proto::ErrorBody),
        (status = 404, description = "`unknown_job`, `unknown_route` (no such segment)", body = shared_proto::ErrorBody),
        (status = 409, description = "`not_ready`, `job_failed`", body = shared_proto::ErrorBody),
        (status = 503, description = "`store_unavailable`", body = shared_proto::ErrorBody),
    ))]
pub(crate) async fn segment(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (id, name) = path.into_inner();
    let status = jobs::find(&state, &id).await?;
    let result = completed(&status)?;
    if !result.segments.contains(&name) {
        return Err(ApiError::new(
            ErrorCode::UnknownRoute,
            format!(
                "job {} has no segment `{}`",
                status.id,
                name.chars().take(40).collect::<String>()
            ),
        ));
    }
    let key = format!("{}{name}", shared_proto::keys::hls_prefix(&status.id));
    let meta =
        state.store.head(&key).await?.ok_or_else(|| {
            ApiError::new(ErrorCode::UnknownJob, "the segment is no longer stored")
        })?;
    range::serve(&state, &req, &key, meta.size, "video/mp2t", &name).await
}

/// An HLS result's playlist with its segment URIs made absolute: gateway routes (carrying
/// `?key=` when the request did) or presigned bucket URLs.
async fn playlist(
    state: &AppState,
    req: &HttpRequest,
    status: &JobStatus,
    result: &shared_proto::JobResult,
    presign: bool,
) -> Result<HttpResponse, ApiError> {
    let got = state
        .store
        .objects()
        .get(&object_store::path::Path::from(result.key.as_str()))
        .await
        .map_err(hopster_common::store::StoreError::from)?;
    let text = got
        .bytes()
        .await
        .map_err(hopster_common::store::StoreError::from)?;
    let text = String::from_utf8_lossy(&text);
    let key = body::query_value(req.query_string(), "key");
    let mut out = String::with_capacity(text.len() * 2);
    for line in text.lines() {
        let uri = line.trim();
        if !uri.is_empty() && !uri.starts_with('#') {
            let signed = if presign {
                let key = format!("{}{uri}", shared_proto::keys::hls_prefix(&status.id));
                state.store.presigned_get(&key).await?
            } else {
                None
            };
            match (signed, &key) {
                (Some(url), _) => out.push_str(&url),
                (None, Some(k)) => out.push_str(&format!(
                    "/v1/jobs/{}/hls/{uri}?key={}",
                    status.id,
                    body::percent_encode(k)
                )),
                (None, None) => out.push_str(&format!("/v1/jobs/{}/hls/{uri}", status.id)),
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, Profile::Hls.mime()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(out))
}

/// The result of a completed job, or why there is none yet.
fn completed(status: &JobStatus) -> Result<&shared_proto::JobResult, ApiError> {
    match (&status.state, &status.result) {
        (JobState::Completed, Some(result)) => Ok(result),
        (JobState::Failed, _) => Err(ApiError::new(
            ErrorCode::JobFailed,
            match &status.error {
                Some(e) => format!("the job failed: {}: {}", e.code, e.message),
                None => "the job failed".to_owned(),
            },
        )),
        (state, _) => Err(ApiError::new(
            ErrorCode::NotReady,
            format!("the job is {}; the result is not ready yet", state.as_str()),
        )),
    }
}

fn wants_redirect(req: &HttpRequest) -> bool {
    matches!(
        body::query_value(req.query_string(), "redirect").as_deref(),
        Some("1" | "true")
    )
}

fn found(url: String) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}
