//! Reading request bodies and query strings ourselves, so every malformed input gets a clear
//! error naming what was wrong instead of a framework default. The bodies' shapes and their
//! parsing are the contract's (`shared_proto::api`).

use actix_web::web;
use futures::StreamExt;
use shared_proto::api::{parse_body, Body, BodyError};

/// Reads at most `max` bytes and parses them as `T`.
pub async fn read<T: Body>(mut payload: web::Payload, max: usize) -> Result<T, BodyError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            BodyError::new(
                shared_proto::ErrorCode::InvalidJson,
                format!("the body could not be read: {e}"),
            )
        })?;
        if body.len() + chunk.len() > max {
            return Err(BodyError::too_large(max));
        }
        body.extend_from_slice(&chunk);
    }
    parse_body(&body)
}

/// One query parameter, decoded.
pub fn query_param(query: &str, name: &str) -> Result<Option<String>, BodyError> {
    let pairs =
        web::Query::<Vec<(String, String)>>::from_query(query).map_err(BodyError::bad_query)?;
    Ok(pairs
        .into_inner()
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v))
}

/// A query parameter's decoded value; `None` when absent or the query is malformed.
pub(crate) fn query_value(query: &str, name: &str) -> Option<String> {
    query_param(query, name).ok().flatten()
}

/// `text` with everything but RFC 3986's unreserved characters percent-encoded.
pub(crate) fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
