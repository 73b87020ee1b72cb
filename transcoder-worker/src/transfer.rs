//! Moving files between the store and the work directory, through the store's own streaming
//! download and self-aborting multipart upload, hashing on the way.

use hopster_common::store::{DownloadError, StoreError};
use hopster_common::worker::{JobTracker, StageError};
use hopster_common::Store;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use sha2::{Digest, Sha256};
use shared_proto::spec::hex;
use shared_proto::{ErrorCode, JobStatus};
use tokio::io::AsyncReadExt;

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

/// Copies the staged source (or a stored result) from the store to a local file, streaming.
pub async fn fetch(store: &Store, key: &str, to: &std::path::Path) -> Result<(), StageError> {
    match store.download_to_file(key, to).await {
        Ok(_) => Ok(()),
        Err(DownloadError::Missing(_)) => Err(StageError::abort(
            ErrorCode::Internal,
            format!("the staged source {key} is missing from the store"),
        )),
        Err(DownloadError::Store(e)) => Err(e.into()),
        Err(DownloadError::Local(e)) => Err(local(e)),
    }
}

/// Uploads the result in parts, hashing it on the way. Returns its size and SHA-256. An `fs`
/// store on the work directory's filesystem takes the file itself instead, then hashes it
/// (`Store::link_file`): a whole-video passthrough of 547 MiB spent about 1.6 s copying it.
pub async fn upload(
    file: &std::path::Path,
    key: &str,
    tracker: &mut JobTracker,
) -> Result<(u64, String), StageError> {
    if tracker.store().link_file(file, key).await? {
        let (size, sha256) = sha256_file(file).await?;
        JobStatus::record_transfer(&mut tracker.status_mut().progress.upload, size, Some(size));
        return Ok((size, sha256));
    }
    let mut input = tokio::fs::File::open(file).await.map_err(local)?;
    let total = input.metadata().await.map_err(local)?.len();
    // Any early return below drops the upload, which aborts it.
    let mut upload = tracker.store().upload(key, UPLOAD_PART, 2).await?;
    let mut hasher = Sha256::new();
    let mut sent = 0u64;
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = input.read(&mut buf).await.map_err(local)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        upload.put(buf[..n].to_vec().into()).await?;
        sent += n as u64;
        JobStatus::record_transfer(&mut tracker.status_mut().progress.upload, sent, Some(total));
        tracker.flush_throttled().await?;
    }
    upload.finish().await?;
    Ok((sent, hex(&hasher.finalize())))
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
