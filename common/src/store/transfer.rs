//! Moving bytes between the bucket and the world: an object streamed into a local file, and a
//! multipart upload that leaves nothing behind unless it is finished.

use super::{Store, StoreError};
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, WriteMultipart};
use tokio::io::AsyncWriteExt;

/// Why a download to a local file failed: the store, or the local file.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("there is no object {0}")]
    Missing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("local file: {0}")]
    Local(#[from] std::io::Error),
}

/// A multipart upload in progress. Unless [`Upload::finish`] completes it, it is aborted when
/// dropped (on an error's early return as on a panic), so no half-written parts stay behind.
pub struct Upload {
    writer: Option<WriteMultipart>,
    key: String,
    parts_in_flight: usize,
}

impl Store {
    /// Streams the object at `key` into a new local file at `to`.
    pub async fn download_to_file(
        &self,
        key: &str,
        to: &std::path::Path,
    ) -> Result<u64, DownloadError> {
        let got = match self.inner.get(&Path::from(key)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(DownloadError::Missing(key.to_owned()))
            }
            Err(e) => return Err(StoreError::from(e).into()),
        };
        let mut file = tokio::fs::File::create(to).await?;
        let mut stream = got.into_stream();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(StoreError::from)?;
            size += chunk.len() as u64;
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        Ok(size)
    }

    /// Starts a multipart upload to `key` in parts of `part_size` bytes, with at most
    /// `parts_in_flight` parts being sent at once.
    pub async fn upload(
        &self,
        key: &str,
        part_size: usize,
        parts_in_flight: usize,
    ) -> Result<Upload, StoreError> {
        let upload = self.inner.put_multipart(&Path::from(key)).await?;
        Ok(Upload {
            writer: Some(WriteMultipart::new_with_chunk_size(upload, part_size)),
            key: key.to_owned(),
            parts_in_flight: parts_in_flight.max(1),
        })
    }
}

impl Upload {
    /// Adds bytes, waiting while too many parts are in flight.
    pub async fn put(&mut self, bytes: bytes::Bytes) -> Result<(), StoreError> {
        if let Some(writer) = self.writer.as_mut() {
            writer.wait_for_capacity(self.parts_in_flight).await?;
            writer.put(bytes);
        }
        Ok(())
    }

    /// Completes the upload: the object appears whole, or not at all.
    pub async fn finish(mut self) -> Result<(), StoreError> {
        if let Some(writer) = self.writer.take() {
            writer.finish().await?;
        }
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        let key = std::mem::take(&mut self.key);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(e) = writer.abort().await {
                        log::warn!("aborting the partial upload of {key}: {e}");
                    }
                });
            }
            Err(_) => log::warn!("the partial upload of {key} could not be aborted: no runtime"),
        }
    }
}
