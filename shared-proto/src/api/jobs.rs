//! The v1 jobs API's bodies: the submission, the job as shown, a page of jobs, the error
//! format, and the health answers.

use super::body::{Body, BodyError, RejectedUrl};
use crate::spec::{clip_length, normalize_url, url_for_video_id};
use crate::{
    Accuracy, AudioOptions, ClipRange, ErrorCode, JobSpec, JobStatus, Profile, SpecError, Timecode,
};
use serde::{Deserialize, Serialize};
use std::ops::RangeInclusive;

/// `POST /v1/jobs`: what to cut from which source, and what to make of it. Exactly one of
/// `url` and `video_id` (a `null` field counts as absent). The rules between fields are
/// [`CreateJob::check`]'s: `start` before `stop`, `poster_at` inside the clip, `max_height`
/// and `poster_at` only with video profiles, `accuracy: keyframe` only with `mp4` and no
/// `max_height`, `fps` only with the animations (`gif`, `webp`). The clip's length limits
/// (`sources.max_clip_secs`, `sources.max_animation_secs`) are the gateway's.
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(as = CreateJobFields)
)]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateJob {
    /// An absolute http(s) URL without credentials, on a public address. The pattern is a
    /// safe subset, for generated examples; any URL the WHATWG parser takes is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 2048,
            pattern = r"^https?://[a-z][a-z0-9]{0,15}(\.[a-z][a-z0-9]{0,15}){0,3}(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]{0,16}){0,4}$"
        )
    )]
    pub url: Option<String>,
    /// A catalogue id, mapped to a URL by `sources.video_url_template`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9_-]{1,128}$"))]
    pub video_id: Option<String>,
    /// Clip start; the beginning when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Timecode>,
    /// Clip end; the end of the source when absent. Must be after `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Timecode>,
    /// `frame` (default: re-encode, frame-accurate), `keyframe` (stream copy from the
    /// keyframe at or before `start`; the result reports `start_achieved`) or `smart`
    /// (frame-accurate; only the edges re-encoded when the source qualifies, see `method`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<Accuracy>,
    /// `mp4` (default, H.264/AAC), `webm` (VP9/Opus), `audio` (AAC in m4a), `mp3`, `hls`
    /// (H.264/AAC playlist and segments), or an animation without sound: `gif` or `webp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// Scale the video down to at most this height, keeping the aspect ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 16, maximum = 4320))]
    pub max_height: Option<u32>,
    /// Where in the clip the poster is taken; default one second in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poster_at: Option<Timecode>,
    /// POSTed the signed status when the job completes, fails or is cancelled (an absolute
    /// http(s) URL; the pattern is a safe subset, as for `url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 2048,
            pattern = r"^https?://[a-z][a-z0-9]{0,15}(\.[a-z][a-z0-9]{0,15}){0,3}(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]{0,16}){0,4}$"
        )
    )]
    pub callback_url: Option<String>,
    /// Frames per second of an animation (`gif`, `webp`); default 12.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 30))]
    pub fps: Option<u32>,
    /// What is done to the sound: `{"normalize": true, "target_lufs": -16}` normalizes its
    /// loudness (profiles with sound; `accuracy: frame`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<AudioOptions>,
    /// Several clips, joined in this order into one output, each exact to the frame; instead
    /// of `start` and `stop`. The result is as long as their sum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 20))]
    pub clips: Option<Vec<ClipRange>>,
}

impl CreateJob {
    /// The heights `max_height` may ask for.
    pub const MAX_HEIGHT: RangeInclusive<u32> = 16..=4320;
    /// The frame rates `fps` may ask for.
    pub const FPS: RangeInclusive<u32> = 1..=30;
    /// How many clips one job may join.
    pub const MAX_CLIPS: usize = 20;

