//! A description of an mp4 this worker wrote, read from its `moov` box (which `+faststart`
//! puts first), so the result is described without another ffprobe process on the critical
//! path. Anything unexpected returns `None`, and the caller probes as before.

use crate::probe::{Format, Probe, Stream};

/// Reads at most this much of the file: the `moov` of a clip is a few kilobytes.
const MAX_HEAD: u64 = 4 * 1024 * 1024;

/// The boxes directly inside `data`: (type, body).
fn boxes(mut data: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 8 {
        let size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as u64;
        let kind = [data[4], data[5], data[6], data[7]];
        let (header, size) = match size {
            1 if data.len() >= 16 => {
                let mut large = [0u8; 8];
                large.copy_from_slice(&data[8..16]);
                (16usize, u64::from_be_bytes(large))
            }
            0 => (8, data.len() as u64),
            n => (8, n),
        };
        if size < header as u64 || size > data.len() as u64 {
            break;
        }
        out.push((kind, &data[header..size as usize]));
        data = &data[size as usize..];
    }
    out
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data)
        .into_iter()
        .find(|(k, _)| k == kind)
        .map(|(_, b)| b)
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn be64(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?))
}

/// (timescale, duration) of an `mvhd`.
fn movie_duration(mvhd: &[u8]) -> Option<f64> {
    let (scale, duration) = match mvhd.first()? {
        0 => (be32(mvhd, 12)?, be32(mvhd, 16)? as u64),
        1 => (be32(mvhd, 20)?, be64(mvhd, 24)?),
        _ => return None,
    };
    (scale > 0).then(|| duration as f64 / scale as f64)
}

/// One track: handler, codec, and (video) the `tkhd` size.
fn track(trak: &[u8]) -> Option<Stream> {
    let tkhd = child(trak, b"tkhd")?;
    let dims_at = match tkhd.first()? {
        0 => 76,
        1 => 88,
        _ => return None,
    };
    let width = be32(tkhd, dims_at)? >> 16;
    let height = be32(tkhd, dims_at + 4)? >> 16;
    let mdia = child(trak, b"mdia")?;
    let handler: [u8; 4] = child(mdia, b"hdlr")?.get(8..12)?.try_into().ok()?;
    let stsd = child(child(child(mdia, b"minf")?, b"stbl")?, b"stsd")?;
    let entry: [u8; 4] = stsd.get(12..16)?.try_into().ok()?;
    let codec = match &entry {
        b"avc1" | b"avc3" => "h264",
        b"hvc1" | b"hev1" => "hevc",
        b"mp4a" => "aac",
        _ => return None,
    };
    let (codec_type, width, height) = match &handler {
        b"vide" => ("video", Some(width), Some(height)),
        b"soun" => ("audio", None, None),
        _ => return None,
    };
    let pix_fmt = match &entry {
        b"avc1" | b"avc3" => stsd
            .get(8..)
            .and_then(|entries| boxes(entries).into_iter().next())
            .and_then(|(_, sample_entry)| child(sample_entry.get(78..)?, b"avcC"))
            .and_then(avc_pixel_format),
        _ => None,
    };
    Some(Stream {
        codec_type: codec_type.into(),
        codec_name: Some(codec.into()),
        width,
        height,
        avg_frame_rate: (handler == *b"vide").then(|| average_rate(mdia)).flatten(),
        pix_fmt: pix_fmt.map(str::to_owned),
        ..Stream::default()
    })
}

/// The pixel format an H.264 decoder configuration (`avcC`) declares, as ffprobe names the
/// common one: `yuv420p` for 8-bit 4:2:0; another name for anything else. The profiles
/// without the high profiles' chroma and bit-depth fields are 8-bit 4:2:0 by definition; a
/// high profile's `avcC` carries them after its parameter sets (ISO/IEC 14496-15), and
/// without them the answer is `None`.
fn avc_pixel_format(avcc: &[u8]) -> Option<&'static str> {
    const HIGH: [u8; 12] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134];
    let profile = *avcc.get(1)?;
    if !HIGH.contains(&profile) {
        return Some("yuv420p");
    }
    // The sequence parameter sets (a 5-bit count) and the picture parameter sets (an 8-bit
    // count), each set with its 16-bit length.
    let mut at = 5usize;
    for mask in [0x1f, 0xff] {
        let count = usize::from(*avcc.get(at)? & mask);
        at += 1;
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes(avcc.get(at..at + 2)?.try_into().ok()?));
            at += 2 + len;
        }
    }
    let chroma = avcc.get(at)? & 0x03;
    let luma_depth = 8 + (avcc.get(at + 1)? & 0x07);
    let chroma_depth = 8 + (avcc.get(at + 2)? & 0x07);
    Some(match (chroma, luma_depth, chroma_depth) {
        (1, 8, 8) => "yuv420p",
        _ => "other",
    })
}

