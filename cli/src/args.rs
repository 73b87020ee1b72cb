//! The command line, as clap sees it. Everything that can be checked without the server is
//! checked here, so a bad argument never costs a request.

use crate::error::CliError;
use clap::{ArgGroup, Args, Parser, Subcommand};
use shared_proto::spec::{normalize_url, validate_video_id};
use shared_proto::{JobId, Timecode};
use std::path::PathBuf;

/// The server used when neither `--server` nor `HOPSTER_SERVER` is given.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:5000";

// A test checks that every code in `error` is listed here.
const EXIT_CODES: &str = "Exit codes:
  0    success
  1    a local problem (the output file cannot be written)
  2    usage error: bad arguments, a time that does not parse, start not before stop, a bad URL
       or video id (nothing is sent to the server)
  3    the job failed (or was cancelled) on the server; the message names its error code
  4    the server cannot be reached (connection refused, DNS, timeout)
  5    the server answered with an error (any other 4xx/5xx); the message names its code
  130  interrupted by Ctrl-C; the job keeps running and the message says how to resume";

/// Hopster's command-line client: cut a clip out of a video, watch it being made, download it.
#[derive(Debug, Parser)]
#[command(name = "hopster", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// The Hopster API gateway.
    #[arg(long, global = true, env = "HOPSTER_SERVER", default_value = DEFAULT_SERVER,
          hide_env_values = true, value_parser = parse_server)]
    pub server: String,

    /// An API key, sent as `Authorization: Bearer KEY`.
    #[arg(long, global = true, env = "HOPSTER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Print one JSON document on stdout instead of text (progress still goes to stderr).
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Submit a clip, follow its progress and download the result.
    Clip(ClipArgs),
    /// Show a job's state, progress and result once.
    Status(JobArgs),
    /// Follow a job until it completes or fails (exit code 3 when it fails).
    Wait(JobArgs),
    /// Download a completed job's video, resuming a partial file.
    Download(DownloadArgs),
    /// List jobs, newest first (needs a server with `GET /v1/jobs`).
    Jobs,
}

/// What to cut and where to put it.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["url", "video_id"])))]
pub struct ClipArgs {
    /// The source video: an absolute http(s) URL.
    #[arg(long, value_parser = parse_url)]
    pub url: Option<String>,

    /// The source video by catalogue id (`[A-Za-z0-9_-]{1,128}`); the server maps it to a URL.
    #[arg(long, value_parser = parse_video_id)]
    pub video_id: Option<String>,

    /// Clip start, `HH:MM:SS[.ffffff]`; the beginning when omitted.
    #[arg(long, value_parser = parse_timecode)]
    pub start: Option<Timecode>,

    /// Clip end, `HH:MM:SS[.ffffff]`; the end of the source when omitted.
    #[arg(long, value_parser = parse_timecode)]
    pub stop: Option<Timecode>,

    /// Where to save the clip (a directory gets `ID.mp4` inside it); default `./ID.mp4`.
    #[arg(short, long)]
    pub output: Option<PathBuf>,

    /// Only submit: print the job id and return without waiting or downloading.
    #[arg(long)]
    pub no_wait: bool,
}

/// A job, by the id `hopster clip` printed.
#[derive(Debug, Args)]
pub struct JobArgs {
    /// The job id (32 hex digits).
    #[arg(value_parser = parse_job_id)]
    pub id: JobId,
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// The job id (32 hex digits).
    #[arg(value_parser = parse_job_id)]
    pub id: JobId,

    /// Where to save the clip (a directory gets `ID.mp4` inside it); default `./ID.mp4`. A
    /// shorter file already there is resumed with an HTTP Range request.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

impl Cli {
    /// Parses the process arguments, exiting with [`USAGE`] (or 0 for `--help`) when they do
    /// not parse. With `--json` the usage error is also the one JSON document on stdout.
    pub fn parse_or_exit() -> Cli {
        Cli::try_parse().unwrap_or_else(|error| {
            let wants_json = std::env::args_os().any(|a| a == "--json");
            if wants_json && error.use_stderr() {
                let text = error.to_string();
                let first = text.lines().next().unwrap_or_default();
                let usage = CliError::Usage(first.trim_start_matches("error: ").to_owned());
                println!("{}", usage.to_json());
            }
            error.exit()
        })
    }
}

fn parse_server(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("`{text}` is not an http(s) URL"));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

fn parse_url(text: &str) -> Result<String, shared_proto::SpecError> {
    normalize_url(text)
}

fn parse_video_id(text: &str) -> Result<String, shared_proto::SpecError> {
    validate_video_id(text).map(|()| text.to_owned())
}

fn parse_timecode(text: &str) -> Result<Timecode, shared_proto::timecode::TimecodeError> {
    Timecode::parse(text)
}

fn parse_job_id(text: &str) -> Result<JobId, String> {
    JobId::parse(text).ok_or_else(|| format!("`{text}` is not a job id (32 lower-case hex digits)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{CONNECTION, INTERRUPTED, JOB_FAILED, LOCAL, SERVER, USAGE};
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_documents_every_exit_code() {
        for code in [LOCAL, USAGE, JOB_FAILED, CONNECTION, SERVER, INTERRUPTED] {
            assert!(
                EXIT_CODES.contains(&format!("\n  {code} ")),
                "exit code {code} is not in --help"
            );
        }
    }

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
