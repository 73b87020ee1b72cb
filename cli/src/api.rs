//! The v1 API's shapes as this client uses them: the contract's own (`shared_proto::api`).

pub use shared_proto::{CreateJob, ErrorBody, JobList, JobView as Job};
