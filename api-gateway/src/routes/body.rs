//! Reading request bodies and query strings ourselves, so every malformed input gets a clear
//! error naming what was wrong instead of a framework default.

use actix_web::web;
use futures::StreamExt;
use serde_json::{Map, Value};

mod json;
pub use json::{object, only_fields, string_field, InputError};

/// Reads at most `max` bytes and parses them as a JSON object.
pub async fn json_object(
    mut payload: web::Payload,
    max: usize,
) -> Result<Map<String, Value>, InputError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| InputError::NotJson(e.to_string()))?;
        if body.len() + chunk.len() > max {
            return Err(InputError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    object(&body)
}

/// One query parameter, decoded.
pub fn query_param(query: &str, name: &str) -> Result<Option<String>, InputError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
        .map_err(|e| InputError::BadQuery(e.to_string()))?;
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
