//! Hot status reads from memory, with the store as the source of truth: a completed job never
//! changes, so its status is kept until evicted; any other state is served from memory for at
//! most [`FRESH`] (the workers and other replicas write the store, not this cache), which
//! turns a burst of polls of one running job into one store read per window while a client
//! waiting for completion sees it within 50 ms.

use shared_proto::{JobId, JobState, JobStatus};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a status that may still change is served from memory.
const FRESH: Duration = Duration::from_millis(50);
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
        (status.state == JobState::Completed || at.elapsed() < FRESH).then(|| status.clone())
    }

    pub fn put(&self, status: &JobStatus) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(status.id.clone(), (Instant::now(), status.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_proto::JobSpec;

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
            entry.0 -= FRESH * 1000;
        }
        assert!(
            hot.get(&status.id).is_some(),
            "a completed job never changes"
        );
    }
}
