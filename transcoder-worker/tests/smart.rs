//! Smart cut and passthrough, driven through the transcode stage (no broker) against an `fs`
//! store, on generated sources whose every frame shows its number (`testsrc`). Each result is
//! measured with ffprobe and ffmpeg: frame count, first frame, copied packets, PSNR of the
//! encoded edges, audio against video, a clean decode, and the codec headers.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers

use hopster_common::settings::{Backend, Settings};
use hopster_common::worker::Stage;
use hopster_common::Store;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use shared_proto::{
    keys, Accuracy, ClipRange, JobResult, JobSpec, JobState, JobStatus, Method, Timecode,
    TranscodeJob, MESSAGE_VERSION,
};
use std::path::PathBuf;
use std::process::Command;
use transcoder_worker::Transcoder;

/// A temporary directory, removed when dropped.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir(name: &str) -> Dir {
    let n: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        .into();
    let dir = std::env::temp_dir().join(format!("hopster-smart-{name}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Dir(dir)
}

/// Runs ffmpeg, failing the test on an error; answers its standard output.
fn ffmpeg_stdout(args: &[&str]) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn ffmpeg(args: &[&str]) {
    ffmpeg_stdout(args);
}

fn ffprobe(args: &[&str]) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// 12 s at 30 fps, 320×240 with the frame number drawn in and the colours turning, a keyframe
/// every second (closed
/// GOPs), x264 at CRF 23 with B-frames, and a 48 kHz tone. `video` replaces the x264 options.
fn source(dir: &std::path::Path, name: &str, video: &[&str]) -> PathBuf {
    source_of(dir, name, 12, video)
}

fn source_of(dir: &std::path::Path, name: &str, secs: u32, video: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let picture = format!("testsrc=size=320x240:rate=30:duration={secs}");
    let tone = format!("sine=frequency=440:sample_rate=48000:duration={secs}");
    let mut args = vec![
        "-f", "lavfi", "-i", &picture, "-f", "lavfi", "-i", &tone, "-map", "0:v", "-map", "1:a",
    ];
    // The colours turn by 0.9 rad a frame, so neighbouring frames are far apart (about
    // 17 dB): a clip that starts one frame off cannot pass for the right one.
    if !video.contains(&"-vf") {
        args.extend_from_slice(&["-vf", "hue=H=n*0.9"]);
    }
    args.extend_from_slice(video);
    args.extend_from_slice(&["-c:a", "aac", "-b:a", "96k"]);
    let out = path.to_str().unwrap().to_owned();
    args.push(&out);
    ffmpeg(&args);
    path
}

const X264: &[&str] = &[
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-crf",
    "23",
    "-g",
    "30",
    "-keyint_min",
    "30",
    "-sc_threshold",
    "0",
    "-pix_fmt",
    "yuv420p",
];

/// Runs one job on `source` through the stage, answering its result and the stored clip.
async fn run(
    dir: &std::path::Path,
    source: &std::path::Path,
    accuracy: Accuracy,
    bounds: (Option<&str>, Option<&str>),
    passthrough: bool,
) -> (JobResult, PathBuf) {
    let tc = |t: &str| Some(Timecode::parse(t).unwrap());
    let (start, stop) = (bounds.0.and_then(tc), bounds.1.and_then(tc));
    run_with(dir, source, passthrough, |spec| {
        (spec.start, spec.stop, spec.accuracy) = (start, stop, accuracy);
    })
    .await
}

/// Runs the job `shape` makes of a job of the whole `source`.
async fn run_with(
    dir: &std::path::Path,
    source: &std::path::Path,
    passthrough: bool,
    shape: impl FnOnce(&mut JobSpec),
) -> (JobResult, PathBuf) {
    let mut settings = Settings::default();
    settings.store.backend = Backend::Fs;
    settings.store.root = dir.join("store");
    settings.transcoder.work_dir = Some(dir.join("work"));
    settings.transcoder.passthrough = passthrough;
    let store = Store::from_settings(&settings.store).unwrap();
    let url = format!("http://h/{}", source.file_name().unwrap().to_string_lossy());
    let mut spec = JobSpec::new(&url, None, None, None).unwrap();
    shape(&mut spec);
    let source_key = keys::source_key(&spec.url);
    store
        .objects()
        .put(
            &Path::from(source_key.as_str()),
            PutPayload::from(std::fs::read(source).unwrap()),
        )
        .await
        .unwrap();
    store
        .put_status(&JobStatus::queued(spec.clone(), 1))
        .await
        .unwrap();
    let job = TranscodeJob {
        version: MESSAGE_VERSION,
        job_id: spec.job_id(),
        spec,
        source_key,
        source_url: None,
        hls: None,
        attempt: 1,
    };
    Transcoder::new(&settings, store.clone())
        .unwrap()
        .handle(job.clone())
        .await
        .unwrap();
    let status = store.status(&job.job_id).await.unwrap().unwrap();
    assert_eq!(status.state, JobState::Completed, "{:?}", status.error);
    let result = status.result.unwrap();
    let bytes = store
        .objects()
        .get(&Path::from(result.key.as_str()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let clip = dir.join(format!("clip-{}.mp4", job.job_id));
    std::fs::write(&clip, &bytes).unwrap();
    (result, clip)
}

fn frames(file: &std::path::Path) -> u64 {
    let doc = ffprobe(&[
        "-count_frames",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=nb_read_frames",
        file.to_str().unwrap(),
    ]);
    doc["streams"][0]["nb_read_frames"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The MD5 of each packet of the first video stream, copied out as it is, in decode order.
fn packet_hashes(file: &std::path::Path) -> Vec<String> {
    ffmpeg_stdout(&[
        "-i",
        file.to_str().unwrap(),
        "-map",
        "0:v:0",
        "-c",
        "copy",
        "-f",
        "framemd5",
        "-",
    ])
    .lines()
    .filter(|l| !l.starts_with('#'))
    .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_owned()))
    .collect()
}

/// The PSNR (dB, average of the planes) of every frame of `clip` against the source's frames
/// from `start` on; identical frames count as 100.
fn psnr(clip: &std::path::Path, source: &std::path::Path, start: &str, count: u64) -> Vec<f64> {
    psnr_from(clip, 0, source, start, count)
}

/// [`psnr`] of `count` frames of `clip` from its frame `from`.
fn psnr_from(
    clip: &std::path::Path,
    from: u64,
    source: &std::path::Path,
    start: &str,
    count: u64,
) -> Vec<f64> {
    let stats = clip.with_extension(format!("{from}.psnr.log"));
    let graph = format!(
        "[0:v]trim=start_frame={from}:end_frame={},setpts=PTS-STARTPTS[a];[1:v]trim=start_frame=0:end_frame={count},setpts=PTS-STARTPTS[b];[a][b]psnr=stats_file={}",
        from + count,
        stats.display()
    );
    ffmpeg(&[
        "-i",
        clip.to_str().unwrap(),
        "-ss",
        start,
        "-i",
        source.to_str().unwrap(),
        "-lavfi",
        &graph,
        "-f",
        "null",
        "-",
    ]);
    std::fs::read_to_string(&stats)
        .unwrap()
        .lines()
        .filter_map(|l| l.split("psnr_avg:").nth(1))
        .map(|v| {
            let v = v.split_whitespace().next().unwrap();
            if v == "inf" {
                100.0
            } else {
                v.parse().unwrap()
            }
        })
        .collect()
}

fn avcc(file: &std::path::Path) -> Vec<u8> {
    transcoder_worker::mp4info::avcc(&std::fs::read(file).unwrap())
        .expect("an avcC")
        .to_vec()
}

fn stream_times(file: &std::path::Path) -> Vec<(String, f64, f64)> {
    let doc = ffprobe(&[
        "-show_entries",
        "stream=codec_type,start_time,duration",
        file.to_str().unwrap(),
    ]);
    doc["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let f = |k: &str| s[k].as_str().unwrap_or("0").parse::<f64>().unwrap();
            (
                s["codec_type"].as_str().unwrap().to_owned(),
                f("start_time"),
                f("duration"),
            )
        })
        .collect()
}

/// The sound starts within one AAC frame (1024 samples at 48 kHz) of the video and lasts as
/// long within 50 ms; the video lasts `secs` within 50 ms.
fn assert_sound_follows(clip: &std::path::Path, secs: f64) {
    let times = stream_times(clip);
    let video = times.iter().find(|t| t.0 == "video").unwrap();
    let audio = times.iter().find(|t| t.0 == "audio").unwrap();
    assert!((audio.1 - video.1).abs() <= 1024.0 / 48000.0, "{times:?}");
    assert!((audio.2 - video.2).abs() <= 0.05, "{times:?}");
    assert!((video.2 - secs).abs() <= 0.05, "{times:?}");
}

/// `+faststart`: the `moov` comes before the media.
fn assert_faststart(clip: &std::path::Path) {
    let bytes = std::fs::read(clip).unwrap();
    let moov = bytes.windows(4).position(|w| w == b"moov").unwrap();
    let mdat = bytes.windows(4).position(|w| w == b"mdat").unwrap();
    assert!(moov < mdat);
}

#[tokio::test]
async fn a_smart_cut_is_exact_and_clean_and_copies_the_whole_gops() {
    let d = dir("exact");
    let src = source(&d.0, "x264.mp4", X264);
    // 00:00:02.4 → 00:00:08.1: frames 72 to 242. The keyframes at 3 s and 8 s make an
    // encoded head of 18 frames, 150 copied (5 s), an encoded tail of 3.
    let (result, clip) = run(
        &d.0,
        &src,
        Accuracy::Smart,
        (Some("00:00:02.4"), Some("00:00:08.1")),
        true,
    )
    .await;
    assert_eq!(result.method, Some(Method::Smart));
    assert!(
        (result.copied_secs.unwrap() - 5.0).abs() < 1e-6,
        "{result:?}"
    );
    assert!(
        (result.encoded_secs.unwrap() - 0.7).abs() < 1e-6,
        "{result:?}"
    );
    // Frame count: the source frames in [start, stop).
    assert_eq!(frames(&clip), 171);
    // The codec headers are the source's.
    assert_eq!(avcc(&clip), avcc(&src));
    // The copied GOPs are the source's own packets: the clip's packets 18..168 are the
    // source's 90..240 (decode order; every GOP closed, so the same packets in the same order).
    let (ours, theirs) = (packet_hashes(&clip), packet_hashes(&src));
    assert_eq!(ours.len(), 171);
    assert_eq!(ours[18..168], theirs[90..240]);
    // First frame and the encoded edges: every frame at least 40 dB from its source frame,
    // and the first is frame 72, not a neighbour.
    let scores = psnr(&clip, &src, "00:00:02.4", 171);
    assert_eq!(scores.len(), 171);
    let worst = scores.iter().cloned().fold(f64::INFINITY, f64::min);
    assert!(worst >= 40.0, "lowest PSNR {worst:.2} dB");
    let neighbour = psnr(&clip, &src, "00:00:02.35", 1)[0];
    assert!(
        scores[0] >= 40.0 && neighbour < 30.0,
        "the first frame matches frame 71 ({neighbour:.2} dB) about as well as 72 ({:.2} dB)",
        scores[0]
    );
    assert!(
        scores[18..168].iter().all(|s| *s == 100.0),
        "copied frames decode identically"
    );
    // Audio: starts within one AAC frame of the video, lasts as long within 50 ms.
    assert_sound_follows(&clip, 5.7);
    // It decodes without a single error.
    ffmpeg(&["-xerror", "-i", clip.to_str().unwrap(), "-f", "null", "-"]);
}

#[tokio::test]
async fn a_smart_cut_without_a_stop_copies_to_the_end() {
    let d = dir("open");
    let src = source(&d.0, "x264.mp4", X264);
    let (result, clip) = run(&d.0, &src, Accuracy::Smart, (None, None), true).await;
    // No start and no stop is the whole source: a passthrough, copied as it is.
    assert_eq!(result.method, Some(Method::Copy));
    assert_eq!(frames(&clip), 360);
    let d2 = dir("open-start");
    let src2 = source(&d2.0, "x264.mp4", X264);
    let (result, clip) = run(
        &d2.0,
        &src2,
        Accuracy::Smart,
        (Some("00:00:10.5"), None),
        true,
    )
    .await;
    // From 10.5 with no stop: 15 encoded frames, then the GOP at 11 s copied to the end.
    assert_eq!(result.method, Some(Method::Smart), "{result:?}");
    assert_eq!(frames(&clip), 45);
    ffmpeg(&["-xerror", "-i", clip.to_str().unwrap(), "-f", "null", "-"]);
}

/// An mp4 gives its codec headers and x264's settings from its index (the `moov` and its first
/// sample read by range). A fragmented mp4's `moov` places no sample, and ffmpeg copies its
/// first frame out instead. Both are smart-cut, with the source's codec headers.
#[tokio::test]
async fn a_source_whose_index_places_no_sample_is_smart_cut_from_its_first_frame() {
    let d = dir("fragmented");
    let mp4 = source(&d.0, "x264.mp4", X264);
    let fragmented = d.0.join("fragmented.mp4");
    ffmpeg(&[
        "-i",
        mp4.to_str().unwrap(),
        "-c",
        "copy",
        "-movflags",
        "frag_keyframe+empty_moov",
        fragmented.to_str().unwrap(),
    ]);
    let bounds = (Some("00:00:02.4"), Some("00:00:08.1"));
    let (indexed, clip_indexed) = run(&d.0, &mp4, Accuracy::Smart, bounds, true).await;
    let (unindexed, clip_unindexed) = run(&d.0, &fragmented, Accuracy::Smart, bounds, true).await;
    for result in [&indexed, &unindexed] {
        assert_eq!(result.method, Some(Method::Smart), "{result:?}");
    }
    for clip in [&clip_indexed, &clip_unindexed] {
        assert_eq!(frames(clip), 171);
        assert_eq!(avcc(clip), avcc(&mp4));
        ffmpeg(&["-xerror", "-i", clip.to_str().unwrap(), "-f", "null", "-"]);
    }
}

/// Several clips joined in the order given, each from its exact frame: encoded with `frame`;
/// with `smart`, each clip smart-cut (its whole GOPs the source's own packets, the same codec
/// headers) and the clips joined as they are.
#[tokio::test]
async fn several_clips_are_joined_in_order_each_from_its_exact_frame() {
    let d = dir("joined");
    let src = source(&d.0, "x264.mp4", X264);
    let tc = |t: &str| Timecode::parse(t).unwrap();
    let clips = vec![
        ClipRange {
            start: tc("00:00:05.5"),
            stop: tc("00:00:07.5"),
        },
        ClipRange {
            start: tc("00:00:01.2"),
            stop: tc("00:00:03.4"),
        },
    ];
    for (accuracy, method) in [
        (Accuracy::Frame, Method::Encoded),
        (Accuracy::Smart, Method::Smart),
    ] {
        let (result, clip) = run_with(&d.0, &src, false, |spec| {
            spec.clips = Some(clips.clone());
            spec.accuracy = accuracy;
        })
        .await;
        assert_eq!(result.method, Some(method), "{accuracy:?}: {result:?}");
        // 60 frames from 5.5 s, then 66 from 1.2 s.
        assert_eq!(frames(&clip), 126, "{accuracy:?}");
        assert!((result.duration_secs - 4.2).abs() < 0.05, "{result:?}");
        for (from, start, before, count) in [
            (0, "00:00:05.5", "00:00:05.466667", 60),
            (60, "00:00:01.2", "00:00:01.166667", 66),
        ] {
            let scores = psnr_from(&clip, from, &src, start, count);
            let worst = scores.iter().cloned().fold(f64::INFINITY, f64::min);
            assert!(
                worst >= 35.0,
                "{accuracy:?}, clip from {start}: lowest PSNR {worst:.2} dB"
            );
            let neighbour = psnr_from(&clip, from, &src, before, 1)[0];
            assert!(
                neighbour < 30.0,
                "{accuracy:?}: the clip from {start} matches the frame before it ({neighbour:.2} dB)"
            );
        }
        if method == Method::Smart {
            // One set of codec headers for all: the source's.
            assert_eq!(avcc(&clip), avcc(&src));
            assert!(result.copied_secs.unwrap_or(0.0) >= 1.9, "{result:?}");
        }
        // The sound is joined as well, as long as the pictures.
        let times = stream_times(&clip);
        let audio = times
            .iter()
            .find(|(kind, ..)| kind == "audio")
            .expect("audio");
        assert!((audio.2 - 4.2).abs() < 0.1, "{accuracy:?}: {times:?}");
        ffmpeg(&["-xerror", "-i", clip.to_str().unwrap(), "-f", "null", "-"]);
    }
}

/// The keyframes read from an mp4's index (`stss`, `stts`, `ctts`, the edit list) are the
/// ones ffprobe finds reading every packet: with B-frames (composition offsets and an edit
/// list), and a GOP that is not a whole number of seconds.
#[tokio::test]
async fn an_mp4_index_lists_the_keyframes_ffprobe_finds() {
    let d = dir("index");
    let mut x264 = X264.to_vec();
    let at = x264.iter().position(|a| *a == "-g").unwrap();
    (x264[at + 1], x264[at + 3]) = ("45", "45");
    let src = source(&d.0, "x264.mp4", &x264);
    let listed = ffprobe(&[
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=pts_time,flags",
        src.to_str().unwrap(),
    ]);
    let expected: Vec<f64> = listed["packets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["flags"].as_str().unwrap_or("").contains('K'))
        .map(|p| p["pts_time"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(expected.len(), 8, "12 s at 30 fps, a keyframe every 1.5 s");
    let found = transcoder_worker::mp4info::keyframes(&std::fs::read(&src).unwrap()).unwrap();
    assert_eq!(found.len(), expected.len(), "{found:?} vs {expected:?}");
    for (f, e) in found.iter().zip(&expected) {
        assert!((f - e).abs() < 0.001, "{found:?} vs {expected:?}");
    }
    // Its frame count, and that it has B-frames (shown in another order than decoded); an
    // ultrafast encode has none.
    let bytes = std::fs::read(&src).unwrap();
    assert_eq!(
        transcoder_worker::mp4info::video_samples(&bytes),
        Some(frames(&src))
    );
    assert_eq!(transcoder_worker::mp4info::reorders(&bytes), Some(true));
    let flat = source(
        &d.0,
        "flat.mp4",
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
    );
    let flat = std::fs::read(flat).unwrap();
    assert_eq!(transcoder_worker::mp4info::reorders(&flat), Some(false));
}

/// A clip longer than two listing windows: its packets are listed at its start and its end
/// only, the stretch between counted at the constant rate and checked in the joined clip.
#[tokio::test]
async fn a_long_clip_is_planned_from_its_two_ends() {
    let d = dir("long");
    let src = source_of(&d.0, "x264.mp4", 30, X264);
    let (result, clip) = run(
        &d.0,
        &src,
        Accuracy::Smart,
        (Some("00:00:01.5"), Some("00:00:27.2")),
        true,
    )
    .await;
    assert_eq!(result.method, Some(Method::Smart), "{result:?}");
    // Frames 45 to 815; 2 s … 27 s copied.
    assert_eq!(frames(&clip), 771);
    assert!(
        (result.copied_secs.unwrap() - 25.0).abs() < 1e-6,
        "{result:?}"
    );
    assert_eq!(avcc(&clip), avcc(&src));
    ffmpeg(&["-xerror", "-i", clip.to_str().unwrap(), "-f", "null", "-"]);
}

/// Each kind of source the smart cut cannot continue is encoded whole, and says so.
#[tokio::test]
async fn sources_that_do_not_qualify_are_encoded_and_say_so() {
    let d = dir("fallback");
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "not H.264",
            vec![
                "-c:v", "mpeg4", "-q:v", "4", "-g", "30", "-pix_fmt", "yuv420p",
            ],
        ),
        (
            "open GOP",
            [X264, &["-x264-params", "open-gop=1:bframes=3"]].concat(),
        ),
        (
            "interlaced",
            [X264, &["-flags", "+ildct+ilme", "-top", "1"]].concat(),
        ),
        (
            "no x264 settings",
            [X264, &["-bsf:v", "filter_units=remove_types=6"]].concat(),
        ),
        (
            "variable frame rate",
            [
                X264,
                &[
                    "-vf",
                    "setpts='N/30/TB+if(gte(N,150),0.5/TB,0)'",
                    "-fps_mode",
                    "vfr",
                ],
            ]
            .concat(),
        ),
    ];
    for (i, (what, video)) in cases.iter().enumerate() {
        let src = source(&d.0, &format!("case{i}.mp4"), video);
        let (result, clip) = run(
            &d.0,
            &src,
            Accuracy::Smart,
            (Some("00:00:02.4"), Some("00:00:08.1")),
            true,
        )
        .await;
        assert_eq!(result.method, Some(Method::Encoded), "{what}: {result:?}");
        assert!(result.copied_secs.is_none(), "{what}");
        assert!(
            (result.duration_secs - 5.7).abs() <= 0.05,
            "{what}: {result:?}"
        );
        ffmpeg(&["-xerror", "-i", clip.to_str().unwrap(), "-f", "null", "-"]);
    }
    // Two video streams.
    let two = d.0.join("two.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=30:duration=12",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=30:duration=12",
        "-map",
        "0:v",
        "-map",
        "1:v",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-g",
        "30",
        "-pix_fmt",
        "yuv420p",
        two.to_str().unwrap(),
    ]);
    let (result, _) = run(
        &d.0,
        &two,
        Accuracy::Smart,
        (Some("00:00:02.4"), Some("00:00:08.1")),
        true,
    )
    .await;
    assert_eq!(result.method, Some(Method::Encoded), "two video streams");
}

#[tokio::test]
async fn a_whole_source_in_the_target_profile_is_remuxed_not_encoded() {
    let d = dir("passthrough");
    let src = source(&d.0, "x264.mp4", X264);
    let (result, clip) = run(&d.0, &src, Accuracy::Frame, (None, None), true).await;
    assert_eq!(result.method, Some(Method::Copy));
    assert_eq!(result.copied_secs, Some(12.0));
    assert_eq!(packet_hashes(&clip), packet_hashes(&src));
    assert_faststart(&clip);
    // The setting forces a re-encode.
    let d2 = dir("passthrough-off");
    let src2 = source(&d2.0, "x264.mp4", X264);
    let (result, clip) = run(&d2.0, &src2, Accuracy::Frame, (None, None), false).await;
    assert_eq!(result.method, Some(Method::Encoded));
    assert_eq!(frames(&clip), 360);
    // A source not in the profile (MPEG-4 Part 2) is encoded.
    let d3 = dir("passthrough-mpeg4");
    let src3 = source(
        &d3.0,
        "mpeg4.mp4",
        &["-c:v", "mpeg4", "-pix_fmt", "yuv420p"],
    );
    let (result, _) = run(&d3.0, &src3, Accuracy::Frame, (None, None), true).await;
    assert_eq!(result.method, Some(Method::Encoded));
}

/// A frame-accurate clip `start`–`stop` of `source`, with passthrough on or off.
async fn frame_clip(
    dir: &std::path::Path,
    source: &std::path::Path,
    (start, stop): (&str, Option<&str>),
    passthrough: bool,
) -> (JobResult, PathBuf) {
    run(
        dir,
        source,
        Accuracy::Frame,
        (Some(start), stop),
        passthrough,
    )
    .await
}

#[tokio::test]
async fn a_frame_accurate_clip_whose_frames_a_copy_gives_exactly_is_remuxed() {
    let d = dir("passthrough-clip");
    let src = source(&d.0, "x264.mp4", X264);
    let theirs = packet_hashes(&src);
    // 00:00:02 → 00:00:05: keyframes at both bounds (one a second, closed GOPs, B-frames
    // inside): frames 60 to 149, the source's own packets. At 00:00:02.02 the same frame,
    // the keyframe, is shown.
    for start in ["00:00:02", "00:00:02.02"] {
        let (result, clip) = frame_clip(&d.0, &src, (start, Some("00:00:05")), true).await;
        assert_eq!(result.method, Some(Method::Copy), "{start}: {result:?}");
        assert_eq!(
            result.start_achieved, None,
            "frame-accurate, not a keyframe copy"
        );
        assert_eq!(frames(&clip), 90, "{start}");
        assert_eq!(packet_hashes(&clip), theirs[60..150], "{start}");
        let scores = psnr(&clip, &src, "00:00:02", 90);
        assert!(scores.iter().all(|s| *s == 100.0), "{start}: {scores:?}");
        assert_sound_follows(&clip, 3.0);
        ffmpeg(&["-xerror", "-i", clip.to_str().unwrap(), "-f", "null", "-"]);
        assert_faststart(&clip);
    }
    // To the end of the source: frames 300 to 359.
    let (result, clip) = frame_clip(&d.0, &src, ("00:00:10", None), true).await;
    assert_eq!(result.method, Some(Method::Copy), "{result:?}");
    assert_eq!(packet_hashes(&clip), theirs[300..360]);
    // The frame before the keyframe is shown at 00:00:01.99, and the one after it at
    // 00:00:02.04: encoded, to the frame.
    for (start, count) in [("00:00:01.99", 91), ("00:00:02.04", 89)] {
        let (result, clip) = frame_clip(&d.0, &src, (start, Some("00:00:05")), true).await;
        assert_eq!(result.method, Some(Method::Encoded), "{start}: {result:?}");
        assert_eq!(frames(&clip), count, "{start}");
    }
    // The setting forces a re-encode (another store: the same job is done in this one).
    let off = dir("passthrough-clip-off");
    let (result, _) = frame_clip(&off.0, &src, ("00:00:02", Some("00:00:05")), false).await;
    assert_eq!(result.method, Some(Method::Encoded), "{result:?}");
    // A source not in the profile (MPEG-4 Part 2) is encoded.
    let mpeg4 = source(
        &d.0,
        "mpeg4.mp4",
        &["-c:v", "mpeg4", "-g", "30", "-pix_fmt", "yuv420p"],
    );
    let (result, _) = frame_clip(&d.0, &mpeg4, ("00:00:02", Some("00:00:05")), true).await;
    assert_eq!(result.method, Some(Method::Encoded), "{result:?}");
}
