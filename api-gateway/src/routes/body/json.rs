//! A request body's bytes read into a JSON object, and its fields. Pure (no actix), so the
//! fuzz crate (`fuzz/`) compiles this file as it is.

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

/// Parses a whole body as a JSON object.
pub fn object(body: &[u8]) -> Result<Map<String, Value>, InputError> {
    match serde_json::from_slice::<Value>(body) {
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
