//! Smart cut, the decisions: which source frames a clip holds, where its keyframes are, the
//! plan (an encoded head, the whole groups of pictures between copied, an encoded tail),
//! whether a source qualifies, and x264's own settings, read from the SEI it writes into the
//! first frame, as libx264 parameters. No I/O: `stage::smart` runs the plan.

use crate::probe::{Input, Probe};
use serde::Deserialize;
use shared_proto::Timecode;
use std::collections::BTreeMap;

/// Why a source (or a clip of it) is not smart-cut: every frame is encoded instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unqualified(pub String);

impl std::fmt::Display for Unqualified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn unqualified<T>(why: impl Into<String>) -> Result<T, Unqualified> {
    Err(Unqualified(why.into()))
}

/// The source's video stream, as the probe describes it, is one a smart cut can continue:
/// H.264 in 8-bit 4:2:0, progressive, at a constant frame rate, the only video stream.
pub fn check_stream(probe: &Probe) -> Result<(), Unqualified> {
    let videos: Vec<_> = probe
        .streams
        .iter()
        .filter(|s| s.codec_type == "video")
        .collect();
    let [video] = videos.as_slice() else {
        return unqualified(format!("the source has {} video streams", videos.len()));
    };
    if video.codec_name.as_deref() != Some("h264") {
        return unqualified(format!(
            "the video is {}, not H.264",
            video.codec_name.as_deref().unwrap_or("unknown")
        ));
    }
    if video.pix_fmt.as_deref() != Some("yuv420p") {
        return unqualified(format!(
            "the video's pixels are {}, not yuv420p",
            video.pix_fmt.as_deref().unwrap_or("unknown")
        ));
    }
    if !matches!(
        video.field_order.as_deref(),
        None | Some("progressive" | "unknown")
    ) {
        return unqualified("the video is interlaced");
    }
    if video.avg_frame_rate != video.r_frame_rate {
        return unqualified("the video's frame rate varies");
    }
    profile_arg(video.profile.as_deref())?;
    Ok(())
}

/// libx264's `-profile:v` for the profile ffprobe names.
pub fn profile_arg(profile: Option<&str>) -> Result<&'static str, Unqualified> {
    match profile {
        Some("High") => Ok("high"),
        Some("Main") => Ok("main"),
        Some("Baseline" | "Constrained Baseline") => Ok("baseline"),
        other => unqualified(format!(
            "the H.264 profile {} is not one the smart cut encodes",
            other.unwrap_or("unknown")
        )),
    }
}

/// libx264's `-level` for the `level_idc` ffprobe reports (31 is 3.1).
pub fn level_arg(level: Option<i64>) -> Result<String, Unqualified> {
    match level {
        Some(l @ 9..=62) => Ok(format!("{}.{}", l / 10, l % 10)),
        other => unqualified(format!(
            "the H.264 level {other:?} is not one libx264 takes"
        )),
    }
}

/// The arguments that list the source's video packets (their `pts` and keyframe flag) and the
/// stream's time base, from `from` to `to`: the demuxer reads them, nothing is decoded.
///
/// A long clip is listed in two windows of [`WINDOW_SECS`], at its start and at its end: the
/// plan needs the keyframes and frames there, and the stretch between (copied as it is) would
/// only cost a read of its bytes. Its frames are counted from the constant rate, and the
/// joined clip's frame count is checked against the plan.
pub fn packets_args(input: &Input, from: Timecode, to: Option<Timecode>) -> Vec<String> {
    let window = Timecode::from_micros(WINDOW_SECS * 1_000_000);
    let interval = match to {
        Some(to)
            if to
                .checked_sub(from)
                .is_some_and(|length| length.as_micros() > 2 * window.as_micros()) =>
        {
            let before_end = Timecode::from_micros(to.as_micros() - window.as_micros());
            format!(
                "{}%+{},{}%{}",
                from.ffmpeg_arg(),
                WINDOW_SECS,
                before_end.ffmpeg_arg(),
                to.ffmpeg_arg()
            )
        }
        Some(to) => format!("{}%{}", from.ffmpeg_arg(), to.ffmpeg_arg()),
        None => format!("{}%+{}", from.ffmpeg_arg(), 3 * WINDOW_SECS),
    };
    crate::probe::ffprobe_args(
        input,
        &[
            "-select_streams",
            "v:0",
            "-read_intervals",
            &interval,
            "-show_entries",
            "packet=pts,flags:stream=time_base",
            "-of",
            "json",
        ],
    )
}

