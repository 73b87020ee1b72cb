//! The listing index's reads: a page of jobs, newest first.

use super::{Store, StoreError};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use shared_proto::{keys, JobStatus};

impl Store {
    /// The status of the job an index entry names, when the entry is still that job's: a job
    /// submitted again after failing has a newer entry, and a swept or unqueued job none.
    pub(super) async fn entry_status(&self, entry: &str) -> Result<Option<JobStatus>, StoreError> {
        let Some((id, created)) = keys::parse_index_key(entry) else {
            return Ok(None);
        };
        match self.status(&id).await {
            Ok(status) => Ok(status.filter(|s| s.created_at_ms == created)),
            Err(StoreError::CorruptStatus { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The index keys an index object holds: from its name, or from its body when it has one
    /// (nothing when it is gone meanwhile).
    pub(super) async fn index_object_entries(
        &self,
        meta: &ObjectMeta,
    ) -> Result<Vec<String>, StoreError> {
        if meta.size == 0 {
            return Ok(keys::index_entries(meta.location.as_ref()).unwrap_or_default());
        }
        let body = match self.inner.get(&meta.location).await {
            Ok(got) => got.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        Ok(keys::index_body_entries(&String::from_utf8_lossy(&body)))
    }

    /// Records the job in the listing index; returns once it is written. Jobs indexed while
    /// another index write is in flight share the next object.
    pub async fn index_job(&self, status: &JobStatus) -> Result<(), StoreError> {
        self.index
            .add(&self.inner, &status.id, status.created_at_ms)
            .await?;
        Ok(())
    }

    /// A page of jobs, newest first, from the listing index: up to `limit` for which `keep`
    /// holds, after the `cursor` (an index key a previous page returned). Returns the jobs
    /// and the cursor of the next page, when there may be one.
    pub async fn list_jobs(
        &self,
        limit: usize,
        cursor: Option<&str>,
        keep: impl Fn(&JobStatus) -> bool,
    ) -> Result<(Vec<JobStatus>, Option<String>), StoreError> {
        use futures::TryStreamExt;
        let prefix = Path::from(keys::INDEX_PREFIX);
        // Every object holding an entry after the cursor lists after it (an object's name
        // sorts by its oldest entry); such an object may also hold entries before it.
        let objects: Vec<ObjectMeta> = match cursor {
            Some(after) => self
                .inner
                .list_with_offset(Some(&prefix), &Path::from(after)),
            None => self.inner.list(Some(&prefix)),
        }
        .try_collect()
        .await?;
        let after = |entry: &String| cursor.is_none_or(|c| entry.as_str() > c);
        // Entries known from names, and batches whose bodies are read only when the page
        // reaches their newest entry (ordered by it).
        let mut known = std::collections::BTreeSet::new();
        let mut batches = Vec::new();
        for meta in objects {
            let Some(named) = keys::index_entries(meta.location.as_ref()) else {
                continue;
            };
            if meta.size == 0 {
                known.extend(named.into_iter().filter(after));
            } else if let Some(newest) = named.into_iter().min() {
                batches.push((newest, meta));
            }
        }
        batches.sort_unstable_by(|a, b| b.0.cmp(&a.0));
        let mut found = Vec::new();
        let mut last = None;
        loop {
            while let Some((newest, _)) = batches.last() {
                if known.first().is_some_and(|first| first < newest) {
                    break;
                }
                if let Some((_, meta)) = batches.pop() {
                    let entries = self.index_object_entries(&meta).await?;
                    known.extend(entries.into_iter().filter(after));
                }
            }
            let Some(entry) = known.pop_first() else {
                break;
            };
            if found.len() >= limit {
                return Ok((found, last));
            }
            let status = self.entry_status(&entry).await?;
            last = Some(entry);
            found.extend(status.filter(|s| keep(s)));
        }
        Ok((found, None))
    }
}
