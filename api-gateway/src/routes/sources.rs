//! The sources API: inspect a source (its streams, keyframes and a storyboard) before cutting
//! it. The transcoder does the work (`inspect` queue); the gateway keeps one inspection per
//! source.

use super::body;
use super::v1::refused;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use shared_proto::api::{CreateSource, SourceState, SourceStatus, SourceView};
use shared_proto::{keys, topology, ErrorCode, InspectJob, JobId, MESSAGE_VERSION};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/sources", web::post().to(create))
        .route("/v1/sources/{id}", web::get().to(show))
        .route(
            "/v1/sources/{id}/storyboard.jpg",
            web::get().to(storyboard_jpg),
        )
        .route(
            "/v1/sources/{id}/storyboard.vtt",
            web::get().to(storyboard_vtt),
        );
}

/// `POST /v1/sources` `{"url" | "video_id"}` → `202` with a new inspection, or `200` with the
/// source's inspection when it was asked for before. A failed one is tried again, and so is an
/// unfinished one untouched for `recovery.requeue_after_secs` (its message may never have been
/// published: inspections are idempotent, so a second message costs at most a second look).
#[utoipa::path(post, path = "/v1/sources", tag = "v1", operation_id = "create_source", request_body = shared_proto::api::CreateSourceSchema,
    responses(
        (status = 202, description = "A new inspection, queued", body = SourceView,
            headers(("Location" = String, description = "The inspection's URL"))),
        (status = 200, description = "The source was asked for before: its inspection", body = SourceView,
            headers(("Location" = String, description = "The inspection's URL"))),
        (status = 400, description = "`invalid_json`, `invalid_request`, `missing_source`, `invalid_url`, `invalid_video_id`, `source_forbidden`", body = shared_proto::ErrorBody),
        (status = 401, description = "`unauthorized`", body = shared_proto::ErrorBody),
        (status = 413, description = "`body_too_large`", body = shared_proto::ErrorBody),
        (status = 429, description = "`rate_limited`: new work counts against `limits.submissions_per_minute` as jobs do", body = shared_proto::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until new work is accepted again"))),
        (status = 503, description = "`broker_unavailable`, `store_unavailable`", body = shared_proto::ErrorBody),
    ))]
pub(crate) async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: CreateSource = body::read(payload, state.max_body_bytes).await?;
    let url = body
        .into_url(&state.video_url_template)
        .map_err(|e| refused(&state, e))?;
    crate::jobs::refuse_internal(&state, "the source", &url)?;
    let fresh = SourceStatus::queued(url, hopster_common::now_ms());

    let now = hopster_common::now_ms();
    let stale = |s: &SourceStatus| {
        !s.state.is_terminal()
            && state.requeue_after_ms > 0
            && now.saturating_sub(s.updated_at_ms) >= state.requeue_after_ms
    };
    let asked_before = |existing: &Option<SourceStatus>| {
        existing
            .as_ref()
            .filter(|s| s.state != SourceState::Failed && !stale(s))
            .cloned()
    };
    if let Some(existing) = asked_before(&state.store.inspection(&fresh.id).await?) {
        return Ok(answer(HttpResponse::Ok(), existing));
    }
    let client = crate::limits::Client::of(&req);
    let permit = state.limits.submission(&client).map_err(|refused| {
        ApiError::rate_limited(
            refused,
            format!(
                "too much new work from this client; try again in {} s",
                refused.retry_after_secs()
            ),
        )
    })?;
    if !state.store.create_inspection(&fresh).await? {
        // Another request made it meanwhile, or it failed before: that one, or a new try.
        if let Some(existing) = asked_before(&state.store.inspection(&fresh.id).await?) {
            return Ok(answer(HttpResponse::Ok(), existing));
        }
        state.store.put_inspection(&fresh).await?;
    }
    let message = InspectJob {
        version: MESSAGE_VERSION,
        job_id: fresh.id.clone(),
        url: fresh.url.clone(),
        attempt: 1,
    };
    if let Err(e) = state.broker.publish(topology::INSPECT, &message).await {
        // Not queued means not accepted: the same request again starts it afresh.
        let mut failed = fresh.clone();
        failed.state = SourceState::Failed;
        failed.error = Some(shared_proto::JobFailure {
            code: ErrorCode::BrokerUnavailable,
            message: "the inspection could not be queued".into(),
        });
        if let Err(e) = state.store.put_inspection(&failed).await {
            log::error!(
                "source {}: recording the unqueued inspection: {e}",
                fresh.id
            );
        }
        return Err(e.into());
    }
    permit.keep();
    log::info!("source {}: inspection queued for {}", fresh.id, fresh.url);
    Ok(answer(HttpResponse::Accepted(), fresh))
}

