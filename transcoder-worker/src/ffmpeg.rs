//! ffmpeg's arguments and its `-progress` output.

use hopster_common::settings::TranscoderSettings;
use shared_proto::Timecode;

/// What to cut and where to write it.
#[derive(Debug, Clone)]
pub struct Cut<'a> {
    pub input: &'a crate::probe::Input,
    /// The demuxer the probe found (`format_name`), forced so ffmpeg does not guess again.
    pub format: &'a str,
    pub output: &'a str,
    pub start: Option<Timecode>,
    /// Length of the clip; `None` runs to the end of the input.
    pub length: Option<Timecode>,
    /// Stream copy (keyframe accuracy) instead of re-encoding.
    pub copy: bool,
}

/// The argument vector of a frame-accurate cut to H.264/AAC mp4. `-ss` comes before `-i`, so
/// ffmpeg seeks in the input and decodes only from the keyframe before the start (the seed
/// decoded everything before it); re-encoding makes the cut exact to the frame.
pub fn cut_args(cut: &Cut<'_>, t: &TranscoderSettings) -> Vec<String> {
    let mut args: Vec<String> = [
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-protocol_whitelist",
        cut.input.protocols,
        "-format_whitelist",
        crate::probe::DEMUXER_WHITELIST,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(start) = cut.start.filter(|s| s.as_micros() > 0) {
        args.extend(["-ss".into(), start.ffmpeg_arg()]);
    }
    args.extend([
        "-f".into(),
        cut.format.into(),
        "-i".into(),
        cut.input.location.clone(),
    ]);
    if let Some(length) = cut.length {
        args.extend(["-t".into(), length.ffmpeg_arg()]);
    }
    let crf = t.crf.to_string();
    let codecs: &[&str] = if cut.copy {
        // Stream copy starts at the keyframe at or before -ss; shift its negative timestamps
        // so the clip starts at zero.
        &["-c", "copy", "-avoid_negative_ts", "make_zero"]
    } else {
        &[
            "-c:v", "libx264", "-preset", &t.preset, "-crf", &crf, "-pix_fmt", "yuv420p", "-c:a",
            "aac", "-b:a", "128k",
        ]
    };
    let maps = [
        "-map",
        "0:v:0",
        "-map",
        "0:a:0?",
        "-map_metadata",
        "-1",
        "-map_chapters",
        "-1",
    ];
    let tail = ["-movflags", "+faststart", "-progress", "pipe:1", "-nostats"];
    args.extend(
        maps.iter()
            .chain(codecs)
            .chain(tail.iter())
            .map(|s| s.to_string()),
    );
    if t.threads > 0 && !cut.copy {
        args.extend(["-threads".into(), t.threads.to_string()]);
    }
    args.extend(["-f".into(), "mp4".into(), "-y".into(), cut.output.into()]);
    args
}

/// One `-progress` block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tick {
    pub out_time: Timecode,
    pub speed: Option<f64>,
    /// `progress=end`: ffmpeg has written everything.
    pub end: bool,
}

/// Reads `key=value` lines; yields a [`Tick`] at the end of each block.
#[derive(Debug, Default)]
pub struct ProgressParser {
    current: Tick,
}

impl ProgressParser {
    pub fn push(&mut self, line: &str) -> Option<Tick> {
        let (key, value) = line.trim().split_once('=')?;
        match key {
            // `out_time_ms` is microseconds too (an old ffmpeg misnomer); prefer `out_time_us`.
            "out_time_us" | "out_time_ms" => {
                if let Ok(us) = value.parse::<i64>() {
                    self.current.out_time = Timecode::from_micros(us.max(0) as u64);
                }
            }
            "speed" => {
                self.current.speed = value.trim_end_matches('x').trim().parse().ok();
            }
            "progress" => {
                self.current.end = value == "end";
                return Some(std::mem::take(&mut self.current));
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clip_seeks_in_the_input_and_limits_the_output() {
        let t = TranscoderSettings::default();
        let input = crate::probe::Input::file(std::path::Path::new("/tmp/in"));
        let cut = Cut {
            input: &input,
            format: "mov,mp4,m4a,3gp,3g2,mj2",
            output: "/tmp/out.mp4",
            start: Some(Timecode::parse("00:00:10").unwrap()),
            length: Some(Timecode::parse("00:00:03").unwrap()),
            copy: false,
        };
        let args = cut_args(&cut, &t);
        let pos = |a: &str| args.iter().position(|x| x == a).unwrap();
        assert!(pos("-ss") < pos("-i"), "input seeking: -ss before -i");
        assert_eq!(args[pos("-ss") + 1], "10.000000");
        assert_eq!(args[pos("-t") + 1], "3.000000");
        assert!(pos("-t") > pos("-i"));
        assert_eq!(args[pos("-movflags") + 1], "+faststart");
        assert_eq!(args[pos("-map_metadata") + 1], "-1");
        assert_eq!(args[pos("-c:v") + 1], "libx264");
        assert_eq!(args.last().unwrap(), "/tmp/out.mp4");
        assert!(args.contains(&"-nostdin".to_string()));
        assert!(!args.contains(&"-threads".to_string()));
    }

    #[test]
    fn a_whole_video_has_neither_seek_nor_length() {
        let t = TranscoderSettings {
            threads: 1,
            ..TranscoderSettings::default()
        };
        let input = crate::probe::Input::proxied("http://127.0.0.1:9/source".into());
        let mut cut = Cut {
            input: &input,
            format: "matroska,webm",
            output: "o",
            start: None,
            length: None,
            copy: false,
        };
        let args = cut_args(&cut, &t);
        assert!(!args.contains(&"-ss".to_string()) && !args.contains(&"-t".to_string()));
        let threads = args.iter().position(|a| a == "-threads").unwrap();
        assert_eq!(args[threads + 1], "1");
        let whitelist = args
            .iter()
            .position(|a| a == "-protocol_whitelist")
            .unwrap();
        assert_eq!(args[whitelist + 1], "http,tcp");
        // Keyframe accuracy copies the streams: no encoder, no threads.
        cut.copy = true;
        let args = cut_args(&cut, &t);
        let c = args.iter().position(|a| a == "-c").unwrap();
        assert_eq!(args[c + 1], "copy");
        assert!(!args.contains(&"libx264".to_string()) && !args.contains(&"-threads".to_string()));
    }

    #[test]
    fn progress_blocks_become_ticks() {
        let mut p = ProgressParser::default();
        let block = "frame=50\nfps=0.0\nout_time_us=2000000\nout_time_ms=2000000\nout_time=00:00:02.000000\nspeed=4.12x\nprogress=continue\n";
        let ticks: Vec<Tick> = block.lines().filter_map(|l| p.push(l)).collect();
        assert_eq!(
            ticks,
            [Tick {
                out_time: Timecode::from_micros(2_000_000),
                speed: Some(4.12),
                end: false
            }]
        );
        let end = "out_time_us=N/A\nspeed=N/A\nprogress=end\n";
        let ticks: Vec<Tick> = end.lines().filter_map(|l| p.push(l)).collect();
        assert_eq!(ticks.len(), 1);
        assert!(ticks[0].end && ticks[0].speed.is_none());
        assert_eq!(p.push("garbage"), None);
    }
}
