//! The HTTP API's shapes, defined once: the gateway reads its request bodies into them and
//! answers with them, the CLI writes and reads them, the fuzz targets parse with them, and the
//! OpenAPI document is generated from them (feature `openapi`), constraints included.
//!
//! Request bodies refuse unknown fields (`deny_unknown_fields`). Response bodies do not, so a
//! client keeps working when a later gateway adds a field.

mod body;
mod jobs;
mod seed;
mod sources;
mod vocabulary;

pub use body::{parse_body, Body, BodyError, RejectedUrl};
pub use jobs::{CreateJob, ErrorBody, ErrorDetail, Health, JobList, JobView, Links, Readiness};
pub use seed::{Schedule, SeedErrorBody, SeedErrorDetail, SeedProgress, VideoFile, Welcome};
pub use sources::{
    source_id, CreateSource, Inspection, SourceLinks, SourceState, SourceStatus, SourceView,
    Storyboard, StreamInfo,
};
pub use vocabulary::{ErrorWords, ProfileInfo, StateInfo, Vocabulary};

#[cfg(feature = "openapi")]
pub use jobs::CreateJobSchema;
#[cfg(feature = "openapi")]
pub use sources::CreateSourceSchema;
