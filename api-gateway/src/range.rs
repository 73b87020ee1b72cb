//! Serving a stored result with HTTP Range (one range; others get the whole file, as RFC 9110
//! allows).

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use futures::StreamExt;
use hopster_common::store::StoreError;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResultPayload};
use shared_proto::ErrorCode;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

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
            other => StoreError::from(other).into(),
        })?;
    // The `fs` store hands over the open file: read it in large pieces (its own stream reads
    // 8 KiB at a time, each on the blocking pool). Any other store's stream is gathered into
    // pieces as large.
    let (start, end) = (got.range.start, got.range.end);
    let body: futures::stream::BoxStream<'static, std::io::Result<Bytes>> = match got.payload {
        GetResultPayload::File(file, _) => {
            let mut file = tokio::fs::File::from_std(file);
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(|e| {
                    ApiError::from(StoreError::from(object_store::Error::Generic {
                        store: "LocalFileSystem",
                        source: Box::new(e),
                    }))
                })?;
            read_in_pieces(file, end - start, SEND_CHUNK).boxed()
        }
        GetResultPayload::Stream(stream) => coalesce(stream, SEND_CHUNK)
            .map(|chunk| chunk.map_err(std::io::Error::other))
            .boxed(),
    };
    let body = body
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

/// The least the body is sent in at a time. The `fs` store's stream reads 8 KiB at a time, and
/// with `TCP_NODELAY` each read became a send of its own: a 547 MiB result took 2.97 s to
/// download on loopback.
const SEND_CHUNK: usize = 256 * 1024;

/// `len` bytes of `file` from where it stands, read `piece` bytes at a time.
fn read_in_pieces(
    file: tokio::fs::File,
    len: u64,
    piece: usize,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> {
    futures::stream::unfold((file, len), move |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; piece.min(usize::try_from(left).unwrap_or(piece))];
        match file.read(&mut buf).await {
            Ok(0) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the stored result ended early",
                )),
                (file, 0),
            )),
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), (file, left - n as u64)))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    })
}

/// `stream`'s bytes in chunks of at least `min` (the last may be shorter), in order; an error
/// ends it (what was gathered before it is not sent: the response is broken either way).
fn coalesce<S, E>(stream: S, min: usize) -> impl futures::Stream<Item = Result<Bytes, E>>
where
    S: futures::Stream<Item = Result<Bytes, E>> + Unpin,
{
    futures::stream::unfold(Some(stream), move |state| async move {
        let mut stream = state?;
        let mut gathered = actix_web::web::BytesMut::new();
        loop {
            match stream.next().await {
                Some(Ok(chunk)) if gathered.is_empty() && chunk.len() >= min => {
                    return Some((Ok(chunk), Some(stream)));
                }
                Some(Ok(chunk)) => {
                    gathered.extend_from_slice(&chunk);
                    if gathered.len() >= min {
                        return Some((Ok(gathered.freeze()), Some(stream)));
                    }
                }
                Some(Err(e)) => return Some((Err(e), None)),
                None if gathered.is_empty() => return None,
                None => return Some((Ok(gathered.freeze()), None)),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn small_reads_are_sent_in_large_chunks_in_order() {
        let reads: Vec<Result<Bytes, ()>> =
            (0..10u8).map(|i| Ok(Bytes::from(vec![i; 3]))).collect();
        let sent: Vec<Result<Bytes, ()>> =
            coalesce(futures::stream::iter(reads), 7).collect().await;
        let sizes: Vec<usize> = sent
            .iter()
            .map(|c| c.as_ref().map_or(0, Bytes::len))
            .collect();
        assert_eq!(sizes, [9, 9, 9, 3]);
        let all: Vec<u8> = sent
            .into_iter()
            .flat_map(|c| c.unwrap_or_default().to_vec())
            .collect();
        let expected: Vec<u8> = (0..10u8).flat_map(|i| [i; 3]).collect();
        assert_eq!(all, expected);
    }

    #[tokio::test]
    async fn an_error_ends_the_body() {
        let reads: Vec<Result<Bytes, &str>> = vec![
            Ok(Bytes::from_static(b"ab")),
            Err("gone"),
            Ok(Bytes::from_static(b"cd")),
        ];
        let sent: Vec<Result<Bytes, &str>> =
            coalesce(futures::stream::iter(reads), 7).collect().await;
        assert_eq!(sent, vec![Err("gone")]);
    }
}
