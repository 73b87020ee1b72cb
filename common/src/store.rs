//! The bucket: status documents, staged sources and results, behind `object_store` so the
//! same code runs on a directory (`fs`) and on any S3 API (`s3`).

use crate::index::IndexQueue;
use crate::settings::{Backend, StoreSettings};
use anyhow::Context;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::RetryConfig;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use shared_proto::{keys, JobId, JobStatus};
use std::sync::Arc;
use std::time::Duration;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store request failed: {0}")]
    Request(#[source] object_store::Error),
    #[error("job {0} was cancelled")]
    Cancelled(JobId),
    #[error("status document of job {id} is not valid JSON: {source}")]
    CorruptStatus {
        id: JobId,
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    /// Whether trying again later may succeed (network, 5xx) rather than never (bad data).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Request(e) => !matches!(
                e,
                object_store::Error::NotFound { .. }
                    | object_store::Error::InvalidPath { .. }
                    | object_store::Error::NotSupported { .. }
                    | object_store::Error::NotImplemented { .. }
            ),
            StoreError::CorruptStatus { .. } | StoreError::Cancelled(_) => false,
        }
    }
}

impl From<object_store::Error> for StoreError {
    fn from(e: object_store::Error) -> Self {
        StoreError::Request(e)
    }
}

/// The outcome of creating a status document that may already exist.
#[derive(Debug)]
pub enum Created {
    /// This call created the job.
    New,
    /// The job existed already (the same spec was submitted before).
    Existing(Box<JobStatus>),
}

/// Where every status write is announced (the broker's events exchange), for live progress.
pub trait StatusSink: Send + Sync + std::fmt::Debug {
    /// Announces the status; best effort, never blocks long, never fails the write.
    fn announce(&self, status: &JobStatus) -> futures::future::BoxFuture<'_, ()>;
}

/// A handle on the bucket; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// Signs presigned GET URLs (the s3 backend only).
    signer: Option<Arc<dyn object_store::signer::Signer>>,
    presign_expiry: Duration,
    events: Option<Arc<dyn StatusSink>>,
    index: Arc<IndexQueue>,
}

/// Index entries per object at most (a listing reads the body of a batch it pages through).
const INDEX_PER_OBJECT: usize = 64;

impl Store {
    /// Opens the configured backend. The fs root is created when missing.
    pub fn from_settings(settings: &StoreSettings) -> anyhow::Result<Store> {
        let mut signer: Option<Arc<dyn object_store::signer::Signer>> = None;
        let inner: Arc<dyn ObjectStore> = match settings.backend {
            Backend::Fs => {
                std::fs::create_dir_all(&settings.root)
                    .with_context(|| format!("creating store root {}", settings.root.display()))?;
                Arc::new(LocalFileSystem::new_with_prefix(&settings.root)?)
            }
            Backend::S3 => {
                let retry = RetryConfig {
                    max_retries: settings.max_retries,
                    retry_timeout: Duration::from_secs(settings.retry_timeout_secs),
                    ..RetryConfig::default()
                };
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(&settings.bucket)
                    .with_region(&settings.region)
                    .with_retry(retry);
                if let Some(id) = &settings.access_key_id {
                    b = b.with_access_key_id(id);
                }
                if let Some(secret) = &settings.secret_access_key {
                    b = b.with_secret_access_key(secret.expose());
                }
                // Presigned URLs name the endpoint clients reach, which in compose is not
                // the one the services use.
                let mut public = b.clone();
                if let Some(endpoint) = &settings.endpoint {
                    b = b
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"));
                }
                if let Some(endpoint) = settings
                    .public_endpoint
                    .as_ref()
                    .or(settings.endpoint.as_ref())
                {
                    public = public
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"));
                }
                signer = Some(Arc::new(
                    public.build().context("configuring the S3 signer")?,
                ));
                Arc::new(b.build().context("configuring the S3 store")?)
            }
        };
        Ok(Store {
            inner,
            signer,
            presign_expiry: Duration::from_secs(settings.presign_expiry_secs.max(1)),
            events: None,
            index: Arc::new(IndexQueue::new(INDEX_PER_OBJECT)),
        })
    }

    /// The same store, announcing every status write to `sink`.
    pub fn with_events(mut self, sink: Arc<dyn StatusSink>) -> Store {
        self.events = Some(sink);
        self
    }

