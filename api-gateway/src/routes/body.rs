//! Reading request bodies and query strings ourselves, so every malformed input gets a clear
//! error naming what was wrong instead of a framework default.

use actix_web::web;
use futures::StreamExt;
use serde_json::{Map, Value};

/// What was wrong with a body or query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    TooLarge(usize),
    NotJson(String),
    NotAnObject,
    WrongType {
        field: String,
        expected: &'static str,
    },
    UnknownField(String),
    BadQuery(String),
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputError::TooLarge(max) => write!(f, "the body is larger than {max} bytes"),
            InputError::NotJson(e) => write!(f, "the body is not valid JSON: {e}"),
            InputError::NotAnObject => write!(f, "the body must be a JSON object"),
            InputError::WrongType { field, expected } => write!(f, "`{field}` must be {expected}"),
            InputError::UnknownField(name) => write!(f, "unknown field `{name}`"),
            InputError::BadQuery(e) => write!(f, "the query string is malformed: {e}"),
        }
    }
}

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
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(InputError::NotAnObject),
        Err(e) => Err(InputError::NotJson(e.to_string())),
    }
}

/// A string field; absent and `null` are both `None`.
pub fn string_field(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, InputError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(InputError::WrongType {
            field: field.to_owned(),
            expected: "a string",
        }),
    }
}

/// Fails on the first field not in `known`.
pub fn only_fields(obj: &Map<String, Value>, known: &[&str]) -> Result<(), InputError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(InputError::UnknownField(k.chars().take(64).collect())),
        None => Ok(()),
    }
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
