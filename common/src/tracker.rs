//! A job's status as one worker holds it while it works.

use crate::settings::WorkerSettings;
use crate::store::{Store, StoreError};
use shared_proto::{JobState, JobStatus};
use std::time::{Duration, Instant};

/// A job's status as one worker sees it while it works: changed in memory, written to the
/// store at most once per progress interval (and always on [`JobTracker::flush`]), so
/// progress is visible without a store write per ffmpeg tick.
pub struct JobTracker {
    store: Store,
    status: JobStatus,
    interval: Duration,
    last_write: Option<Instant>,
    /// The state last written, so each state entered is counted once.
    written_state: Option<JobState>,
}

impl JobTracker {
    pub fn new(store: Store, status: JobStatus, settings: &WorkerSettings) -> Self {
        JobTracker {
            store,
            status,
            interval: Duration::from_millis(settings.progress_interval_ms),
            last_write: None,
            written_state: None,
        }
    }

    /// Loads the job for a stage's try and [`JobTracker::begin`]s it; `None` (logged) when
    /// there is nothing to do: no such job, or `done(state)` says an earlier delivery already
    /// took it further (or it ended).
    pub async fn resume(
        store: Store,
        id: &shared_proto::JobId,
        state: JobState,
        attempt: u32,
        settings: &WorkerSettings,
        done: impl Fn(JobState) -> bool,
    ) -> Result<Option<JobTracker>, StoreError> {
        let Some(status) = store.status(id).await? else {
            log::warn!("job {id}: no status document; dropping the message");
            return Ok(None);
        };
        if status.state.is_terminal() || done(status.state) {
            log::info!("job {id}: already {}; nothing to do", status.state.as_str());
            return Ok(None);
        }
        JobTracker::begin(store, status, state, attempt, settings)
            .await
            .map(Some)
    }

    /// Starts a stage's try: moves the job to `state`, records the try and this worker,
    /// and writes that at once so the job shows who has it.
    pub async fn begin(
        store: Store,
        status: JobStatus,
        state: JobState,
        attempt: u32,
        settings: &WorkerSettings,
    ) -> Result<JobTracker, StoreError> {
        let mut tracker = JobTracker::new(store, status, settings);
        tracker.enter(state);
        let status = tracker.status_mut();
        status.attempt = attempt.max(1);
        if attempt > 1 {
            status.retries += 1;
        }
        status.worker = Some(crate::worker_id());
        tracker.flush().await?;
        Ok(tracker)
    }

    /// Moves the job to `state` and records when in its timeline (written with the next
    /// flush).
    pub fn enter(&mut self, state: JobState) {
        if self.status.advance(state) {
            self.status.timeline.entered(state, crate::now_ms());
        }
    }

    pub fn status(&self) -> &JobStatus {
        &self.status
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn status_mut(&mut self) -> &mut JobStatus {
        &mut self.status
    }

    /// Writes now — unless the job was cancelled meanwhile (`StoreError::Cancelled`): the
    /// cancel wins, and the caller stops its work.
    pub async fn flush(&mut self) -> Result<(), StoreError> {
        let current = self.store.status(&self.status.id).await?;
        if current.is_some_and(|s| s.state == shared_proto::JobState::Cancelled) {
            return Err(StoreError::Cancelled(self.status.id.clone()));
        }
        self.status.updated_at_ms = crate::now_ms();
        self.store.put_status(&self.status).await?;
        self.last_write = Some(Instant::now());
        if self.written_state != Some(self.status.state) {
            self.written_state = Some(self.status.state);
            crate::metrics::job_entered(self.status.state);
        }
        Ok(())
    }

    /// Writes if the last write is older than the progress interval.
    pub async fn flush_throttled(&mut self) -> Result<(), StoreError> {
        match self.last_write {
            Some(at) if at.elapsed() < self.interval => Ok(()),
            _ => self.flush().await,
        }
    }
}
