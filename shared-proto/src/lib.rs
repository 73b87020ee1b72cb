//! The contract between Hopster's services.
//!
//! Everything two services must agree on lives here and nowhere else: the job spec and its
//! deterministic id, timecodes, the seed's output names, the broker messages, the status model,
//! queue and exchange names, the store's key layout and the stable error codes. No I/O.

pub mod api;
pub mod error;
pub mod keys;
pub mod messages;
pub mod naming;
pub mod net;
pub mod spec;
pub mod status;
pub mod timecode;
pub mod topology;

pub use api::{CreateJob, ErrorBody, JobList, JobView};
pub use error::ErrorCode;
pub use messages::{
    DownloadJob, HlsSource, InspectJob, JobMessage, NotifyJob, TranscodeJob, MESSAGE_VERSION,
};
pub use spec::{Accuracy, AudioOptions, ClipRange, JobId, JobSpec, Profile, SpecError};
pub use status::{JobFailure, JobResult, JobState, JobStatus, Method, NotifyAttempt, Timeline};
pub use timecode::Timecode;
pub use topology::Topology;
