//! The values of the command line: each parsed into its shared-proto type by shared-proto's
//! own parser, so what is refused here is what the gateway would refuse.

use clap::builder::{PossibleValuesParser, RangedI64ValueParser, TypedValueParser};
use shared_proto::spec::{normalize_url, validate_video_id};
use shared_proto::{
    Accuracy, AudioOptions, ClipRange, CreateJob, JobId, JobState, Profile, Timecode,
};

pub(super) fn parse_server(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("`{text}` is not an http(s) URL"));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

pub(super) fn parse_url(text: &str) -> Result<String, shared_proto::SpecError> {
    normalize_url(text)
}

pub(super) fn parse_video_id(text: &str) -> Result<String, shared_proto::SpecError> {
    validate_video_id(text).map(|()| text.to_owned())
}

pub(super) fn parse_timecode(
    text: &str,
) -> Result<Timecode, shared_proto::timecode::TimecodeError> {
    Timecode::parse(text)
}

/// `--clip START-STOP`: one clip of several.
pub(super) fn parse_clip_range(text: &str) -> Result<ClipRange, String> {
    let (start, stop) = text
        .split_once('-')
        .ok_or_else(|| format!("`{text}` is not START-STOP, like 00:00:10-00:00:12.5"))?;
    let time = |t: &str| Timecode::parse(t.trim()).map_err(|e| format!("`{t}`: {e}"));
    Ok(ClipRange {
        start: time(start)?,
        stop: time(stop)?,
    })
}

/// `--max-height`, in the range the gateway accepts.
pub(super) fn max_height_parser() -> RangedI64ValueParser<u32> {
    let heights = CreateJob::MAX_HEIGHT;
    clap::value_parser!(u32).range(i64::from(*heights.start())..=i64::from(*heights.end()))
}

/// `--fps`, in the range the gateway accepts.
pub(super) fn fps_parser() -> RangedI64ValueParser<u32> {
    let rates = CreateJob::FPS;
    clap::value_parser!(u32).range(i64::from(*rates.start())..=i64::from(*rates.end()))
}

/// `--normalize-audio`'s target, in the range the gateway accepts.
pub(super) fn lufs_parser() -> RangedI64ValueParser<i32> {
    let targets = AudioOptions::TARGETS;
    clap::value_parser!(i32).range(i64::from(*targets.start())..=i64::from(*targets.end()))
}

pub(super) fn parse_callback_url(text: &str) -> Result<String, String> {
    normalize_url(text)
        .map_err(|_| format!("`{text}` is not an absolute http(s) URL without credentials"))
}

/// The profiles, from shared-proto's own list.
pub(super) fn profile_parser() -> impl TypedValueParser<Value = Profile> {
    PossibleValuesParser::new(Profile::ALL.map(Profile::as_str))
        .try_map(|text| Profile::parse(&text).ok_or("not a profile"))
}

/// The accuracy modes, from shared-proto's own list.
pub(super) fn accuracy_parser() -> impl TypedValueParser<Value = Accuracy> {
    PossibleValuesParser::new(Accuracy::ALL.map(Accuracy::as_str))
        .try_map(|text| Accuracy::parse(&text).ok_or("not an accuracy"))
}

/// The states, from shared-proto's own list, in pipeline order.
pub(super) fn state_parser() -> impl TypedValueParser<Value = JobState> {
    PossibleValuesParser::new(JobState::ALL.map(JobState::as_str)).try_map(|text| {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or("not a state")
    })
}

pub(super) fn parse_job_id(text: &str) -> Result<JobId, String> {
    JobId::parse(text).ok_or_else(|| format!("`{text}` is not a job id (32 lower-case hex digits)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailing_slash_on_the_server_is_dropped_and_other_schemes_are_refused() {
        assert_eq!(
            parse_server("http://h:5000/").unwrap(),
            "http://h:5000".to_owned()
        );
        assert!(parse_server("ftp://h").is_err());
        assert!(parse_server("localhost:5000").is_err());
    }
}