    /// The rules between fields, which need neither the source nor the configuration: the
    /// gateway applies them, and the CLI before it spends a request.
    pub fn check(&self) -> Result<(), BodyError> {
        let invalid = |message: String| Err(BodyError::new(ErrorCode::InvalidRequest, message));
        if self.url.is_some() == self.video_id.is_some() {
            return Err(BodyError::new(
                ErrorCode::MissingSource,
                "give exactly one of `url` and `video_id`",
            ));
        }
        if let (Some(start), Some(stop)) = (self.start, self.stop) {
            if start >= stop {
                return Err(SpecError::StartNotBeforeStop { start, stop }.into());
            }
        }
        if let Some(clips) = &self.clips {
            if self.start.is_some() || self.stop.is_some() {
                return invalid("give either `start` and `stop`, or `clips`, not both".into());
            }
            if !(1..=Self::MAX_CLIPS).contains(&clips.len()) {
                return invalid(format!(
                    "`clips` lists 1 to {} clips; it lists {}",
                    Self::MAX_CLIPS,
                    clips.len()
                ));
            }
            for (i, clip) in clips.iter().enumerate() {
                if clip.start >= clip.stop {
                    return Err(BodyError::new(
                        ErrorCode::InvalidClipRange,
                        format!(
                            "`clips[{i}]`: start ({}) must be before stop ({})",
                            clip.start, clip.stop
                        ),
                    ));
                }
            }
        }
        let profile = self.profile.unwrap_or_default();
        if let Some(height) = self.max_height {
            if !Self::MAX_HEIGHT.contains(&height) {
                return invalid(format!(
                    "`max_height` must be a whole number from {} to {}",
                    Self::MAX_HEIGHT.start(),
                    Self::MAX_HEIGHT.end()
                ));
            }
            if !profile.has_video() {
                return invalid(format!(
                    "`max_height` scales video; the `{}` profile has none",
                    profile.as_str()
                ));
            }
        }
        if let Some(at) = self.poster_at {
            if !profile.has_video() {
                return invalid(format!(
                    "`poster_at` places the poster; the `{}` profile has no video and no poster",
                    profile.as_str()
                ));
            }
            let length = match &self.clips {
                Some(clips) => Some(Timecode::from_micros(
                    clips.iter().map(|c| c.length().as_micros()).sum(),
                )),
                None => clip_length(self.start, self.stop),
            };
            if let Some(length) = length.filter(|length| at >= *length) {
                return Err(BodyError::new(
                    ErrorCode::InvalidClipRange,
                    format!("`poster_at` ({at}) must be inside the clip, which is {length} long"),
                ));
            }
        }
        if let Some(fps) = self.fps {
            if !Self::FPS.contains(&fps) {
                return invalid(format!(
                    "`fps` must be a whole number from {} to {}",
                    Self::FPS.start(),
                    Self::FPS.end()
                ));
            }
            if !profile.is_animation() {
                return invalid(format!(
                    "`fps` sets an animation's frame rate (`gif`, `webp`); the `{}` profile keeps \
                     the source's",
                    profile.as_str()
                ));
            }
        }
        if let Some(audio) = self.audio {
            if let Some(lufs) = audio.target_lufs {
                if !AudioOptions::TARGETS.contains(&lufs) {
                    return invalid(format!(
                        "`audio.target_lufs` must be a whole number from {} to {}",
                        AudioOptions::TARGETS.start(),
                        AudioOptions::TARGETS.end()
                    ));
                }
                if !audio.normalize {
                    return invalid(
                        "`audio.target_lufs` is the loudness to normalize to; it needs \
                         `audio.normalize: true`"
                            .into(),
                    );
                }
            }
            if audio.normalize {
                if !profile.has_audio() {
                    return invalid(format!(
                        "`audio.normalize` changes the sound; the `{}` profile has none",
                        profile.as_str()
                    ));
                }
                if let Some(accuracy @ (Accuracy::Keyframe | Accuracy::Smart)) = self.accuracy {
                    return invalid(format!(
                        "`audio.normalize` re-encodes the sound of every frame; `accuracy: {}` \
                         copies the source's packets: use `accuracy: frame`",
                        accuracy.as_str()
                    ));
                }
            }
        }
        if self.accuracy == Some(Accuracy::Keyframe)
            && self.clips.as_ref().is_some_and(|c| c.len() > 1)
        {
            return invalid(
                "`accuracy: keyframe` starts each clip at a keyframe before it: several `clips` \
                 are joined exactly, with `frame` or `smart`"
                    .into(),
            );
        }
        if let Some(accuracy @ (Accuracy::Keyframe | Accuracy::Smart)) = self.accuracy {
            if profile != Profile::Mp4 || self.max_height.is_some() {
                return invalid(format!(
                    "`accuracy: {}` copies the source's own packets: it works only with the mp4 \
                     profile and without `max_height`",
                    accuracy.as_str()
                ));
            }
        }
        Ok(())
    }

