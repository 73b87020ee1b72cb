//! Following a job until it ends: on its event stream (`GET /v1/jobs/{id}/events`), and by
//! polling `GET /v1/jobs/{id}` when the stream cannot be opened or drops before the end.

use crate::api::Job;
use crate::client::Client;
use crate::error::CliError;
use crate::progress::JobView;
use crate::sse;
use shared_proto::{JobId, JobState};
use std::time::Duration;

const POLL: Duration = Duration::from_millis(300);
/// Polls that may fail in a row before giving up: a gateway restart should not end the wait.
const TOLERATED_FAILURES: u32 = 5;

/// Follows `job` until it completes; a failed or cancelled job is an error carrying the job.
pub async fn until_done(client: &Client, job: Job, view: &mut JobView) -> Result<Job, CliError> {
    view.update(&job.status);
    let id = job.status.id.clone();
    let job = if job.status.state.is_terminal() {
        job
    } else {
        match follow(client, &id, view).await {
            Ok(job) => job,
            Err(why) => {
                view.note(&format!("job {id}: {why}; polling instead"));
                poll(client, &id, view).await?
            }
        }
    };
    match job.status.state {
        JobState::Completed => Ok(job),
        _ => Err(CliError::JobFailed(Box::new(job))),
    }
}

/// Reads the event stream up to the job's end; `Err` says why it could not.
async fn follow(client: &Client, id: &JobId, view: &mut JobView) -> Result<Job, String> {
    let mut response = client
        .events(id)
        .await
        .map_err(|e| format!("no live events ({e})"))?;
    let mut parser = sse::Parser::default();
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Err("the event stream ended early".to_owned()),
            Err(e) => return Err(format!("the event stream broke ({})", e.without_url())),
        };
        for event in parser.feed(&chunk).map_err(|e| e.to_string())? {
            // One job document per event; the event's name is its state, which the document
            // carries too.
            let job: Job = serde_json::from_str(&event.data)
                .map_err(|e| format!("an event is not a job ({e})"))?;
            view.update(&job.status);
            if job.status.state.is_terminal() {
                return Ok(job);
            }
        }
    }
}

/// Polls until the job ends.
async fn poll(client: &Client, id: &JobId, view: &mut JobView) -> Result<Job, CliError> {
    let mut failures = 0;
    loop {
        match client.job(id).await {
            Ok(job) => {
                failures = 0;
                view.update(&job.status);
                if job.status.state.is_terminal() {
                    return Ok(job);
                }
                tokio::time::sleep(POLL).await;
            }
            Err(CliError::Connection(_)) if failures < TOLERATED_FAILURES => {
                failures += 1;
                tokio::time::sleep(POLL * failures).await;
            }
            Err(e) => {
                return Err(e.with_hint(&format!(
                    "the job keeps running; follow it again with `hopster wait {id}`"
                )))
            }
        }
    }
}