/// A video track's average frame rate as ffprobe writes it (`frames × timescale/duration`):
/// its samples (`stsz`) over its media duration (`mdhd`).
fn average_rate(mdia: &[u8]) -> Option<String> {
    let mdhd = child(mdia, b"mdhd")?;
    let (scale, duration) = match mdhd.first()? {
        0 => (be32(mdhd, 12)?, u64::from(be32(mdhd, 16)?)),
        1 => (be32(mdhd, 20)?, be64(mdhd, 24)?),
        _ => return None,
    };
    let frames = sample_count(mdia)?;
    (duration > 0 && frames > 0).then(|| format!("{}/{duration}", frames * u64::from(scale)))
}

/// The H.264 decoder configuration (`avcC`: profile, level, SPS and PPS) of the first video
/// track of a whole mp4, wherever its `moov` is; `None` when there is none.
pub fn avcc(mp4: &[u8]) -> Option<&[u8]> {
    let moov = child(mp4, b"moov")?;
    boxes(moov)
        .into_iter()
        .filter(|(k, _)| k == b"trak")
        .find_map(|(_, trak)| {
            let mdia = child(trak, b"mdia")?;
            let stbl = child(child(mdia, b"minf")?, b"stbl")?;
            // `stsd`: version and flags, the entry count, then the sample entries.
            let entries = child(stbl, b"stsd")?.get(8..)?;
            let (kind, entry) = boxes(entries).into_iter().next()?;
            // A visual sample entry's fixed fields take 78 bytes before its child boxes.
            matches!(&kind, b"avc1" | b"avc3")
                .then(|| child(entry.get(78..)?, b"avcC"))
                .flatten()
        })
}

/// Describes the mp4 at the start of `head` (its first bytes), or `None`.
pub fn describe(head: &[u8]) -> Option<Probe> {
    let top = boxes(head);
    let moov = top.iter().find(|(k, _)| k == b"moov")?.1;
    let duration = movie_duration(child(moov, b"mvhd")?)?;
    let streams = boxes(moov)
        .into_iter()
        .filter(|(k, _)| k == b"trak")
        .enumerate()
        .map(|(index, (_, t))| {
            Some(Stream {
                index: u32::try_from(index).ok()?,
                ..track(t)?
            })
        })
        .collect::<Option<Vec<Stream>>>()?;
    Some(Probe {
        streams,
        format: Format {
            format_name: "mov,mp4,m4a,3gp,3g2,mj2".into(),
            duration: Some(format!("{duration:.6}")),
        },
        packets: Vec::new(),
    })
}

/// Describes the mp4 file at `path`, or `None` (the caller then runs ffprobe).
pub async fn describe_file(path: &std::path::Path) -> Option<Probe> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await.ok()?;
    let mut head = Vec::new();
    file.take(MAX_HEAD).read_to_end(&mut head).await.ok()?;
    describe(&head)
}

/// Most keyframes listed from an index: an all-intra video lists every frame.
const MAX_KEYFRAMES: usize = 100_000;

fn signed32(data: &[u8], at: usize) -> Option<i64> {
    Some(i64::from(i32::from_be_bytes(
        data.get(at..at + 4)?.try_into().ok()?,
    )))
}

/// The presentation times (seconds) of the first video track's keyframes, read from the
/// sample tables of `mp4`, whose top level holds the `moov`: `stss` (the sync samples), `stts`
/// (decode times), `ctts` (composition offsets) and the edit list (`elst`: the media time the
/// presentation starts at, after any empty edit). `None` for anything it cannot read whole (a
/// fragmented mp4 lists no samples in its `moov`).
pub fn keyframes(mp4: &[u8]) -> Option<Vec<f64>> {
    Some(video_index(mp4)?.into_iter().map(|k| k.time).collect())
}

/// A keyframe of the first video track: when it is shown, and its sample's number (0-based),
/// which [`sample_location`] places in the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Keyframe {
    pub time: f64,
    pub sample: u64,
}

