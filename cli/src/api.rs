//! The v1 API's shapes as this client reads and writes them, and the checks a submission
//! passes before it is sent. Both the client and the error type use them; neither is used
//! here, so the module graph has no circle.

use serde::{Deserialize, Serialize};
use shared_proto::{Accuracy, Profile, SpecError, Timecode};

/// `max_height` as the gateway accepts it (`POST /v1/jobs`).
pub const MAX_HEIGHT: std::ops::RangeInclusive<i64> = 16..=4320;

/// A job as `GET /v1/jobs/{id}` shows it: the contract's own shape.
pub use shared_proto::JobView as Job;

/// A page of `GET /v1/jobs`.
#[derive(Debug, Deserialize)]
pub struct JobList {
    pub jobs: Vec<Job>,
}

/// The body of `POST /v1/jobs`. Defaults are left out, so the body says only what was asked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Submission {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<Timecode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<Timecode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<Accuracy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poster_at: Option<Timecode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

impl Submission {
    /// The combinations the gateway refuses (`invalid_clip_range`, `invalid_request`), found
    /// before a request is spent on them. Each field on its own was checked by its parser.
    pub fn check(&self) -> Result<(), String> {
        if let (Some(start), Some(stop)) = (self.start, self.stop) {
            if start >= stop {
                return Err(SpecError::StartNotBeforeStop { start, stop }.to_string());
            }
        }
        let profile = self.profile.unwrap_or_default();
        if !profile.has_video() {
            if self.max_height.is_some() {
                return Err(format!(
                    "--max-height scales video; the `{}` profile has none",
                    profile.as_str()
                ));
            }
            if self.poster_at.is_some() {
                return Err(format!(
                    "--poster-at places the poster; the `{}` profile has no video and no poster",
                    profile.as_str()
                ));
            }
        }
        let length = self
            .stop
            .and_then(|stop| stop.checked_sub(self.start.unwrap_or(Timecode::ZERO)));
        if let (Some(at), Some(length)) = (self.poster_at, length) {
            if at >= length {
                return Err(format!(
                    "--poster-at ({at}) must be inside the clip, which is {length} long"
                ));
            }
        }
        if self.accuracy == Some(Accuracy::Keyframe)
            && (profile != Profile::Mp4 || self.max_height.is_some())
        {
            return Err(
                "--accuracy keyframe copies the streams as they are: it works only \
                        with the mp4 profile and without --max-height"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc(text: &str) -> Option<Timecode> {
        Some(Timecode::parse(text).unwrap())
    }

    fn clip(start: &str, stop: &str) -> Submission {
        Submission {
            url: Some("http://h/v.mp4".into()),
            start: tc(start),
            stop: tc(stop),
            ..Submission::default()
        }
    }

    #[test]
    fn combinations_the_gateway_refuses_are_refused_here() {
        let bad = [
            clip("00:00:03", "00:00:03"),
            Submission {
                profile: Some(Profile::Mp3),
                max_height: Some(240),
                ..clip("00:00:01", "00:00:03")
            },
            Submission {
                profile: Some(Profile::Audio),
                poster_at: tc("00:00:01"),
                ..clip("00:00:01", "00:00:03")
            },
            Submission {
                poster_at: tc("00:00:02"),
                ..clip("00:00:01", "00:00:03")
            },
            Submission {
                accuracy: Some(Accuracy::Keyframe),
                profile: Some(Profile::Webm),
                ..clip("00:00:01", "00:00:03")
            },
            Submission {
                accuracy: Some(Accuracy::Keyframe),
                max_height: Some(240),
                ..clip("00:00:01", "00:00:03")
            },
        ];
        for submission in bad {
            assert!(submission.check().is_err(), "{submission:?}");
        }
        let good = Submission {
            profile: Some(Profile::Webm),
            max_height: Some(240),
            poster_at: tc("00:00:01.999"),
            accuracy: Some(Accuracy::Frame),
            ..clip("00:00:01", "00:00:03")
        };
        assert_eq!(good.check(), Ok(()));
        // Without a stop the clip's length is the server's to know.
        let open = Submission {
            poster_at: tc("00:10:00"),
            ..Submission::default()
        };
        assert_eq!(open.check(), Ok(()));
    }

    #[test]
    fn the_body_carries_only_what_was_asked() {
        let body = serde_json::to_value(Submission {
            profile: Some(Profile::Webm),
            max_height: Some(240),
            poster_at: tc("00:00:01.5"),
            ..clip("00:00:01", "00:00:03")
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"url": "http://h/v.mp4", "start": "00:00:01", "stop": "00:00:03",
                               "profile": "webm", "max_height": 240, "poster_at": "00:00:01.5"})
        );
    }
}
