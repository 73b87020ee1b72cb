//! The retention sweep: what is old is deleted, what a running job needs never is.

use super::{Store, StoreError};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};
use shared_proto::{keys, JobId};
use std::time::Duration;

/// The job whose status `meta` is (`jobs/{id}.json`).
fn job_id_of(meta: &ObjectMeta) -> Option<JobId> {
    meta.location
        .filename()
        .and_then(|f| f.strip_suffix(".json"))
        .and_then(JobId::parse)
}

/// What a retention sweep deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub jobs: usize,
    pub results: usize,
    pub sources: usize,
}

impl Store {
    /// Deletes what is older than `max_age`: finished jobs (status, index entry, result,
    /// segments, poster) whose last change is older, staged sources stored earlier, and
    /// results or posters whose job is gone. Jobs still running are never touched.
    pub async fn sweep(&self, max_age: Duration) -> Result<Swept, StoreError> {
        use futures::TryStreamExt;
        let cutoff_ms = crate::now_ms().saturating_sub(max_age.as_millis() as u64);
        let old =
            |meta: &ObjectMeta| (meta.last_modified.timestamp_millis().max(0) as u64) < cutoff_ms;
        let mut swept = Swept::default();
        // The sources that jobs not yet finished refer to: never swept (the downloader may
        // have found one staged and handed the job on, trusting it to stay).
        let mut in_use: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut use_source = |url: &str| in_use.extend(keys::source_owners(url));
        let scan_started_ms = crate::now_ms();
        let list = |prefix: &'static str| {
            self.inner
                .list(Some(&Path::from(prefix)))
                .try_collect::<Vec<ObjectMeta>>()
        };
        // Finished jobs first: their results go with them.
        for meta in list("jobs").await? {
            let Some(id) = job_id_of(&meta) else {
                continue;
            };
            let Some(status) = self.status(&id).await? else {
                continue;
            };
            if !status.state.is_terminal() {
                use_source(&status.spec.url);
                continue;
            }
            if status.updated_at_ms >= cutoff_ms {
                continue;
            }
            self.delete_job_outputs(&id).await?;
            self.delete_status(&id).await?;
            swept.jobs += 1;
        }
        // Index objects none of whose jobs is left (swept above, submitted again since, or
        // never queued).
        for meta in list(keys::INDEX_PREFIX).await? {
            let name = meta.location.as_ref();
            if !old(&meta) {
                continue;
            }
            let mut listed = false;
            for entry in self.index_object_entries(&meta).await? {
                listed |= self.entry_status(&entry).await?.is_some();
            }
            if !listed {
                self.delete_key(name).await?;
            }
        }
        // Outputs whose job is gone (swept above, or never finished its status).
        for prefix in ["results", "posters"] {
            for meta in list(prefix).await? {
                let name = meta.location.as_ref();
                let id = name
                    .trim_start_matches(prefix)
                    .trim_start_matches('/')
                    .get(..32)
                    .and_then(JobId::parse);
                let orphan = match &id {
                    Some(id) => self.head(&keys::status_key(id)).await?.is_none(),
                    None => true,
                };
                if orphan && old(&meta) {
                    self.delete_key(name).await?;
                    swept.results += 1;
                }
            }
        }
        // Jobs submitted since the scan above began refer to sources too: read them again,
        // just before deleting, so the window left is the delete itself.
        for meta in list("jobs").await? {
            if (meta.last_modified.timestamp_millis().max(0) as u64) + 1000 < scan_started_ms {
                continue;
            }
            let id = job_id_of(&meta);
            if let Some(status) = match id {
                Some(id) => self.status(&id).await?,
                None => None,
            } {
                if !status.state.is_terminal() {
                    use_source(&status.spec.url);
                }
            }
        }
        for meta in list("sources").await? {
            let key = meta.location.as_ref();
            if old(&meta) && !in_use.contains(keys::source_owner(key)) {
                self.delete_key(key).await?;
                swept.sources += 1;
            }
        }
        crate::metrics::count(
            "hopster_swept_objects_total",
            &[("kind", "job")],
            swept.jobs as f64,
        );
        crate::metrics::count(
            "hopster_swept_objects_total",
            &[("kind", "result")],
            swept.results as f64,
        );
        crate::metrics::count(
            "hopster_swept_objects_total",
            &[("kind", "source")],
            swept.sources as f64,
        );
        Ok(swept)
    }

    /// Jobs still `queued` whose status last changed before `before_ms` (and, when given, at
    /// or after `since_ms`, which skips reading statuses an earlier pass looked at).
    pub async fn stale_queued(
        &self,
        before_ms: u64,
        since_ms: Option<u64>,
    ) -> Result<Vec<shared_proto::JobStatus>, StoreError> {
        use futures::TryStreamExt;
        let listed: Vec<ObjectMeta> = self
            .inner
            .list(Some(&Path::from("jobs")))
            .try_collect()
            .await?;
        let mut stale = Vec::new();
        for meta in listed {
            let modified = meta.last_modified.timestamp_millis().max(0) as u64;
            if modified >= before_ms || since_ms.is_some_and(|since| modified < since) {
                continue;
            }
            let id = job_id_of(&meta);
            let Some(status) = (match id {
                Some(id) => self.status(&id).await?,
                None => None,
            }) else {
                continue;
            };
            if status.state == shared_proto::JobState::Queued && status.updated_at_ms < before_ms {
                stale.push(status);
            }
        }
        Ok(stale)
    }

    /// Claims `name` once among all processes sharing the store (a conditional create of
    /// `reaper/{name}`): `true` for the one caller that created it.
    pub async fn claim(&self, name: &str) -> Result<bool, StoreError> {
        use object_store::{PutMode, PutOptions};
        let path = Path::from(format!("reaper/{name}"));
        match self
            .inner
            .put_opts(&path, Vec::new().into(), PutOptions::from(PutMode::Create))
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Lets go of a claim.
    pub async fn release(&self, name: &str) -> Result<(), StoreError> {
        self.delete_key(&format!("reaper/{name}")).await
    }

    /// Deletes a job's result (all HLS segments too) and poster.
    pub async fn delete_job_outputs(&self, id: &JobId) -> Result<(), StoreError> {
        use futures::TryStreamExt;
        for profile in shared_proto::Profile::ALL {
            if profile != shared_proto::Profile::Hls {
                self.delete_key(&keys::result_key(id, profile)).await?;
            }
        }
        let segments: Vec<ObjectMeta> = self
            .inner
            .list(Some(&Path::from(keys::hls_prefix(id))))
            .try_collect()
            .await?;
        for meta in segments {
            self.delete_key(meta.location.as_ref()).await?;
        }
        self.delete_key(&keys::poster_key(id)).await
    }
}
