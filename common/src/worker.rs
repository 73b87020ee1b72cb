//! The consumer loop every worker runs, and the failure policy it applies.
//!
//! A stage only says what it did: `Ok`, a permanent failure ([`StageError::Abort`]) or a
//! transient one ([`StageError::Retry`]). This loop does the rest in one place: it fails the
//! job, schedules a retry with backoff through the stage's delay queue, or parks the message in
//! the dead-letter queue, and only then acks.

use crate::retry::{Backoff, RetryPolicy};
use crate::settings::WorkerSettings;
use crate::store::{Store, StoreError};
pub use crate::tracker::JobTracker;
use crate::Broker;
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::types::FieldTable;
use shared_proto::{ErrorCode, JobMessage, MESSAGE_VERSION};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How a stage failed.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// Permanent: bad input, unsupported media, a limit. The job fails; never retried.
    #[error("{code}: {message}")]
    Abort { code: ErrorCode, message: String },
    /// Transient: network, store or broker trouble. Retried with backoff; when the tries run
    /// out the job fails with `code`.
    #[error("{code} (transient): {message}")]
    Retry { code: ErrorCode, message: String },
    /// The job was cancelled while the stage worked: stop, leave nothing behind, ack.
    #[error("cancelled")]
    Cancelled,
}

impl StageError {
    pub fn abort(code: ErrorCode, message: impl Into<String>) -> Self {
        StageError::Abort {
            code,
            message: message.into(),
        }
    }
    pub fn retry(code: ErrorCode, message: impl Into<String>) -> Self {
        StageError::Retry {
            code,
            message: message.into(),
        }
    }
}

impl From<StoreError> for StageError {
    fn from(e: StoreError) -> Self {
        if matches!(e, StoreError::Cancelled(_)) {
            StageError::Cancelled
        } else if e.is_transient() {
            StageError::retry(ErrorCode::StoreUnavailable, e.to_string())
        } else {
            StageError::abort(ErrorCode::Internal, e.to_string())
        }
    }
}

impl From<crate::broker::BrokerError> for StageError {
    fn from(e: crate::broker::BrokerError) -> Self {
        StageError::retry(ErrorCode::BrokerUnavailable, e.to_string())
    }
}

/// One stage of the pipeline.
pub trait Stage: Send + Sync + 'static {
    type Message: JobMessage;
    /// The stage's routing key (`topology::DOWNLOAD`, `topology::TRANSCODE`).
    const KEY: &'static str;
    /// How the worker loop retries this stage's transient failures.
    fn retry_policy(&self) -> RetryPolicy;
    /// Does the work of one message. Must be idempotent: the same message may come twice.
    fn handle(&self, message: Self::Message)
        -> impl Future<Output = Result<(), StageError>> + Send;
}

/// What became of one delivery. Every outcome is acked afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Scheduled for another try, after a delay.
    Retrying {
        attempt: u32,
        delay_ms: u64,
    },
    /// The job failed with this code.
    Failed(ErrorCode),
    /// The message could not be read; it is in the dead-letter queue.
    DeadLettered(String),
    /// The job was cancelled; the work stopped.
    Cancelled,
}

/// A stage bound to its broker and store.
pub struct Worker<S: Stage> {
    stage: Arc<S>,
    broker: Broker,
    store: Store,
    settings: WorkerSettings,
    shutdown: CancellationToken,
}

impl<S: Stage> Clone for Worker<S> {
    fn clone(&self) -> Self {
        Worker {
            stage: self.stage.clone(),
            broker: self.broker.clone(),
            store: self.store.clone(),
            settings: self.settings.clone(),
            shutdown: self.shutdown.clone(),
        }
    }
}

impl<S: Stage> Worker<S> {
    pub fn new(stage: S, broker: Broker, store: Store, settings: WorkerSettings) -> Self {
        Worker {
            stage: Arc::new(stage),
            broker,
            store,
            settings,
            shutdown: CancellationToken::new(),
        }
    }

    /// Handles one message body: decode, run the stage, apply the failure policy. An `Err`
    /// means the outcome could not be recorded (broker or store away): the delivery is
    /// nacked back to the queue to be tried again.
    pub async fn process(&self, body: &[u8]) -> Result<Outcome, StageError> {
        let started = Instant::now();
        let outcome = self.process_inner(body).await;
        let label = match &outcome {
            Ok(Outcome::Done) => "done",
            Ok(Outcome::Retrying { .. }) => {
                crate::metrics::count("hopster_retries_total", &[("stage", S::KEY)], 1.0);
                "retrying"
            }
            Ok(Outcome::Failed(_)) => "failed",
            Ok(Outcome::DeadLettered(_)) => "dead_lettered",
            Ok(Outcome::Cancelled) => "cancelled",
            Err(_) => "requeued",
        };
        crate::metrics::observe(
            "hopster_stage_duration_seconds",
            &[("stage", S::KEY), ("outcome", label)],
            started.elapsed().as_secs_f64(),
        );
        outcome
    }

