//! The job spec, its validation and its deterministic id.

use crate::timecode::{Timecode, TimecodeError};
use crate::ErrorCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

const MAX_URL_LEN: usize = 2048;
const MAX_VIDEO_ID_LEN: usize = 128;

/// What to cut from which source. Two equal specs are the same job.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The source URL, normalized (scheme and host lower-case).
    pub url: String,
    /// The catalogue id the URL came from, when the client gave one. Not part of the job id:
    /// a `video_id` and the URL it maps to are the same job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_id: Option<String>,
    /// Clip start; `None` is the beginning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Timecode>,
    /// Clip end; `None` is the end of the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Timecode>,
    /// How exactly the clip is cut.
    #[serde(default, skip_serializing_if = "Accuracy::is_frame")]
    pub accuracy: Accuracy,
    /// What is made of the clip.
    #[serde(default, skip_serializing_if = "Profile::is_default")]
    pub profile: Profile,
    /// Scale the video down (keeping its aspect, even dimensions) to at most this height.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_height: Option<u32>,
    /// Where in the clip the poster is taken; `None` is one second in (or the first frame of
    /// a shorter clip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poster_at: Option<Timecode>,
    /// POSTed the signed status when the job completes, fails or is cancelled. Not part of
    /// the job id: the first submission's callback is the job's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// An animation's frames per second; `None` is [`Profile::DEFAULT_FPS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<u32>,
    /// What is done to the sound; `None` is nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<AudioOptions>,
    /// Several clips of the source joined in this order into one output, instead of `start`
    /// and `stop` (which are then `None`); at least two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clips: Option<Vec<ClipRange>>,
}

/// One clip of several: `[start, stop)` of the source.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipRange {
    pub start: Timecode,
    /// After `start`.
    pub stop: Timecode,
}

impl ClipRange {
    pub fn length(&self) -> Timecode {
        self.stop.checked_sub(self.start).unwrap_or(Timecode::ZERO)
    }
}

/// What is done to a clip's sound.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioOptions {
    /// Normalize the loudness (EBU R128, ffmpeg's `loudnorm` in two passes: the clip's sound
    /// measured first, then brought to `target_lufs` with one linear gain where it can be).
    #[serde(default)]
    pub normalize: bool,
    /// The integrated loudness aimed at, in LUFS; default −16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = -70, maximum = -5))]
    pub target_lufs: Option<i32>,
}

impl AudioOptions {
    /// The loudness aimed at when the job gives none.
    pub const DEFAULT_TARGET_LUFS: i32 = -16;
    /// The targets `loudnorm` takes.
    pub const TARGETS: std::ops::RangeInclusive<i32> = -70..=-5;

    /// The loudness to normalize to, when the job asks for normalization.
    pub fn normalize_to(&self) -> Option<i32> {
        self.normalize
            .then(|| self.target_lufs.unwrap_or(Self::DEFAULT_TARGET_LUFS))
    }
}

/// The output profiles.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// H.264/AAC in mp4.
    #[default]
    Mp4,
    /// VP9/Opus in WebM.
    Webm,
    /// AAC audio only, in m4a.
    Audio,
    /// MP3 audio only.
    Mp3,
    /// H.264/AAC in HLS: an m3u8 playlist and MPEG-TS segments.
    Hls,
    /// An animated GIF (a palette made for the clip), no sound.
    Gif,
    /// An animated WebP (lossy), no sound.
    Webp,
}

impl Profile {
    pub const ALL: [Profile; 7] = [
        Profile::Mp4,
        Profile::Webm,
        Profile::Audio,
        Profile::Mp3,
        Profile::Hls,
        Profile::Gif,
        Profile::Webp,
    ];

    /// An animation's frame rate when the job gives no `fps`.
    pub const DEFAULT_FPS: u32 = 12;