/// The length of each window of a long clip's packet list, in seconds: longer than any GOP
/// the smart cut is meant for (a longer one is found in neither window: no qualification).
pub const WINDOW_SECS: u64 = 10;

/// The video packets of a stretch of the source, in presentation order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packets {
    /// The stream's time base: `pts × num / den` seconds.
    pub num: i64,
    pub den: i64,
    pub list: Vec<Packet>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub pts: i64,
    pub key: bool,
}

impl Packets {
    /// Reads `packets_args`' output.
    pub fn parse(json: &str) -> Result<Packets, Unqualified> {
        #[derive(Deserialize)]
        struct Out {
            #[serde(default)]
            packets: Vec<RawPacket>,
            #[serde(default)]
            streams: Vec<RawStream>,
        }
        #[derive(Deserialize)]
        struct RawPacket {
            pts: Option<i64>,
            #[serde(default)]
            flags: String,
        }
        #[derive(Deserialize)]
        struct RawStream {
            time_base: String,
        }
        let out: Out = serde_json::from_str(json)
            .map_err(|e| Unqualified(format!("ffprobe's packet list does not parse: {e}")))?;
        let (num, den) = out
            .streams
            .first()
            .and_then(|s| s.time_base.split_once('/'))
            .and_then(|(n, d)| Some((n.parse::<i64>().ok()?, d.parse::<i64>().ok()?)))
            .filter(|(n, d)| *n > 0 && *d > 0)
            .ok_or_else(|| Unqualified("the video stream has no time base".into()))?;
        let mut list = Vec::with_capacity(out.packets.len());
        for p in out.packets {
            let Some(pts) = p.pts else {
                return unqualified("a video packet has no timestamp");
            };
            list.push(Packet {
                pts,
                key: p.flags.starts_with('K'),
            });
        }
        list.sort_by_key(|p| p.pts);
        list.dedup_by_key(|p| p.pts);
        Ok(Packets { num, den, list })
    }

    /// `t` in the stream's ticks, rounded to the nearest, as ffmpeg converts a `-ss`.
    pub fn tick(&self, t: Timecode) -> i64 {
        let scaled = i128::from(t.as_micros()) * i128::from(self.den);
        let unit = i128::from(self.num) * 1_000_000;
        ((scaled + unit / 2) / unit) as i64
    }

    /// A tick as a timecode, rounded up to the microsecond, so that a `-ss` of it seeks to
    /// this very frame, not to the one before.
    pub fn time(&self, tick: i64) -> Timecode {
        let unit = i128::from(self.den);
        let micros = (i128::from(tick) * i128::from(self.num) * 1_000_000 + unit - 1) / unit;
        Timecode::from_micros(micros.max(0) as u64)
    }

    /// `ticks` of the time base, in seconds.
    pub fn secs(&self, ticks: i64) -> f64 {
        ticks as f64 * self.num as f64 / self.den as f64
    }
}

/// A run of frames: from the frame at `first` (its pts), `frames` of them (`None`: to the
/// end of the source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub first: i64,
    pub frames: Option<u64>,
}

/// How a clip is made: the frames before the first keyframe in it encoded, the whole groups
/// of pictures from there copied, the frames from the last keyframe encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub head: Option<Piece>,
    pub middle: Piece,
    pub tail: Option<Piece>,
    /// One frame's duration, in ticks (the rate is constant).
    pub frame_ticks: i64,
}