    async fn process_inner(&self, body: &[u8]) -> Result<Outcome, StageError> {
        let message: S::Message = match serde_json::from_slice(body) {
            Ok(m) => m,
            Err(e) => {
                let reason = format!("undecodable {} message: {e}", S::KEY);
                log::warn!("{reason}; dead-lettering it");
                self.dead_letter(body, &reason).await?;
                return Ok(Outcome::DeadLettered(reason));
            }
        };
        let id = message.job_id().clone();
        if message.version() != MESSAGE_VERSION {
            let reason = format!(
                "{} message of job {id} has version {}, this worker reads {MESSAGE_VERSION}",
                S::KEY,
                message.version()
            );
            self.dead_letter(body, &reason).await?;
            return Ok(Outcome::DeadLettered(reason));
        }
        let attempt = message.attempt().max(1);
        let first_queued = message.first_queued_ms();
        match self.stage.handle(message).await {
            Ok(()) => Ok(Outcome::Done),
            Err(StageError::Cancelled) => {
                log::info!("job {id}: cancelled during {}; stopped", S::KEY);
                Ok(Outcome::Cancelled)
            }
            Err(StageError::Abort { code, message }) => {
                log::info!("job {id}: {} failed permanently: {code}: {message}", S::KEY);
                self.fail(&id, code, message).await?;
                Ok(Outcome::Failed(code))
            }
            Err(StageError::Retry { code, message }) => {
                let age_ms = first_queued.map(|at| crate::now_ms().saturating_sub(at));
                match self.stage.retry_policy().next_delay_ms(attempt, age_ms) {
                    Some(delay_ms) => self.retry(body, &id, attempt, delay_ms, &message).await,
                    None => {
                        let reason = format!("gave up after {attempt} tries: {message}");
                        log::warn!("job {id}: {} {reason}", S::KEY);
                        // Park the message first: the decision is made, and recording it in
                        // the status may have to wait for the very store that failed.
                        self.dead_letter(body, &reason).await?;
                        self.fail(&id, code, reason).await?;
                        Ok(Outcome::Failed(code))
                    }
                }
            }
        }
    }

    /// Schedules try `attempt + 1` of the message after `delay_ms`, through the stage's delay
    /// queue.
    async fn retry(
        &self,
        body: &[u8],
        id: &shared_proto::JobId,
        attempt: u32,
        delay_ms: u64,
        why: &str,
    ) -> Result<Outcome, StageError> {
        log::warn!(
            "job {id}: {} try {attempt} failed ({why}); retrying in {delay_ms} ms",
            S::KEY
        );
        let mut next: S::Message = serde_json::from_slice(body)
            .map_err(|e| StageError::abort(ErrorCode::Internal, e.to_string()))?;
        next.set_attempt(attempt + 1);
        // The next try records its attempt on the status itself; the message carries
        // it, so scheduling the retry must not depend on the store that may be failing.
        let body = serde_json::to_vec(&next).unwrap_or_default();
        let retry_key = shared_proto::Topology::retry_key(S::KEY);
        self.broker
            .publish_raw(&retry_key, &body, FieldTable::default(), Some(delay_ms))
            .await?;
        Ok(Outcome::Retrying {
            attempt: attempt + 1,
            delay_ms,
        })
    }

    async fn dead_letter(&self, body: &[u8], reason: &str) -> Result<(), StageError> {
        self.broker.dead_letter(body, reason).await?;
        crate::metrics::count("hopster_dead_lettered_total", &[("stage", S::KEY)], 1.0);
        Ok(())
    }

