//! A description of an animated WebP this worker wrote, read from its RIFF chunks: ffprobe
//! (ffmpeg 5.1) finds neither the size nor the length of an animation.

use crate::probe::{Format, Probe, Stream};

/// A clip's WebP is at most `sources.max_animation_secs` of frames, but its file is read
/// whole: refuse anything larger than this.
const MAX_FILE: u64 = 512 * 1024 * 1024;

fn le24(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at + 3)?;
    Some(u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16)
}

/// The chunks of a RIFF WebP: (fourcc, body).
fn chunks(file: &[u8]) -> Option<Vec<([u8; 4], &[u8])>> {
    if file.get(0..4)? != b"RIFF" || file.get(8..12)? != b"WEBP" {
        return None;
    }
    let mut rest = file.get(12..)?;
    let mut out = Vec::new();
    while rest.len() >= 8 {
        let kind: [u8; 4] = rest[0..4].try_into().ok()?;
        let size = u32::from_le_bytes(rest[4..8].try_into().ok()?) as usize;
        let body = rest.get(8..8 + size)?;
        out.push((kind, body));
        // Chunks are padded to an even size.
        rest = rest.get((8 + size + size % 2).min(rest.len())..)?;
    }
    Some(out)
}

/// The canvas size, the frame count and the total length in milliseconds of an animation.
pub fn animation(file: &[u8]) -> Option<(u32, u32, usize, u64)> {
    let chunks = chunks(file)?;
    let vp8x = chunks.iter().find(|(k, _)| k == b"VP8X")?.1;
    let width = le24(vp8x, 4)? + 1;
    let height = le24(vp8x, 7)? + 1;
    let frames: Vec<u64> = chunks
        .iter()
        .filter(|(k, _)| k == b"ANMF")
        .map(|(_, body)| le24(body, 12).map(u64::from))
        .collect::<Option<_>>()?;
    (!frames.is_empty()).then(|| (width, height, frames.len(), frames.iter().sum()))
}

/// Describes the animated WebP at `path`, or `None` when it is not one.
pub async fn describe_file(path: &std::path::Path) -> Option<Probe> {
    let size = tokio::fs::metadata(path).await.ok()?.len();
    if size > MAX_FILE {
        return None;
    }
    let file = tokio::fs::read(path).await.ok()?;
    let (width, height, _, millis) = animation(&file)?;
    Some(Probe {
        streams: vec![Stream {
            codec_type: "video".into(),
            codec_name: Some("webp".into()),
            width: Some(width),
            height: Some(height),
            ..Stream::default()
        }],
        format: Format {
            format_name: "webp".into(),
            duration: Some(format!("{:.3}", millis as f64 / 1000.0)),
        },
        packets: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A RIFF WebP of the given chunks.
    fn riff(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut body = b"WEBP".to_vec();
        for (kind, data) in chunks {
            body.extend_from_slice(*kind);
            body.extend_from_slice(&(data.len() as u32).to_le_bytes());
            body.extend_from_slice(data);
            if data.len() % 2 == 1 {
                body.push(0);
            }
        }
        let mut file = b"RIFF".to_vec();
        file.extend_from_slice(&(body.len() as u32).to_le_bytes());
        file.extend(body);
        file
    }

    fn anmf(duration_ms: u32) -> Vec<u8> {
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&duration_ms.to_le_bytes()[..3]);
        frame.push(0);
        frame.extend_from_slice(b"VP8 \x01\x00\x00\x00\x00");
        frame
    }

    #[test]
    fn an_animation_is_its_canvas_frames_and_length() {
        // Canvas 240×180: stored as width-1 and height-1, 24 bits each.
        let vp8x = vec![0x12, 0, 0, 0, 239, 0, 0, 179, 0, 0];
        let file = riff(&[
            (b"VP8X", vp8x),
            (b"ANIM", vec![0; 6]),
            (b"ANMF", anmf(83)),
            (b"ANMF", anmf(84)),
            (b"ANMF", anmf(83)),
        ]);
        assert_eq!(animation(&file), Some((240, 180, 3, 250)));
    }

    #[test]
    fn anything_else_is_not_described() {
        assert_eq!(animation(b""), None);
        assert_eq!(animation(b"RIFF\0\0\0\0WAVE"), None);
        // A still picture has no frames; a cut-off chunk is no chunk.
        let still = riff(&[(b"VP8X", vec![0; 10]), (b"VP8 ", vec![0; 10])]);
        assert_eq!(animation(&still), None);
        let mut cut = riff(&[(b"VP8X", vec![0; 10]), (b"ANMF", anmf(83))]);
        cut.truncate(cut.len() - 4);
        assert_eq!(animation(&cut), None);
    }
}
