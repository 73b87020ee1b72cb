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
    Some(Stream {
        codec_type: codec_type.into(),
        codec_name: Some(codec.into()),
        width,
        height,
        ..Stream::default()
    })
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
        .map(|(_, t)| track(t))
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