fn answer(mut response: actix_web::HttpResponseBuilder, status: SourceStatus) -> HttpResponse {
    let view = SourceView::of(status);
    response
        .insert_header((header::LOCATION, view.links.this.clone()))
        .json(view)
}

/// The inspection `id` names, or `404 unknown_source`.
async fn find(state: &AppState, id: &str) -> Result<SourceStatus, ApiError> {
    let unknown = || {
        ApiError::new(
            ErrorCode::UnknownSource,
            format!("no source inspection {id}"),
        )
    };
    let id = JobId::parse(id).ok_or_else(unknown)?;
    state.store.inspection(&id).await?.ok_or_else(unknown)
}

/// `GET /v1/sources/{id}`: the inspection: its state, and once `ready` the source's duration,
/// container, streams, keyframes and storyboard layout.
#[utoipa::path(get, path = "/v1/sources/{id}", tag = "v1", operation_id = "show_source",
    params(("id" = String, Path, pattern = r"^[0-9a-f]{32}$", description = "The inspection id")),
    responses(
        (status = 200, description = "The inspection", body = SourceView),
        (status = 401, description = "`unauthorized`", body = shared_proto::ErrorBody),
        (status = 404, description = "`unknown_source`", body = shared_proto::ErrorBody),
        (status = 503, description = "`store_unavailable`", body = shared_proto::ErrorBody),
    ))]
pub(crate) async fn show(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let status = find(&state, &id).await?;
    Ok(HttpResponse::Ok().json(SourceView::of(status)))
}

/// The storyboard's `ext` file of a ready inspection.
async fn storyboard(
    state: &AppState,
    id: &str,
    ext: &str,
    content_type: &str,
) -> Result<HttpResponse, ApiError> {
    let status = find(state, id).await?;
    match status.state {
        SourceState::Ready => {}
        SourceState::Failed => {
            return Err(ApiError::new(
                ErrorCode::NotReady,
                "the inspection failed; it has no storyboard",
            ))
        }
        other => {
            return Err(ApiError::new(
                ErrorCode::NotReady,
                format!(
                    "the inspection is {}; the storyboard comes when it is ready",
                    serde_json::to_value(other)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                ),
            ))
        }
    }
    let none = || {
        ApiError::new(
            ErrorCode::NoPoster,
            "the source has no video, so it has no storyboard",
        )
    };
    if status.inspection.and_then(|i| i.storyboard).is_none() {
        return Err(none());
    }
    let bytes = state
        .store
        .bytes(&keys::storyboard_key(&status.id, ext))
        .await?
        .ok_or_else(none)?;
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "private, max-age=3600"))
        .body(bytes))
}

/// `GET /v1/sources/{id}/storyboard.jpg`: the storyboard's tiles, in one JPEG.
#[utoipa::path(get, path = "/v1/sources/{id}/storyboard.jpg", tag = "v1", operation_id = "storyboard_jpg",
    params(("id" = String, Path, pattern = r"^[0-9a-f]{32}$", description = "The inspection id"),
           ("key" = Option<String>, Query, description = "The API key, for `<img src>`")),
    responses(
        (status = 200, description = "The sprite", body = crate::schemas::Bytes, content_type = "image/jpeg"),
        (status = 401, description = "`unauthorized`", body = shared_proto::ErrorBody),
        (status = 404, description = "`unknown_source`, `no_poster` (a source without video)", body = shared_proto::ErrorBody),
        (status = 409, description = "`not_ready`", body = shared_proto::ErrorBody),
        (status = 503, description = "`store_unavailable`", body = shared_proto::ErrorBody),
    ))]
pub(crate) async fn storyboard_jpg(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    storyboard(&state, &id, "jpg", "image/jpeg").await
}

/// `GET /v1/sources/{id}/storyboard.vtt`: a WebVTT cue per tile, `storyboard.jpg#xywh=…`.
#[utoipa::path(get, path = "/v1/sources/{id}/storyboard.vtt", tag = "v1", operation_id = "storyboard_vtt",
    params(("id" = String, Path, pattern = r"^[0-9a-f]{32}$", description = "The inspection id"),
           ("key" = Option<String>, Query, description = "The API key, for `<track src>`")),
    responses(
        (status = 200, description = "The cues", body = String, content_type = "text/vtt"),
        (status = 401, description = "`unauthorized`", body = shared_proto::ErrorBody),
        (status = 404, description = "`unknown_source`, `no_poster` (a source without video)", body = shared_proto::ErrorBody),
        (status = 409, description = "`not_ready`", body = shared_proto::ErrorBody),
        (status = 503, description = "`store_unavailable`", body = shared_proto::ErrorBody),
    ))]
pub(crate) async fn storyboard_vtt(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    storyboard(&state, &id, "vtt", "text/vtt; charset=utf-8").await
}
