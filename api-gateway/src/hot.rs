//! Hot status reads from memory, with the store as the source of truth: a completed job does
//! not change, so its status is served from memory for [`SETTLED`] (bounded, because the
//! retention sweep may delete it and a new submission may start it again); any other state
//! for at most [`FRESH`] (the workers and other replicas write the store, and their status
//! events refresh this cache), which turns a burst of polls of one running job into one store
//! read per window while a client waiting for completion sees it at once.

use shared_proto::{JobId, JobState, JobStatus};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a status that may still change is served from memory.
const FRESH: Duration = Duration::from_millis(50);
/// How long a completed job is served from memory.
const SETTLED: Duration = Duration::from_secs(60);
/// Entries kept at most; past it the cache is cleared (cheap, and rare).
const CAPACITY: usize = 50_000;

#[derive(Default)]
pub struct HotStatus {
    entries: Mutex<HashMap<JobId, (Instant, JobStatus)>>,
}

impl HotStatus {
    /// The cached status when it may still be served.
    pub fn get(&self, id: &JobId) -> Option<JobStatus> {
        let entries = self.entries.lock().ok()?;
        let (at, status) = entries.get(id)?;
        let window = if status.state == JobState::Completed {
            SETTLED
        } else {
            FRESH
        };
        (at.elapsed() < window).then(|| status.clone())
    }

    /// Caches `status`, unless the cache holds a later write of the job (a status event can
    /// arrive after a store read that already saw a newer state).
    pub fn put(&self, status: &JobStatus) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries
                .get(&status.id)
                .is_some_and(|(_, held)| held.updated_at_ms > status.updated_at_ms)
            {
                return;
            }
            let full = (entries.len() >= CAPACITY).then(|| std::mem::take(&mut *entries));
            entries.insert(status.id.clone(), (Instant::now(), status.clone()));
            drop(entries);
            // Freed outside the lock: tens of thousands of statuses take milliseconds.
            drop(full);
        }
    }

    /// Forgets what this replica holds of the job (it starts again: the store has it now).
    pub fn forget(&self, id: &JobId) {
        let removed = self.entries.lock().ok().and_then(|mut e| e.remove(id));
        drop(removed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_proto::JobSpec;

    #[test]
    fn a_late_event_never_replaces_a_later_status() {
        let hot = HotStatus::default();
        let mut done = JobStatus::queued(JobSpec::new("http://h/v", None, None, None).unwrap(), 0);
        let mut running = done.clone();
        running.state = JobState::Transcoding;
        running.updated_at_ms = 10;
        done.state = JobState::Completed;
        done.updated_at_ms = 20;
        hot.put(&done);
        hot.put(&running);
        assert_eq!(
            hot.get(&done.id).map(|s| s.state),
            Some(JobState::Completed)
        );
        // A job submitted again (after the sweep deleted it) is newer: it replaces the entry.
        let mut again = running.clone();
        again.state = JobState::Queued;
        again.updated_at_ms = 30;
        hot.put(&again);
        assert_eq!(hot.get(&done.id).map(|s| s.state), Some(JobState::Queued));
        hot.forget(&done.id);
        assert_eq!(hot.get(&done.id), None, "read from the store again");
    }

    #[test]
    fn only_completed_jobs_outlive_the_freshness_window() {
        let hot = HotStatus::default();
        let mut status =
            JobStatus::queued(JobSpec::new("http://h/v", None, None, None).unwrap(), 0);
        hot.put(&status);
        assert!(hot.get(&status.id).is_some());
        if let Some(entry) = hot.entries.lock().unwrap().get_mut(&status.id) {
            entry.0 -= FRESH * 2;
        }
        assert!(
            hot.get(&status.id).is_none(),
            "a stale running job is read again"
        );
        status.state = JobState::Completed;
        hot.put(&status);
        if let Some(entry) = hot.entries.lock().unwrap().get_mut(&status.id) {
            entry.0 -= FRESH * 100;
        }
        assert!(
            hot.get(&status.id).is_some(),
            "a completed job does not change"
        );
        if let Some(entry) = hot.entries.lock().unwrap().get_mut(&status.id) {
            entry.0 -= SETTLED;
        }
        assert!(
            hot.get(&status.id).is_none(),
            "but it may be swept and submitted again: read again after a while"
        );
    }
}