/// The first video track of the `moov` at the top level of `mp4`: its `trak` box.
fn video_trak(mp4: &[u8]) -> Option<&[u8]> {
    let moov = child(mp4, b"moov")?;
    boxes(moov).into_iter().find_map(|(kind, trak)| {
        let mdia = child(trak, b"mdia")?;
        (kind == *b"trak" && child(mdia, b"hdlr")?.get(8..12)? == b"vide").then_some(trak)
    })
}

/// The first video track's sample times, read from its tables: decode times (`stts`, as
/// runs), composition offsets (`ctts`), the edit list (`elst`) and the sync samples (`stss`).
struct Timing {
    /// The media time scale (`mdhd`).
    scale: f64,
    /// Seconds of empty edits before the presentation starts (movie time).
    start: f64,
    /// The media time shown first (the first real edit's `media_time`).
    shift: i64,
    /// (first sample, samples, delta, decode time of the first).
    decode_runs: Vec<(u64, u64, u64, u64)>,
    /// (first sample, samples, offset).
    offset_runs: Vec<(u64, u64, i64)>,
    samples: u64,
    /// The sync samples, 0-based and ascending (every sample when there is no `stss`), at
    /// most [`MAX_KEYFRAMES`].
    sync: Vec<u64>,
}

impl Timing {
    fn of(mp4: &[u8]) -> Option<Timing> {
        let moov = child(mp4, b"moov")?;
        let movie_scale = match child(moov, b"mvhd")?.first()? {
            0 => be32(child(moov, b"mvhd")?, 12)?,
            _ => be32(child(moov, b"mvhd")?, 20)?,
        };
        let trak = video_trak(mp4)?;
        let mdia = child(trak, b"mdia")?;
        let mdhd = child(mdia, b"mdhd")?;
        let scale = match mdhd.first()? {
            0 => be32(mdhd, 12)?,
            _ => be32(mdhd, 20)?,
        };
        if scale == 0 || movie_scale == 0 {
            return None;
        }
        let stbl = child(child(mdia, b"minf")?, b"stbl")?;
        let stts = child(stbl, b"stts")?;
        let mut decode_runs = Vec::new();
        let (mut first, mut now) = (0u64, 0u64);
        for e in 0..be32(stts, 4)? as usize {
            let (count, delta) = (be32(stts, 8 + e * 8)?, be32(stts, 12 + e * 8)?);
            decode_runs.push((first, u64::from(count), u64::from(delta), now));
            first += u64::from(count);
            now = now.saturating_add(u64::from(count).saturating_mul(u64::from(delta)));
        }
        let samples = first;
        // Composition offsets: signed in version 1, and written so in practice.
        let mut offset_runs = Vec::new();
        if let Some(ctts) = child(stbl, b"ctts") {
            let mut first = 0u64;
            for e in 0..be32(ctts, 4)? as usize {
                let (count, offset) = (be32(ctts, 8 + e * 8)?, signed32(ctts, 12 + e * 8)?);
                offset_runs.push((first, u64::from(count), offset));
                first += u64::from(count);
            }
        }
        // The edit list: empty edits delay the start (movie time); the first real edit says
        // which media time is shown first.
        let (mut delay, mut shift) = (0u64, 0i64);
        if let Some(elst) = child(trak, b"edts").and_then(|edts| child(edts, b"elst")) {
            let v1 = elst.first()? == &1;
            let size = if v1 { 20 } else { 12 };
            for e in 0..be32(elst, 4)? as usize {
                let at = 8 + e * size;
                let (duration, media_time) = if v1 {
                    (be64(elst, at)?, be64(elst, at + 8)? as i64)
                } else {
                    (u64::from(be32(elst, at)?), signed32(elst, at + 4)?)
                };
                if media_time == -1 {
                    delay = delay.saturating_add(duration);
                } else {
                    shift = media_time;
                    break;
                }
            }
        }
        // The sync samples (1-based in `stss`); without the table every sample is one.
        let sync: Vec<u64> = match child(stbl, b"stss") {
            Some(stss) => (0..be32(stss, 4)? as usize)
                .take(MAX_KEYFRAMES)
                .map(|e| Some(u64::from(be32(stss, 8 + e * 4)?)))
                .collect::<Option<Vec<u64>>>()?
                .into_iter()
                .filter(|&n| n >= 1 && n <= samples)
                .map(|n| n - 1)
                .collect(),
            None => (0..samples.min(MAX_KEYFRAMES as u64)).collect(),
        };
        Some(Timing {
            scale: f64::from(scale),
            start: delay as f64 / f64::from(movie_scale),
            shift,
            decode_runs,
            offset_runs,
            samples,
            sync,
        })
    }

