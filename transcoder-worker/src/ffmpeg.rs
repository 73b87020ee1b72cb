//! ffmpeg's arguments and its `-progress` output.

use hopster_common::settings::TranscoderSettings;
use shared_proto::{ClipRange, Profile, Timecode};

/// What to cut and where to write it.
#[derive(Debug, Clone)]
pub struct Cut<'a> {
    pub input: &'a crate::probe::Input,
    /// The demuxer the probe found (`format_name`), forced so ffmpeg does not guess again;
    /// `None` when ffmpeg starts before the probe ends (it then picks one from
    /// `-format_whitelist`).
    pub format: Option<&'a str>,
    /// The output file (for HLS: the playlist; segments go beside it).
    pub output: &'a str,
    pub start: Option<Timecode>,
    /// Length of the clip; `None` runs to the end of the input.
    pub length: Option<Timecode>,
    /// Stream copy (keyframe accuracy) instead of re-encoding.
    pub copy: bool,
    /// A copy's exact number of video frames, from a keyframe at `start`: an output `-t`
    /// cuts a copy by decode time, a frame or two past the last frame shown before it, and
    /// `-frames:v` would end the sound with the video's last packet read, short by as much.
    /// The packets past the count are dropped (the `noise` filter's `drop`) and `-t` bounds
    /// the sound.
    pub frames: Option<u64>,
    pub profile: Profile,
    /// Scale down to at most this height (video profiles, re-encoding only).
    pub max_height: Option<u32>,
    /// Also write one JPEG frame, this far into the clip, to this file (not for a copy).
    pub poster: Option<(&'a str, Timecode)>,
    /// An animation's frames per second (`gif`, `webp`; other profiles ignore it).
    pub fps: u32,
    /// The sound's filter (loudness normalization's second pass), when re-encoding it.
    pub audio_filter: Option<&'a str>,
    /// Several clips joined in order (at least two; then `start` and `length` are unused),
    /// and whether the source has sound to join with them.
    pub pieces: &'a [ClipRange],
    pub source_audio: bool,
}

/// The `-vf` of a `max_height`: never upscale, keep the aspect, keep both sides even.
pub fn scale_filter(max_height: u32) -> String {
    format!("scale=-2:'trunc(min(ih,{max_height})/2)*2'")
}

/// An animation's `-vf`: the frame rate, the scale, and for a GIF a palette made from the
/// clip's own frames (`palettegen`, which reads every frame before the first is written, then
/// `paletteuse`; only rectangles that changed are dithered again).
fn animation_filter(profile: Profile, fps: u32, scale: Option<&str>) -> String {
    let mut chain = format!("fps={fps}");
    if let Some(scale) = scale {
        chain = format!("{chain},{scale}");
    }
    if profile == Profile::Gif {
        chain = format!(
            "{chain},split[a][b];[a]palettegen=stats_mode=diff[p];\
             [b][p]paletteuse=dither=bayer:bayer_scale=5:diff_mode=rectangle"
        );
    }
    chain
}

