//! Hot status reads from memory, with the store as the source of truth: a completed job never
//! changes, so its status is kept until evicted; any other state is always read from the
//! store (other replicas and the workers write it, and a client waiting for completion must
//! see it at once).

use shared_proto::{JobId, JobState, JobStatus};
use std::collections::HashMap;
use std::sync::Mutex;

/// Entries kept at most; past it the cache is cleared (cheap, and rare).
const CAPACITY: usize = 50_000;

#[derive(Default)]
pub struct HotStatus {
    entries: Mutex<HashMap<JobId, JobStatus>>,
}

impl HotStatus {
    /// The cached status when it may still be served.
    pub fn get(&self, id: &JobId) -> Option<JobStatus> {
        let entries = self.entries.lock().ok()?;
        entries.get(id).cloned()
    }

    pub fn put(&self, status: &JobStatus) {
        if status.state != JobState::Completed {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(status.id.clone(), status.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_proto::JobSpec;

    #[test]
    fn only_completed_jobs_are_served_from_memory() {
        let hot = HotStatus::default();
        let mut status =
            JobStatus::queued(JobSpec::new("http://h/v", None, None, None).unwrap(), 0);
        hot.put(&status);
        assert!(
            hot.get(&status.id).is_none(),
            "a running job is always read from the store"
        );
        status.state = JobState::Completed;
        hot.put(&status);
        assert!(
            hot.get(&status.id).is_some(),
            "a completed job never changes"
        );
    }
}