impl Plan {
    /// The plan for [`start`, `stop`) (`stop` `None`: to the end), from the packets of that
    /// stretch of the source.
    pub fn new(
        packets: &Packets,
        start: Timecode,
        stop: Option<Timecode>,
    ) -> Result<Plan, Unqualified> {
        let first = packets.tick(start);
        let last = stop.map(|s| packets.tick(s));
        let inside = |pts: i64| pts >= first && last.is_none_or(|l| pts < l);
        let frames: Vec<Packet> = packets
            .list
            .iter()
            .copied()
            .filter(|p| inside(p.pts))
            .collect();
        let steps: Vec<i64> = frames.windows(2).map(|w| w[1].pts - w[0].pts).collect();
        let Some(&frame_ticks) = steps.iter().min() else {
            return unqualified("the clip holds fewer than two frames");
        };
        // Evenly spaced, but for at most one stretch between two windows that was not listed,
        // which must hold whole frames.
        let uneven: Vec<i64> = steps.into_iter().filter(|s| *s != frame_ticks).collect();
        if frame_ticks <= 0 || uneven.len() > 1 || uneven.iter().any(|s| *s % frame_ticks != 0) {
            return unqualified("the frames are not evenly spaced (variable frame rate)");
        }
        let keys: Vec<i64> = frames.iter().filter(|p| p.key).map(|p| p.pts).collect();
        let (Some(&k1), Some(&k2)) = (keys.first(), keys.last()) else {
            return unqualified("no keyframe falls inside the clip");
        };
        // Frames from `from` (a frame of the clip) up to `to`, at the constant rate.
        let last_frame = frames[frames.len() - 1].pts;
        let count = |from: i64, to: Option<i64>| {
            let end = to.map_or(last_frame + frame_ticks, |t| {
                t.min(last_frame + frame_ticks)
            });
            ((end - from + frame_ticks - 1) / frame_ticks).max(0) as u64
        };
        let head = (frames[0].pts < k1).then(|| Piece {
            first: frames[0].pts,
            frames: Some(count(frames[0].pts, Some(k1))),
        });
        let Some(_) = last else {
            return Ok(Plan {
                head,
                middle: Piece {
                    first: k1,
                    frames: None,
                },
                tail: None,
                frame_ticks,
            });
        };
        if k2 == k1 {
            return unqualified("the clip holds no whole group of pictures");
        }
        Ok(Plan {
            head,
            middle: Piece {
                first: k1,
                frames: Some(count(k1, Some(k2))),
            },
            tail: Some(Piece {
                first: k2,
                frames: Some(count(k2, last)),
            }),
            frame_ticks,
        })
    }

    /// Every frame of the clip, when the clip has an end.
    pub fn total_frames(&self) -> Option<u64> {
        Some(self.encoded_frames() + self.middle.frames?)
    }

    /// Frames encoded (head and tail).
    pub fn encoded_frames(&self) -> u64 {
        [self.head, self.tail]
            .iter()
            .flatten()
            .filter_map(|p| p.frames)
            .sum()
    }
}