fn strings<'a>(args: &'a [&'a str]) -> impl Iterator<Item = String> + 'a {
    args.iter().map(|s| s.to_string())
}

/// The argument vector of a cut. `-ss` comes before `-i`, so ffmpeg seeks in the input and
/// decodes only from the keyframe before the start (the seed decoded everything before it);
/// re-encoding makes the cut exact to the frame. A poster, when asked for, is a second output
/// of the same run: the frames are decoded anyway.
///
/// `transcoder.threads` bounds the whole run, not just the encoder: the decoder (an input
/// `-threads`), the filter graph (`-filter_threads`) and every encoder (output `-threads`).
/// Otherwise a "one-thread" job still decodes on a second core.
pub fn cut_args(cut: &Cut<'_>, t: &TranscoderSettings) -> Vec<String> {
    let joining = cut.pieces.len() > 1 && !cut.copy;
    // Several clips are an input each, each with the input's own options (`piece_input`).
    let mut args = if joining {
        quiet()
    } else {
        preamble(cut.input)
    };
    let threads = (t.threads > 0 && !cut.copy).then(|| t.threads.to_string());
    if let Some(n) = &threads {
        args.extend(["-filter_threads".into(), n.clone()]);
    }
    let video = cut.profile.has_video();
    let filter = cut
        .max_height
        .filter(|_| video && !cut.copy)
        .map(scale_filter);
    if joining {
        joined(&mut args, cut, threads.as_deref(), filter.as_deref());
        args.extend(output_args(cut, t, threads.as_deref()));
        if let Some((file, _)) = cut.poster.filter(|_| video) {
            args.extend(strings(&["-map", "[poster]"]));
            if let Some(n) = &threads {
                args.extend(["-threads".into(), n.clone()]);
            }
            args.extend(strings(&JPEG_FRAME));
            args.push(file.to_owned());
        }
        return args;
    }
    if let Some(start) = cut.start.filter(|s| s.as_micros() > 0) {
        args.extend(["-ss".into(), start.ffmpeg_arg()]);
    }
    if let Some(format) = cut.format {
        args.extend(["-f".into(), format.into()]);
    }
    if let Some(n) = &threads {
        args.extend(["-threads".into(), n.clone()]);
    }
    // An animation's length bounds the input itself: `palettegen` waits for the end of what
    // it is fed, and with an output `-t` that is the end of the source (a whole film decoded
    // and held for a 3 s GIF).
    let animation = cut.profile.is_animation();
    let length = cut
        .length
        .map(|length| ["-t".to_owned(), length.ffmpeg_arg()]);
    if let Some(length) = length.as_ref().filter(|_| animation) {
        args.extend(length.iter().cloned());
    }
    args.extend(["-i".into(), cut.input.location.clone()]);
    if let Some(length) = length.filter(|_| !animation) {
        args.extend(length);
    }
    if let Some(frames) = cut.frames.filter(|_| cut.copy) {
        args.extend(["-bsf:v".into(), format!("noise=drop='gte(n\\,{frames})'")]);
    }
    if animation {
        args.extend(strings(&["-map", "0:v:0", "-an"]));
    } else if video {
        args.extend(strings(&["-map", "0:v:0", "-map", "0:a:0?"]));
    } else {
        args.extend(strings(&["-map", "0:a:0", "-vn"]));
    }
    args.extend(strings(&["-map_metadata", "-1", "-map_chapters", "-1"]));
    if animation {
        args.extend([
            "-vf".into(),
            animation_filter(cut.profile, cut.fps, filter.as_deref()),
        ]);
    } else if let Some(filter) = &filter {
        args.extend(["-vf".into(), filter.clone()]);
    }
    if let Some(af) = cut
        .audio_filter
        .filter(|_| !cut.copy && cut.profile.has_audio())
    {
        args.extend(["-af".into(), af.to_owned()]);
    }
    args.extend(output_args(cut, t, threads.as_deref()));
    if let Some((file, at)) = cut.poster.filter(|_| video && !cut.copy) {
        args.extend(strings(&["-map", "0:v:0"]));
        if let Some(n) = &threads {
            args.extend(["-threads".into(), n.clone()]);
        }
        args.extend(poster_output(file, at, filter.as_deref()));
    }
    args
}

/// The inputs and the filter graph of several clips joined: the source opened once per clip,
/// each seeking to its start and bounded to its length (`-ss`, `-t` before `-i`), so every
/// clip is decoded from the keyframe before it and starts on its exact frame; `concat` joins
/// them in order. The scale (or an animation's chain), the sound's filter and the poster's
/// frame follow the join: `[video]`, `[sound]`, `[poster]`.
fn joined(args: &mut Vec<String>, cut: &Cut<'_>, threads: Option<&str>, scale: Option<&str>) {
    for piece in cut.pieces {
        piece_input(args, cut.input, cut.format, piece, threads);
    }
    let video = cut.profile.has_video();
    let sound = cut.source_audio && cut.profile.has_audio();
    let mut graph = String::new();
    for i in 0..cut.pieces.len() {
        if video {
            graph.push_str(&format!("[{i}:v:0]"));
        }
        if sound {
            graph.push_str(&format!("[{i}:a:0]"));
        }
    }
    graph.push_str(&format!(
        "concat=n={}:v={}:a={}",
        cut.pieces.len(),
        u8::from(video),
        u8::from(sound)
    ));
    if video {
        graph.push_str("[joined_v]");
    }
    if sound {
        graph.push_str("[joined_a]");
    }
    if video {
        let chain = if cut.profile.is_animation() {
            animation_filter(cut.profile, cut.fps, scale)
        } else {
            scale.unwrap_or("null").to_owned()
        };
        match cut.poster {
            Some((_, at)) => graph.push_str(&format!(
                ";[joined_v]split[main_v][poster_v];[main_v]{chain}[video];\
                 [poster_v]{}[poster]",
                poster_chain(at, scale)
            )),
            None => graph.push_str(&format!(";[joined_v]{chain}[video]")),
        }
    }
    if sound {
        // After `concat`, `loudnorm`'s resampled output has no channel layout the encoder can
        // be offered (ffmpeg 5.1: "Cannot select channel layout"): name the usual ones.
        let af = match cut.audio_filter {
            Some(af) => format!("{af},aformat=channel_layouts=mono|stereo|5.1|7.1"),
            None => "anull".to_owned(),
        };
        graph.push_str(&format!(";[joined_a]{af}[sound]"));
    }
    args.extend(["-filter_complex".into(), graph]);
    if video {
        args.extend(strings(&["-map", "[video]"]));
    }
    if sound {
        args.extend(strings(&["-map", "[sound]"]));
    }
    args.extend(strings(&["-map_metadata", "-1", "-map_chapters", "-1"]));
}

/// One clip of several as an input of its own: the input's options (an ffmpeg input option
/// holds for the next `-i` only, so every input carries its whitelists and frame-size cap),
/// `-ss` and `-t` before `-i`.
fn piece_input(
    args: &mut Vec<String>,
    input: &crate::probe::Input,
    format: Option<&str>,
    piece: &ClipRange,
    threads: Option<&str>,
) {
    args.extend(input.options());
    if piece.start.as_micros() > 0 {
        args.extend(["-ss".into(), piece.start.ffmpeg_arg()]);
    }
    if let Some(format) = format {
        args.extend(["-f".into(), format.into()]);
    }
    if let Some(n) = threads {
        args.extend(["-threads".into(), n.to_owned()]);
    }
    args.extend(["-t".into(), piece.length().ffmpeg_arg()]);
    args.extend(["-i".into(), input.location.clone()]);
}

/// The encoders, the progress report and the container of a cut's output, ending with it.
fn output_args(cut: &Cut<'_>, t: &TranscoderSettings, threads: Option<&str>) -> Vec<String> {
    let mut args = Vec::new();
    let crf = t.crf.to_string();
    let x264 = [
        "-c:v", "libx264", "-preset", &t.preset, "-crf", &crf, "-pix_fmt", "yuv420p", "-c:a",
        "aac", "-b:a", "128k",
    ];
    let codecs: &[&str] = match cut.profile {
        // Stream copy starts at the keyframe at or before -ss; shift its negative timestamps
        // so the clip starts at zero.
        // A copy of exact frames starts at its keyframe, at zero: the sound's packets before
        // it are trimmed by an edit list, as in the source.
        _ if cut.copy && cut.frames.is_some() => &["-c", "copy"],
        _ if cut.copy => &["-c", "copy", "-avoid_negative_ts", "make_zero"],
        Profile::Mp4 | Profile::Hls => &x264,
        Profile::Webm => &[
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-row-mt",
            "1",
            "-crf",
            "33",
            "-b:v",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "libopus",
            "-b:a",
            "96k",
        ],
        Profile::Audio => &["-c:a", "aac", "-b:a", "128k"],
        Profile::Mp3 => &["-c:a", "libmp3lame", "-q:a", "4"],
        Profile::Gif => &["-c:v", "gif"],
        Profile::Webp => &[
            "-c:v",
            "libwebp_anim",
            "-quality",
            "75",
            "-compression_level",
            "4",
        ],
    };
    args.extend(strings(codecs));
    args.extend(strings(&["-progress", "pipe:1", "-nostats"]));
    if let Some(n) = threads {
        args.extend(["-threads".into(), n.to_owned()]);
    }
    match cut.profile {
        Profile::Mp4 => args.extend(strings(&["-movflags", "+faststart", "-f", "mp4"])),
        Profile::Audio => args.extend(strings(&["-movflags", "+faststart", "-f", "ipod"])),
        Profile::Webm => args.extend(strings(&["-f", "webm"])),
        Profile::Mp3 => args.extend(strings(&["-f", "mp3"])),
        // Both loop for ever, as pictures on a page do.
        Profile::Gif => args.extend(strings(&["-loop", "0", "-f", "gif"])),
        Profile::Webp => args.extend(strings(&["-loop", "0", "-f", "webp"])),
        Profile::Hls => {
            let secs = t.hls_segment_secs.max(1);
            let dir = std::path::Path::new(cut.output)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|| ".".into());
            args.extend([
                // A keyframe at every segment boundary, so every segment starts cleanly.
                "-force_key_frames".into(),
                format!("expr:gte(t,n_forced*{secs})"),
                "-hls_time".into(),
                secs.to_string(),
                "-hls_playlist_type".into(),
                "vod".into(),
                "-hls_flags".into(),
                "independent_segments".into(),
                "-hls_segment_filename".into(),
                format!("{dir}/{HLS_SEGMENT_PATTERN}"),
                "-f".into(),
                "hls".into(),
            ]);
        }
    }
    args.extend(["-y".into(), cut.output.into()]);
    args
}