    /// The job this body asks for: the rules checked, a `video_id` mapped to its URL through
    /// `video_url_template`, the URLs normalized. A refused URL is named in the error
    /// ([`BodyError::rejected_url`]).
    pub fn into_spec(self, video_url_template: &str) -> Result<JobSpec, BodyError> {
        self.check()?;
        let url = match (self.url, &self.video_id) {
            (Some(url), _) => url,
            (None, Some(id)) => url_for_video_id(video_url_template, id)?,
            (None, None) => unreachable!("check() requires a source"),
        };
        // One clip of a list is the same job as that clip's `start` and `stop`.
        let (start, stop, clips) = match self.clips {
            Some(clips) if clips.len() == 1 => (Some(clips[0].start), Some(clips[0].stop), None),
            clips => (self.start, self.stop, clips),
        };
        let mut spec = JobSpec::new(&url, self.video_id, start, stop).map_err(|e| {
            let url_error = matches!(e, SpecError::InvalidUrl(_));
            BodyError {
                rejected_url: url_error.then(|| RejectedUrl {
                    field: "url",
                    text: url.clone(),
                }),
                ..e.into()
            }
        })?;
        spec.accuracy = self.accuracy.unwrap_or_default();
        spec.profile = self.profile.unwrap_or_default();
        spec.max_height = self.max_height;
        spec.poster_at = self.poster_at;
        spec.fps = self.fps;
        spec.clips = clips;
        spec.audio = self.audio.filter(|a| a.normalize);
        if let Some(url) = self.callback_url {
            let normal = normalize_url(&url).map_err(|_| BodyError {
                rejected_url: Some(RejectedUrl {
                    field: "callback_url",
                    text: url.clone(),
                }),
                ..BodyError::new(
                    ErrorCode::InvalidUrl,
                    "`callback_url` must be an absolute http or https URL without credentials",
                )
            })?;
            spec.callback_url = Some(normal);
        }
        Ok(spec)
    }
}

impl Body for CreateJob {
    fn field_code(field: &str, text: bool) -> ErrorCode {
        match field {
            "start" | "stop" | "poster_at" | "clips" if text => ErrorCode::InvalidTimecode,
            _ => ErrorCode::InvalidRequest,
        }
    }
}

/// `CreateJob`'s schema in the document: its fields, and that exactly one of `url` and
/// `video_id` is a string, which a derive cannot say.
#[cfg(feature = "openapi")]
pub struct CreateJobSchema;

/// `fields` (a body's own schema) and that exactly one of `url` and `video_id` is a string.
#[cfg(feature = "openapi")]
pub(super) fn with_one_source(
    fields: utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
    example: serde_json::Value,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, OneOfBuilder, Type};
    let present = |field: &str| {
        ObjectBuilder::new()
            .property(field, ObjectBuilder::new().schema_type(Type::String))
            .required(field)
    };
    AllOfBuilder::new()
        .item(fields)
        .item(
            OneOfBuilder::new()
                .item(present("url"))
                .item(present("video_id")),
        )
        .description(Some(
            "Exactly one of `url` and `video_id`; the other absent or `null`.",
        ))
        .examples([example])
        .into()
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for CreateJobSchema {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        with_one_source(
            <CreateJob as utoipa::PartialSchema>::schema(),
            serde_json::json!({"video_id": "sample", "start": "00:00:10", "stop": "00:00:13"}),
        )
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for CreateJobSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "CreateJob".into()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <CreateJob as utoipa::ToSchema>::schemas(schemas);
    }
}

/// A job as the v1 API shows it: the status document plus links.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    #[serde(flatten)]
    pub status: JobStatus,
    pub links: Links,
}

/// Where the job's other resources are.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    #[serde(rename = "self")]
    pub this: String,
    pub video: String,
    pub poster: String,
    pub events: String,
}

impl From<JobStatus> for JobView {
    fn from(status: JobStatus) -> Self {
        let this = format!("/v1/jobs/{}", status.id);
        JobView {
            links: Links {
                video: format!("{this}/video"),
                poster: format!("{this}/poster"),
                events: format!("{this}/events"),
                this,
            },
            status,
        }
    }
}

/// `GET /v1/jobs`: a page of jobs, newest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobList {
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// The v1 error format.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable code, and a message for people.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}

/// `GET /healthz`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    #[cfg_attr(feature = "openapi", schema(example = "ok"))]
    pub status: String,
}

