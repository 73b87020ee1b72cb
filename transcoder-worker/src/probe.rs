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
    /// Packets read at a point of the source ([`args_with_keyframe`]), else none.
    #[serde(default)]
    pub packets: Vec<Packet>,
}

/// A packet as ffprobe lists it: its stream, its time and its flags (`K` for a keyframe).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Packet {
    pub stream_index: u32,
    pub pts_time: Option<String>,
    #[serde(default)]
    pub flags: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Stream {
    /// The stream's index in its file (what a [`Packet`] names).
    #[serde(default)]
    pub index: u32,
    pub codec_type: String,
    pub codec_name: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The average frame rate as ffprobe writes it (`30000/1001`; `0/0` when unknown).
    pub avg_frame_rate: Option<String>,
    /// The lowest rate that represents every timestamp exactly (may exceed the real rate).
    pub r_frame_rate: Option<String>,
    /// What the smart cut and passthrough check: the pixel format (`yuv420p`), the field
    /// order (`progressive`), the codec profile (`High`) and level (`31`).
    pub pix_fmt: Option<String>,
    pub field_order: Option<String>,
    pub profile: Option<String>,
    pub level: Option<i64>,
    /// Bits per second, samples per second (ffprobe writes both as text) and channels, for
    /// an inspection.
    pub bit_rate: Option<String>,
    pub sample_rate: Option<String>,
    pub channels: Option<u32>,
}

impl Stream {
    /// Frames per second: the average when ffprobe knows it, else the base rate.
    pub fn fps(&self) -> Option<f64> {
        fn rate(text: Option<&str>) -> Option<f64> {
            let (num, den) = text?.split_once('/')?;
            let (num, den): (f64, f64) = (num.parse().ok()?, den.parse().ok()?);
            let fps = num / den;
            (fps.is_finite() && fps > 0.0).then_some(fps)
        }
        rate(self.avg_frame_rate.as_deref()).or_else(|| rate(self.r_frame_rate.as_deref()))
    }
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