/// A stream copy's poster, made beside the copy from the same input: the first keyframe at or
/// after `start` and before `start + length`. The decoder skips every frame but keyframes, and
/// ffmpeg drops decoded frames before `-ss`; with no keyframe there it writes no file.
///
/// It cannot be a second output of the copy's run: with a decoder on the copied stream (and
/// `-skip_frame nokey`), ffmpeg 5.1 ends the copy at the first keyframe past `-t`, not at `-t`
/// (a 3 s clip came out 4.07 s long).
pub fn keyframe_poster_args(
    input: &crate::probe::Input,
    start: Option<Timecode>,
    length: Option<Timecode>,
    file: &str,
) -> Vec<String> {
    let mut args = preamble(input);
    args.extend(strings(&["-skip_frame", "nokey"]));
    if let Some(start) = start.filter(|s| s.as_micros() > 0) {
        args.extend(["-ss".into(), start.ffmpeg_arg()]);
    }
    args.extend(["-i".into(), input.location.clone()]);
    args.extend(strings(&["-map", "0:v:0"]));
    if let Some(length) = length {
        args.extend(["-t".into(), length.ffmpeg_arg()]);
    }
    args.extend(strings(&JPEG_FRAME));
    args.push(file.to_owned());
    args
}

/// The true peak and loudness range normalization aims at besides the integrated loudness:
/// EBU R128's broadcast values, which `loudnorm` defaults to as well.
const LOUDNORM_TP: &str = "-1.5";
const LOUDNORM_LRA: &str = "11";

/// Loudness normalization's first pass: `loudnorm` measures the clip's sound (the same `-ss`
/// and `-t` as the cut; of several clips, their sound joined) and, when it ends, logs what it
/// found as JSON, at `info` level.
pub fn loudness_args(
    input: &crate::probe::Input,
    format: Option<&str>,
    (start, length): (Option<Timecode>, Option<Timecode>),
    pieces: &[ClipRange],
    target_lufs: i32,
) -> Vec<String> {
    let mut args = if pieces.len() > 1 {
        quiet()
    } else {
        preamble(input)
    };
    args.extend(strings(&["-loglevel", "info", "-nostats"]));
    let measure =
        format!("loudnorm=I={target_lufs}:TP={LOUDNORM_TP}:LRA={LOUDNORM_LRA}:print_format=json");
    if pieces.len() > 1 {
        let mut graph = String::new();
        for (i, piece) in pieces.iter().enumerate() {
            piece_input(&mut args, input, format, piece, None);
            graph.push_str(&format!("[{i}:a:0]"));
        }
        graph.push_str(&format!(
            "concat=n={}:v=0:a=1,{measure}[sound]",
            pieces.len()
        ));
        args.extend(["-filter_complex".into(), graph]);
        args.extend(strings(&["-map", "[sound]", "-f", "null", "-"]));
        return args;
    }
    if let Some(start) = start.filter(|s| s.as_micros() > 0) {
        args.extend(["-ss".into(), start.ffmpeg_arg()]);
    }
    if let Some(format) = format {
        args.extend(["-f".into(), format.into()]);
    }
    args.extend(["-i".into(), input.location.clone()]);
    if let Some(length) = length {
        args.extend(["-t".into(), length.ffmpeg_arg()]);
    }
    args.extend(strings(&["-map", "0:a:0", "-vn", "-af"]));
    args.push(measure);
    args.extend(strings(&["-f", "null", "-"]));
    args
}

/// What `loudnorm`'s first pass measured (its JSON gives numbers as strings).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Loudness {
    pub input_i: String,
    pub input_tp: String,
    pub input_lra: String,
    pub input_thresh: String,
    pub target_offset: String,
}

/// What a first pass found.
#[derive(Debug, Clone, PartialEq)]
pub enum Measured {
    Level(Loudness),
    /// No loudness to bring anywhere (`-inf`): the sound is left as it is.
    Silent,
}

impl Loudness {
    /// The measurement at the end of a first pass's log; `None` when there is none.
    pub fn parse(log: &str) -> Option<Measured> {
        let open = log.rfind('{')?;
        let close = open + log[open..].find('}')?;
        let found: Loudness = serde_json::from_str(&log[open..=close]).ok()?;
        let number = |v: &str| v.trim().parse::<f64>().ok();
        let values = [
            &found.input_i,
            &found.input_tp,
            &found.input_lra,
            &found.input_thresh,
            &found.target_offset,
        ];
        if values.iter().all(|v| number(v).is_some_and(f64::is_finite)) {
            Some(Measured::Level(found))
        } else if number(&found.input_i) == Some(f64::NEG_INFINITY) {
            Some(Measured::Silent)
        } else {
            None
        }
    }

