//! `GET /v1/jobs/{id}/events`: a job's changes as Server-Sent Events until the job ends,
//! from the status events the gateway follows (`crate::events`).

use crate::error::ApiError;
use crate::limits::{Client, StreamSlot};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use futures::StreamExt;
use shared_proto::{JobId, JobStatus, JobView};
use std::time::Duration;
use tokio::sync::broadcast;

/// Silence after which the store is read again (a missed event is never missed for long)
/// and a keep-alive comment is sent.
const QUIET: Duration = Duration::from_secs(5);

/// Whether `next` says more than `last`: a later state, or a later write of the same one.
fn newer(last: &JobStatus, next: &JobStatus) -> bool {
    next.state > last.state || (next.state == last.state && next.updated_at_ms > last.updated_at_ms)
}

fn frame(status: &JobStatus) -> Bytes {
    let view = JobView::from(status.clone());
    let data = serde_json::to_string(&view).unwrap_or_default();
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        status.updated_at_ms,
        status.state.as_str()
    ))
}

struct Follow {
    rx: broadcast::Receiver<JobStatus>,
    state: web::Data<AppState>,
    id: JobId,
    last: Option<JobStatus>,
    done: bool,
    /// This stream's place under `[limits]`: freed when the stream is dropped, i.e. when the
    /// job ends or the client goes away.
    _slot: StreamSlot,
}

impl Follow {
    /// The next frame to send, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        loop {
            let received = tokio::time::timeout(QUIET, self.rx.recv()).await;
            let quiet = received.is_err();
            let candidate = match received {
                Ok(Ok(status)) if status.id == self.id => Some(status),
                Ok(Ok(_)) => continue,
                Ok(Err(broadcast::error::RecvError::Lagged(_))) | Err(_) => {
                    // Missed events, or quiet: the store has the truth.
                    match self.state.store.status(&self.id).await {
                        Ok(Some(status)) => Some(status),
                        Ok(None) => {
                            self.done = true;
                            return None;
                        }
                        Err(e) => {
                            log::debug!("events of {}: store read failed: {e}", self.id);
                            None
                        }
                    }
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return None,
            };
            match candidate {
                Some(status) if self.last.as_ref().is_none_or(|l| newer(l, &status)) => {
                    self.done = status.state.is_terminal();
                    let bytes = frame(&status);
                    self.last = Some(status);
                    return Some(bytes);
                }
                // Nothing new for a while: a comment keeps proxies from closing the stream,
                // and writing is how a client that went away is noticed (and its stream, with
                // its slot under `[limits]`, dropped).
                None => return Some(Bytes::from_static(b": keep-alive\n\n")),
                Some(_) if quiet => return Some(Bytes::from_static(b": keep-alive\n\n")),
                Some(_) => continue,
            }
        }
    }
}

/// `GET /v1/jobs/{id}/events`: the job's status now, then every change, as Server-Sent
/// Events (`event:` is the state, `data:` the job as `GET /v1/jobs/{id}` shows it), until it
/// completes, fails or is cancelled.
#[utoipa::path(get, path = "/v1/jobs/{id}/events", tag = "v1",
    params(("id" = shared_proto::JobId, Path, description = "The job id"),
           ("key" = Option<String>, Query, description = "The API key, for `EventSource`, which cannot send headers")),
    responses(
        (status = 200, description = "`text/event-stream` of the job's status changes", content_type = "text/event-stream"),
        (status = 401, description = "`unauthorized`", body = shared_proto::api::ErrorBody),
        (status = 404, description = "`unknown_job`", body = shared_proto::api::ErrorBody),
        (status = 429, description = "`rate_limited`: this client holds `limits.max_event_streams_per_client` streams, or the gateway `limits.max_event_streams`", body = shared_proto::api::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds after which to try again"))),
        (status = 503, description = "`store_unavailable`", body = shared_proto::api::ErrorBody),
    ))]
pub(crate) async fn stream(
    state: web::Data<AppState>,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let slot = state
        .limits
        .event_stream(&Client::of(&req))
        .map_err(|refused| {
            ApiError::rate_limited(
                refused,
                "too many live event streams open (this client's or the gateway's limit); \
                 close one, or poll GET /v1/jobs/{id}",
            )
        })?;
    // Subscribe before reading, so no change falls between the read and the subscription.
    let rx = state.events.subscribe();
    let now = crate::jobs::find_stored(&state, &id).await?;
    let job = now.id.clone();
    let first = frame(&now);
    let follow = Follow {
        rx,
        state: state.clone(),
        id: job,
        done: now.state.is_terminal(),
        last: Some(now),
        _slot: slot,
    };
    let rest = futures::stream::unfold(follow, |mut f| async move {
        f.next()
            .await
            .map(|bytes| (Ok::<_, actix_web::Error>(bytes), f))
    });
    let body = futures::stream::once(async move { Ok::<_, actix_web::Error>(first) }).chain(rest);
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}
