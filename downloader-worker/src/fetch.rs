//! Streams a source URL into the store: multipart, never the whole file in memory, the byte
//! limit enforced while streaming.

use futures::StreamExt;
use hopster_common::settings::SourceSettings;
use hopster_common::store::Upload;
use hopster_common::worker::{JobTracker, StageError};
use shared_proto::{ErrorCode, JobStatus};

/// Part size of the multipart upload; S3 wants at least 5 MiB per part.
pub(crate) const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts uploading at once; bounds memory to about PART_BYTES × (this + 1).
pub(crate) const PARTS_IN_FLIGHT: usize = 2;

/// Sends a request to the source and classifies what comes back: 404/410 and refusals are
/// permanent, 5xx/429/408 and network errors transient, redirects the guard did not follow
/// forbidden.
pub(crate) async fn open(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<reqwest::Response, StageError> {
    let response = request
        .send()
        .await
        .map_err(|e| match hopster_common::guard::refusal(&e) {
            Some(refused) => StageError::abort(ErrorCode::SourceForbidden, refused),
            None => StageError::retry(ErrorCode::SourceUnreachable, format!("fetching {url}: {e}")),
        })?;
    let status = response.status();
    if status.as_u16() == 404 || status.as_u16() == 410 {
        return Err(StageError::abort(
            ErrorCode::SourceNotFound,
            format!("the source answered {status} for {url}"),
        ));
    }
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        return Err(StageError::retry(
            ErrorCode::SourceUnreachable,
            format!("the source answered {status} for {url}"),
        ));
    }
    if status.is_redirection() {
        // The guard's redirect policy follows only http(s) hops; anything else stops here.
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .unwrap_or("(none)")
            .chars()
            .take(200)
            .collect::<String>();
        return Err(StageError::abort(
            ErrorCode::SourceForbidden,
            format!(
                "the source redirected to `{location}`, which is not fetched (http and https only)"
            ),
        ));
    }
    if !status.is_success() {
        return Err(StageError::abort(
            ErrorCode::SourceUnreachable,
            format!("the source refused the download with {status} for {url}"),
        ));
    }
    Ok(response)
}

/// What a first look at the source found.
pub struct Sniffed {
    /// The total size, when the source serves byte ranges.
    pub ranges: Option<u64>,
    pub content_type: Option<String>,
    /// The first chunk of the body (an HLS playlist starts `#EXTM3U`).
    pub first: bytes::Bytes,
}

/// Asks for the source's first bytes: `206` with a `Content-Range` that names the total size
/// means it serves ranges. Only the first chunk of the body is read, whatever the server
/// sends.
pub async fn sniff(http: &reqwest::Client, url: &str) -> Result<Sniffed, StageError> {
    let mut response = open(
        http.get(url).header(reqwest::header::RANGE, "bytes=0-15"),
        url,
    )
    .await?;
    let ranges = (response.status().as_u16() == 206)
        .then(|| {
            response
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit('/').next())
                .and_then(|total| total.parse().ok())
        })
        .flatten();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let first = response.chunk().await.ok().flatten().unwrap_or_default();
    Ok(Sniffed {
        ranges,
        content_type,
        first,
    })
}

/// Downloads `url` into `key`, recording byte progress on the tracker. Returns the size.
pub async fn stage_source(
    http: &reqwest::Client,
    limits: &SourceSettings,
    url: &str,
    key: &str,
    tracker: &mut JobTracker,
) -> Result<u64, StageError> {
    let response = open(http.get(url), url).await?;
    let expected = response.content_length();
    if let Some(len) = expected.filter(|len| *len > limits.max_bytes) {
        return Err(too_large(len, limits.max_bytes));
    }

    // Dropped unfinished on any error below, the upload aborts: no half-written parts stay.
    let mut upload = tracker
        .store()
        .upload(key, PART_BYTES, PARTS_IN_FLIGHT)
        .await?;
    let bytes = copy_body(response, &mut upload, limits.max_bytes, expected, tracker).await?;
    upload.finish().await?;
    Ok(bytes)
}

async fn copy_body(
    response: reqwest::Response,
    upload: &mut Upload,
    max_bytes: u64,
    expected: Option<u64>,
    tracker: &mut JobTracker,
) -> Result<u64, StageError> {
    let mut body = response.bytes_stream();
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            StageError::retry(
                ErrorCode::SourceUnreachable,
                format!("reading the source: {e}"),
            )
        })?;
        bytes += chunk.len() as u64;
        hopster_common::metrics::count(
            "hopster_downloaded_bytes_total",
            &[("how", "staged")],
            chunk.len() as f64,
        );
        if bytes > max_bytes {
            return Err(too_large(bytes, max_bytes));
        }
        upload.put(chunk).await?;
        JobStatus::record_transfer(&mut tracker.status_mut().progress.download, bytes, expected);
        tracker.flush_throttled().await?;
    }
    if let Some(expected) = expected.filter(|e| *e != bytes) {
        return Err(StageError::retry(
            ErrorCode::SourceUnreachable,
            format!("the source ended after {bytes} of {expected} bytes"),
        ));
    }
    JobStatus::record_transfer(
        &mut tracker.status_mut().progress.download,
        bytes,
        Some(bytes),
    );
    Ok(bytes)
}

fn too_large(bytes: u64, max: u64) -> StageError {
    StageError::abort(
        ErrorCode::SourceTooLarge,
        format!("the source is larger than the limit of {max} bytes (at least {bytes})"),
    )
}
