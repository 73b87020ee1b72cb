//! Test media generated with ffmpeg's lavfi sources (never committed), and ffprobe checks.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// This process's media directory (made once, shared by the generated fixtures).
fn media_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hopster-media-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("media dir");
    dir
}

/// A 60 s 320×240 25 fps H.264/AAC mp4 with a keyframe every 2 s, made once per test process.
pub fn sixty_second_video() -> &'static Path {
    static VIDEO: OnceLock<PathBuf> = OnceLock::new();
    VIDEO.get_or_init(|| {
        let path = media_dir().join("sixty.mp4");
        generate(&path, 60);
        path
    })
}

/// A 60 s 640×360 video at about 2 Mbit/s with its index first (`+faststart`), like a file a
/// CDN serves: big enough that reading all of it is clearly different from reading a clip.
pub fn large_faststart_video() -> &'static Path {
    static VIDEO: OnceLock<PathBuf> = OnceLock::new();
    VIDEO.get_or_init(|| {
        let path = media_dir().join("large.mp4");
        encode(
            &path,
            "testsrc2=size=640x360",
            60,
            &["-b:v", "2M", "-movflags", "+faststart"],
        );
        path
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