    fn decode_time(&self, sample: u64) -> Option<u64> {
        let at = self
            .decode_runs
            .partition_point(|r| r.0 <= sample)
            .checked_sub(1)?;
        let (first, count, delta, start) = self.decode_runs[at];
        (sample < first + count)
            .then(|| start.saturating_add((sample - first).saturating_mul(delta)))
    }

    fn offset(&self, sample: u64) -> i64 {
        self.offset_runs
            .partition_point(|r| r.0 <= sample)
            .checked_sub(1)
            .map(|at| self.offset_runs[at])
            .filter(|(first, count, _)| sample < first + count)
            .map_or(0, |(_, _, offset)| offset)
    }

    /// When sample `n` is shown, in seconds.
    fn time(&self, sample: u64) -> Option<f64> {
        let pts = i64::try_from(self.decode_time(sample)?)
            .ok()?
            .saturating_add(self.offset(sample))
            .saturating_sub(self.shift);
        Some((self.start + pts as f64 / self.scale).max(0.0))
    }

    /// Whether frames are shown in another order than decoded (B-frames): composition
    /// offsets that differ.
    fn reorders(&self) -> bool {
        let mut offsets = self.offset_runs.iter().filter(|r| r.1 > 0).map(|r| r.2);
        let first = offsets.next();
        offsets.any(|o| Some(o) != first)
    }
}

/// The first video track's keyframes in presentation order ([`keyframes`]).
pub fn video_index(mp4: &[u8]) -> Option<Vec<Keyframe>> {
    let timing = Timing::of(mp4)?;
    let mut found: Vec<Keyframe> = timing
        .sync
        .iter()
        .map(|&s| {
            Some(Keyframe {
                time: timing.time(s)?,
                sample: s,
            })
        })
        .collect::<Option<Vec<Keyframe>>>()?;
    found.sort_by(|a, b| a.time.total_cmp(&b.time));
    found.dedup_by(|a, b| a.time == b.time);
    Some(found)
}

/// The number of samples (frames) of the first video track, from its `stsz`.
pub fn video_samples(mp4: &[u8]) -> Option<u64> {
    sample_count(child(video_trak(mp4)?, b"mdia")?)
}

/// A track's sample count, from the `stsz` of its `mdia`.
fn sample_count(mdia: &[u8]) -> Option<u64> {
    let stsz = child(child(child(mdia, b"minf")?, b"stbl")?, b"stsz")?;
    Some(u64::from(be32(stsz, 8)?))
}

/// Whether the first video track shows its frames in another order than it decodes them
/// (B-frames); `None` when its tables cannot be read.
pub fn reorders(mp4: &[u8]) -> Option<bool> {
    Some(Timing::of(mp4)?.reorders())
}

/// Most samples a [`copy_span`] looks at: an hour at 60 frames a second, and then some.
const MAX_SPAN_SAMPLES: u64 = 1_000_000;

/// The frames a stream copy of the first video track can give exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CopySpan {
    /// When its first frame, a keyframe, is shown (seconds).
    pub start: f64,
    /// Its frames, in decode order from that keyframe (`-frames:v`).
    pub frames: u64,
}

/// The frames of `[from, to)` (to the end without `to`) as a frame-accurate clip has them,
/// from the frame shown at `from` to the last shown before `to`, when a stream copy gives
/// exactly them: the first of them is a keyframe, and they are the samples that follow it in
/// decode order, no other sample among them (no frame before the clip or after it is decoded
/// in between: the groups of pictures are closed where the copy cuts). `None` when not, or
/// when the tables cannot be read.
pub fn copy_span(mp4: &[u8], from: f64, to: Option<f64>) -> Option<CopySpan> {
    /// Half a microsecond: the times asked for are whole microseconds.
    const EPSILON: f64 = 0.5e-6;
    let timing = Timing::of(mp4)?;
    if timing.samples > MAX_SPAN_SAMPLES {
        return None;
    }
    let times = (0..timing.samples)
        .map(|s| timing.time(s))
        .collect::<Option<Vec<f64>>>()?;
    // Each frame is shown until the next one in presentation order.
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by(|&a, &b| times[a].total_cmp(&times[b]));
    let mut until = vec![f64::INFINITY; times.len()];
    for pair in order.windows(2) {
        until[pair[0]] = times[pair[1]];
    }
    let shown = |s: usize| until[s] > from + EPSILON && to.is_none_or(|to| times[s] < to - EPSILON);
    let first = order.iter().copied().find(|&s| shown(s))?;
    timing.sync.binary_search(&(first as u64)).ok()?;
    let frames = (0..times.len()).filter(|&s| shown(s)).count();
    let contiguous = (first..first + frames).all(|s| s < times.len() && shown(s));
    contiguous.then(|| CopySpan {
        start: times[first],
        frames: frames as u64,
    })
}