/// `GET /readyz`: what answers.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    pub broker: bool,
    pub store: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::parse_body;

    const TEMPLATE: &str = "http://cdn.example/{video_id}.mp4";

    fn refused(body: serde_json::Value) -> BodyError {
        let parsed = parse_body::<CreateJob>(body.to_string().as_bytes());
        match parsed.and_then(|job| job.into_spec(TEMPLATE)) {
            Ok(spec) => panic!("{body} was accepted: {spec:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn each_rule_answers_its_code() {
        use serde_json::json;
        let url = "http://cdn.example/v.mp4";
        for (body, code) in [
            (json!({}), ErrorCode::MissingSource),
            (
                json!({"url": url, "video_id": "a"}),
                ErrorCode::MissingSource,
            ),
            (
                json!({"url": null, "video_id": null}),
                ErrorCode::MissingSource,
            ),
            (json!({"url": 5}), ErrorCode::InvalidRequest),
            (
                json!({"url": url, "colour": "red"}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "accuracy": "exact"}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "profile": "avi"}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "start": "5"}),
                ErrorCode::InvalidTimecode,
            ),
            (
                json!({"url": url, "poster_at": "x"}),
                ErrorCode::InvalidTimecode,
            ),
            (
                json!({"url": url, "stop": ["00:00:01"]}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "start": "00:00:05", "stop": "00:00:05"}),
                ErrorCode::InvalidClipRange,
            ),
            (
                json!({"url": url, "max_height": 15}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "max_height": 1.5}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "max_height": 240, "profile": "mp3"}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "poster_at": "00:00:01", "profile": "audio"}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "stop": "00:00:02", "poster_at": "00:00:02"}),
                ErrorCode::InvalidClipRange,
            ),
            (
                json!({"url": url, "accuracy": "keyframe", "profile": "webm"}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "accuracy": "keyframe", "max_height": 240}),
                ErrorCode::InvalidRequest,
            ),
            (json!({"url": "file:///etc/passwd"}), ErrorCode::InvalidUrl),
            (
                json!({"url": url, "callback_url": "ftp://x/"}),
                ErrorCode::InvalidUrl,
            ),
            (json!({"video_id": "a/../b"}), ErrorCode::InvalidVideoId),
            (json!({"url": url, "fps": 10}), ErrorCode::InvalidRequest),
            (
                json!({"url": url, "profile": "gif", "fps": 0}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "profile": "webp", "fps": 31}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "profile": "gif", "accuracy": "smart"}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "audio": {"normalize": true, "target_lufs": -4}}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "audio": {"target_lufs": -16}}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "audio": {"normalize": true, "gain": 3}}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "profile": "gif", "audio": {"normalize": true}}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "accuracy": "smart", "audio": {"normalize": true}}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "start": "00:00:00",
                       "clips": [{"start": "00:00:01", "stop": "00:00:02"}]}),
                ErrorCode::InvalidRequest,
            ),
            (json!({"url": url, "clips": []}), ErrorCode::InvalidRequest),
            (
                json!({"url": url, "clips": vec![json!({"start": "00:00:01", "stop": "00:00:02"}); 21]}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "clips": [{"start": "00:00:01", "stop": "00:00:02"},
                                             {"start": "00:00:03", "stop": "00:00:02"}]}),
                ErrorCode::InvalidClipRange,
            ),
            (
                json!({"url": url, "clips": [{"start": "soon", "stop": "00:00:02"}]}),
                ErrorCode::InvalidTimecode,
            ),
            (
                json!({"url": url, "clips": [{"start": "00:00:01"}]}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "clips": [{"start": 1, "stop": 2}]}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "accuracy": "keyframe",
                       "clips": [{"start": "00:00:01", "stop": "00:00:02"},
                                 {"start": "00:00:05", "stop": "00:00:06"}]}),
                ErrorCode::InvalidRequest,
            ),
            (
                json!({"url": url, "poster_at": "00:00:02",
                       "clips": [{"start": "00:00:01", "stop": "00:00:02"},
                                 {"start": "00:00:05", "stop": "00:00:06"}]}),
                ErrorCode::InvalidClipRange,
            ),
        ] {
            assert_eq!(refused(body.clone()).code, code, "{body}");
        }
    }

    #[test]
    fn a_refused_url_is_named_for_the_guard() {
        let e = refused(serde_json::json!({"url": "http://user@10.0.0.1/"}));
        let rejected = e.rejected_url.expect("named");
        assert_eq!(
            (rejected.field, rejected.text.as_str()),
            ("url", "http://user@10.0.0.1/")
        );
        let e = refused(serde_json::json!({"url": "http://a.example/", "callback_url": "x"}));
        assert_eq!(e.rejected_url.map(|r| r.field), Some("callback_url"));
    }

    #[test]
    fn a_body_becomes_its_spec() {
        let body = r#"{"video_id": "abc", "start": "00:00:01", "stop": "00:00:03",
                       "profile": "webm", "max_height": 240, "poster_at": "00:00:01.5",
                       "callback_url": "HTTP://Hooks.Example/x#frag"}"#;
        let spec = parse_body::<CreateJob>(body.as_bytes())
            .unwrap()
            .into_spec(TEMPLATE)
            .unwrap();
        assert_eq!(spec.url, "http://cdn.example/abc.mp4");
        assert_eq!(spec.video_id.as_deref(), Some("abc"));
        assert_eq!(spec.profile, Profile::Webm);
        assert_eq!(spec.max_height, Some(240));
        assert_eq!(spec.poster_at, Some(Timecode::parse("00:00:01.5").unwrap()));
        assert_eq!(spec.callback_url.as_deref(), Some("http://hooks.example/x"));
        let gif = r#"{"url": "http://cdn.example/v.mp4", "profile": "gif", "fps": 8}"#;
        let spec = parse_body::<CreateJob>(gif.as_bytes())
            .unwrap()
            .into_spec(TEMPLATE)
            .unwrap();
        assert_eq!((spec.profile, spec.fps), (Profile::Gif, Some(8)));
        let mut default_fps = spec.clone();
        default_fps.fps = None;
        assert_eq!(default_fps.animation_fps(), Profile::DEFAULT_FPS);
        assert_ne!(
            spec.job_id(),
            default_fps.job_id(),
            "fps is part of the job"
        );
        let loud = r#"{"url": "http://cdn.example/v.mp4", "audio": {"normalize": true}}"#;
        let spec = parse_body::<CreateJob>(loud.as_bytes())
            .unwrap()
            .into_spec(TEMPLATE)
            .unwrap();
        assert_eq!(spec.loudness_target(), Some(-16));
        let quiet = r#"{"url": "http://cdn.example/v.mp4", "audio": {"normalize": true,
                        "target_lufs": -23}}"#;
        let quiet = parse_body::<CreateJob>(quiet.as_bytes())
            .unwrap()
            .into_spec(TEMPLATE)
            .unwrap();
        assert_eq!(quiet.loudness_target(), Some(-23));
        assert_ne!(spec.job_id(), quiet.job_id());
        // Asking for nothing is the plain job.
        let nothing = r#"{"url": "http://cdn.example/v.mp4", "audio": {"normalize": false}}"#;
        let nothing = parse_body::<CreateJob>(nothing.as_bytes())
            .unwrap()
            .into_spec(TEMPLATE)
            .unwrap();
        assert_eq!(nothing.audio, None);
        // Several clips: joined in order, as long as their sum, the source read from the
        // earliest start to the latest stop; their order is part of the job.
        let spec_of = |body: serde_json::Value| {
            parse_body::<CreateJob>(body.to_string().as_bytes())
                .unwrap()
                .into_spec(TEMPLATE)
                .unwrap()
        };
        let tc = |s: &str| Timecode::parse(s).unwrap();
        let two = spec_of(
            serde_json::json!({"url": "http://cdn.example/v.mp4", "clips": [
            {"start": "00:00:20", "stop": "00:00:22.5"}, {"start": "00:00:05", "stop": "00:00:06"}]}),
        );
        assert_eq!(two.clip_length(), Some(tc("00:00:03.5")));
        assert_eq!(two.span(), (Some(tc("00:00:05")), Some(tc("00:00:22.5"))));
        assert_eq!((two.start, two.stop), (None, None));
        let swapped = spec_of(
            serde_json::json!({"url": "http://cdn.example/v.mp4", "clips": [
            {"start": "00:00:05", "stop": "00:00:06"}, {"start": "00:00:20", "stop": "00:00:22.5"}]}),
        );
        assert_ne!(two.job_id(), swapped.job_id());
        let one = spec_of(
            serde_json::json!({"url": "http://cdn.example/v.mp4", "clips": [
            {"start": "00:00:05", "stop": "00:00:06"}]}),
        );
        let plain = spec_of(serde_json::json!({"url": "http://cdn.example/v.mp4",
            "start": "00:00:05", "stop": "00:00:06"}));
        assert_eq!((one.clips.clone(), one.job_id()), (None, plain.job_id()));
        assert_eq!(
            nothing.job_id(),
            JobSpec::new("http://cdn.example/v.mp4", None, None, None)
                .unwrap()
                .job_id()
        );
    }

    #[test]
    fn the_body_carries_only_what_was_asked() {
        let body = serde_json::to_value(CreateJob {
            url: Some("http://h/v.mp4".into()),
            profile: Some(Profile::Webm),
            max_height: Some(240),
            ..CreateJob::default()
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"url": "http://h/v.mp4", "profile": "webm", "max_height": 240})
        );
    }
}