    /// A presigned GET URL of `key`, or `None` when the backend cannot sign (fs).
    pub async fn presigned_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        let url = signer
            .signed_url(
                object_store::signer::Method::GET,
                &Path::from(key),
                self.presign_expiry,
            )
            .await?;
        Ok(Some(url.to_string()))
    }

    async fn announce(&self, status: &JobStatus) {
        if let Some(sink) = &self.events {
            sink.announce(status).await;
        }
    }

    /// The raw store, for streaming reads and multipart writes.
    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// A job's status, or `None` when there is no such job.
    pub async fn status(&self, id: &JobId) -> Result<Option<JobStatus>, StoreError> {
        let path = Path::from(keys::status_key(id));
        let bytes = match self.inner.get(&path).await {
            Ok(got) => got.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StoreError::CorruptStatus {
                id: id.clone(),
                source,
            })
    }

    /// Creates the job's status only if it does not exist yet (a conditional put), so two
    /// replicas receiving the same request at once create one job between them.
    pub async fn create_status(&self, status: &JobStatus) -> Result<Created, StoreError> {
        let path = Path::from(keys::status_key(&status.id));
        let opts = PutOptions::from(PutMode::Create);
        match self.inner.put_opts(&path, encode(status), opts).await {
            // Not announced: nobody can follow a job before its id is handed out, and the
            // first thing `/events` sends is the stored status.
            Ok(_) => Ok(Created::New),
            Err(object_store::Error::AlreadyExists { .. }) => {
                match self.status(&status.id).await? {
                    Some(existing) => Ok(Created::Existing(Box::new(existing))),
                    // Deleted between the two calls: report the race as a transient error.
                    None => Err(StoreError::Request(object_store::Error::Generic {
                        store: "hopster",
                        source: "status vanished while being read".into(),
                    })),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the status as it is (last writer wins; each stage has one writer at a time).
    pub async fn put_status(&self, status: &JobStatus) -> Result<(), StoreError> {
        let path = Path::from(keys::status_key(&status.id));
        self.inner.put(&path, encode(status)).await?;
        self.announce(status).await;
        Ok(())
    }

    /// Reads, changes and writes the status back, stamping `updated_at_ms`. `None` when the
    /// job does not exist.
    pub async fn update_status(
        &self,
        id: &JobId,
        change: impl FnOnce(&mut JobStatus),
    ) -> Result<Option<JobStatus>, StoreError> {
        let Some(mut status) = self.status(id).await? else {
            return Ok(None);
        };
        change(&mut status);
        status.updated_at_ms = crate::now_ms();
        self.put_status(&status).await?;
        Ok(Some(status))
    }

    /// Removes a status document (a submission that could not be queued).
    pub async fn delete_status(&self, id: &JobId) -> Result<(), StoreError> {
        match self.inner.delete(&Path::from(keys::status_key(id))).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The object's metadata, or `None` when it does not exist.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        match self.inner.head(&Path::from(key)).await {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

fn encode(status: &JobStatus) -> PutPayload {
    // Serializing plain data structs cannot fail; an empty body would be caught on read.
    PutPayload::from(serde_json::to_vec(status).unwrap_or_default())
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
        let list = |prefix: &'static str| {
            self.inner
                .list(Some(&Path::from(prefix)))
                .try_collect::<Vec<ObjectMeta>>()
        };
        // Finished jobs first: their results go with them.
        for meta in list("jobs").await? {
            let Some(id) = meta
                .location
                .filename()
                .and_then(|f| f.strip_suffix(".json"))
                .and_then(JobId::parse)
            else {
                continue;
            };
            let Some(status) = self.status(&id).await? else {
                continue;
            };
            if !status.state.is_terminal() || status.updated_at_ms >= cutoff_ms {
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
        for meta in list("sources").await? {
            if old(&meta) {
                self.delete_key(meta.location.as_ref()).await?;
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

    /// Deletes one object; a missing one is fine.
    pub async fn delete_key(&self, key: &str) -> Result<(), StoreError> {
        match self.inner.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The status of the job an index entry names, when the entry is still that job's: a job
    /// submitted again after failing has a newer entry, and a swept or unqueued job none.
    async fn entry_status(&self, entry: &str) -> Result<Option<JobStatus>, StoreError> {
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
    async fn index_object_entries(&self, meta: &ObjectMeta) -> Result<Vec<String>, StoreError> {
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
