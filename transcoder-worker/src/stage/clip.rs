//! The clip in source time: what the probe allows, where it starts and ends, where its poster is.

use crate::probe::Probe;
use hopster_common::settings::SourceSettings;
use hopster_common::worker::StageError;
use shared_proto::{ErrorCode, Timecode, TranscodeJob};

/// Where the poster is taken: `poster_at`, or one second in (the first frame of a clip
/// shorter than two seconds). An explicit time past the clip is refused.
pub(super) fn poster_time(
    spec: &shared_proto::JobSpec,
    length: Timecode,
) -> Result<Timecode, StageError> {
    match spec.poster_at {
        Some(at) if at >= length => Err(StageError::abort(
            ErrorCode::ClipOutOfRange,
            format!("`poster_at` {at} is at or past the end of the clip ({length})"),
        )),
        Some(at) => Ok(at),
        None if length.as_micros() >= 2_000_000 => Ok(Timecode::from_micros(1_000_000)),
        None => Ok(Timecode::ZERO),
    }
}

/// An HLS job with its times made relative to the staged segments, which start at
/// `hls.offset` in the stream (the first fetched segment starts at or before `start`).
pub(super) fn relative_to_fetched(mut job: TranscodeJob) -> TranscodeJob {
    if let Some(offset) = job.hls.as_ref().map(|h| h.offset) {
        let relative = |t: Timecode| t.checked_sub(offset).unwrap_or(Timecode::ZERO);
        job.spec.start = job.spec.start.map(relative);
        job.spec.stop = job.spec.stop.map(relative);
        for clip in job.spec.clips.iter_mut().flatten() {
            clip.start = relative(clip.start);
            clip.stop = relative(clip.stop);
        }
    }
    job
}

/// The clip in source time.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clip {
    pub(super) start: Timecode,
    pub(super) length: Timecode,
}

/// Checks what the probe found of the source, a job's or an inspection's, against the
/// limits: an accepted container, the frame size, rate and stream count, a duration within
/// `sources.max_duration_secs`, which it answers.
pub(super) fn check_source(probe: &Probe, limits: &SourceSettings) -> Result<Timecode, StageError> {
    if !probe.container_allowed() {
        return Err(StageError::abort(
            ErrorCode::NotAVideo,
            format!(
                "the source's container `{}` is not accepted",
                probe.format.format_name
            ),
        ));
    }
    crate::limits::check(probe, limits)?;
    let duration = probe
        .duration()
        .ok_or_else(|| StageError::abort(ErrorCode::NotAVideo, "the source has no duration"))?;
    if duration.as_secs_f64() > limits.max_duration_secs as f64 {
        return Err(StageError::abort(
            ErrorCode::SourceTooLong,
            format!(
                "the source is {duration} long; at most {} s are accepted",
                limits.max_duration_secs
            ),
        ));
    }
    Ok(duration)
}

/// Checks the source and the clip against what the probe found.
pub(super) fn check_clip(
    probe: &Probe,
    job: &TranscodeJob,
    limits: &SourceSettings,
) -> Result<Clip, StageError> {
    let duration = check_source(probe, limits)?;
    if job.spec.profile.has_video() && probe.video().is_none() {
        return Err(StageError::abort(
            ErrorCode::NotAVideo,
            "the source has no video stream",
        ));
    }
    if !job.spec.profile.has_video() && probe.audio().is_none() {
        return Err(StageError::abort(
            ErrorCode::NoAudio,
            format!(
                "the `{}` profile keeps only the audio, and the source has no audio stream",
                job.spec.profile.as_str()
            ),
        ));
    }
    let (start, length) = match &job.spec.clips {
        Some(clips) => {
            for (i, clip) in clips.iter().enumerate() {
                if clip.stop > duration {
                    return Err(StageError::abort(
                        ErrorCode::ClipOutOfRange,
                        format!(
                            "clips[{i}] ends at {}, past the end of the source ({duration})",
                            clip.stop
                        ),
                    ));
                }
            }
            let total = clips.iter().map(|c| c.length().as_micros()).sum();
            let first = clips.first().map_or(Timecode::ZERO, |c| c.start);
            (first, Timecode::from_micros(total))
        }
        None => one_clip(&job.spec, duration)?,
    };
    let (limit, what) = if job.spec.profile.is_animation() {
        (limits.max_animation_secs, "an animation")
    } else {
        (limits.max_clip_secs, "a clip")
    };
    if length.as_secs_f64() > limit as f64 {
        return Err(StageError::abort(
            ErrorCode::ClipTooLong,
            format!("the clip would be {length} long; {what} may be at most {limit} s"),
        ));
    }
    Ok(Clip { start, length })
}

