//! The source limits read from the probe before anything is decoded: frame size, frame rate
//! and stream count (`[sources] max_width`, `max_height`, `max_pixels`, `max_fps`,
//! `max_streams`). A refusal is permanent: the same source fails the same way on every try.

use crate::probe::Probe;
use hopster_common::settings::SourceSettings;
use hopster_common::worker::StageError;
use shared_proto::ErrorCode;

/// Refuses a source whose description exceeds `limits`.
pub fn check(probe: &Probe, limits: &SourceSettings) -> Result<(), StageError> {
    let streams = probe.streams.len();
    if streams as u64 > u64::from(limits.max_streams) {
        return Err(StageError::abort(
            ErrorCode::SourceStreams,
            format!(
                "the source has {streams} streams; at most {} are accepted",
                limits.max_streams
            ),
        ));
    }
    for (index, stream) in probe.streams.iter().enumerate() {
        if stream.codec_type != "video" {
            continue;
        }
        let (width, height) = (stream.width.unwrap_or(0), stream.height.unwrap_or(0));
        let pixels = u64::from(width) * u64::from(height);
        if width > limits.max_width || height > limits.max_height || pixels > limits.max_pixels {
            return Err(StageError::abort(
                ErrorCode::SourceDimensions,
                format!(
                    "video stream {index} is {width}×{height} ({pixels} pixels a frame); at most \
                     {}×{} and {} pixels are accepted",
                    limits.max_width, limits.max_height, limits.max_pixels
                ),
            ));
        }
        if let Some(fps) = stream.fps().filter(|&fps| fps > f64::from(limits.max_fps)) {
            return Err(StageError::abort(
                ErrorCode::SourceDimensions,
                format!(
                    "video stream {index} runs at {fps:.2} frames a second; at most {} are accepted",
                    limits.max_fps
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Format, Stream};

    fn video(width: u32, height: u32, rate: &str) -> Stream {
        Stream {
            codec_type: "video".into(),
            width: Some(width),
            height: Some(height),
            avg_frame_rate: Some(rate.into()),
            ..Stream::default()
        }
    }

    fn probe(streams: Vec<Stream>) -> Probe {
        Probe {
            streams,
            format: Format {
                format_name: "mov,mp4,m4a,3gp,3g2,mj2".into(),
                duration: Some("10.0".into()),
            },
            packets: Vec::new(),
        }
    }

    fn code(result: Result<(), StageError>) -> Option<ErrorCode> {
        match result {
            Ok(()) => None,
            Err(StageError::Abort { code, .. }) => Some(code),
            Err(other) => panic!("a limit must abort, not {other:?}"),
        }
    }

    #[test]
    fn the_defaults_admit_4k_and_8k_uhd_either_way_and_refuse_larger_frames() {
        let limits = SourceSettings::default();
        for (w, h) in [(3840, 2160), (2160, 3840), (7680, 4320), (4320, 7680)] {
            assert_eq!(
                code(check(&probe(vec![video(w, h, "60/1")]), &limits)),
                None
            );
        }
        for (w, h) in [(8192, 8192), (7681, 4320), (7680, 4321), (16, 65535)] {
            assert_eq!(
                code(check(&probe(vec![video(w, h, "25/1")]), &limits)),
                Some(ErrorCode::SourceDimensions),
                "{w}×{h}"
            );
        }
    }

    #[test]
    fn frame_rates_and_stream_counts_over_the_limits_are_refused() {
        let limits = SourceSettings::default();
        let fast = probe(vec![video(320, 240, "1000/1")]);
        assert_eq!(
            code(check(&fast, &limits)),
            Some(ErrorCode::SourceDimensions)
        );
        let mut many = vec![video(320, 240, "25/1")];
        many.extend((0..40).map(|_| Stream {
            codec_type: "audio".into(),
            ..Stream::default()
        }));
        assert_eq!(
            code(check(&probe(many), &limits)),
            Some(ErrorCode::SourceStreams)
        );
        // Audio streams have no frame size to check; an unknown rate is not refused.
        let audio_only = probe(vec![Stream {
            codec_type: "audio".into(),
            ..Stream::default()
        }]);
        assert_eq!(code(check(&audio_only, &limits)), None);
        assert_eq!(
            code(check(&probe(vec![video(320, 240, "0/0")]), &limits)),
            None
        );
    }
}
