//! The mp4 self-description agrees with ffprobe on clips ffmpeg wrote the way the transcoder
//! writes them, and declines what it cannot read.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Command;
use transcoder_worker::mp4info;
use transcoder_worker::probe::Probe;

fn encode(path: &std::path::Path, extra: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc=size=320x240:rate=25:duration=3.2")
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=3.2"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-t", "3", "-vf", "scale=-2:120"])
        .args(extra)
        .arg(path)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
}

fn ffprobe(path: &std::path::Path) -> Probe {
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
        .expect("ffprobe");
    Probe::parse(&String::from_utf8_lossy(&out.stdout)).unwrap()
}

#[tokio::test]
async fn a_faststart_clip_describes_itself_as_ffprobe_does() {
    let dir = std::env::temp_dir().join(format!("hopster-mp4info-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let clip = dir.join("clip.mp4");
    encode(&clip, &["-movflags", "+faststart", "-f", "mp4"]);
    let mine = mp4info::describe_file(&clip).await.expect("described");
    let theirs = ffprobe(&clip);
    let (a, b) = (mine.duration().unwrap(), theirs.duration().unwrap());
    assert!(
        (a.as_secs_f64() - b.as_secs_f64()).abs() < 0.03,
        "{a} vs {b}"
    );
    for (m, t) in [
        (mine.video(), theirs.video()),
        (mine.audio(), theirs.audio()),
    ] {
        let (m, t) = (m.expect("stream"), t.expect("stream"));
        assert_eq!(m.codec_name, t.codec_name);
        assert_eq!((m.width, m.height), (t.width, t.height));
        assert_eq!(m.index, t.index, "the stream's index in its file");
    }
    assert_eq!(mine.video().unwrap().height, Some(120));
    // The pixel format, from the codec configuration (`avcC`).
    assert_eq!(
        mine.video().unwrap().pix_fmt,
        theirs.video().unwrap().pix_fmt
    );
    assert_eq!(mine.video().unwrap().pix_fmt.as_deref(), Some("yuv420p"));
    // The frame rate the source limits check (`max_fps`).
    let (fps, theirs_fps) = (mine.video().unwrap().fps(), theirs.video().unwrap().fps());
    assert!(
        (fps.expect("a rate") - theirs_fps.unwrap()).abs() < 0.01,
        "{fps:?} vs {theirs_fps:?}"
    );
    assert!((fps.unwrap() - 25.0).abs() < 0.01, "{fps:?}");

    // Without +faststart the index is at the end, past what is read: no description, and
    // the caller probes instead.
    let late = dir.join("late.mp4");
    encode(&late, &["-f", "mp4"]);
    let head = std::fs::read(&late).unwrap();
    let described = mp4info::describe(&head[..4096.min(head.len())]);
    assert!(described.is_none());
    assert!(mp4info::describe(b"not an mp4 at all").is_none());
    assert!(mp4info::describe(&[0, 0, 0, 200, b'm', b'o', b'o', b'v', 1, 2]).is_none());
    let _ = std::fs::remove_dir_all(&dir);
}
