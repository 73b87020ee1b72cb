//! Serving a stored result with HTTP Range (one range; others get the whole file, as RFC 9110
//! allows).

use crate::error::ApiError;
use crate::startup::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use futures::StreamExt;
use object_store::path::Path;
use object_store::{GetOptions, GetRange};
use shared_proto::ErrorCode;

/// What a `Range` header asks of an object of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    Full,
    /// Inclusive bounds, as in `Content-Range`.
    Partial {
        first: u64,
        last: u64,
    },
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n`. A malformed or multi-range header is
/// ignored (the whole object is sent).
pub fn parse(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return ByteRange::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| s.parse::<u64>().ok();
    let (first, last) = match (a.is_empty(), b.is_empty()) {
        (false, true) => match num(a) {
            Some(first) => (first, size.saturating_sub(1)),
            None => return ByteRange::Full,
        },
        (false, false) => match (num(a), num(b)) {
            (Some(first), Some(last)) if first <= last => (first, last.min(size.saturating_sub(1))),
            _ => return ByteRange::Full,
        },
        (true, false) => match num(b) {
            Some(0) => return ByteRange::Unsatisfiable,
            Some(n) => (size.saturating_sub(n), size.saturating_sub(1)),
            None => return ByteRange::Full,
        },
        (true, true) => return ByteRange::Full,
    };
    if first >= size {
        return ByteRange::Unsatisfiable;
    }
    ByteRange::Partial { first, last }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_per_rfc_9110() {
        let p = |h: &str| parse(Some(h), 1000);
        assert_eq!(p("bytes=0-99"), ByteRange::Partial { first: 0, last: 99 });
        assert_eq!(
            p("bytes=900-"),
            ByteRange::Partial {
                first: 900,
                last: 999
            }
        );
        assert_eq!(
            p("bytes=-100"),
            ByteRange::Partial {
                first: 900,
                last: 999
            }
        );
        assert_eq!(
            p("bytes=990-5000"),
            ByteRange::Partial {
                first: 990,
                last: 999
            }
        );
        assert_eq!(
            p("bytes=-5000"),
            ByteRange::Partial {
                first: 0,
                last: 999
            }
        );
        assert_eq!(p("bytes=1000-"), ByteRange::Unsatisfiable);
        assert_eq!(p("bytes=-0"), ByteRange::Unsatisfiable);
        for ignored in [
            "bytes=5-1",
            "bytes=0-1,5-9",
            "items=0-1",
            "bytes=x-",
            "bytes=-",
        ] {
            assert_eq!(p(ignored), ByteRange::Full, "{ignored}");
        }
        assert_eq!(parse(None, 10), ByteRange::Full);
    }
}
