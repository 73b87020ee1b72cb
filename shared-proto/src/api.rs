//! The v1 API's response shapes, defined once: the gateway answers with them, the CLI and the
//! event stream read them, and the OpenAPI document is generated from them.

use crate::JobStatus;
use serde::{Deserialize, Serialize};

/// A job as the v1 API shows it: the status document plus links.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    #[serde(flatten)]
    pub status: JobStatus,
    pub links: Links,
}

/// Where the job's other resources are.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    #[serde(rename = "self")]
    pub this: String,
    pub video: String,
    pub poster: String,
    pub events: String,
}

impl From<JobStatus> for JobView {
    fn from(status: JobStatus) -> Self {
        let this = format!("/v1/jobs/{}", status.id);
        JobView {
            links: Links {
                video: format!("{this}/video"),
                poster: format!("{this}/poster"),
                events: format!("{this}/events"),
                this,
            },
            status,
        }
    }
}
