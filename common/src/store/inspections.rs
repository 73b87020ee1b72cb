//! Source inspections: their documents and storyboards, beside the jobs.

use super::{Store, StoreError};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use shared_proto::api::SourceStatus;
use shared_proto::{keys, JobId};

impl Store {
    /// An inspection's document, or `None` when there is none.
    pub async fn inspection(&self, id: &JobId) -> Result<Option<SourceStatus>, StoreError> {
        let Some(bytes) = self.bytes(&keys::inspection_key(id)).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StoreError::CorruptStatus {
                id: id.clone(),
                source,
            })
    }

    /// Creates the inspection's document only if there is none yet (two gateways asked for
    /// one source at once make one inspection): `false` when one existed.
    pub async fn create_inspection(&self, status: &SourceStatus) -> Result<bool, StoreError> {
        let path = Path::from(keys::inspection_key(&status.id));
        let body = PutPayload::from(serde_json::to_vec(status).unwrap_or_default());
        match self
            .inner
            .put_opts(&path, body, PutOptions::from(PutMode::Create))
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the inspection's document as it is, stamping `updated_at_ms`.
    pub async fn put_inspection(&self, status: &SourceStatus) -> Result<(), StoreError> {
        let mut status = status.clone();
        status.updated_at_ms = crate::now_ms();
        let body = PutPayload::from(serde_json::to_vec(&status).unwrap_or_default());
        self.inner
            .put(&Path::from(keys::inspection_key(&status.id)), body)
            .await?;
        Ok(())
    }

    /// A whole (small) object, or `None` when there is none.
    pub async fn bytes(&self, key: &str) -> Result<Option<bytes::Bytes>, StoreError> {
        match self.inner.get(&Path::from(key)).await {
            Ok(got) => Ok(Some(got.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes a whole (small) object.
    pub async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.inner
            .put(&Path::from(key), PutPayload::from(bytes))
            .await?;
        Ok(())
    }
}
