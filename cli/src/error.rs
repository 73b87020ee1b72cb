//! What can go wrong, and the exit code each kind of failure gets. Scripts branch on these
//! codes, so each kind keeps its number; `hopster --help` lists them.

use crate::api::Job;
use serde_json::json;

/// The output file or the runtime could not be set up.
pub const LOCAL: u8 = 1;
/// Bad arguments; nothing was sent (clap uses the same code for its own parse errors).
pub const USAGE: u8 = 2;
/// The job failed or was cancelled on the server.
pub const JOB_FAILED: u8 = 3;
/// The server could not be reached.
pub const CONNECTION: u8 = 4;
/// The server answered with an API error.
pub const SERVER: u8 = 5;
/// Ctrl-C: the shell's convention, 128 + SIGINT.
pub const INTERRUPTED: u8 = 130;

/// A failure of one command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{}", job_failure(.0))]
    JobFailed(Box<Job>),
    #[error("cannot reach the server: {0}")]
    Connection(String),
    #[error("{message} ({code})")]
    Server { code: String, message: String },
    #[error("{0}")]
    Local(String),
    #[error("interrupted; {0}")]
    Interrupted(String),
    #[error("source inspection {id} failed: {message} ({code})")]
    InspectionFailed {
        id: String,
        code: String,
        message: String,
    },
}

fn job_failure(job: &Job) -> String {
    let status = &job.status;
    match &status.error {
        Some(e) => format!(
            "job {} {}: {} ({})",
            status.id,
            status.state.as_str(),
            e.message,
            e.code
        ),
        None => format!("job {} {}", status.id, status.state.as_str()),
    }
}

impl CliError {
    /// An API error with the server's (or a server-like) code.
    pub fn server(code: impl Into<String>, message: impl Into<String>) -> Self {
        CliError::Server {
            code: code.into(),
            message: message.into(),
        }
    }

    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => USAGE,
            CliError::JobFailed(_) | CliError::InspectionFailed { .. } => JOB_FAILED,
            CliError::Connection(_) => CONNECTION,
            CliError::Server { .. } => SERVER,
            CliError::Local(_) => LOCAL,
            CliError::Interrupted(_) => INTERRUPTED,
        }
    }

    /// The stable code of `--json` error documents: the server's code where there is one.
    pub fn code(&self) -> String {
        match self {
            CliError::Usage(_) => "usage".into(),
            CliError::JobFailed(job) => job
                .status
                .error
                .as_ref()
                .map(|e| e.code.as_str())
                .unwrap_or(job.status.state.as_str())
                .into(),
            CliError::Connection(_) => "connection".into(),
            CliError::Server { code, .. } | CliError::InspectionFailed { code, .. } => code.clone(),
            CliError::Local(_) => "local".into(),
            CliError::Interrupted(_) => "interrupted".into(),
        }
    }

    /// Adds what the user can do next to a connection or server failure, so a dropped
    /// connection while following a job still says how to pick it up again.
    pub fn with_hint(self, hint: &str) -> Self {
        match self {
            CliError::Connection(m) => CliError::Connection(format!("{m}; {hint}")),
            CliError::Server { code, message } => CliError::Server {
                code,
                message: format!("{message}; {hint}"),
            },
            other => other,
        }
    }

    /// The `--json` error document: the API's error shape plus the exit code, and the job when
    /// the job itself failed.
    pub fn to_json(&self) -> serde_json::Value {
        let mut doc = json!({
            "error": {"code": self.code(), "message": self.to_string()},
            "exit_code": self.exit_code(),
        });
        if let CliError::JobFailed(job) = self {
            doc["job"] = serde_json::to_value(job).unwrap_or_default();
        }
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_failure_has_its_own_exit_code() {
        let codes = [
            CliError::Usage(String::new()).exit_code(),
            CliError::Connection(String::new()).exit_code(),
            CliError::server("x", "y").exit_code(),
            CliError::Local(String::new()).exit_code(),
            CliError::Interrupted(String::new()).exit_code(),
            JOB_FAILED,
        ];
        for (i, a) in codes.iter().enumerate() {
            assert!(codes[i + 1..].iter().all(|b| a != b), "{codes:?}");
        }
    }

    #[test]
    fn a_server_error_names_its_code_and_keeps_the_hint() {
        let e = CliError::server("not_ready", "the job is queued").with_hint("try later");
        assert_eq!(e.to_string(), "the job is queued; try later (not_ready)");
        assert_eq!(e.to_json()["error"]["code"], "not_ready");
        assert_eq!(e.to_json()["exit_code"], 5);
    }
}
