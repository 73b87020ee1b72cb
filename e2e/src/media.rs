//! Test media generated with ffmpeg's lavfi sources (never committed), and ffprobe checks.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A generated fixture, kept in `target/test-media/` (not in /tmp, where one directory per test
/// process used to pile up) under a name that carries a digest of how it is made, so a changed
/// recipe makes a new file. Written under a temporary name and renamed, so a reader never sees
/// half a file.
fn cached(name: &str, video: &str, seconds: u32, extra: &[&str]) -> PathBuf {
    use sha2::{Digest, Sha256};
    let recipe = format!("{video}|{seconds}|{}", extra.join(" "));
    let digest = Sha256::digest(recipe.as_bytes());
    let key = shared_proto::spec::hex(&digest[..6]);
    let dir = crate::native::target_dir()
        .parent()
        .map(|target| target.join("test-media"))
        .expect("the target directory");
    std::fs::create_dir_all(&dir).expect("target/test-media");
    let path = dir.join(format!("{name}-{key}.mp4"));
    if !path.exists() {
        let partial = dir.join(format!(".{name}-{key}.{}.mp4", std::process::id()));
        encode(&partial, video, seconds, extra);
        std::fs::rename(&partial, &path).expect("moving the fixture into place");
    }
    path
}

/// A 60 s 320×240 25 fps H.264/AAC mp4 with a keyframe every 2 s, made once.
pub fn sixty_second_video() -> &'static Path {
    static VIDEO: OnceLock<PathBuf> = OnceLock::new();
    VIDEO.get_or_init(|| cached("sixty", "testsrc=size=320x240", 60, &[]))
}

/// A 60 s 640×360 video at about 2 Mbit/s with its index first (`+faststart`), like a file a
/// CDN serves: big enough that reading all of it is clearly different from reading a clip.
pub fn large_faststart_video() -> &'static Path {
    static VIDEO: OnceLock<PathBuf> = OnceLock::new();
    VIDEO.get_or_init(|| {
        cached(
            "large",
            "testsrc2=size=640x360",
            60,
            &["-b:v", "2M", "-movflags", "+faststart"],
        )
    })
}

/// Generates a `seconds` long 320×240 test video at `path`.
pub fn generate(path: &Path, seconds: u32) {
    encode(path, "testsrc=size=320x240", seconds, &[]);
}

/// Encodes `seconds` of the lavfi `video` source at 25 fps with a 440 Hz tone to H.264/AAC
/// (keyframe every 2 s), plus `extra` output options.
fn encode(path: &Path, video: &str, seconds: u32, extra: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("{video}:rate=25:duration={seconds}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:sample_rate=44100:duration={seconds}"
        ))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "50",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-shortest"])
        .args(extra)
        .arg(path)
        .status()
        .expect("running ffmpeg (apt-get install ffmpeg)");
    assert!(
        status.success(),
        "ffmpeg could not generate {}",
        path.display()
    );
}

/// What ffprobe says of a file.
#[derive(Debug, Clone)]
pub struct Probed {
    pub duration: f64,
    pub format: String,
    pub video_codec: String,
    pub audio_codec: Option<String>,
    /// Of the first video stream; 0 without one.
    pub width: u64,
    pub height: u64,
}

/// Probes bytes by writing them to a temp file.
pub fn probe_bytes(bytes: &[u8]) -> Probed {
    let dir = crate::TempDir::new("hopster-probe");
    let path = dir.0.join("clip.mp4");
    std::fs::write(&path, bytes).expect("writing the clip");
    probe(&path)
}

/// The MD5 of every decoded frame of the first video stream of `bytes`, in order.
pub fn frame_hashes(bytes: &[u8]) -> Vec<String> {
    let dir = crate::TempDir::new("hopster-frames");
    let path = dir.0.join("clip");
    std::fs::write(&path, bytes).expect("writing the clip");
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(&path)
        .args(["-map", "0:v:0", "-f", "framemd5", "-"])
        .output()
        .expect("running ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_owned()))
        .collect()
}

pub fn probe(path: &Path) -> Probed {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path)
        .output()
        .expect("running ffprobe");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let codec = |kind: &str| {
        v["streams"].as_array().and_then(|s| {
            s.iter()
                .find(|s| s["codec_type"] == kind)
                .and_then(|s| s["codec_name"].as_str().map(str::to_owned))
        })
    };
    let dimension = |which: &str| {
        v["streams"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["codec_type"] == "video"))
            .and_then(|s| s[which].as_u64())
            .unwrap_or(0)
    };
    Probed {
        duration: v["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0.0),
        format: v["format"]["format_name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        video_codec: codec("video").unwrap_or_default(),
        audio_codec: codec("audio"),
        width: dimension("width"),
        height: dimension("height"),
    }
}

/// An animated WebP's canvas width and height, frame count and total length in milliseconds,
/// read from its RIFF chunks (`VP8X`, one `ANMF` per frame): ffmpeg 5.1 cannot decode an
/// animated WebP. `None` when `bytes` is not one.
pub fn webp_animation(bytes: &[u8]) -> Option<(u32, u32, usize, u64)> {
    let le24 = |b: &[u8]| u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
    if bytes.get(..4)? != b"RIFF" || bytes.get(8..12)? != b"WEBP" {
        return None;
    }
    let (mut at, mut canvas, mut frames, mut millis) = (12, None, 0, 0u64);
    while at + 8 <= bytes.len() {
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().ok()?) as usize;
        let body = bytes.get(at + 8..at + 8 + size)?;
        match &bytes[at..at + 4] {
            b"VP8X" => canvas = Some((le24(body.get(4..7)?) + 1, le24(body.get(7..10)?) + 1)),
            b"ANMF" => {
                frames += 1;
                millis += u64::from(le24(body.get(12..15)?));
            }
            _ => {}
        }
        at += 8 + size + size % 2;
    }
    let (width, height) = canvas?;
    Some((width, height, frames, millis))
}

/// A 10 s 320×240 H.264 mp4 with no sound at all, made once.
pub fn silent_film() -> &'static Path {
    static VIDEO: OnceLock<PathBuf> = OnceLock::new();
    VIDEO.get_or_init(|| cached("nosound", "testsrc=size=320x240", 10, &["-an"]))
}

/// The integrated loudness (EBU R128, LUFS) of the first audio stream of `bytes`, by
/// ffmpeg's `ebur128` filter: the `I:` of the summary it logs at the end.
pub fn integrated_loudness(bytes: &[u8]) -> f64 {
    let dir = crate::TempDir::new("hopster-loudness");
    let path = dir.0.join("clip");
    std::fs::write(&path, bytes).expect("writing the clip");
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-nostats", "-i"])
        .arg(&path)
        .args(["-map", "0:a:0", "-af", "ebur128", "-f", "null", "-"])
        .output()
        .expect("running ffmpeg");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let summary = log.rsplit("Summary:").next().unwrap_or_default();
    summary
        .lines()
        .find_map(|l| l.trim().strip_prefix("I:"))
        .and_then(|v| v.trim().trim_end_matches("LUFS").trim().parse().ok())
        .unwrap_or_else(|| panic!("no integrated loudness in: {summary}"))
}