    /// The second pass's filter: the measured values given back, so `loudnorm` applies one
    /// linear gain where the range and peak allow (else it adapts as it goes). It works at
    /// 192 kHz; the sound comes out at 48 kHz, which AAC, MP3 and Opus all take.
    pub fn filter(&self, target_lufs: i32) -> String {
        format!(
            "loudnorm=I={target_lufs}:TP={LOUDNORM_TP}:LRA={LOUDNORM_LRA}:measured_I={}:\
             measured_TP={}:measured_LRA={}:measured_thresh={}:offset={}:linear=true,\
             aresample=48000",
            self.input_i, self.input_tp, self.input_lra, self.input_thresh, self.target_offset
        )
    }
}

/// Storyboard tiles: for each `(time, file)`, the source opened seeking to the keyframe at or
/// before the time (`-noaccurate_seek`) with every other frame skipped undecoded
/// (`-skip_frame nokey`), that one keyframe scaled to `width`×`height` and written as a JPEG.
/// So a tile costs one keyframe's bytes and decode, wherever it is in the source.
pub fn storyboard_tiles_args(
    input: &crate::probe::Input,
    format: Option<&str>,
    tiles: &[(Timecode, String)],
    (width, height): (u32, u32),
) -> Vec<String> {
    let mut args = quiet();
    let mut graph = Vec::new();
    for (i, (at, _)) in tiles.iter().enumerate() {
        args.extend(input.options());
        // The stream parameters come from the index: no 5 s of packets read to analyse
        // them (about 1.2 MB an input at 2 Mbit/s), only what one keyframe needs.
        args.extend(strings(&[
            "-skip_frame",
            "nokey",
            "-noaccurate_seek",
            "-analyzeduration",
            "100000",
            "-probesize",
            "65536",
        ]));
        if at.as_micros() > 0 {
            args.extend(["-ss".into(), at.ffmpeg_arg()]);
        }
        if let Some(format) = format {
            args.extend(["-f".into(), format.into()]);
        }
        args.extend(["-i".into(), input.location.clone()]);
        // The keyframe before the seek point has a negative time: start it at zero, or the
        // output drops it.
        graph.push(format!(
            "[{i}:v:0]trim=end_frame=1,setpts=PTS-STARTPTS,scale={width}:{height},setsar=1[tile{i}]"
        ));
    }
    args.extend(["-filter_complex".into(), graph.join(";")]);
    for (i, (_, file)) in tiles.iter().enumerate() {
        args.extend(["-map".into(), format!("[tile{i}]")]);
        args.extend(strings(&TILE_JPEG));
        args.push(file.clone());
    }
    args
}

/// A storyboard's JPEG (a tile, or the sprite): one picture, overwritten if there.
const TILE_JPEG: [&str; 7] = ["-frames:v", "1", "-q:v", "4", "-update", "1", "-y"];

/// What a run on files this worker wrote starts with: no stdin, errors only, local files.
fn local_preamble() -> Vec<String> {
    let mut args = quiet();
    args.extend(strings(&["-protocol_whitelist", "file"]));
    args
}

/// The storyboard's sprite straight from keyframes: `stream` is raw H.264, one keyframe a tile
/// (each behind its parameter sets), decoded, scaled to `width`×`height` and laid out
/// `columns` × `rows`.
pub fn storyboard_stream_args(
    stream: &str,
    (width, height): (u32, u32),
    (columns, rows): (u32, u32),
    max_pixels: u64,
    out: &str,
) -> Vec<String> {
    let mut args = local_preamble();
    args.extend(strings(&["-format_whitelist", "h264", "-max_pixels"]));
    args.push(max_pixels.to_string());
    args.extend(strings(&["-f", "h264", "-i"]));
    args.push(stream.to_owned());
    args.extend([
        "-vf".into(),
        format!("scale={width}:{height},setsar=1,tile={columns}x{rows}"),
    ]);
    args.extend(strings(&TILE_JPEG));
    args.push(out.to_owned());
    args
}

/// The storyboard's sprite: the tile JPEGs `pattern` (numbered from 0) laid out `columns` ×
/// `rows`, row by row; the last row may be part empty.
pub fn storyboard_sprite_args(
    pattern: &str,
    (columns, rows): (u32, u32),
    out: &str,
) -> Vec<String> {
    let mut args = local_preamble();
    args.extend(strings(&[
        "-framerate",
        "1",
        "-start_number",
        "0",
        "-f",
        "image2",
        "-i",
    ]));
    args.push(pattern.to_owned());
    args.extend(["-vf".into(), format!("tile={columns}x{rows}")]);
    args.extend(strings(&TILE_JPEG));
    args.push(out.to_owned());
    args
}

/// The file names of HLS segments (`%05d`): `seg_00000.ts`, ...
pub const HLS_SEGMENT_PATTERN: &str = "seg_%05d.ts";

