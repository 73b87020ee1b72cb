//! A request body's bytes read into its typed shape. Every failure gets a stable code and a
//! message naming what was wrong: the body, the field, or the rule between fields.

use crate::ErrorCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A request body's type: how a field that cannot be read is answered.
pub trait Body: DeserializeOwned {
    /// The code for `field`, whose value could not be read. `text` says whether the value was
    /// a string, so that its text, not its type, was wrong (a time that does not parse).
    fn field_code(field: &str, text: bool) -> ErrorCode {
        let _ = (field, text);
        ErrorCode::InvalidRequest
    }
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BodyError {
    pub code: ErrorCode,
    pub message: String,
    /// A URL the body gave that was not accepted. The gateway answers `source_forbidden`
    /// instead when its text still names an internal address, however it is spelled.
    pub rejected_url: Option<RejectedUrl>,
}

/// A URL of the body that was refused, and the field it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedUrl {
    pub field: &'static str,
    pub text: String,
}

/// Messages quote what they were given; a 60 kB field name is not worth echoing.
const MAX_MESSAGE_CHARS: usize = 300;

impl BodyError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let message: String = message.into();
        let message = match message.char_indices().nth(MAX_MESSAGE_CHARS) {
            Some((end, _)) => format!("{}…", &message[..end]),
            None => message,
        };
        BodyError {
            code,
            message,
            rejected_url: None,
        }
    }

    /// The body is larger than the gateway reads.
    pub fn too_large(max: usize) -> Self {
        BodyError::new(
            ErrorCode::BodyTooLarge,
            format!("the body is larger than {max} bytes"),
        )
    }

    /// A query string that does not decode.
    pub fn bad_query(detail: impl std::fmt::Display) -> Self {
        BodyError::new(
            ErrorCode::InvalidRequest,
            format!("the query string is malformed: {detail}"),
        )
    }
}

impl From<crate::SpecError> for BodyError {
    fn from(e: crate::SpecError) -> Self {
        BodyError::new(e.code(), e.to_string())
    }
}

/// Reads a whole body as `T`: `invalid_json` when it is not a JSON object, else the code of the
/// first field that does not fit (`T::field_code`), or `invalid_request` for an unknown or
/// missing field.
pub fn parse_body<T: Body>(bytes: &[u8]) -> Result<T, BodyError> {
    // A body that reads straight into `T` needs no tree of values: one pass (a struct would
    // also read from an array, hence the object check). Every error takes the path below,
    // which names the field.
    let object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if object {
        if let Ok(parsed) = serde_json::from_slice::<T>(bytes) {
            return Ok(parsed);
        }
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        BodyError::new(
            ErrorCode::InvalidJson,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(fields) = &value else {
        return Err(BodyError::new(
            ErrorCode::InvalidJson,
            "the body must be a JSON object",
        ));
    };
    serde_path_to_error::deserialize(&value).map_err(|e| {
        let field = match e.path().iter().next() {
            Some(serde_path_to_error::Segment::Map { key }) => Some(key.as_str()),
            _ => None,
        };
        // The value that could not be read, however deep in the field (an item of a list).
        let leaf = e
            .path()
            .iter()
            .try_fold(&value, |v, segment| match segment {
                serde_path_to_error::Segment::Map { key } => v.get(key),
                serde_path_to_error::Segment::Seq { index } => v.get(*index),
                _ => None,
            });
        match field {
            Some(field) => {
                let text = leaf.is_some_and(Value::is_string)
                    || fields.get(field).is_some_and(Value::is_string);
                BodyError::new(
                    T::field_code(field, text),
                    format!("`{field}`: {}", e.inner()),
                )
            }
            None => BodyError::new(ErrorCode::InvalidRequest, e.inner().to_string()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: Option<String>,
        at: Option<crate::Timecode>,
    }

    impl Body for Sample {
        fn field_code(field: &str, text: bool) -> ErrorCode {
            match field {
                "at" if text => ErrorCode::InvalidTimecode,
                _ => ErrorCode::InvalidRequest,
            }
        }
    }

    fn refused(body: &str) -> (ErrorCode, String) {
        let e = parse_body::<Sample>(body.as_bytes()).unwrap_err();
        (e.code, e.message)
    }

    #[test]
    fn each_failure_has_its_code_and_names_what_was_wrong() {
        assert_eq!(refused("{").0, ErrorCode::InvalidJson);
        assert_eq!(refused("[1]").0, ErrorCode::InvalidJson);
        let (code, message) = refused(r#"{"colour": "red"}"#);
        assert_eq!(code, ErrorCode::InvalidRequest);
        assert!(message.contains("colour"), "{message}");
        let (code, message) = refused(r#"{"name": 5}"#);
        assert_eq!(code, ErrorCode::InvalidRequest);
        assert!(message.starts_with("`name`:"), "{message}");
        let (code, message) = refused(r#"{"at": "99:99:99"}"#);
        assert_eq!(code, ErrorCode::InvalidTimecode);
        assert!(message.starts_with("`at`:"), "{message}");
        // A time of the wrong type is a malformed request, not a bad time.
        assert_eq!(refused(r#"{"at": 1e308}"#).0, ErrorCode::InvalidRequest);
        assert!(parse_body::<Sample>(br#"{"name": null, "at": "00:00:01"}"#).is_ok());
    }

    #[test]
    fn a_body_reads_the_same_whichever_way_it_is_read() {
        // Read straight into the struct.
        let direct =
            parse_body::<Sample>(b" \n{\"name\": \"a\"}").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(direct.name.as_deref(), Some("a"));
        // A repeated key fails the direct read and is read through the tree of values, whose
        // last value wins, as every body was read before.
        let repeated = parse_body::<Sample>(br#"{"name": "a", "name": "b"}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(repeated.name.as_deref(), Some("b"));
    }

    #[test]
    fn messages_are_bounded() {
        let body = format!(r#"{{"{}": 1}}"#, "x".repeat(60_000));
        let (_, message) = refused(&body);
        assert!(
            message.chars().count() <= MAX_MESSAGE_CHARS + 1,
            "{}",
            message.len()
        );
    }
}
