//! Submitting and looking up jobs: the logic both APIs share.

use crate::error::ApiError;
use crate::limits::Client;
use crate::state::AppState;
use hopster_common::store::Created;
use shared_proto::{
    topology, DownloadJob, ErrorCode, JobId, JobSpec, JobState, JobStatus, MESSAGE_VERSION,
};

/// Whether a submission started new work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    New,
    Existing,
}

/// Creates the job (or finds it) and queues its first stage. The same spec twice is one job:
/// the status is created with a conditional put, and only its creator publishes. A failed job
/// submitted again is tried again from the start. New work costs `client` a submission
/// token; a repeat of a job that exists costs nothing, even when the client has none left.
pub async fn submit(
    state: &AppState,
    spec: JobSpec,
    client: &Client,
) -> Result<(JobStatus, Submitted), ApiError> {
    check_limits(state, &spec)?;
    // Dropped (given back) on every path that starts no work.
    let permit = match state.limits.submission(client) {
        Ok(permit) => permit,
        Err(refused) => {
            // Out of tokens: only the answer about an existing job is still given.
            return match state.store.status(&spec.job_id()).await? {
                Some(existing) if existing.state != JobState::Failed => {
                    Ok((existing, Submitted::Existing))
                }
                _ => Err(ApiError::rate_limited(
                    refused,
                    format!(
                        "too many new jobs from this client; try again in {} s",
                        refused.retry_after_secs()
                    ),
                )),
            };
        }
    };
    let fresh = JobStatus::queued(spec, hopster_common::now_ms());
    match state.store.create_status(&fresh).await? {
        Created::New => {
            // The listing entry and the message are independent: write and publish at once.
            let (indexed, queued) =
                tokio::join!(state.store.index_job(&fresh), queue(state, &fresh, true));
            queued?;
            permit.keep();
            if let Err(e) = indexed {
                log::warn!("job {}: not listed in GET /v1/jobs: {e}", fresh.id);
            }
            hopster_common::metrics::job_entered(JobState::Queued);
            // Drops what this replica may still hold of an earlier job of the same id (swept
            // by retention, now submitted again). Not cached: a burst of submissions would
            // fill the cache with statuses nobody reads yet.
            state.hot.forget(&fresh.id);
            log::info!("job {}: queued {}", fresh.id, fresh.spec.url);
            Ok((fresh, Submitted::New))
        }
        Created::Existing(existing) if existing.state == JobState::Failed => {
            state.store.put_status(&fresh).await?;
            let (indexed, queued) =
                tokio::join!(state.store.index_job(&fresh), queue(state, &fresh, false));
            queued?;
            permit.keep();
            if let Err(e) = indexed {
                log::warn!("job {}: not listed in GET /v1/jobs: {e}", fresh.id);
            }
            hopster_common::metrics::job_entered(JobState::Queued);
            state.hot.forget(&fresh.id);
            log::info!("job {}: failed before; queued again", fresh.id);
            Ok((fresh, Submitted::New))
        }
        Created::Existing(existing) => Ok((*existing, Submitted::Existing)),
    }
}

/// What can be refused before any work: an internal IP-literal host (names are resolved and
/// checked by the downloader) and a clip longer than allowed.
fn check_limits(state: &AppState, spec: &JobSpec) -> Result<(), ApiError> {
    if let Some(length) = spec.clip_length() {
        let (limit, what) = if spec.profile.is_animation() {
            (state.max_animation_secs, "an animation")
        } else {
            (state.max_clip_secs, "a clip")
        };
        if length.as_micros() > limit.saturating_mul(1_000_000) {
            return Err(ApiError::new(
                ErrorCode::ClipTooLong,
                format!("the clip is {length} long; {what} may be at most {limit} s"),
            ));
        }
    }
    refuse_internal(state, "the source", &spec.url)?;
    if let Some(callback) = &spec.callback_url {
        refuse_internal(state, "`callback_url`", callback)?;
    }
    Ok(())
}

/// The answer to a URL that was not accepted: `source_forbidden` when the text still names an
/// internal address (credentials before it, an IPv6 zone id in it), so that such a spelling
/// is answered as the internal address it is; else `error`.
pub fn refuse_unacceptable(state: &AppState, what: &str, url: &str, error: ApiError) -> ApiError {
    match refuse_internal(state, what, url) {
        Err(forbidden) if error.code == ErrorCode::InvalidUrl => forbidden,
        _ => error,
    }
}

/// `source_forbidden` for a URL whose host is an internal address, however it is spelled (the
/// `url` crate's reading of it, the one the HTTP client has), unless private networks are
/// allowed.
pub fn refuse_internal(state: &AppState, what: &str, url: &str) -> Result<(), ApiError> {
    if state.guard.allow_private || url::Url::parse(url).is_ok_and(|u| state.guard.trusts(&u)) {
        return Ok(());
    }
    match shared_proto::net::forbidden_url_text(url) {
        Some((ip, reason)) => Err(ApiError::new(
            ErrorCode::SourceForbidden,
            format!(
                "{what}'s address is {ip}, a {reason} address; only public addresses may be used"
            ),
        )),
        None => Ok(()),
    }
}

async fn queue(state: &AppState, status: &JobStatus, created: bool) -> Result<(), ApiError> {
    if created {
        crate::failpoint::hit("after_create");
    }
    let message = DownloadJob {
        version: MESSAGE_VERSION,
        job_id: status.id.clone(),
        spec: status.spec.clone(),
        attempt: 1,
    };
    if let Err(e) = state.broker.publish(topology::DOWNLOAD, &message).await {
        // Not queued means not accepted: remove the record so a retry of the same request
        // creates and queues the job instead of finding a job that will never run.
        if created {
            if let Err(cleanup) = state.store.delete_status(&status.id).await {
                log::error!(
                    "job {}: removing the unqueued status failed: {cleanup}",
                    status.id
                );
            }
        }
        return Err(e.into());
    }
    Ok(())
}

/// The job's status; `unknown_job` for a malformed or unknown id alike.
pub async fn find(state: &AppState, id: &str) -> Result<JobStatus, ApiError> {
    if let Some(status) = JobId::parse(id).and_then(|id| state.hot.get(&id)) {
        return Ok(status);
    }
    find_stored(state, id).await
}

/// The job's status as the store has it now, never the cached copy: for decisions (cancel)
/// and for the first event of a live stream.
pub async fn find_stored(state: &AppState, id: &str) -> Result<JobStatus, ApiError> {
    let unknown = || {
        ApiError::new(
            ErrorCode::UnknownJob,
            format!("no job has the id `{}`", truncate(id)),
        )
    };
    let id = JobId::parse(id).ok_or_else(unknown)?;
    let status = state.store.status(&id).await?.ok_or_else(unknown)?;
    state.hot.put(&status);
    Ok(status)
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}