/// x264's settings, from the text it writes into the first frame (`x264 - core … - options:
/// cabac=1 ref=3 …`); `None` when the stream carries none.
pub fn x264_options(first_frame: &[u8]) -> Option<BTreeMap<String, String>> {
    const MARK: &[u8] = b" - options: ";
    let core = find(first_frame, b"x264 - core ")?;
    let at = core + find(&first_frame[core..], MARK)? + MARK.len();
    let text: Vec<u8> = first_frame[at..]
        .iter()
        .copied()
        .take_while(|b| (0x20..0x7f).contains(b))
        .collect();
    let text = String::from_utf8(text).ok()?;
    let options: BTreeMap<String, String> = text
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (!options.is_empty()).then_some(options)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// x264's names in its SEI → libx264's `-x264-params` names, for the settings that are
/// copied as they are.
const SAME: &[(&str, &str)] = &[
    ("cabac", "cabac"),
    ("ref", "ref"),
    ("me", "me"),
    ("subme", "subme"),
    ("psy", "psy"),
    ("mixed_ref", "mixed-refs"),
    ("me_range", "merange"),
    ("chroma_me", "chroma-me"),
    ("trellis", "trellis"),
    ("8x8dct", "8x8dct"),
    ("fast_pskip", "fast-pskip"),
    ("nr", "nr"),
    ("constrained_intra", "constrained-intra"),
    ("bframes", "bframes"),
    ("b_pyramid", "b-pyramid"),
    ("b_adapt", "b-adapt"),
    ("b_bias", "b-bias"),
    ("weightb", "weightb"),
    ("weightp", "weightp"),
    ("keyint", "keyint"),
    ("keyint_min", "min-keyint"),
    ("scenecut", "scenecut"),
    ("rc_lookahead", "rc-lookahead"),
    ("mbtree", "mbtree"),
    ("qcomp", "qcomp"),
    ("qpmin", "qpmin"),
    ("qpmax", "qpmax"),
    ("qpstep", "qpstep"),
    ("ip_ratio", "ipratio"),
];

/// The `-x264-params` that make libx264 write the codec headers (SPS and PPS) the source's
/// encoder wrote, and encode as it did. A source whose options rule that out (interlaced,
/// open GOP) does not qualify. Rate control other than CRF is replaced by `crf` at
/// `fallback_crf` with `stitchable` (which makes x264's headers independent of it).
pub fn x264_params(
    options: &BTreeMap<String, String>,
    fallback_crf: u8,
) -> Result<String, Unqualified> {
    let flag = |name: &str| options.get(name).map(String::as_str);
    if flag("interlaced").is_some_and(|v| v != "0") || flag("fake_interlaced") == Some("1") {
        return unqualified("x264 encoded the video interlaced");
    }
    if flag("open_gop").is_some_and(|v| v != "0") {
        return unqualified("x264 encoded the video with open GOPs");
    }
    if flag("intra_refresh").is_some_and(|v| v != "0") {
        return unqualified("x264 encoded the video with intra refresh, not keyframes");
    }
    let mut params: Vec<String> = SAME
        .iter()
        .filter_map(|(sei, param)| Some(format!("{param}={}", options.get(*sei)?)))
        .collect();
    if let Some(deblock) = flag("deblock") {
        let parts: Vec<&str> = deblock.split(':').collect();
        match parts.as_slice() {
            ["0", ..] => params.push("no-deblock=1".into()),
            [_, alpha, beta] => params.push(format!("deblock={alpha},{beta}")),
            _ => return unqualified(format!("x264's deblock setting `{deblock}` is unknown")),
        }
    }
    if let Some(psy_rd) = flag("psy_rd") {
        params.push(format!("psy-rd={}", psy_rd.replace(':', ",")));
    }
    if let Some(direct) = flag("direct") {
        let name = ["none", "spatial", "temporal", "auto"]
            .get(direct.parse::<usize>().unwrap_or(usize::MAX))
            .ok_or_else(|| Unqualified(format!("x264's direct mode `{direct}` is unknown")))?;
        params.push(format!("direct={name}"));
    }
    if let Some(aq) = flag("aq") {
        let (mode, strength) = aq.split_once(':').unwrap_or((aq, "1.00"));
        params.push(format!("aq-mode={mode}:aq-strength={strength}"));
    }
    match (flag("rc"), flag("crf"), flag("qp")) {
        (Some("crf"), Some(crf), _) => params.push(format!("crf={crf}")),
        (Some("cqp"), _, Some(qp)) => params.push(format!("qp={qp}")),
        _ => params.extend([format!("crf={fallback_crf}"), "stitchable=1".into()]),
    }
    if flag("stitchable") == Some("1") && !params.iter().any(|p| p == "stitchable=1") {
        params.push("stitchable=1".into());
    }
    Ok(params.join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEI: &str = "x264 - core 164 r3095 baee400 - H.264/MPEG-4 AVC codec - Copyleft \
        2003-2022 - http://www.videolan.org/x264.html - options: cabac=1 ref=1 deblock=1:0:0 \
        analyse=0x3:0x113 me=hex subme=2 psy=1 psy_rd=1.00:0.00 mixed_ref=0 me_range=16 \
        chroma_me=1 trellis=0 8x8dct=1 cqm=0 deadzone=21,11 fast_pskip=1 chroma_qp_offset=0 \
        threads=3 lookahead_threads=1 sliced_threads=0 nr=0 decimate=1 interlaced=0 \
        bluray_compat=0 constrained_intra=0 bframes=3 b_pyramid=2 b_adapt=1 b_bias=0 direct=1 \
        weightb=1 open_gop=0 weightp=1 keyint=60 keyint_min=31 scenecut=0 intra_refresh=0 \
        rc_lookahead=10 rc=crf mbtree=1 crf=23.0 qcomp=0.60 qpmin=0 qpmax=69 qpstep=4 \
        ip_ratio=1.40 aq=1:1.00";

    fn frame_with_sei(text: &str) -> Vec<u8> {
        let mut frame = vec![0, 0, 0, 1, 6, 5, 0xff];
        frame.extend_from_slice(&[0xdc; 16]);
        frame.extend_from_slice(text.as_bytes());
        frame.extend_from_slice(&[0, 0x80, 0, 0, 1, 0x65, 0x88]);
        frame
    }

    #[test]
    fn x264_s_own_settings_become_libx264_parameters() {
        let options = x264_options(&frame_with_sei(SEI)).expect("options");
        assert_eq!(options["keyint"], "60");
        let params = x264_params(&options, 20).unwrap();
        for expected in [
            "bframes=3",
            "b-pyramid=2",
            "weightp=1",
            "keyint=60",
            "min-keyint=31",
            "scenecut=0",
            "deblock=0,0",
            "psy-rd=1.00,0.00",
            "direct=spatial",
            "aq-mode=1:aq-strength=1.00",
            "crf=23.0",
        ] {
            assert!(
                params.split(':').any(|p| p == expected) || params.contains(expected),
                "{expected} in {params}"
            );
        }
        assert!(!params.contains("stitchable"));
        // Another rate control: the service's CRF, with headers that do not depend on it.
        let abr = SEI
            .replace("rc=crf", "rc=abr")
            .replace(" crf=23.0", " bitrate=2000");
        let params = x264_params(&x264_options(&frame_with_sei(&abr)).unwrap(), 20).unwrap();
        assert!(params.ends_with("crf=20:stitchable=1"), "{params}");
    }

    #[test]
    fn sources_x264_cannot_continue_do_not_qualify() {
        for (from, to) in [
            ("interlaced=0", "interlaced=1"),
            ("open_gop=0", "open_gop=1"),
            ("intra_refresh=0", "intra_refresh=1"),
        ] {
            let text = SEI.replace(from, to);
            let options = x264_options(&frame_with_sei(&text)).unwrap();
            assert!(x264_params(&options, 23).is_err(), "{to}");
        }
        assert_eq!(x264_options(b"\0\0\0\x01\x65 no settings here"), None);
    }

    fn packets(keys_every: i64, count: i64, step: i64) -> Packets {
        Packets {
            num: 1,
            den: 15360,
            list: (0..count)
                .map(|n| Packet {
                    pts: n * step,
                    key: n % keys_every == 0,
                })
                .collect(),
        }
    }

    fn tc(text: &str) -> Timecode {
        Timecode::parse(text).unwrap()
    }

    #[test]
    fn the_plan_encodes_the_partial_gops_and_copies_the_whole_ones() {
        // 30 fps (512 ticks a frame), a keyframe every 60 frames (2 s).
        let p = packets(60, 1800, 512);
        let plan = Plan::new(&p, tc("00:00:10.4"), Some(tc("00:00:40.1"))).unwrap();
        assert_eq!(
            plan.head,
            Some(Piece {
                first: 312 * 512,
                frames: Some(48)
            })
        );
        assert_eq!(
            plan.middle,
            Piece {
                first: 360 * 512,
                frames: Some(840)
            }
        );
        assert_eq!(
            plan.tail,
            Some(Piece {
                first: 1200 * 512,
                frames: Some(3)
            })
        );
        assert_eq!(plan.encoded_frames(), 51);
        // Starting on a keyframe: no head. Without a stop: copied to the end.
        let plan = Plan::new(&p, tc("00:00:12"), None).unwrap();
        assert_eq!(plan.head, None);
        assert_eq!(plan.middle.frames, None);
        assert_eq!(plan.tail, None);
        // The seek that starts the copy lands on its keyframe.
        assert_eq!(p.tick(p.time(360 * 512)), 360 * 512);
    }

    #[test]
    fn a_long_clip_listed_in_two_windows_is_counted_at_the_constant_rate() {
        // Frames 0–599 and 1200–1799 listed; 600–1199 not.
        let mut p = packets(60, 1800, 512);
        p.list.retain(|f| !(600 * 512..1200 * 512).contains(&f.pts));
        let plan = Plan::new(&p, tc("00:00:10.4"), Some(tc("00:00:50.1"))).unwrap();
        assert_eq!(plan.head.unwrap().frames, Some(48));
        assert_eq!(
            plan.middle,
            Piece {
                first: 360 * 512,
                frames: Some(1140)
            }
        );
        assert_eq!(plan.tail.unwrap().frames, Some(3));
        assert_eq!(plan.total_frames(), Some(1191));
        // A frame missing inside a window is not a stretch left out: uneven.
        p.list.retain(|f| f.pts != 1400 * 512);
        assert!(Plan::new(&p, tc("00:00:10.4"), Some(tc("00:00:50.1"))).is_err());
    }

    #[test]
    fn clips_without_a_whole_gop_or_with_uneven_frames_do_not_qualify() {
        let p = packets(60, 1800, 512);
        assert!(Plan::new(&p, tc("00:00:10.4"), Some(tc("00:00:12.5"))).is_err());
        let mut vfr = packets(60, 1800, 512);
        vfr.list[400].pts += 100;
        assert!(Plan::new(&vfr, tc("00:00:10"), Some(tc("00:00:20"))).is_err());
        let none =
            Packets::parse(r#"{"packets": [], "streams": [{"time_base": "1/90000"}]}"#).unwrap();
        assert!(Plan::new(&none, tc("00:00:01"), None).is_err());
    }

    #[test]
    fn ffprobe_s_packet_list_is_read_in_presentation_order() {
        let json = r#"{"packets": [{"pts": 1024, "flags": "K__"}, {"pts": 2048, "flags": "___"},
            {"pts": 1536, "flags": "__"}], "streams": [{"time_base": "1/15360"}]}"#;
        let p = Packets::parse(json).unwrap();
        assert_eq!((p.num, p.den), (1, 15360));
        assert_eq!(
            p.list.iter().map(|p| (p.pts, p.key)).collect::<Vec<_>>(),
            vec![(1024, true), (1536, false), (2048, false)]
        );
        assert!(Packets::parse(r#"{"packets": [], "streams": []}"#).is_err());
    }

    #[test]
    fn levels_and_profiles_map_to_libx264_s_names() {
        assert_eq!(level_arg(Some(31)).unwrap(), "3.1");
        assert_eq!(level_arg(Some(40)).unwrap(), "4.0");
        assert!(level_arg(None).is_err());
        assert_eq!(
            profile_arg(Some("Constrained Baseline")).unwrap(),
            "baseline"
        );
        assert!(profile_arg(Some("High 10")).is_err());
    }
}
