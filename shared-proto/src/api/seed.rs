//! The seed's API (`POST /schedule`, `GET /progress`, `GET /download`), kept for old clients:
//! its bodies, and its error format with numeric codes.

use super::body::Body;
use crate::spec::{url_for_video_id, validate_video_id};
use crate::{ErrorCode, JobSpec, JobState, Timecode};
use serde::{Deserialize, Serialize};

/// `POST /schedule`.
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(example = json!({"video_id": "sample", "start": "00:00:03", "stop": "00:00:06"}))
)]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// The catalogue id. Absent reads as empty, which is refused as missing (seed code 200).
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, pattern = r"^[A-Za-z0-9_-]{1,128}$")
    )]
    pub video_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Timecode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Timecode>,
}

impl Schedule {
    /// The job this asks for, with `video_url_template` mapping the id to its URL.
    pub fn to_spec(&self, video_url_template: &str) -> Result<JobSpec, super::BodyError> {
        if self.video_id.is_empty() {
            return Err(super::BodyError::new(
                ErrorCode::InvalidVideoId,
                "`video_id` is missing",
            ));
        }
        validate_video_id(&self.video_id)?;
        let url = url_for_video_id(video_url_template, &self.video_id)?;
        Ok(JobSpec::new(
            &url,
            Some(self.video_id.clone()),
            self.start,
            self.stop,
        )?)
    }
}

impl Body for Schedule {
    /// The seed answered a time of any wrong type as a bad time (300), and a `video_id` of
    /// any wrong type as no such video (200).
    fn field_code(field: &str, _text: bool) -> ErrorCode {
        match field {
            "start" | "stop" => ErrorCode::InvalidTimecode,
            "video_id" => ErrorCode::InvalidVideoId,
            _ => ErrorCode::InvalidRequest,
        }
    }
}

/// The answer to `POST /schedule`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoFile {
    /// `{video_id}_from_{HHMMSSffffff|start}_till_{HHMMSSffffff|end}.mp4`
    pub video_file: String,
}

/// The answer to `GET /progress`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedProgress {
    pub is_finished: bool,
    pub state: JobState,
}

/// The seed's error format. Codes: 100 malformed request or missing parameter, 200 no such
/// video (or not ready), 300 bad time or range, 400 the job failed, 401 API key missing or
/// wrong, 429 too many new jobs from this client, 500 service unavailable.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedErrorBody {
    pub error: SeedErrorDetail,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedErrorDetail {
    pub message: String,
    pub code: u16,
}

impl SeedErrorBody {
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        SeedErrorBody {
            error: SeedErrorDetail {
                message: message.into(),
                code,
            },
        }
    }
}

/// `GET /`: the seed's welcome.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::parse_body;

    fn code(body: &str) -> ErrorCode {
        let parsed = parse_body::<Schedule>(body.as_bytes());
        match parsed.and_then(|s| s.to_spec("http://cdn.example/{video_id}.mp4")) {
            Ok(spec) => panic!("{body} was accepted: {spec:?}"),
            Err(e) => e.code,
        }
    }

    #[test]
    fn the_seed_codes_keep_their_meaning() {
        assert_eq!(code("{}"), ErrorCode::InvalidVideoId);
        assert_eq!(code(r#"{"video_id": null}"#), ErrorCode::InvalidVideoId);
        assert_eq!(code(r#"{"video_id": 7}"#), ErrorCode::InvalidVideoId);
        assert_eq!(
            code(r#"{"video_id": "a", "start": 7}"#),
            ErrorCode::InvalidTimecode
        );
        assert_eq!(
            code(r#"{"video_id": "a", "stop": "x"}"#),
            ErrorCode::InvalidTimecode
        );
        assert_eq!(
            code(r#"{"video_id": "a", "start": "00:00:02", "stop": "00:00:01"}"#),
            ErrorCode::InvalidClipRange
        );
        assert_eq!(
            code(r#"{"video_id": "a", "colour": 1}"#),
            ErrorCode::InvalidRequest
        );
        assert_eq!(code("[]"), ErrorCode::InvalidJson);
    }
}
