//! Serving a stored result with HTTP Range (one range; others get the whole file, as RFC 9110
//! allows).

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use futures::StreamExt;
use object_store::path::Path;
use object_store::{GetOptions, GetRange};
use shared_proto::ErrorCode;

mod spec;
pub use spec::{parse, ByteRange};

/// Streams the object at `key` (`size` bytes) from the store, honouring `Range`.
pub async fn serve(
    state: &AppState,
    req: &HttpRequest,
    key: &str,
    size: u64,
    mime: &str,
    filename: &str,
) -> Result<HttpResponse, ApiError> {
    let range = parse(
        req.headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok()),
        size,
    );
    let (mut response, get_range, len) = match range {
        ByteRange::Unsatisfiable => {
            return Ok(HttpResponse::RangeNotSatisfiable()
                .insert_header((header::CONTENT_RANGE, format!("bytes */{size}")))
                .insert_header((header::ACCEPT_RANGES, "bytes"))
                .finish());
        }
        ByteRange::Full => (HttpResponse::Ok(), None, size),
        ByteRange::Partial { first, last } => {
            let mut r = HttpResponse::PartialContent();
            r.insert_header((
                header::CONTENT_RANGE,
                format!("bytes {first}-{last}/{size}"),
            ));
            (
                r,
                Some(GetRange::Bounded(first..last + 1)),
                last + 1 - first,
            )
        }
    };
    let options = GetOptions {
        range: get_range,
        ..GetOptions::default()
    };
    let got = state
        .store
        .objects()
        .get_opts(&Path::from(key), options)
        .await
        .map_err(|e| match e {
            object_store::Error::NotFound { .. } => {
                ApiError::new(ErrorCode::UnknownJob, "the result is no longer stored")
            }
            other => hopster_common::store::StoreError::from(other).into(),
        })?;
    let body = got
        .into_stream()
        .map(|chunk| chunk.map_err(|e| actix_web::error::ErrorServiceUnavailable(e.to_string())));
    Ok(response
        .insert_header((header::CONTENT_TYPE, mime))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .no_chunking(len)
        .streaming(body))
}
