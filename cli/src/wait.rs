//! Following a job until it ends, by polling (the server has no event stream yet).

use crate::client::{Client, Job};
use crate::error::CliError;
use crate::progress::JobView;
use shared_proto::JobState;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(300);
/// Polls that may fail in a row before giving up: a gateway restart should not end the wait.
const TOLERATED_FAILURES: u32 = 5;

/// Polls from `job` on until the job completes; a failed or cancelled job is an error carrying
/// the job.
pub async fn until_done(
    client: &Client,
    mut job: Job,
    view: &mut JobView,
) -> Result<Job, CliError> {
    let id = job.status.id.clone();
    let mut failures = 0;
    loop {
        view.update(&job.status);
        if job.status.state.is_terminal() {
            break;
        }
        tokio::time::sleep(POLL).await;
        match client.job(&id).await {
            Ok(next) => {
                job = next;
                failures = 0;
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
    match job.status.state {
        JobState::Completed => Ok(job),
        _ => Err(CliError::JobFailed(Box::new(job))),
    }
}
