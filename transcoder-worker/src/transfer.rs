//! Moving files between the store and the work directory: streaming both ways, multipart up,
//! hashing on the way.

use futures::StreamExt;
use hopster_common::store::StoreError;
use hopster_common::worker::{JobTracker, StageError};
use hopster_common::Store;
use object_store::path::Path;
use object_store::{ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};
use shared_proto::spec::hex;
use shared_proto::{ErrorCode, JobStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const UPLOAD_PART: usize = 8 * 1024 * 1024;

fn local(e: std::io::Error) -> StageError {
    StageError::retry(ErrorCode::TranscodeFailed, format!("local file: {e}"))
}

/// Size and SHA-256 of a local file.
pub async fn sha256_file(path: &std::path::Path) -> Result<(u64, String), StageError> {
    let mut input = tokio::fs::File::open(path).await.map_err(local)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    let mut size = 0u64;
    loop {
        let n = input.read(&mut buf).await.map_err(local)?;
        if n == 0 {
            return Ok((size, hex(&hasher.finalize())));
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
}

/// Copies the staged source from the store to a local file, streaming.
pub async fn fetch(store: &Store, key: &str, to: &std::path::Path) -> Result<(), StageError> {
    let got = store
        .objects()
        .get(&Path::from(key))
        .await
        .map_err(|e| match e {
            object_store::Error::NotFound { .. } => StageError::abort(
                ErrorCode::Internal,
                format!("the staged source {key} is missing from the store"),
            ),
            other => StageError::from(StoreError::from(other)),
        })?;
    let mut file = tokio::fs::File::create(to).await.map_err(local)?;
    let mut stream = got.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(StoreError::from)?;
        file.write_all(&chunk).await.map_err(local)?;
    }
    file.flush().await.map_err(local)?;
    Ok(())
}

/// Uploads the result in parts, hashing it on the way. Returns its size and SHA-256.
pub async fn upload(
    file: &std::path::Path,
    key: &str,
    tracker: &mut JobTracker,
) -> Result<(u64, String), StageError> {
    let mut input = tokio::fs::File::open(file).await.map_err(local)?;
    let total = input.metadata().await.map_err(local)?.len();
    let upload = tracker
        .store()
        .objects()
        .put_multipart(&Path::from(key))
        .await
        .map_err(StoreError::from)?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, UPLOAD_PART);
    let mut hasher = Sha256::new();
    let mut sent = 0u64;
    let mut buf = vec![0u8; 1024 * 1024];
    let copied: Result<(), StageError> = async {
        loop {
            let n = input.read(&mut buf).await.map_err(local)?;
            if n == 0 {
                return Ok(());
            }
            hasher.update(&buf[..n]);
            writer
                .wait_for_capacity(2)
                .await
                .map_err(StoreError::from)?;
            writer.write(&buf[..n]);
            sent += n as u64;
            JobStatus::record_transfer(
                &mut tracker.status_mut().progress.upload,
                sent,
                Some(total),
            );
            tracker.flush_throttled().await?;
        }
    }
    .await;
    if let Err(e) = copied {
        if let Err(abort) = writer.abort().await {
            log::warn!("aborting the partial upload of {key}: {abort}");
        }
        return Err(e);
    }
    writer.finish().await.map_err(StoreError::from)?;
    let digest = hex(&hasher.finalize());
    Ok((sent, digest))
}

/// Stores a small local file in one request (HLS segments, posters). Returns its size.
pub async fn put_file(store: &Store, file: &std::path::Path, key: &str) -> Result<u64, StageError> {
    let bytes = tokio::fs::read(file).await.map_err(local)?;
    let size = bytes.len() as u64;
    store
        .objects()
        .put(&Path::from(key), bytes.into())
        .await
        .map_err(StoreError::from)?;
    Ok(size)
}