    pub fn is_default(&self) -> bool {
        *self == Profile::Mp4
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Mp4 => "mp4",
            Profile::Webm => "webm",
            Profile::Audio => "audio",
            Profile::Mp3 => "mp3",
            Profile::Hls => "hls",
            Profile::Gif => "gif",
            Profile::Webp => "webp",
        }
    }

    pub fn parse(text: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// Whether the output has a video stream (and so a poster).
    pub fn has_video(self) -> bool {
        !matches!(self, Profile::Audio | Profile::Mp3)
    }

    /// Whether the output has sound (when the source has).
    pub fn has_audio(self) -> bool {
        !self.is_animation()
    }

    /// Whether the output is an animation: pictures at `fps`, no sound, a length limit of
    /// its own (`sources.max_animation_secs`).
    pub fn is_animation(self) -> bool {
        matches!(self, Profile::Gif | Profile::Webp)
    }

    /// The result file's extension (for HLS: the playlist's).
    pub fn extension(self) -> &'static str {
        match self {
            Profile::Mp4 => "mp4",
            Profile::Webm => "webm",
            Profile::Audio => "m4a",
            Profile::Mp3 => "mp3",
            Profile::Hls => "m3u8",
            Profile::Gif => "gif",
            Profile::Webp => "webp",
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            Profile::Mp4 => "video/mp4",
            Profile::Webm => "video/webm",
            Profile::Audio => "audio/mp4",
            Profile::Mp3 => "audio/mpeg",
            Profile::Hls => "application/vnd.apple.mpegurl",
            Profile::Gif => "image/gif",
            Profile::Webp => "image/webp",
        }
    }
}

/// How exactly a clip is cut.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Accuracy {
    /// Re-encode: the clip starts and ends on the exact frames asked for.
    #[default]
    Frame,
    /// Stream copy, no re-encode: fast, but the clip starts at the keyframe at or before
    /// `start` (the result reports the start achieved).
    Keyframe,
    /// Exact to the frame, as `frame`, at close to stream-copy speed: only the partial groups
    /// of pictures at the clip's edges are re-encoded, with the source's own x264 settings,
    /// and the whole ones between are copied. A source that does not qualify (not x264
    /// H.264, open GOP, variable frame rate, interlaced, …) is re-encoded as with `frame`; the
    /// result's `method` says which happened.
    Smart,
}

impl Accuracy {
    pub const ALL: [Accuracy; 3] = [Accuracy::Frame, Accuracy::Keyframe, Accuracy::Smart];

    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Accuracy::Frame => "frame",
            Accuracy::Keyframe => "keyframe",
            Accuracy::Smart => "smart",
        }
    }

    pub fn parse(text: &str) -> Option<Accuracy> {
        Accuracy::ALL.into_iter().find(|a| a.as_str() == text)
    }

    pub fn is_frame(&self) -> bool {
        *self == Accuracy::Frame
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("`url` must be an absolute http or https URL of at most {MAX_URL_LEN} characters without spaces: {0}")]
    InvalidUrl(String),
    #[error("`video_id` must be 1 to {MAX_VIDEO_ID_LEN} characters of A-Z, a-z, 0-9, `_` or `-`")]
    InvalidVideoId,
    #[error("`video_url_template` must contain `{{video_id}}`")]
    InvalidTemplate,
    #[error("`{field}`: {source}")]
    InvalidTimecode {
        field: &'static str,
        #[source]
        source: TimecodeError,
    },
    #[error("`start` ({start}) must be before `stop` ({stop})")]
    StartNotBeforeStop { start: Timecode, stop: Timecode },
}

impl SpecError {
    pub fn code(&self) -> ErrorCode {
        match self {
            SpecError::InvalidUrl(_) | SpecError::InvalidTemplate => ErrorCode::InvalidUrl,
            SpecError::InvalidVideoId => ErrorCode::InvalidVideoId,
            SpecError::InvalidTimecode { .. } => ErrorCode::InvalidTimecode,
            SpecError::StartNotBeforeStop { .. } => ErrorCode::InvalidClipRange,
        }
    }
}

/// Parses an optional timecode field, naming the field in the error.
pub fn parse_bound(field: &'static str, text: Option<&str>) -> Result<Option<Timecode>, SpecError> {
    text.map(|t| Timecode::parse(t).map_err(|source| SpecError::InvalidTimecode { field, source }))
        .transpose()
}

/// Checks a catalogue id against the strict pattern `[A-Za-z0-9_-]{1,128}`.
pub fn validate_video_id(id: &str) -> Result<(), SpecError> {
    let ok = (1..=MAX_VIDEO_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(SpecError::InvalidVideoId)
    }
}

