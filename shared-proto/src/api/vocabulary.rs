//! The lists a client shows people, with their words: output profiles, job states and error
//! codes. The gateway serves them (`GET /v1/vocabulary`) and the web page takes them from
//! there, so no list is copied by hand into a client.

use crate::{Accuracy, ErrorCode, JobState, Profile};
use serde::{Deserialize, Serialize};

/// `GET /v1/vocabulary`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vocabulary {
    pub profiles: Vec<ProfileInfo>,
    pub accuracies: Vec<Accuracy>,
    pub states: Vec<StateInfo>,
    pub errors: Vec<ErrorWords>,
}

/// An output profile.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileInfo {
    pub name: Profile,
    /// Whether the result has video (and so a poster, and takes `max_height`).
    pub has_video: bool,
    /// Whether the result has sound (and so takes `audio.normalize`).
    pub has_audio: bool,
    /// Whether the result is an animation (and so takes `fps`).
    pub animation: bool,
    pub mime: String,
    pub words: String,
}

/// A job state.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateInfo {
    pub name: JobState,
    /// Completed, failed and cancelled jobs change no more.
    pub terminal: bool,
    pub words: String,
}

/// An error code in words (clients show the code too).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorWords {
    pub code: ErrorCode,
    pub words: String,
}

impl Vocabulary {
    pub fn new() -> Self {
        Vocabulary {
            profiles: Profile::ALL
                .into_iter()
                .map(|p| ProfileInfo {
                    name: p,
                    has_video: p.has_video(),
                    has_audio: p.has_audio(),
                    animation: p.is_animation(),
                    mime: p.mime().to_owned(),
                    words: profile_words(p).to_owned(),
                })
                .collect(),
            accuracies: Accuracy::ALL.to_vec(),
            states: JobState::ALL
                .into_iter()
                .map(|s| StateInfo {
                    name: s,
                    terminal: s.is_terminal(),
                    words: state_words(s).to_owned(),
                })
                .collect(),
            errors: ErrorCode::ALL
                .into_iter()
                .map(|code| ErrorWords {
                    code,
                    words: error_words(code).to_owned(),
                })
                .collect(),
        }
    }
}

impl Default for Vocabulary {
    fn default() -> Self {
        Vocabulary::new()
    }
}

fn profile_words(profile: Profile) -> &'static str {
    match profile {
        Profile::Mp4 => "MP4 video (H.264 and AAC)",
        Profile::Webm => "WebM video (VP9 and Opus)",
        Profile::Audio => "Audio only (AAC in M4A)",
        Profile::Mp3 => "Audio only (MP3)",
        Profile::Hls => "HLS stream (playlist and segments)",
        Profile::Gif => "Animated GIF (no sound)",
        Profile::Webp => "Animated WebP (no sound)",
    }
}

fn state_words(state: JobState) -> &'static str {
    match state {
        JobState::Queued => "Queued",
        JobState::Downloading => "Downloading",
        JobState::Transcoding => "Transcoding",
        JobState::Uploading => "Uploading",
        JobState::Completed => "Completed",
        JobState::Failed => "Failed",
        JobState::Cancelled => "Cancelled",
    }
}

