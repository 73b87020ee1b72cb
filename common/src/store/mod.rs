//! The bucket: status documents, staged sources and results, behind `object_store` so the
//! same code runs on a directory (`fs`) and on any S3 API (`s3`). The retention sweep
//! (`retention`) and the listing index's reads (`listing`) are its parts.

mod inspections;
mod listing;
mod local;
mod retention;
mod transfer;

pub use retention::Swept;
pub use transfer::{DownloadError, Upload};

use crate::index::IndexQueue;
use crate::settings::{Backend, StoreSettings};
use anyhow::Context;
use object_store::aws::AmazonS3Builder;
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
    /// The `fs` backend itself, for what only a directory can do (link a file in).
    local: Option<Arc<local::Local>>,
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
        let mut fs = None;
        let inner: Arc<dyn ObjectStore> = match settings.backend {
            Backend::Fs => {
                std::fs::create_dir_all(&settings.root)
                    .with_context(|| format!("creating store root {}", settings.root.display()))?;
                let local = Arc::new(local::Local::new(&settings.root)?);
                fs = Some(local.clone());
                local
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
            local: fs,
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

    /// Stores the local file `file` as `key` without copying it, when this is the `fs`
    /// store on the file's own filesystem (a hard link, renamed into place); `Ok(false)` when
    /// not, and the caller uploads it. The file must not change afterwards: the object is
    /// the same file.
    pub async fn link_file(&self, file: &std::path::Path, key: &str) -> Result<bool, StoreError> {
        let Some(local) = self.local.clone() else {
            return Ok(false);
        };
        let (file, location) = (file.to_owned(), Path::from(key));
        tokio::task::spawn_blocking(move || local.link_in(&file, &location))
            .await
            .map_err(|e| {
                StoreError::Request(object_store::Error::Generic {
                    store: "hopster-fs",
                    source: e.into(),
                })
            })?
            .map_err(StoreError::Request)
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

impl Store {
    /// Deletes one object; a missing one is fine.
    pub async fn delete_key(&self, key: &str) -> Result<(), StoreError> {
        match self.inner.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