/// Turns a catalogue id into its source URL through the configured template.
pub fn url_for_video_id(template: &str, video_id: &str) -> Result<String, SpecError> {
    validate_video_id(video_id)?;
    if !template.contains("{video_id}") {
        return Err(SpecError::InvalidTemplate);
    }
    normalize_url(&template.replace("{video_id}", video_id))
}

/// Accepts an absolute `http(s)` URL with a host and no credentials, parsed by the `url` crate
/// (WHATWG rules, as the HTTP client parses it), and answers its serialization without the
/// fragment: scheme and host lower-case, IP hosts in their standard form (`http://127.1/` is
/// `http://127.0.0.1/`), no default port, an empty path as `/`. Trivially different spellings
/// of one URL are so one job, and every later reader of the spec sees the host the checks saw.
/// Which hosts may be fetched is the guard's decision, not this one's.
pub fn normalize_url(url: &str) -> Result<String, SpecError> {
    let invalid = || SpecError::InvalidUrl(url.chars().take(80).collect());
    if url.len() > MAX_URL_LEN || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let mut parsed = url::Url::parse(url).map_err(|_| invalid())?;
    let has_host = parsed.host_str().is_some_and(|h| !h.is_empty());
    // Credentials in a URL would end up in logs and status documents.
    let credentials = !parsed.username().is_empty() || parsed.password().is_some();
    if !matches!(parsed.scheme(), "http" | "https") || !has_host || credentials {
        return Err(invalid());
    }
    parsed.set_fragment(None);
    // The limit holds for the form that is stored and fetched too: percent-encoding and IDNA
    // can make it several times longer than what was given.
    let normal: String = parsed.into();
    if normal.len() > MAX_URL_LEN {
        return Err(invalid());
    }
    Ok(normal)
}

impl JobSpec {
    /// Builds a validated spec: the URL normalized, `start < stop` when both are given.
    pub fn new(
        url: &str,
        video_id: Option<String>,
        start: Option<Timecode>,
        stop: Option<Timecode>,
    ) -> Result<Self, SpecError> {
        if let Some(id) = &video_id {
            validate_video_id(id)?;
        }
        if let (Some(start), Some(stop)) = (start, stop) {
            if start >= stop {
                return Err(SpecError::StartNotBeforeStop { start, stop });
            }
        }
        Ok(JobSpec {
            url: normalize_url(url)?,
            video_id,
            start,
            stop,
            accuracy: Accuracy::Frame,
            profile: Profile::Mp4,
            max_height: None,
            poster_at: None,
            callback_url: None,
            fps: None,
            audio: None,
            clips: None,
        })
    }

    /// The job id: a digest of the normalized spec (URL, start, stop, output profile), so the
    /// same request always lands on the same job and the same object keys.
    pub fn job_id(&self) -> JobId {
        let mut hasher = Sha256::new();
        let bound = |t: Option<Timecode>| t.map(|t| t.as_micros().to_string()).unwrap_or_default();
        // The version tag and the profile are part of the digest so a future profile or
        // encoding change produces new ids instead of serving stale results.
        hasher.update(format!(
            "hopster-job-v1\nurl={}\nstart={}\nstop={}\nprofile=mp4-h264-aac\n",
            self.url,
            bound(self.start),
            bound(self.stop)
        ));
        // Added after the first ids were handed out: only a non-default mode changes the id.
        if self.accuracy != Accuracy::Frame {
            hasher.update(format!("accuracy={}\n", self.accuracy.as_str()));
        }
        // Likewise the output options: only non-default ones are hashed.
        if self.profile != Profile::Mp4 {
            hasher.update(format!("output={}\n", self.profile.as_str()));
        }
        if let Some(h) = self.max_height {
            hasher.update(format!("max_height={h}\n"));
        }
        if let Some(at) = self.poster_at {
            hasher.update(format!("poster_at={}\n", at.as_micros()));
        }
        if let Some(fps) = self.fps {
            hasher.update(format!("fps={fps}\n"));
        }
        if let Some(lufs) = self.loudness_target() {
            hasher.update(format!("loudnorm={lufs}\n"));
        }
        for clip in self.clips.iter().flatten() {
            hasher.update(format!(
                "clip={}-{}\n",
                clip.start.as_micros(),
                clip.stop.as_micros()
            ));
        }
        JobId(hex(&hasher.finalize()[..16]))
    }