/// What an error code means, for people.
pub fn error_words(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidJson => "The request was not valid JSON.",
        ErrorCode::InvalidRequest => "The request was not valid.",
        ErrorCode::MissingSource => "Give a video URL or a catalogue id.",
        ErrorCode::InvalidUrl => {
            "That is not a usable video URL (it must start with http:// or https://)."
        }
        ErrorCode::InvalidVideoId => "That is not a valid catalogue id.",
        ErrorCode::InvalidTimecode => {
            "That is not a time: use HH:MM:SS, like 00:01:30 or 00:01:30.5."
        }
        ErrorCode::InvalidClipRange => "Start must be before stop.",
        ErrorCode::BodyTooLarge => "The request was too large.",
        ErrorCode::UnknownRoute => "The server does not know this request.",
        ErrorCode::MethodNotAllowed => "The server does not take this kind of request here.",
        ErrorCode::Unauthorized => "An API key is needed, or the key is not valid.",
        ErrorCode::SourceForbidden => "That address is not allowed as a source.",
        ErrorCode::SourceTooLong => "The source video is too long.",
        ErrorCode::ClipTooLong => "The clip is too long.",
        ErrorCode::UnknownJob => "There is no such job.",
        ErrorCode::UnknownSource => "There is no such source inspection.",
        ErrorCode::NotReady => "The clip is not ready yet.",
        ErrorCode::JobFailed => "The job failed.",
        ErrorCode::JobFinished => "The job has already ended, so it cannot be cancelled.",
        ErrorCode::SourceNotFound => "The source video was not found.",
        ErrorCode::SourceUnreachable => "The source could not be reached.",
        ErrorCode::SourceTooLarge => "The source file is too large.",
        ErrorCode::NotAVideo => "The source is not a video.",
        ErrorCode::ClipOutOfRange => {
            "The clip is outside the video: start or stop is past its end."
        }
        ErrorCode::NoAudio => "The source has no sound, so an audio-only clip cannot be made.",
        ErrorCode::NoPoster => "This job has no poster (audio-only profiles have none).",
        ErrorCode::TranscodeFailed => "The video could not be cut or encoded.",
        ErrorCode::SourceDimensions => {
            "The source video's frames are too large (or too many per second)."
        }
        ErrorCode::SourceStreams => "The source file has too many streams.",
        ErrorCode::ResourceLimit => {
            "The source needed more memory or processing time than a job may use."
        }
        ErrorCode::LiveSource => {
            "The source is a live stream; clips are cut from finished streams only."
        }
        ErrorCode::RateLimited => {
            "Too many requests from you just now; wait a moment and try again."
        }
        ErrorCode::StoreUnavailable => "Storage is unavailable; try again shortly.",
        ErrorCode::BrokerUnavailable => "The job queue is unavailable; try again shortly.",
        ErrorCode::Internal => "Something went wrong on the server.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_are_complete_and_named_as_on_the_wire() {
        // Exhaustive matches: a new variant fails to compile here until it is listed.
        for accuracy in Accuracy::ALL {
            assert_eq!(serde_json::to_value(accuracy).unwrap(), accuracy.as_str());
            assert_eq!(Accuracy::parse(accuracy.as_str()), Some(accuracy));
        }
        let listed = |a: Accuracy| match a {
            Accuracy::Frame | Accuracy::Keyframe | Accuracy::Smart => Accuracy::ALL.contains(&a),
        };
        assert!(Accuracy::ALL.into_iter().all(listed));
        let listed = |s: JobState| match s {
            JobState::Queued
            | JobState::Downloading
            | JobState::Transcoding
            | JobState::Uploading
            | JobState::Completed
            | JobState::Failed
            | JobState::Cancelled => JobState::ALL.contains(&s),
        };
        assert!(JobState::ALL.into_iter().all(listed));
        let mut sorted = JobState::ALL;
        sorted.sort();
        assert_eq!(sorted, JobState::ALL, "pipeline order, no duplicates");
        for state in JobState::ALL {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
    }

    #[test]
    fn every_code_state_and_profile_is_listed_once_with_words() {
        let v = Vocabulary::new();
        assert_eq!(v.errors.len(), ErrorCode::ALL.len());
        assert_eq!(v.states.len(), JobState::ALL.len());
        assert_eq!(v.profiles.len(), Profile::ALL.len());
        let mut words: Vec<&str> = v.errors.iter().map(|e| e.words.as_str()).collect();
        words.sort();
        words.dedup();
        assert_eq!(
            words.len(),
            ErrorCode::ALL.len(),
            "two codes share their words"
        );
    }
}