    /// The last keyframe of the first video stream at or before `at`, among the packets
    /// [`args_with_keyframe`] listed.
    pub fn keyframe_at_or_before(&self, at: Timecode) -> Option<Timecode> {
        let video = self.video()?.index;
        self.packets
            .iter()
            .filter(|p| p.stream_index == video && p.flags.contains('K'))
            .filter_map(|p| p.pts_time.as_deref()?.parse::<f64>().ok())
            .map(Timecode::from_secs_f64)
            .filter(|t| *t <= at)
            .max()
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

/// What ffprobe/ffmpeg read: a local file, or the range proxy's loopback URL.
#[derive(Debug, Clone)]
pub struct Input {
    pub location: String,
    /// `-protocol_whitelist`: `file` for a staged copy, `http,tcp` for the range proxy.
    pub protocols: &'static str,
    /// `-format_whitelist`: [`DEMUXER_WHITELIST`] for sources, [`OUTPUT_DEMUXERS`] for what
    /// this worker wrote itself.
    pub formats: &'static str,
    /// `-max_pixels`: no decoder of this input allocates a larger frame (sources only).
    pub max_pixels: Option<u64>,
}

/// The protocols of an input read through the range proxy ([`Input::proxied`]).
const PROXY_PROTOCOLS: &str = "http,tcp";

/// The protocol of a local file ([`Input::file`]).
const FILE_PROTOCOLS: &str = "file";

/// The demuxers of this worker's own outputs (mp4, m4a, WebM, MP3, MPEG-TS segments, GIF).
pub const OUTPUT_DEMUXERS: &str = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,mp3,mpegts,gif";

impl Input {
    pub fn file(path: &std::path::Path) -> Input {
        Input {
            location: path.to_string_lossy().into_owned(),
            protocols: FILE_PROTOCOLS,
            formats: DEMUXER_WHITELIST,
            max_pixels: None,
        }
    }

    /// The same input, with no frame of more than `max_pixels` decoded (ffmpeg takes at most
    /// `i32::MAX`, which is no cap in practice).
    pub fn capped(self, max_pixels: u64) -> Input {
        Input {
            max_pixels: Some(max_pixels.min(i32::MAX as u64)),
            ..self
        }
    }

    /// The options every ffmpeg or ffprobe run of this input starts with: only the protocols
    /// and demuxers it allows, and its frame-size cap.
    pub fn options(&self) -> Vec<String> {
        let mut args = vec![
            "-protocol_whitelist".to_owned(),
            self.protocols.to_owned(),
            "-format_whitelist".to_owned(),
            self.formats.to_owned(),
        ];
        if let Some(max) = self.max_pixels {
            args.extend(["-max_pixels".to_owned(), max.to_string()]);
        }
        args
    }

    /// The range proxy's URL, for an input read through it.
    pub fn proxy_url(&self) -> Option<&str> {
        (self.protocols == PROXY_PROTOCOLS).then_some(self.location.as_str())
    }

    /// The file's path, for a local file.
    pub fn file_path(&self) -> Option<&std::path::Path> {
        (self.protocols == FILE_PROTOCOLS).then(|| std::path::Path::new(&self.location))
    }

    /// A file this worker made (a clip, a segment).
    pub fn output(path: &std::path::Path) -> Input {
        Input {
            formats: OUTPUT_DEMUXERS,
            ..Input::file(path)
        }
    }

    pub fn proxied(url: String) -> Input {
        Input {
            location: url,
            protocols: PROXY_PROTOCOLS,
            formats: DEMUXER_WHITELIST,
            max_pixels: None,
        }
    }
}

/// An ffprobe of `input` with `options` between what the input allows and its location.
pub fn ffprobe_args(input: &Input, options: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec!["-v".into(), "error".into()];
    args.extend(input.options());
    args.extend(options.iter().map(|s| s.to_string()));
    args.push(input.location.clone());
    args
}

/// A probe ([`args`]) that also lists the first packets after seeking to `at`: ffprobe seeks,
/// as ffmpeg's `-ss` does, to the video keyframe at or before `at`, so that keyframe is among
/// them ([`Probe::keyframe_at_or_before`]). One process instead of a probe and a keyframe
/// search: on these machines starting ffprobe alone costs about 65 ms.
pub fn args_with_keyframe(input: &Input, at: Timecode) -> Vec<String> {
    let interval = format!("{}%+#{KEYFRAME_PACKETS}", at.ffmpeg_arg());
    ffprobe_args(
        input,
        &[
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            "-show_entries",
            "packet=stream_index,pts_time,flags",
            "-read_intervals",
            &interval,
        ],
    )
}

/// Packets read after the seek of [`args_with_keyframe`]: the streams' packets interleave,
/// and the video keyframe comes among the first of them.
const KEYFRAME_PACKETS: u32 = 32;

/// The arguments of a probe: JSON out, only what `input` allows in. ffprobe decodes the first
/// frames to complete the streams' description, so a source's probe carries the frame-size
/// cap too (`-max_pixels`): a larger frame is refused before it is allocated, and ffprobe
/// fails saying so, which `process` reads as the pixel limit (`source_dimensions`). A probe
/// that decodes nothing (`-skip_frame all`) never completes the description and reads up to
/// its probe size instead: 22 % of a ranged source whose clip needs 1 %.
pub fn args(input: &Input) -> Vec<String> {
    ffprobe_args(
        input,
        &["-print_format", "json", "-show_format", "-show_streams"],
    )
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
        let a = args(&Input::file(std::path::Path::new("/tmp/x")).capped(1000));
        let after = |flag: &str| a[a.iter().position(|x| x == flag).unwrap() + 1].clone();
        assert_eq!(after("-protocol_whitelist"), "file");
        assert_eq!(after("-max_pixels"), "1000");
        assert!(!args(&Input::output(std::path::Path::new("/tmp/x")))
            .contains(&"-max_pixels".to_string()));
        let input = Input::file(std::path::Path::new("/tmp/x")).capped(1000);
        let k = args_with_keyframe(&input, Timecode::from_micros(1));
        assert_eq!(
            k[k.iter().position(|x| x == "-max_pixels").unwrap() + 1],
            "1000"
        );
        assert!(
            !after("-format_whitelist").contains("hls")
                && !after("-format_whitelist").contains("concat")
        );
    }

    #[test]
    fn one_probe_describes_the_source_and_finds_the_keyframe_before_a_start() {
        // As ffprobe 5.1 writes it for `args_with_keyframe` (trimmed): audio packets are all
        // keyframes and interleave with the video's.
        let json = r#"{"packets": [
            {"stream_index": 1, "pts_time": "589.994667", "flags": "K_"},
            {"stream_index": 0, "pts_time": "590.000000", "flags": "K_"},
            {"stream_index": 1, "pts_time": "590.016000", "flags": "K_"},
            {"stream_index": 0, "pts_time": "590.033333", "flags": "__"}],
          "streams": [{"index": 0, "codec_type": "video", "codec_name": "h264"},
                      {"index": 1, "codec_type": "audio", "codec_name": "aac"}],
          "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "600.0"}}"#;
        let probe = Probe::parse(json).unwrap();
        let at = |t: &str| Timecode::parse(t).unwrap();
        assert_eq!(
            probe.keyframe_at_or_before(at("00:09:50.5")),
            Some(at("00:09:50"))
        );
        // Only video keyframes count: the audio packet before it is no answer.
        assert_eq!(probe.keyframe_at_or_before(at("00:09:49.999")), None);
        let a = args_with_keyframe(
            &Input::proxied("http://127.0.0.1:1/source".into()),
            at("00:09:50.5"),
        );
        assert!(a.contains(&"590.500000%+#32".to_string()), "{a:?}");
        assert!(a.contains(&"-show_streams".to_string()) && a.contains(&"http,tcp".to_string()));
    }

    #[test]
    fn frame_rates_are_read_as_ffprobe_writes_them() {
        let stream = |avg: &str, r: &str| Stream {
            avg_frame_rate: Some(avg.into()),
            r_frame_rate: Some(r.into()),
            ..Stream::default()
        };
        let ntsc = stream("30000/1001", "30000/1001").fps().unwrap();
        assert!((ntsc - 29.97).abs() < 0.01, "{ntsc}");
        assert_eq!(stream("0/0", "25/1").fps(), Some(25.0));
        assert_eq!(stream("0/0", "0/0").fps(), None);
        assert_eq!(stream("1/0", "x").fps(), None);
        assert_eq!(Stream::default().fps(), None);
        let p = Probe::parse(MP4).unwrap();
        assert_eq!(p.video().unwrap().fps(), Some(25.0));
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
