//! The sources API's bodies: a source to inspect, and what the inspection found (its streams,
//! its keyframes, a storyboard of pictures across it).

use super::body::{Body, BodyError, RejectedUrl};
use crate::spec::{hex, normalize_url, url_for_video_id};
use crate::{ErrorCode, JobFailure, JobId, SpecError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `POST /v1/sources`: the source to inspect. Exactly one of `url` and `video_id`.
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(as = CreateSourceFields)
)]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSource {
    /// An absolute http(s) URL without credentials, on a public address (the pattern is a
    /// safe subset, for generated examples).
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
}

impl Body for CreateSource {}

/// `CreateSource`'s schema in the document: its fields, and that exactly one of `url` and
/// `video_id` is a string.
#[cfg(feature = "openapi")]
pub struct CreateSourceSchema;

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for CreateSourceSchema {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        super::jobs::with_one_source(
            <CreateSource as utoipa::PartialSchema>::schema(),
            serde_json::json!({"video_id": "sample"}),
        )
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for CreateSourceSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "CreateSource".into()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <CreateSource as utoipa::ToSchema>::schemas(schemas);
    }
}

impl CreateSource {
    /// The source's normalized URL (a `video_id` mapped through `video_url_template`).
    pub fn into_url(self, video_url_template: &str) -> Result<String, BodyError> {
        let url = match (self.url, self.video_id) {
            (Some(url), None) => url,
            (None, Some(id)) => url_for_video_id(video_url_template, &id)?,
            _ => {
                return Err(BodyError::new(
                    ErrorCode::MissingSource,
                    "give exactly one of `url` and `video_id`",
                ))
            }
        };
        normalize_url(&url).map_err(|e: SpecError| BodyError {
            rejected_url: Some(RejectedUrl {
                field: "url",
                text: url.clone(),
            }),
            ..e.into()
        })
    }
}

/// The id of a source's inspection: a digest of its normalized URL, so a source is inspected
/// once however often it is asked for.
pub fn source_id(url: &str) -> JobId {
    let digest = Sha256::digest(format!("hopster-source-v1\nurl={url}\n").as_bytes());
    JobId::parse(&hex(&digest[..16])).unwrap_or_else(|| unreachable!("32 hex digits"))
}

/// Where an inspection is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    Queued,
    Inspecting,
    Ready,
    Failed,
}

impl SourceState {
    pub fn is_terminal(self) -> bool {
        matches!(self, SourceState::Ready | SourceState::Failed)
    }
}

/// An inspection as stored.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = r"^[0-9a-f]{32}$"))]
    pub id: JobId,
    pub state: SourceState,
    /// The source, normalized.
    pub url: String,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    /// What was found, once `ready`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inspection: Option<Inspection>,
    /// Why it failed, once `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobFailure>,
}

impl SourceStatus {
    pub fn queued(url: String, now_ms: u64) -> SourceStatus {
        SourceStatus {
            id: source_id(&url),
            state: SourceState::Queued,
            url,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            inspection: None,
            error: None,
        }
    }
}

/// What an inspection found.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    pub duration_secs: f64,
    /// The demuxer's name for the container (`mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`, …).
    pub container: String,
    pub streams: Vec<StreamInfo>,
    /// The video's keyframe times in seconds, read from the container's index (an mp4's
    /// `moov`) without the media; `None` when the container has no index that says.
    #[serde(default)]
    pub keyframes: Option<Vec<f64>>,
    /// A picture of the video every `interval_secs`, tiled in one JPEG, with a WebVTT file of
    /// `#xywh=` cues; `None` for a source without video.
    #[serde(default)]
    pub storyboard: Option<Storyboard>,
}

/// One stream of a source.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamInfo {
    pub index: u32,
    /// `video`, `audio`, `subtitle`, `data` or `attachment`.
    pub kind: String,
    #[serde(default)]
    pub codec: Option<String>,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    /// Frames per second (video).
    #[serde(default)]
    pub fps: Option<f64>,
    /// Bits per second, when the container says.
    #[serde(default)]
    pub bit_rate: Option<u64>,
    /// Audio channels and samples per second.
    #[serde(default)]
    pub channels: Option<u32>,
    #[serde(default)]
    pub sample_rate: Option<u32>,
}