/// `start` and the length of the clip `start`–`stop` inside a source this long.
fn one_clip(
    spec: &shared_proto::JobSpec,
    duration: Timecode,
) -> Result<(Timecode, Timecode), StageError> {
    let start = spec.start.unwrap_or(Timecode::ZERO);
    if start >= duration {
        return Err(StageError::abort(
            ErrorCode::ClipOutOfRange,
            format!("start {start} is at or past the end of the source ({duration})"),
        ));
    }
    let stop = spec.stop.unwrap_or(duration);
    if stop > duration {
        return Err(StageError::abort(
            ErrorCode::ClipOutOfRange,
            format!("stop {stop} is past the end of the source ({duration})"),
        ));
    }
    let length = stop
        .checked_sub(start)
        .filter(|l| l.as_micros() > 0)
        .ok_or_else(|| {
            StageError::abort(
                ErrorCode::ClipOutOfRange,
                format!("the clip {start}–{stop} is empty"),
            )
        })?;
    Ok((start, length))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_proto::{JobSpec, MESSAGE_VERSION};

    fn job(start: &str, stop: Option<&str>) -> TranscodeJob {
        let tc = |s: &str| Timecode::parse(s).unwrap();
        let spec = JobSpec::new("http://h/v", None, Some(tc(start)), stop.map(tc)).unwrap();
        TranscodeJob {
            version: MESSAGE_VERSION,
            job_id: spec.job_id(),
            spec,
            source_key: "k".into(),
            source_url: None,
            hls: None,
            attempt: 1,
        }
    }

    #[test]
    fn an_hls_clip_is_cut_relative_to_its_first_fetched_segment() {
        let mut hls = job("00:01:02.5", Some("00:01:05.5"));
        hls.hls = Some(shared_proto::HlsSource {
            offset: Timecode::parse("00:01:00").unwrap(),
            segments: 2,
            listed: 150,
        });
        let relative = relative_to_fetched(hls);
        assert_eq!(
            relative.spec.start,
            Some(Timecode::parse("00:00:02.5").unwrap())
        );
        assert_eq!(
            relative.spec.stop,
            Some(Timecode::parse("00:00:05.5").unwrap())
        );
        let plain = job("00:01:02.5", None);
        assert_eq!(relative_to_fetched(plain.clone()), plain);
    }

    fn check_clip_default(job: &TranscodeJob) -> Result<Clip, StageError> {
        check_clip(&probe(), job, &SourceSettings::default())
    }

    #[test]
    fn sources_and_clips_over_the_limits_are_refused() {
        let tight = SourceSettings {
            max_duration_secs: 3,
            ..SourceSettings::default()
        };
        let err = check_clip(&probe(), &job("00:00:01", Some("00:00:02")), &tight)
            .err()
            .unwrap();
        assert!(
            matches!(
                err,
                StageError::Abort {
                    code: ErrorCode::SourceTooLong,
                    ..
                }
            ),
            "{err}"
        );
        let tight = SourceSettings {
            max_clip_secs: 1,
            ..SourceSettings::default()
        };
        let err = check_clip(&probe(), &job("00:00:01", None), &tight)
            .err()
            .unwrap();
        assert!(
            matches!(
                err,
                StageError::Abort {
                    code: ErrorCode::ClipTooLong,
                    ..
                }
            ),
            "{err}"
        );
        // An animation has a limit of its own; the same clip as mp4 is within the other.
        let tight = SourceSettings {
            max_animation_secs: 2,
            ..SourceSettings::default()
        };
        let mut gif = job("00:00:00.5", None);
        gif.spec.profile = shared_proto::Profile::Gif;
        match check_clip(&probe(), &gif, &tight) {
            Err(StageError::Abort { code, message }) => {
                assert_eq!(code, ErrorCode::ClipTooLong);
                assert!(
                    message.contains("an animation may be at most 2 s"),
                    "{message}"
                );
            }
            other => panic!("{:?}", other.map(|c| c.length)),
        }
        assert!(check_clip(&probe(), &job("00:00:00.5", None), &tight).is_ok());
    }

    fn probe() -> Probe {
        Probe::parse(include_str!("../../tests/fixtures/probe-mp4.json")).unwrap()
    }

    #[test]
    fn several_clips_are_as_long_as_their_sum_and_each_inside_the_source() {
        let tc = |s: &str| Timecode::parse(s).unwrap();
        let mut joined = job("00:00:00", None);
        joined.spec.start = None;
        joined.spec.clips = Some(vec![
            shared_proto::ClipRange {
                start: tc("00:00:02.5"),
                stop: tc("00:00:04"),
            },
            shared_proto::ClipRange {
                start: tc("00:00:00.5"),
                stop: tc("00:00:01"),
            },
        ]);
        let clip = check_clip_default(&joined).unwrap();
        assert_eq!(
            (clip.start, clip.length),
            (tc("00:00:02.5"), tc("00:00:02"))
        );
        let tight = SourceSettings {
            max_clip_secs: 1,
            ..SourceSettings::default()
        };
        assert!(check_clip(&probe(), &joined, &tight).is_err());
        if let Some(clips) = joined.spec.clips.as_mut() {
            clips[1].stop = tc("00:00:04.5");
        }
        match check_clip_default(&joined) {
            Err(StageError::Abort { code, message }) => {
                assert_eq!(code, ErrorCode::ClipOutOfRange);
                assert!(message.starts_with("clips[1]"), "{message}");
            }
            other => panic!("{:?}", other.map(|c| c.length)),
        }
    }

    #[test]
    fn a_clip_inside_the_source_is_accepted_with_its_exact_length() {
        let clip = check_clip_default(&job("00:00:01", Some("00:00:03.5"))).unwrap();
        assert_eq!(clip.length, Timecode::parse("00:00:02.5").unwrap());
        let open = check_clip_default(&job("00:00:01", None)).unwrap();
        assert_eq!(open.length, Timecode::parse("00:00:03").unwrap());
    }

    #[test]
    fn a_clip_past_the_end_is_refused_with_clip_out_of_range() {
        for (start, stop) in [
            ("00:00:04", None),
            ("00:00:10", Some("00:00:12")),
            ("00:00:02", Some("00:00:05")),
        ] {
            match check_clip_default(&job(start, stop)) {
                Err(StageError::Abort { code, message }) => {
                    assert_eq!(code, ErrorCode::ClipOutOfRange);
                    assert!(message.contains("00:00:04"), "{message}");
                }
                other => panic!("{start}: {:?}", other.map(|c| c.length)),
            }
        }
    }
}
