//! Broker messages. Each carries a version so a worker can refuse what it does not understand.

use crate::{JobId, JobSpec};
use serde::{Deserialize, Serialize};

/// The message format this build writes and reads.
pub const MESSAGE_VERSION: u32 = 1;

/// Stage one: stage the source of `spec.url` in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadJob {
    pub version: u32,
    pub job_id: JobId,
    pub spec: JobSpec,
    /// 1 for the first try; incremented on every transient-failure retry.
    pub attempt: u32,
}

/// Stage two: cut and transcode the staged source at `source_key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscodeJob {
    pub version: u32,
    pub job_id: JobId,
    pub spec: JobSpec,
    /// Where the staged source is (or will be cached).
    pub source_key: String,
    /// Set when the source answers Range requests and only part of it is needed: the
    /// transcoder reads it through its guarded range proxy instead of a staged copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// Set when the source is an HLS playlist: the staged source is the concatenation of the
    /// segments the clip overlaps, which starts `offset` into the stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hls: Option<HlsSource>,
    pub attempt: u32,
}

/// Inspect the source at `url`: its streams, keyframes and storyboard. `job_id` is the
/// inspection's id ([`crate::api::source_id`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InspectJob {
    pub version: u32,
    pub job_id: JobId,
    pub url: String,
    pub attempt: u32,
}

/// What the downloader fetched of an HLS source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HlsSource {
    /// Where the first fetched segment starts in the stream (the sum of the `EXTINF`s
    /// before it): the clip's times are relative to the stream, the staged file's to this.
    pub offset: crate::Timecode,
    /// Segments fetched (those the clip overlaps).
    pub segments: u32,
    /// Segments the playlist lists.
    pub listed: u32,
}

/// Deliver the job's callback (its status, signed) to `spec.callback_url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyJob {
    pub version: u32,
    pub job_id: JobId,
    pub attempt: u32,
    /// When the first attempt was queued (ms since the Unix epoch): retries stop a day later.
    pub first_queued_ms: u64,
}

/// What the worker loop needs of any message: whose job it is and which try this is.
pub trait JobMessage: Serialize + for<'de> Deserialize<'de> + Send + Sync + 'static {
    fn version(&self) -> u32;
    fn job_id(&self) -> &JobId;
    fn attempt(&self) -> u32;
    fn set_attempt(&mut self, attempt: u32);
    /// When the message's first try was queued (ms since the Unix epoch), for a stage whose
    /// retries end at an age rather than a count.
    fn first_queued_ms(&self) -> Option<u64> {
        None
    }
}

macro_rules! job_message {
    ($ty:ty) => {
        job_message!($ty {});
    };
    ($ty:ty { $($extra:item)* }) => {
        impl JobMessage for $ty {
            $($extra)*
            fn version(&self) -> u32 {
                self.version
            }
            fn job_id(&self) -> &JobId {
                &self.job_id
            }
            fn attempt(&self) -> u32 {
                self.attempt
            }
            fn set_attempt(&mut self, attempt: u32) {
                self.attempt = attempt;
            }
        }
    };
}
job_message!(DownloadJob);
job_message!(TranscodeJob);
job_message!(InspectJob);
job_message!(NotifyJob {
    fn first_queued_ms(&self) -> Option<u64> {
        Some(self.first_queued_ms)
    }
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_reject_unknown_fields() {
        let spec = JobSpec::new("http://h/v.mp4", None, None, None).unwrap();
        let msg = DownloadJob {
            version: MESSAGE_VERSION,
            job_id: spec.job_id(),
            spec,
            attempt: 1,
        };
        let json = serde_json::to_vec(&msg).unwrap();
        assert_eq!(serde_json::from_slice::<DownloadJob>(&json).unwrap(), msg);
        let mut value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        value["surprise"] = 1.into();
        assert!(serde_json::from_value::<DownloadJob>(value).is_err());
        assert!(serde_json::from_slice::<DownloadJob>(b"{\"job_id\":\"../x\"}").is_err());
    }
}