/// Whether `name` is an HLS segment name this code writes.
pub fn is_segment_name(name: &str) -> bool {
    name.strip_prefix("seg_")
        .and_then(|n| n.strip_suffix(".ts"))
        .is_some_and(|n| n.len() == 5 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// One frame as a JPEG, overwriting the file: the poster's encoder options (the file follows).
const JPEG_FRAME: [&str; 12] = [
    "-frames:v",
    "1",
    "-an",
    "-c:v",
    "mjpeg",
    "-q:v",
    "3",
    "-f",
    "image2",
    "-update",
    "1",
    "-y",
];

/// The poster as a second output: one JPEG frame `at` into the clip, scaled like the video.
/// `trim` picks the frame *before* any conversion and then ends the output, so the other
/// frames cost nothing: with output `-ss`, ffmpeg 5.1 converted every decoded frame for the
/// finished poster output (+14 % CPU on a 720p encode), and with only `-frames:v 1` it kept
/// reading the input (2.6 times the bytes of a ranged clip).
fn poster_output(file: &str, at: Timecode, scale: Option<&str>) -> Vec<String> {
    let mut args = vec!["-vf".to_owned(), poster_chain(at, scale)];
    args.extend(strings(&JPEG_FRAME));
    args.push(file.to_owned());
    args
}

/// The poster's frame `at` into the clip, picked with `trim`, then scaled.
fn poster_chain(at: Timecode, scale: Option<&str>) -> String {
    let end = Timecode::from_micros(at.as_micros() + 1_000_000);
    let chain = format!("trim=start={}:end={}", at.ffmpeg_arg(), end.ffmpeg_arg());
    match scale {
        Some(scale) => format!("{chain},{scale}"),
        None => chain,
    }
}

/// What every ffmpeg run starts with: no stdin, errors only, and only the protocols,
/// demuxers and frame sizes `input` allows.
fn preamble(input: &crate::probe::Input) -> Vec<String> {
    let mut args = quiet();
    args.extend(input.options());
    args
}

/// No stdin, errors only: the start of every run; its inputs' options follow.
fn quiet() -> Vec<String> {
    strings(&["-nostdin", "-hide_banner", "-loglevel", "error"]).collect()
}

/// The smart cut's pieces (`crate::smart` plans them, `stage::smart` runs them).
pub mod smart {
    use super::{piece_input, preamble, strings};
    use crate::probe::Input;
    use shared_proto::{ClipRange, Timecode};

    /// The source's first video frame, copied into a small mp4: its `avcC` holds the codec
    /// headers and its bytes x264's settings (which x264 writes into the first frame only).
    pub fn first_frame_args(input: &Input, file: &str) -> Vec<String> {
        let mut args = preamble(input);
        args.extend(["-i".into(), input.location.clone()]);
        args.extend(strings(&[
            "-map",
            "0:v:0",
            "-c",
            "copy",
            "-frames:v",
            "1",
            "-f",
            "mp4",
            "-y",
        ]));
        args.push(file.to_owned());
        args
    }

    /// A head or tail: `frames` frames from `from`, encoded with libx264 as `encoder` says.
    /// Timestamps pass through as they are (`-fps_mode passthrough`) in the source's own time
    /// scale, so the pieces join without a gap or a repeated frame.
    pub fn encode_args(
        input: &Input,
        from: Timecode,
        frames: u64,
        encoder: &[String],
        timescale: i64,
        file: &str,
    ) -> Vec<String> {
        let mut args = video_from(input, from);
        args.extend(strings(&["-an", "-sn", "-dn"]));
        args.extend(["-frames:v".into(), frames.to_string()]);
        args.extend(strings(&["-fps_mode", "passthrough"]));
        args.extend(encoder.iter().cloned());
        args.extend(piece_output(timescale, file));
        args
    }

    /// The copied middle: the source's own packets from the keyframe at `from`, `frames` of
    /// them (`None`: to the end).
    pub fn copy_args(
        input: &Input,
        from: Timecode,
        frames: Option<u64>,
        timescale: i64,
        file: &str,
    ) -> Vec<String> {
        let mut args = video_from(input, from);
        args.extend(strings(&["-c", "copy"]));
        if let Some(frames) = frames {
            args.extend(["-frames:v".into(), frames.to_string()]);
        }
        args.extend(piece_output(timescale, file));
        args
    }

    /// The input seeked to `from`, its first video stream mapped.
    fn video_from(input: &Input, from: Timecode) -> Vec<String> {
        let mut args = preamble(input);
        if from.as_micros() > 0 {
            args.extend(["-ss".into(), from.ffmpeg_arg()]);
        }
        args.extend(["-i".into(), input.location.clone()]);
        args.extend(strings(&["-map", "0:v:0"]));
        args
    }

    fn piece_output(timescale: i64, file: &str) -> Vec<String> {
        vec![
            "-video_track_timescale".into(),
            timescale.to_string(),
            "-f".into(),
            "mp4".into(),
            "-y".into(),
            file.to_owned(),
        ]
    }

    /// The first input of a join: the concat demuxer reading `list`, a list of this worker's
    /// mp4s. No `auto_convert`: it would rewrite the copied packets to Annex B and back, with
    /// the codec headers added in-band to every keyframe. The pieces share one `avcC` as it is.
    fn concat_list_input(list: &str) -> Vec<String> {
        let mut args = preamble(&Input {
            formats: "concat,mov,mp4,m4a,3gp,3g2,mj2",
            ..Input::file(std::path::Path::new(list))
        });
        args.extend(strings(&["-f", "concat", "-auto_convert", "0", "-i"]));
        args.push(list.to_owned());
        args
    }

    /// The pieces joined (the concat demuxer reading `list`, stream copy: the packets as they
    /// are) with the clip's audio, cut once over the whole clip from the source, so there is
    /// no seam in the sound: copied when it is AAC already (it then starts within one AAC
    /// frame of the video), else encoded to AAC.
    pub fn join_args(
        list: &str,
        source: &Input,
        start: Timecode,
        length: Option<Timecode>,
        copy_audio: bool,
        output: &str,
    ) -> Vec<String> {
        let mut args = concat_list_input(list);
        args.extend(source.options());
        if start.as_micros() > 0 {
            args.extend(["-ss".into(), start.ffmpeg_arg()]);
        }
        if let Some(length) = length {
            args.extend(["-t".into(), length.ffmpeg_arg()]);
        }
        args.extend(["-i".into(), source.location.clone()]);
        args.extend(strings(&[
            "-map",
            "0:v:0",
            "-map",
            "1:a:0?",
            "-map_metadata",
            "-1",
            "-map_chapters",
            "-1",
            "-c:v",
            "copy",
        ]));
        let audio: &[&str] = if copy_audio {
            &["-c:a", "copy"]
        } else {
            &["-c:a", "aac", "-b:a", "128k"]
        };
        args.extend(strings(audio));
        args.extend(strings(&["-movflags", "+faststart", "-f", "mp4", "-y"]));
        args.push(output.to_owned());
        args
    }

    /// Several smart-cut clips joined: the pictures of `list` (a concat list of this worker's
    /// mp4s, which share the source's codec headers) copied as they are, and the sound taken
    /// again from the `source`, clip by clip (`-ss`/`-t` before each input), joined and
    /// encoded once: the clips' own sound would carry each one's AAC priming into the join.
    pub fn concat_copy_args(
        list: &str,
        source: &Input,
        clips: &[ClipRange],
        sound: bool,
        output: &str,
    ) -> Vec<String> {
        let mut args = concat_list_input(list);
        let mut maps = strings(&["-map", "0:v:0"]).collect::<Vec<_>>();
        if sound {
            let mut graph = String::new();
            for (i, clip) in clips.iter().enumerate() {
                piece_input(&mut args, source, None, clip, None);
                graph.push_str(&format!("[{}:a:0]", i + 1));
            }
            graph.push_str(&format!("concat=n={}:v=0:a=1[sound]", clips.len()));
            args.extend(["-filter_complex".into(), graph]);
            maps.extend(strings(&["-map", "[sound]", "-c:a", "aac", "-b:a", "128k"]));
        }
        args.extend(maps);
        args.extend(strings(&[
            "-map_metadata",
            "-1",
            "-map_chapters",
            "-1",
            "-c:v",
            "copy",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            "-y",
        ]));
        args.push(output.to_owned());
        args
    }
}

/// A poster taken from a finished clip (used after a stream copy, which decodes nothing).
pub fn poster_args(clip: &crate::probe::Input, at: Timecode, file: &str) -> Vec<String> {
    let mut args = preamble(clip);
    if at.as_micros() > 0 {
        args.extend(["-ss".into(), at.ffmpeg_arg()]);
    }
    args.extend(["-i".into(), clip.location.clone()]);
    args.extend(strings(&JPEG_FRAME));
    args.push(file.to_owned());
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
        let input = crate::probe::Input::file(std::path::Path::new("/tmp/in")).capped(33_177_600);
        let cut = Cut {
            input: &input,
            format: Some("mov,mp4,m4a,3gp,3g2,mj2"),
            output: "/tmp/out.mp4",
            start: Some(Timecode::parse("00:00:10").unwrap()),
            length: Some(Timecode::parse("00:00:03").unwrap()),
            copy: false,
            frames: None,
            profile: Profile::Mp4,
            max_height: None,
            poster: None,
            fps: 12,
            audio_filter: None,
            pieces: &[],
            source_audio: true,
        };
        let args = cut_args(&cut, &t);
        let pos = |a: &str| args.iter().position(|x| x == a).unwrap();
        assert!(pos("-ss") < pos("-i"), "input seeking: -ss before -i");
        assert_eq!(args[pos("-ss") + 1], "10.000000");
        assert_eq!(args[pos("-t") + 1], "3.000000");
        assert!(pos("-t") > pos("-i"));
        // The decoder's frame-size cap is an input option.
        assert!(pos("-max_pixels") < pos("-i"));
        assert_eq!(args[pos("-max_pixels") + 1], "33177600");
        assert_eq!(args[pos("-movflags") + 1], "+faststart");
        assert_eq!(args[pos("-map_metadata") + 1], "-1");
        assert_eq!(args[pos("-c:v") + 1], "libx264");
        assert_eq!(args.last().unwrap(), "/tmp/out.mp4");
        assert!(args.contains(&"-nostdin".to_string()));
        assert!(!args.contains(&"-threads".to_string()));
    }

    #[test]
    fn a_copy_takes_its_poster_from_the_first_keyframe_in_a_run_beside_it() {
        let input = crate::probe::Input::proxied("http://127.0.0.1:9/source".into());
        let args = keyframe_poster_args(
            &input,
            Some(Timecode::parse("00:09:50").unwrap()),
            Some(Timecode::parse("00:00:03").unwrap()),
            "/tmp/poster.jpg",
        );
        let pos = |a: &str| args.iter().position(|x| x == a).unwrap();
        assert!(pos("-skip_frame") < pos("-ss") && pos("-ss") < pos("-i"));
        assert_eq!(args[pos("-skip_frame") + 1], "nokey");
        // The length bounds the output: a keyframe past the clip's end is no poster.
        assert!(pos("-t") > pos("-i"));
        assert_eq!(args[pos("-t") + 1], "3.000000");
        assert_eq!(args[pos("-c:v") + 1], "mjpeg");
        assert_eq!(args.last().unwrap(), "/tmp/poster.jpg");
        // The copy's own run decodes nothing.
        let cut = Cut {
            input: &input,
            format: None,
            output: "/tmp/out.mp4",
            start: Some(Timecode::parse("00:09:50").unwrap()),
            length: Some(Timecode::parse("00:00:03").unwrap()),
            copy: true,
            frames: None,
            profile: Profile::Mp4,
            max_height: None,
            poster: None,
            fps: 12,
            audio_filter: None,
            pieces: &[],
            source_audio: true,
        };
        let copy = cut_args(&cut, &TranscoderSettings::default());
        assert!(!copy.contains(&"-skip_frame".to_string()));
        assert_eq!(copy.last().unwrap(), "/tmp/out.mp4");
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
            format: None,
            output: "o",
            start: None,
            length: None,
            copy: false,
            frames: None,
            profile: Profile::Mp4,
            max_height: None,
            poster: None,
            fps: 12,
            audio_filter: None,
            pieces: &[],
            source_audio: true,
        };
        let args = cut_args(&cut, &t);
        assert!(!args.contains(&"-ss".to_string()) && !args.contains(&"-t".to_string()));
        // The decoder, the filters and the encoder all keep to the budget.
        let pos = |a: &str| args.iter().position(|x| x == a).unwrap();
        let threads: Vec<usize> = (0..args.len()).filter(|&i| args[i] == "-threads").collect();
        assert_eq!(threads.len(), 2, "{args:?}");
        assert!(threads[0] < pos("-i") && threads[1] > pos("-i"));
        assert!(threads.iter().all(|&i| args[i + 1] == "1"));
        assert_eq!(args[pos("-filter_threads") + 1], "1");
        assert!(pos("-filter_threads") < pos("-i"));
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
        assert!(!args.contains(&"-filter_threads".to_string()));
    }

    #[test]
    fn profiles_choose_codecs_containers_and_a_poster_output() {
        let t = TranscoderSettings::default();
        let input = crate::probe::Input::file(std::path::Path::new("/tmp/in"));
        let mut cut = Cut {
            input: &input,
            format: Some("mov,mp4,m4a,3gp,3g2,mj2"),
            output: "/w/index.m3u8",
            start: None,
            length: None,
            copy: false,
            frames: None,
            profile: Profile::Hls,
            max_height: Some(240),
            poster: Some(("/w/poster.jpg", Timecode::from_micros(1_000_000))),
            fps: 12,
            audio_filter: None,
            pieces: &[],
            source_audio: true,
        };
        let args = cut_args(&cut, &t);
        let after = |args: &[String], flag: &str| {
            args[args.iter().position(|a| a == flag).unwrap() + 1].clone()
        };
        assert_eq!(after(&args, "-hls_segment_filename"), "/w/seg_%05d.ts");
        assert_eq!(after(&args, "-vf"), "scale=-2:'trunc(min(ih,240)/2)*2'");
        // The poster is a second output after the playlist, with the same scaling.
        let playlist = args.iter().position(|a| a == "/w/index.m3u8").unwrap();
        let rest = &args[playlist..];
        // The poster's frame is picked (and the output ended) before it is scaled.
        assert_eq!(
            after(rest, "-vf"),
            format!("trim=start=1.000000:end=2.000000,{}", after(&args, "-vf"))
        );
        assert!(!rest.contains(&"-ss".to_string()));
        assert_eq!(args.last().unwrap(), "/w/poster.jpg");
        cut.profile = Profile::Webm;
        let args = cut_args(&cut, &t);
        assert_eq!(after(&args, "-c:v"), "libvpx-vp9");
        assert_eq!(after(&args, "-c:a"), "libopus");
        cut.profile = Profile::Mp3;
        let args = cut_args(&cut, &t);
        assert!(args.contains(&"-vn".to_string()) && !args.contains(&"-vf".to_string()));
        assert_eq!(after(&args, "-c:a"), "libmp3lame");
        assert!(
            !args.iter().any(|a| a.ends_with(".jpg")),
            "no poster of audio"
        );
        // An animation: no sound, its length bounds the input, its frame rate and scale in
        // one graph (a GIF's palette made from the clip), the poster scaled only.
        cut.profile = Profile::Gif;
        cut.fps = 8;
        cut.length = Some(Timecode::parse("00:00:02").unwrap());
        cut.output = "/w/clip.gif";
        let args = cut_args(&cut, &t);
        let pos = |a: &str| args.iter().position(|x| x == a).unwrap();
        assert!(pos("-t") < pos("-i"), "{args:?}");
        assert!(args.contains(&"-an".to_string()) && !args.contains(&"0:a:0?".to_string()));
        let graph = after(&args, "-vf");
        assert!(
            graph.starts_with("fps=8,scale=-2:'trunc(min(ih,240)/2)*2',split[a][b];"),
            "{graph}"
        );
        assert!(
            graph.contains("palettegen") && graph.contains("paletteuse"),
            "{graph}"
        );
        let has = |args: &[String], pair: [&str; 2]| args.windows(2).any(|w| w == pair);
        assert_eq!(after(&args, "-c:v"), "gif");
        assert!(has(&args, ["-f", "gif"]), "{args:?}");
        assert_eq!(after(&args, "-loop"), "0");
        let gif = args.iter().position(|a| a == "/w/clip.gif").unwrap();
        assert_eq!(
            after(&args[gif..], "-vf"),
            "trim=start=1.000000:end=2.000000,scale=-2:'trunc(min(ih,240)/2)*2'"
        );
        cut.profile = Profile::Webp;
        let args = cut_args(&cut, &t);
        assert_eq!(
            after(&args, "-vf"),
            "fps=8,scale=-2:'trunc(min(ih,240)/2)*2'"
        );
        assert_eq!(after(&args, "-c:v"), "libwebp_anim");
        assert!(has(&args, ["-f", "webp"]), "{args:?}");
        assert!(is_segment_name("seg_00012.ts"));
        for bad in ["seg_1.ts", "../x.ts", "seg_00012.ts/..", "index.m3u8"] {
            assert!(!is_segment_name(bad), "{bad}");
        }
    }

    #[test]
    fn loudness_is_measured_over_the_clip_then_applied_with_what_was_measured() {
        let input = crate::probe::Input::file(std::path::Path::new("/tmp/in"));
        let start = Timecode::parse("00:00:10").unwrap();
        let length = Timecode::parse("00:00:05").unwrap();
        let args = loudness_args(
            &input,
            Some("mov,mp4"),
            (Some(start), Some(length)),
            &[],
            -16,
        );
        let after = |flag: &str| args[args.iter().rposition(|a| a == flag).unwrap() + 1].clone();
        assert_eq!(after("-loglevel"), "info", "the JSON is logged at info");
        assert_eq!(
            (after("-ss"), after("-t")),
            ("10.000000".into(), "5.000000".into())
        );
        assert_eq!(
            after("-af"),
            "loudnorm=I=-16:TP=-1.5:LRA=11:print_format=json"
        );
        assert_eq!(args.last().unwrap(), "-");
        // Recorded from ffmpeg 5.1: the JSON follows the filter's own line.
        let log = "[Parsed_loudnorm_0 @ 0x55d0] \n{\n\t\"input_i\" : \"-27.61\",\n\t\
                   \"input_tp\" : \"-18.04\",\n\t\"input_lra\" : \"0.00\",\n\t\
                   \"input_thresh\" : \"-37.61\",\n\t\"output_i\" : \"-16.07\",\n\t\
                   \"output_tp\" : \"-6.52\",\n\t\"output_lra\" : \"0.00\",\n\t\
                   \"output_thresh\" : \"-26.07\",\n\t\"normalization_type\" : \
                   \"linear\",\n\t\"target_offset\" : \"0.07\"\n}\nsize=N/A\n";
        let Some(Measured::Level(measured)) = Loudness::parse(log) else {
            panic!("no measurement")
        };
        assert_eq!(measured.input_i, "-27.61");
        assert_eq!(
            measured.filter(-16),
            "loudnorm=I=-16:TP=-1.5:LRA=11:measured_I=-27.61:measured_TP=-18.04:\
             measured_LRA=0.00:measured_thresh=-37.61:offset=0.07:linear=true,aresample=48000"
        );
        let silent = log.replace("-27.61", "-inf").replace("-18.04", "-inf");
        assert_eq!(Loudness::parse(&silent), Some(Measured::Silent));
        assert_eq!(Loudness::parse("no measurement"), None);
        assert_eq!(Loudness::parse(&log.replace("-27.61", "x")), None);
        // The cut takes the filter for the sound, not for an animation.
        let t = TranscoderSettings::default();
        let filter = measured.filter(-16);
        let mut cut = Cut {
            input: &input,
            format: None,
            output: "/tmp/out.mp4",
            start: Some(start),
            length: Some(length),
            copy: false,
            frames: None,
            profile: Profile::Mp4,
            max_height: None,
            poster: None,
            fps: 12,
            audio_filter: Some(&filter),
            pieces: &[],
            source_audio: true,
        };
        let args = cut_args(&cut, &t);
        assert_eq!(
            args[args.iter().position(|a| a == "-af").unwrap() + 1],
            filter
        );
        cut.profile = Profile::Gif;
        assert!(!cut_args(&cut, &t).contains(&"-af".to_string()));
    }

    #[test]
    fn several_clips_are_one_input_each_joined_by_concat() {
        let t = TranscoderSettings::default();
        let input = crate::probe::Input::proxied("http://127.0.0.1:9/source".into());
        let tc = |s: &str| Timecode::parse(s).unwrap();
        let pieces = [
            ClipRange {
                start: tc("00:00:30"),
                stop: tc("00:00:31.5"),
            },
            ClipRange {
                start: tc("00:00:05"),
                stop: tc("00:00:06"),
            },
        ];
        let mut cut = Cut {
            input: &input,
            format: Some("mov,mp4"),
            output: "/w/clip.mp4",
            start: None,
            length: None,
            copy: false,
            frames: None,
            profile: Profile::Mp4,
            max_height: Some(120),
            poster: Some(("/w/poster.jpg", tc("00:00:02"))),
            fps: 12,
            audio_filter: Some("loudnorm=I=-16"),
            pieces: &pieces,
            source_audio: true,
        };
        let args = cut_args(&cut, &t);
        let at = |a: &str| -> Vec<usize> { (0..args.len()).filter(|&i| args[i] == a).collect() };
        let (inputs, seeks, lengths) = (at("-i"), at("-ss"), at("-t"));
        assert_eq!(
            (inputs.len(), seeks.len(), lengths.len()),
            (2, 2, 2),
            "{args:?}"
        );
        for k in 0..2 {
            assert!(seeks[k] < lengths[k] && lengths[k] < inputs[k], "{args:?}");
        }
        assert_eq!(
            (args[seeks[0] + 1].as_str(), args[lengths[0] + 1].as_str()),
            ("30.000000", "1.500000")
        );
        assert_eq!(args[lengths[1] + 1], "1.000000");
        let graph = &args[at("-filter_complex")[0] + 1];
        assert!(
            graph.starts_with("[0:v:0][0:a:0][1:v:0][1:a:0]concat=n=2:v=1:a=1[joined_v][joined_a]"),
            "{graph}"
        );
        assert!(
            graph.contains("[main_v]scale=-2:'trunc(min(ih,120)/2)*2'[video]"),
            "{graph}"
        );
        assert!(
            graph.contains("[poster_v]trim=start=2.000000:end=3.000000,scale"),
            "{graph}"
        );
        assert!(
            graph.contains("[joined_a]loudnorm=I=-16,aformat="),
            "{graph}"
        );
        let maps: Vec<&str> = at("-map").iter().map(|&i| args[i + 1].as_str()).collect();
        assert_eq!(maps, ["[video]", "[sound]", "[poster]"]);
        assert_eq!(args.last().unwrap(), "/w/poster.jpg");
        // Sound only: no pictures joined; a source without sound: none joined.
        cut.profile = Profile::Mp3;
        cut.poster = None;
        let args = cut_args(&cut, &t);
        let graph = &args[args.iter().position(|a| a == "-filter_complex").unwrap() + 1];
        assert!(
            graph.starts_with("[0:a:0][1:a:0]concat=n=2:v=0:a=1[joined_a];"),
            "{graph}"
        );
        cut.profile = Profile::Mp4;
        cut.source_audio = false;
        let args = cut_args(&cut, &t);
        let graph = &args[args.iter().position(|a| a == "-filter_complex").unwrap() + 1];
        assert!(
            graph.starts_with("[0:v:0][1:v:0]concat=n=2:v=1:a=0[joined_v];"),
            "{graph}"
        );
        assert!(!args.contains(&"[sound]".to_string()));
    }

    #[test]
    fn every_input_of_a_run_of_several_carries_its_own_whitelists_and_cap() {
        let input =
            crate::probe::Input::proxied("http://127.0.0.1:9/source".into()).capped(33_177_600);
        let tc = |s: &str| Timecode::parse(s).unwrap();
        let pieces = [
            ClipRange {
                start: tc("00:00:30"),
                stop: tc("00:00:31"),
            },
            ClipRange {
                start: tc("00:00:05"),
                stop: tc("00:00:06"),
            },
        ];
        let cut = Cut {
            input: &input,
            format: None,
            output: "/w/clip.mp4",
            start: None,
            length: None,
            copy: false,
            frames: None,
            profile: Profile::Mp4,
            max_height: None,
            poster: None,
            fps: 12,
            audio_filter: None,
            pieces: &pieces,
            source_audio: true,
        };
        let tiles = [
            (tc("00:00:00"), "/w/t0.jpg".to_owned()),
            (tc("00:00:02"), "/w/t1.jpg".to_owned()),
        ];
        for args in [
            cut_args(&cut, &TranscoderSettings::default()),
            loudness_args(&input, None, (None, None), &pieces, -16),
            storyboard_tiles_args(&input, None, &tiles, (160, 90)),
        ] {
            let count = |flag: &str| args.iter().filter(|a| *a == flag).count();
            assert_eq!(count("-i"), 2, "{args:?}");
            for flag in ["-protocol_whitelist", "-format_whitelist", "-max_pixels"] {
                assert_eq!(count(flag), 2, "{flag} once an input: {args:?}");
            }
        }
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
