//! ffprobe's JSON, read into typed structs, and the checks made on it.

use serde::Deserialize;
use shared_proto::Timecode;

/// Container families we accept, as ffprobe names them in `format_name`. Anything else (HLS
/// playlists, concat lists, images, raw pipes) is refused before ffmpeg opens it.
const ALLOWED_CONTAINERS: &[&str] = &["mov", "mp4", "matroska", "webm", "avi", "mpegts", "flv"];

/// The demuxers ffprobe and ffmpeg may open at all (`-format_whitelist`): a playlist or concat
/// list that would make them read other files or hosts is refused before it is parsed.
pub const DEMUXER_WHITELIST: &str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,flv";

#[derive(Debug, Clone, Deserialize)]
pub struct Probe {
    #[serde(default)]
    pub streams: Vec<Stream>,
    pub format: Format,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Stream {
    pub codec_type: String,
    pub codec_name: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Format {
    pub format_name: String,
    pub duration: Option<String>,
}

impl Probe {
    pub fn parse(json: &str) -> Result<Probe, serde_json::Error> {
        serde_json::from_str(json)
    }

    pub fn duration(&self) -> Option<Timecode> {
        let secs: f64 = self.format.duration.as_deref()?.parse().ok()?;
        (secs > 0.0).then(|| Timecode::from_secs_f64(secs))
    }

    pub fn video(&self) -> Option<&Stream> {
        self.streams.iter().find(|s| s.codec_type == "video")
    }

    pub fn audio(&self) -> Option<&Stream> {
        self.streams.iter().find(|s| s.codec_type == "audio")
    }

    /// Whether the container is one we accept.
    pub fn container_allowed(&self) -> bool {
        self.format
            .format_name
            .split(',')
            .any(|name| ALLOWED_CONTAINERS.contains(&name))
    }
}

/// The arguments of a probe: JSON out, only local files in.
pub fn args(input: &str) -> Vec<String> {
    [
        "-v",
        "error",
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        DEMUXER_WHITELIST,
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        input,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from `ffprobe` 5.1 on a lavfi-generated H.264/AAC mp4.
    const MP4: &str = include_str!("../tests/fixtures/probe-mp4.json");

    #[test]
    fn a_recorded_mp4_probe_parses() {
        let p = Probe::parse(MP4).unwrap();
        assert!(p.container_allowed());
        assert_eq!(
            p.video().and_then(|v| v.codec_name.as_deref()),
            Some("h264")
        );
        assert_eq!(p.audio().and_then(|a| a.codec_name.as_deref()), Some("aac"));
        assert_eq!(
            (p.video().unwrap().width, p.video().unwrap().height),
            (Some(320), Some(240))
        );
        let d = p.duration().unwrap().as_secs_f64();
        assert!((d - 4.0).abs() < 0.1, "{d}");
    }

    #[test]
    fn probing_only_opens_local_files_with_allowed_demuxers() {
        let a = args("/tmp/x");
        let after = |flag: &str| a[a.iter().position(|x| x == flag).unwrap() + 1].clone();
        assert_eq!(after("-protocol_whitelist"), "file");
        assert!(
            !after("-format_whitelist").contains("hls")
                && !after("-format_whitelist").contains("concat")
        );
    }

    #[test]
    fn playlists_and_files_without_duration_are_recognised() {
        let hls = r#"{"streams":[],"format":{"format_name":"hls"}}"#;
        let p = Probe::parse(hls).unwrap();
        assert!(!p.container_allowed());
        assert!(p.duration().is_none() && p.video().is_none());
        assert!(Probe::parse("{}").is_err());
    }
}