/// Where sample `n` (0-based) of the first video track is in the file: its offset and size,
/// from `stsz` (sizes), `stsc` (samples per chunk, in runs) and `stco` or `co64` (chunk
/// offsets). Asked for the few keyframes a storyboard shows, not for every one: a table can
/// make one answer cost a walk over its runs.
pub fn sample_location(mp4: &[u8], n: u64) -> Option<(u64, u32)> {
    let mdia = child(video_trak(mp4)?, b"mdia")?;
    let stbl = child(child(mdia, b"minf")?, b"stbl")?;
    let stsz = child(stbl, b"stsz")?;
    let fixed = be32(stsz, 4)?;
    let size_of = |s: u64| -> Option<u32> {
        if fixed != 0 {
            return Some(fixed);
        }
        be32(stsz, 12 + usize::try_from(s).ok()?.checked_mul(4)?)
    };
    let (chunks, chunk_offset): (u64, Box<dyn Fn(u64) -> Option<u64>>) =
        if let Some(stco) = child(stbl, b"stco") {
            (
                u64::from(be32(stco, 4)?),
                Box::new(move |c| Some(u64::from(be32(stco, 8 + usize::try_from(c).ok()? * 4)?))),
            )
        } else {
            let co64 = child(stbl, b"co64")?;
            (
                u64::from(be32(co64, 4)?),
                Box::new(move |c| be64(co64, 8 + usize::try_from(c).ok()? * 8)),
            )
        };
    let stsc = child(stbl, b"stsc")?;
    let runs = be32(stsc, 4)? as usize;
    let mut base = 0u64;
    for r in 0..runs {
        let first = u64::from(be32(stsc, 8 + r * 12)?.checked_sub(1)?);
        let per_chunk = u64::from(be32(stsc, 12 + r * 12)?);
        let next = if r + 1 < runs {
            u64::from(be32(stsc, 8 + (r + 1) * 12)?.checked_sub(1)?)
        } else {
            chunks
        };
        let in_run = next.checked_sub(first)?.checked_mul(per_chunk)?;
        if n < base + in_run {
            let k = n - base;
            let (chunk, index) = (first + k / per_chunk, k % per_chunk);
            // A chunk of more samples than this is no table a muxer wrote.
            if index > 10_000 {
                return None;
            }
            let mut offset = chunk_offset(chunk)?;
            for s in (n - index)..n {
                offset = offset.checked_add(u64::from(size_of(s)?))?;
            }
            return Some((offset, size_of(n)?));
        }
        base += in_run;
    }
    None
}

/// One H.264 keyframe as a stream the raw `h264` demuxer reads: the track's parameter sets
/// (SPS, PPS) from its `avcC`, then the sample's NAL units, each behind a start code instead
/// of its length. `None` when either does not parse.
pub fn annex_b(avcc: &[u8], sample: &[u8]) -> Option<Vec<u8>> {
    const START: [u8; 4] = [0, 0, 0, 1];
    let length_size = usize::from(avcc.get(4)? & 3) + 1;
    let mut out = Vec::with_capacity(sample.len() + 256);
    let mut at = 5;
    for table in 0..2 {
        let mask = if table == 0 { 0x1f } else { 0xff };
        let count = avcc.get(at)? & mask;
        at += 1;
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes(avcc.get(at..at + 2)?.try_into().ok()?));
            out.extend_from_slice(&START);
            out.extend_from_slice(avcc.get(at + 2..at + 2 + len)?);
            at += 2 + len;
        }
    }
    let mut rest = sample;
    while !rest.is_empty() {
        let head = rest.get(..length_size)?;
        let len = head.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
        out.extend_from_slice(&START);
        out.extend_from_slice(rest.get(length_size..length_size + len)?);
        rest = &rest[length_size + len..];
    }
    Some(out)
}