    /// The clip's length when both bounds are known; of several clips, their sum.
    pub fn clip_length(&self) -> Option<Timecode> {
        match &self.clips {
            Some(clips) => Some(Timecode::from_micros(
                clips.iter().map(|c| c.length().as_micros()).sum(),
            )),
            None => clip_length(self.start, self.stop),
        }
    }

    /// The part of the source the job reads: `start` to `stop`, or of several clips the
    /// earliest start to the latest stop.
    pub fn span(&self) -> (Option<Timecode>, Option<Timecode>) {
        match &self.clips {
            Some(clips) => (
                clips.iter().map(|c| c.start).min(),
                clips.iter().map(|c| c.stop).max(),
            ),
            None => (self.start, self.stop),
        }
    }

    /// The loudness the sound is normalized to, when it is.
    pub fn loudness_target(&self) -> Option<i32> {
        self.audio.and_then(|a| a.normalize_to())
    }

    /// An animation's frame rate.
    pub fn animation_fps(&self) -> u32 {
        self.fps.unwrap_or(Profile::DEFAULT_FPS)
    }
}

/// The length of the clip from `start` (the beginning when `None`) to `stop`, when both are
/// known.
pub fn clip_length(start: Option<Timecode>, stop: Option<Timecode>) -> Option<Timecode> {
    stop.and_then(|stop| stop.checked_sub(start.unwrap_or(Timecode::ZERO)))
}

/// Lower-case hex of `bytes` (digests, signatures).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// A job id: 32 lower-case hex digits. Only ids that pass [`JobId::parse`] ever reach a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

