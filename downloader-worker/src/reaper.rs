//! The reaper: a job can be stranded `queued` with no message behind it (a gateway that died
//! between creating the status and publishing). Such a job, still `queued`
//! `recovery.requeue_after_secs` after its last change while the download queue has no message
//! ready, is published again. Republishing is safe: job ids are deterministic, and a message
//! of a job already past downloading is acked and dropped.
//!
//! With an empty queue, a message of a `queued` job can only be one a downloader holds and
//! has not started (the first thing a downloader does is mark the job `downloading`); with a
//! backlog the reaper waits, since the job's message may be in it. Several downloaders reap
//! at once: each job's republish is claimed once in the store (a conditional create named
//! after the status's version), and the status is read again after the claim.

use hopster_common::settings::RecoverySettings;
use hopster_common::{Broker, Store};
use shared_proto::{topology, DownloadJob, JobStatus, MESSAGE_VERSION};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One pass: republishes the stale `queued` jobs; returns how many.
pub async fn reap(
    store: &Store,
    broker: &Broker,
    requeue_after: Duration,
    since_ms: Option<u64>,
) -> anyhow::Result<usize> {
    if broker.ready(topology::DOWNLOAD).await? > 0 {
        return Ok(0);
    }
    let before = hopster_common::now_ms().saturating_sub(requeue_after.as_millis() as u64);
    let mut requeued = 0;
    for stale in store.stale_queued(before, since_ms).await? {
        let claim = format!("{}.{}", stale.id, stale.updated_at_ms);
        if !store.claim(&claim).await? {
            continue;
        }
        let outcome = republish(store, broker, &stale).await;
        store.release(&claim).await?;
        if outcome? {
            requeued += 1;
        }
    }
    Ok(requeued)
}

/// Publishes the job again if its status is still the version that was listed, then stamps
/// the status so the next pass leaves it alone for another `requeue_after`.
async fn republish(store: &Store, broker: &Broker, listed: &JobStatus) -> anyhow::Result<bool> {
    let Some(current) = store.status(&listed.id).await? else {
        return Ok(false);
    };
    if current.updated_at_ms != listed.updated_at_ms {
        return Ok(false);
    }
    let message = DownloadJob {
        version: MESSAGE_VERSION,
        job_id: current.id.clone(),
        spec: current.spec.clone(),
        attempt: 1,
    };
    let stale_secs = hopster_common::now_ms().saturating_sub(current.updated_at_ms) / 1000;
    // Stamped before the publish, from the copy just read: a downloader that takes the message
    // at once writes `downloading` after this, never before it (a stamp after the publish
    // could overwrite that with the stale `queued`).
    let mut stamped = current;
    stamped.updated_at_ms = hopster_common::now_ms();
    store.put_status(&stamped).await?;
    broker.publish(topology::DOWNLOAD, &message).await?;
    log::warn!(
        "job {}: still queued {stale_secs} s after its last change with no message left; \
         published again",
        stamped.id
    );
    hopster_common::metrics::count("hopster_jobs_requeued_total", &[], 1.0);
    Ok(true)
}

/// Reaps every quarter of `requeue_after_secs` (1–60 s) until shutdown: the first pass reads
/// every stale status, later ones only those that went stale since.
pub async fn reap_periodically(
    store: Store,
    broker: Broker,
    settings: RecoverySettings,
    shutdown: CancellationToken,
) {
    if settings.requeue_after_secs == 0 {
        log::info!("reaper off (recovery.requeue_after_secs = 0)");
        return;
    }
    let requeue_after = Duration::from_secs(settings.requeue_after_secs);
    let interval = (requeue_after / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut since_ms = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let pass_started = hopster_common::now_ms();
        match reap(&store, &broker, requeue_after, since_ms).await {
            Ok(n) => {
                if n > 0 {
                    log::info!("reaper: {n} job(s) published again");
                }
                // The next pass looks at what went stale since this one's cutoff, with a
                // margin for clocks and slow listings.
                let cutoff = pass_started.saturating_sub(requeue_after.as_millis() as u64);
                since_ms = Some(cutoff.saturating_sub(interval.as_millis() as u64 * 2));
            }
            Err(e) => log::warn!("reaper pass failed: {e:#}; trying again next time"),
        }
    }
}