/// The storyboard's layout: tile `i` (row-major) shows the video at `i × interval_secs`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Storyboard {
    pub tiles: u32,
    pub columns: u32,
    pub rows: u32,
    pub tile_width: u32,
    pub tile_height: u32,
    pub interval_secs: f64,
}

impl Storyboard {
    /// The storyboard's cues in WebVTT (Mux's format): each tile's time range and its
    /// rectangle in `image`, the sprite's URL (relative to the VTT's).
    pub fn vtt(&self, image: &str, duration_secs: f64) -> String {
        let stamp = |secs: f64| {
            let ms = (secs * 1000.0).round() as u64;
            format!(
                "{:02}:{:02}:{:02}.{:03}",
                ms / 3_600_000,
                ms / 60_000 % 60,
                ms / 1000 % 60,
                ms % 1000
            )
        };
        let mut vtt = String::from("WEBVTT\n");
        for i in 0..self.tiles {
            let from = f64::from(i) * self.interval_secs;
            let to = (from + self.interval_secs).min(duration_secs);
            let (x, y) = (
                (i % self.columns) * self.tile_width,
                (i / self.columns) * self.tile_height,
            );
            vtt.push_str(&format!(
                "\n{} --> {}\n{image}#xywh={x},{y},{},{}\n",
                stamp(from),
                stamp(to),
                self.tile_width,
                self.tile_height
            ));
        }
        vtt
    }
}

/// An inspection as the API shows it: the stored document plus links.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceView {
    #[serde(flatten)]
    pub status: SourceStatus,
    pub links: SourceLinks,
}

/// Where an inspection's resources are.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceLinks {
    #[serde(rename = "self")]
    pub this: String,
    pub storyboard_jpg: String,
    pub storyboard_vtt: String,
}

impl SourceView {
    pub fn of(status: SourceStatus) -> SourceView {
        let this = format!("/v1/sources/{}", status.id);
        SourceView {
            links: SourceLinks {
                storyboard_jpg: format!("{this}/storyboard.jpg"),
                storyboard_vtt: format!("{this}/storyboard.vtt"),
                this,
            },
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::parse_body;

    #[test]
    fn a_source_is_one_inspection_however_it_is_spelled() {
        let template = "http://cdn.example/{video_id}.mp4";
        let url = |body: &str| {
            parse_body::<CreateSource>(body.as_bytes()).and_then(|b| b.into_url(template))
        };
        let by_id = url(r#"{"video_id": "abc"}"#).unwrap();
        let by_url = url(r#"{"url": "HTTP://CDN.example:80/abc.mp4#t=3"}"#).unwrap();
        assert_eq!(by_id, by_url);
        assert_eq!(source_id(&by_id), source_id(&by_url));
        assert_ne!(source_id(&by_id), source_id("http://cdn.example/abd.mp4"));
        for (body, code) in [
            ("{}", ErrorCode::MissingSource),
            (
                r#"{"url": "http://a/", "video_id": "b"}"#,
                ErrorCode::MissingSource,
            ),
            (r#"{"url": "file:///etc/passwd"}"#, ErrorCode::InvalidUrl),
            (r#"{"video_id": "../x"}"#, ErrorCode::InvalidVideoId),
            (
                r#"{"url": "http://a/", "start": "00:00:01"}"#,
                ErrorCode::InvalidRequest,
            ),
        ] {
            assert_eq!(url(body).unwrap_err().code, code, "{body}");
        }
    }

    #[test]
    fn the_cues_cover_the_source_tile_by_tile() {
        let board = Storyboard {
            tiles: 3,
            columns: 2,
            rows: 2,
            tile_width: 160,
            tile_height: 90,
            interval_secs: 2.0,
        };
        assert_eq!(
            board.vtt("storyboard.jpg", 5.5),
            "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nstoryboard.jpg#xywh=0,0,160,90\n\n\
             00:00:02.000 --> 00:00:04.000\nstoryboard.jpg#xywh=160,0,160,90\n\n\
             00:00:04.000 --> 00:00:05.500\nstoryboard.jpg#xywh=0,90,160,90\n"
        );
    }
}