    /// Records the job's failure, retrying while the store is away (the message stays
    /// unacked meanwhile, so nothing is lost), until it is stored or shutdown begins.
    async fn fail(
        &self,
        id: &shared_proto::JobId,
        code: ErrorCode,
        message: String,
    ) -> Result<(), StageError> {
        let mut backoff = RetryPolicy::of_jobs(&self.settings).backoff();
        loop {
            let mut changed = false;
            let written = self
                .store
                .update_status(id, |s| {
                    changed = s.fail(code, message.clone());
                })
                .await;
            match written {
                Ok(status) => {
                    if let Some(status) = status.filter(|_| changed) {
                        crate::metrics::job_entered(status.state);
                        crate::notify::queue_if_wanted(&self.broker, &status).await;
                    }
                    return Ok(());
                }
                Err(e) if e.is_transient() && !self.shutdown.is_cancelled() => {
                    let delay = backoff.next_delay();
                    log::warn!("job {id}: recording its failure: {e}; retrying in {delay:?}");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.shutdown.cancelled() => {}
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Consumes the stage's queue until `shutdown` fires, each delivery in its own task so a
    /// panic stays contained. On shutdown it stops taking messages and waits up to the grace
    /// period for work in flight; what is left unacked goes back to the queue when the
    /// connection closes.
    pub async fn run(mut self, prefetch: u16, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.shutdown = shutdown.clone();
        let mut subscription = self.broker.consume(S::KEY, prefetch).await?;
        let mut tasks = JoinSet::new();
        log::info!(
            "{} worker consuming {}",
            S::KEY,
            self.broker.topology().queue(S::KEY)
        );
        // Set by a consumer error until the consumer is seen working again or replaced.
        let mut troubled = false;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                // A consumer whose channel closed (its queue missing on the node reached after
                // a failover) is never resumed by the recovery: subscribe again.
                () = tokio::time::sleep(Duration::from_secs(1)), if troubled => {
                    if subscription.is_dead() {
                        log::warn!("{} consumer's channel is closed; subscribing again", S::KEY);
                        match self.resubscribe(prefetch).await {
                            Some(fresh) => subscription = fresh,
                            None => break,
                        }
                        troubled = false;
                    } else if subscription.channel.status().connected() {
                        troubled = false;
                    }
                }
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Err(e) = done {
                        log::error!("{} task ended abnormally: {e}", S::KEY);
                    }
                }
                next = subscription.consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        let worker = self.clone();
                        tasks.spawn(async move { worker.settle(delivery).await });
                    }
                    Some(Err(e)) => {
                        // The connection dropped; lapin's recovery reconnects (to another
                        // node when there is one), re-declares and resumes this consumer.
                        // Unacked messages come back redelivered. The check below catches a
                        // consumer that is not resumed.
                        log::warn!("{} consumer error: {e}; waiting for the broker", S::KEY);
                        troubled = true;
                        // The connection under these deliveries is gone, so the broker gives
                        // them to another consumer: finishing them here too would do the work
                        // twice (two transcodes writing one result). Stop them; their acks
                        // could not reach the broker anyway.
                        if !tasks.is_empty() {
                            log::warn!(
                                "{}: abandoning {} delivery(ies) in flight; the broker redelivers them",
                                S::KEY,
                                tasks.len()
                            );
                            tasks.abort_all();
                        }
                    }
                    None => {
                        log::warn!("{} consumer was cancelled; subscribing again", S::KEY);
                        match self.resubscribe(prefetch).await {
                            Some(fresh) => subscription = fresh,
                            None => break,
                        }
                    }
                },
            }
        }
        let grace = Duration::from_secs(self.settings.shutdown_grace_secs);
        let drained =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            log::warn!(
                "{} shutdown grace ran out; unfinished messages return to the queue",
                S::KEY
            );
            tasks.abort_all();
        }
        Ok(())
    }

    /// Consumes again after the broker cancelled the consumer, backing off until it works or
    /// shutdown begins.
    async fn resubscribe(&self, prefetch: u16) -> Option<crate::broker::Subscription> {
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
        loop {
            tokio::select! {
                () = tokio::time::sleep(backoff.next_delay()) => {}
                () = self.shutdown.cancelled() => return None,
            }
            match self.broker.consume(S::KEY, prefetch).await {
                Ok(consumer) => return Some(consumer),
                Err(e) => log::warn!("{}: consuming again failed: {e}", S::KEY),
            }
        }
    }

    /// Processes one delivery in a task of its own and acks or nacks it.
    async fn settle(&self, delivery: Delivery) {
        let worker = self.clone();
        let body = delivery.data.clone();
        let started = Instant::now();
        let inner = tokio::spawn(async move { worker.process(&body).await });
        // If this task is aborted (shutdown grace ran out), the work goes with it, killing
        // any ffmpeg (kill_on_drop); the unacked message returns to the queue.
        let _abort = AbortOnDrop(inner.abort_handle());
        let result = inner.await;
        let settled = match result {
            Ok(Ok(outcome)) => {
                log::debug!(
                    "{} delivery settled as {outcome:?} in {:?}",
                    S::KEY,
                    started.elapsed()
                );
                delivery.ack(BasicAckOptions::default()).await
            }
            Ok(Err(e)) => {
                log::warn!("{} could not record an outcome ({e}); requeueing", S::KEY);
                tokio::time::sleep(Duration::from_millis(self.settings.retry_base_ms)).await;
                delivery
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    })
                    .await
            }
            Err(panic) => {
                // A bug, not bad luck: requeueing would loop. The queue's dead-letter
                // exchange parks the message.
                log::error!("{} handler panicked: {panic}; dead-lettering", S::KEY);
                delivery
                    .nack(BasicNackOptions {
                        requeue: false,
                        ..BasicNackOptions::default()
                    })
                    .await
            }
        };
        if let Err(e) = settled {
            log::warn!(
                "{} ack/nack failed ({e}); the broker will redeliver",
                S::KEY
            );
        }
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