impl JobId {
    pub fn parse(text: &str) -> Option<JobId> {
        let ok = text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| JobId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for JobId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        JobId::parse(&value).ok_or_else(|| format!("`{value}` is not a job id"))
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> String {
        id.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for JobId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[0-9a-f]{32}$"))
            .description(Some("A job id: a digest of the normalized spec"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for JobId {}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc(s: &str) -> Option<Timecode> {
        Some(Timecode::parse(s).unwrap())
    }

    #[test]
    fn the_same_spec_always_has_the_same_id() {
        let a = JobSpec::new(
            "http://Example.COM/v.mp4",
            None,
            tc("00:00:03"),
            tc("00:00:06"),
        )
        .unwrap();
        let b = JobSpec::new(
            "HTTP://example.com/v.mp4#t=1",
            Some("v".into()),
            tc("00:00:03.000"),
            tc("00:00:06"),
        )
        .unwrap();
        assert_eq!(a.job_id(), b.job_id());
        // Pinned: changing the digest's input silently orphans every stored job.
        assert_eq!(a.job_id().as_str().len(), 32);
        assert_eq!(a.job_id(), JobId::parse(a.job_id().as_str()).unwrap());
    }

    #[test]
    fn different_ranges_or_urls_are_different_jobs() {
        let base = JobSpec::new("http://h/v.mp4", None, tc("00:00:03"), tc("00:00:06")).unwrap();
        let later = JobSpec::new("http://h/v.mp4", None, tc("00:00:03"), tc("00:00:07")).unwrap();
        let open = JobSpec::new("http://h/v.mp4", None, tc("00:00:03"), None).unwrap();
        let other = JobSpec::new("http://h/w.mp4", None, tc("00:00:03"), tc("00:00:06")).unwrap();
        let ids = [base.job_id(), later.job_id(), open.job_id(), other.job_id()];
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn output_options_are_part_of_the_id_and_the_callback_is_not() {
        let base = JobSpec::new("http://h/v", None, tc("00:00:03"), tc("00:00:06")).unwrap();
        let mut ids = vec![base.job_id()];
        for profile in [Profile::Webm, Profile::Audio, Profile::Mp3, Profile::Hls] {
            let mut s = base.clone();
            s.profile = profile;
            ids.push(s.job_id());
        }
        let mut small = base.clone();
        small.max_height = Some(240);
        ids.push(small.job_id());
        let mut poster = base.clone();
        poster.poster_at = tc("00:00:02");
        ids.push(poster.job_id());
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                assert_ne!(a, b);
            }
        }
        let mut called = base.clone();
        called.callback_url = Some("https://example.com/hook".into());
        assert_eq!(called.job_id(), base.job_id());
        for p in Profile::ALL {
            assert_eq!(Profile::parse(p.as_str()), Some(p));
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.as_str())
            );
        }
    }

    #[test]
    fn keyframe_accuracy_is_a_different_job_and_frame_keeps_the_old_ids() {
        let frame = JobSpec::new("http://h/v", None, tc("00:00:03"), tc("00:00:06")).unwrap();
        let mut keyframe = frame.clone();
        keyframe.accuracy = Accuracy::Keyframe;
        assert_ne!(frame.job_id(), keyframe.job_id());
        let mut smart = frame.clone();
        smart.accuracy = Accuracy::Smart;
        assert_ne!(smart.job_id(), frame.job_id());
        assert_ne!(smart.job_id(), keyframe.job_id());
        // The id of a frame-accurate job did not change when accuracy modes arrived.
        assert_eq!(
            frame.job_id().as_str(),
            JobSpec::new("http://h/v", None, tc("00:00:03"), tc("00:00:06"))
                .unwrap()
                .job_id()
                .as_str()
        );
        assert!(!serde_json::to_string(&frame).unwrap().contains("accuracy"));
    }

    #[test]
    fn start_must_be_before_stop() {
        let err = JobSpec::new("http://h/v", None, tc("00:00:05"), tc("00:00:05")).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidClipRange);
        let err = JobSpec::new("http://h/v", None, tc("00:00:06"), tc("00:00:05")).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidClipRange);
    }

    #[test]
    fn only_absolute_http_urls_without_credentials_are_accepted() {
        for bad in [
            "file:///etc/passwd",
            "gopher://h/",
            "ftp://h/v",
            "http://",
            "http://:80/x",
            "h/v.mp4",
            "http://user:pw@h/v",
            "http://h/a b",
            "",
            "javascript:alert(1)",
        ] {
            assert_eq!(
                normalize_url(bad).map_err(|e| e.code()),
                Err(ErrorCode::InvalidUrl),
                "{bad}"
            );
        }
        for (given, normal) in [
            ("https://H:8080", "https://h:8080/"),
            ("http://[::1]:80/x?a=B", "http://[::1]/x?a=B"),
            (
                "http://2130706433:8000/v.mp4",
                "http://127.0.0.1:8000/v.mp4",
            ),
            ("http://127.1/v.mp4#t=3", "http://127.0.0.1/v.mp4"),
            // WHATWG skips extra slashes after a special scheme, as the client does.
            ("http:///x", "http://x/"),
            (
                "http://ExAmple.com./a/../v.mp4",
                "http://example.com./v.mp4",
            ),
        ] {
            assert_eq!(normalize_url(given).unwrap(), normal, "{given}");
        }
    }

    /// Found by `fuzz/` (v1_body): a URL under the limit whose normal form was over it made a
    /// spec whose URL `normalize_url` then refused.
    #[test]
    fn the_length_limit_holds_for_the_normal_form() {
        let short = format!("http://h/{}", "é".repeat(1000));
        assert!(short.len() <= MAX_URL_LEN);
        assert_eq!(
            normalize_url(&short).map_err(|e| e.code()),
            Err(ErrorCode::InvalidUrl)
        );
        let fits = format!("http://h/{}", "é".repeat(300));
        let normal = normalize_url(&fits).unwrap();
        assert_eq!(normalize_url(&normal).as_ref(), Ok(&normal));
    }

    #[test]
    fn video_ids_follow_a_strict_pattern_and_fill_the_template() {
        let t = "http://cdn.local/videos/{video_id}.mp4";
        assert_eq!(
            url_for_video_id(t, "abc_1-2").unwrap(),
            "http://cdn.local/videos/abc_1-2.mp4"
        );
        for bad in ["../src", "", "a/b", "a b", "ä", &"x".repeat(129)] {
            assert_eq!(
                url_for_video_id(t, bad),
                Err(SpecError::InvalidVideoId),
                "{bad}"
            );
        }
        assert_eq!(
            url_for_video_id("http://h/x", "a"),
            Err(SpecError::InvalidTemplate)
        );
    }

    #[test]
    fn job_ids_are_strict_hex() {
        assert!(JobId::parse("0123456789abcdef0123456789abcdef").is_some());
        for bad in [
            "0123456789ABCDEF0123456789abcdef",
            "../../etc/passwd",
            "",
            "0123",
        ] {
            assert!(JobId::parse(bad).is_none(), "{bad}");
        }
    }
}
