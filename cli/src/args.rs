//! The command line, as clap sees it. Everything that can be checked without the server is
//! checked here, so a bad argument never costs a request.

use crate::error::CliError;
use clap::{ArgGroup, Args, Parser, Subcommand};
use clap_complete::Shell;
use shared_proto::{Accuracy, ClipRange, JobId, JobState, Profile, Timecode};
use std::path::PathBuf;
use values::{
    accuracy_parser, fps_parser, lufs_parser, max_height_parser, parse_callback_url,
    parse_clip_range, parse_job_id, parse_server, parse_timecode, parse_url, parse_video_id,
    profile_parser, state_parser,
};

mod values;

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
    /// Follow a job until it completes or fails (exit code 3 when it fails or is cancelled).
    Wait(JobArgs),
    /// Download a completed job's video, resuming a partial file.
    Download(DownloadArgs),
    /// Download a completed job's poster (a JPEG; video profiles only).
    Poster(PosterArgs),
    /// Cancel a queued or running job (exit code 5 `job_finished` when it already ended).
    Cancel(JobArgs),
    /// List the newest 20 jobs, newest first.
    Jobs(JobsArgs),
    /// Inspect a source before cutting it: its duration, streams, keyframes and storyboard
    /// (exit code 3 when the inspection fails).
    Inspect(InspectArgs),
    /// Print a shell completion script on stdout.
    ///
    /// For example `hopster completions bash > ~/.local/share/bash-completion/completions/hopster`.
    Completions(CompletionsArgs),
}

/// What to cut, what to make of it and where to put it.
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

    /// What is made of the clip (default mp4); `hls` is played from the server, not saved.
    #[arg(long, value_parser = profile_parser())]
    pub profile: Option<Profile>,

    /// Scale the video down to at most this many lines (16-4320; video profiles).
    #[arg(long, value_parser = max_height_parser())]
    pub max_height: Option<u32>,

    /// One of several clips joined in order into one output, `START-STOP` (repeat it, up to
    /// 20 times); instead of --start and --stop.
    #[arg(long = "clip", value_name = "START-STOP", value_parser = parse_clip_range,
          conflicts_with_all = ["start", "stop"])]
    pub clips: Vec<ClipRange>,

    /// Frames per second of an animation (`--profile gif` or `webp`; 1-30, default 12).
    #[arg(long, value_parser = fps_parser())]
    pub fps: Option<u32>,

    /// Normalize the sound's loudness (EBU R128) to LUFS (-70 to -5; default -16).
    #[arg(
        long,
        value_name = "LUFS",
        num_args = 0..=1,
        default_missing_value = "-16",
        allow_negative_numbers = true,
        value_parser = lufs_parser()
    )]
    pub normalize_audio: Option<i32>,

    /// `frame` (default: re-encoded, exact) or `keyframe` (stream copy from the keyframe at or
    /// before the start; mp4 without --max-height only).
    #[arg(long, value_parser = accuracy_parser())]
    pub accuracy: Option<Accuracy>,

    /// Where in the clip the poster is taken, `HH:MM:SS[.ffffff]` (default one second in).
    #[arg(long, value_parser = parse_timecode)]
    pub poster_at: Option<Timecode>,

    /// POSTed the signed job status when the job completes, fails or is cancelled.
    #[arg(long, value_parser = parse_callback_url)]
    pub callback_url: Option<String>,

    /// Where to save the clip: a file, a directory (gets `ID.EXT` inside it), or `-` for
    /// stdout; default `./ID.EXT`.
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

    /// Where to save the clip: a file, a directory (gets `ID.EXT` inside it), or `-` for
    /// stdout; default `./ID.EXT`. A shorter file already there is resumed with an HTTP Range
    /// request.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PosterArgs {
    /// The job id (32 hex digits).
    #[arg(value_parser = parse_job_id)]
    pub id: JobId,

    /// Where to save the poster: a file, a directory (gets `ID.jpg` inside it), or `-` for
    /// stdout; default `./ID.jpg`.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// The source to inspect.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["url", "video_id"])))]
pub struct InspectArgs {
    /// The source video: an absolute http(s) URL.
    #[arg(value_parser = parse_url)]
    pub url: Option<String>,

    /// The source video by catalogue id.
    #[arg(long, value_parser = parse_video_id)]
    pub video_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Only jobs in this state.
    #[arg(long, value_parser = state_parser())]
    pub state: Option<JobState>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
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
    fn output_options_parse_into_shared_proto_types() {
        let cli = Cli::try_parse_from([
            "hopster",
            "clip",
            "--video-id",
            "v",
            "--profile",
            "webm",
            "--max-height",
            "240",
            "--accuracy",
            "frame",
            "--poster-at",
            "00:00:01.5",
            "--callback-url",
            "HTTP://Example.com/hook#x",
        ])
        .unwrap();
        let Command::Clip(args) = cli.command else {
            panic!("not clip")
        };
        assert_eq!(args.profile, Some(Profile::Webm));
        assert_eq!(args.max_height, Some(240));
        assert_eq!(args.accuracy, Some(Accuracy::Frame));
        assert_eq!(args.poster_at, Some(Timecode::parse("00:00:01.5").unwrap()));
        assert_eq!(
            args.callback_url.as_deref(),
            Some("http://example.com/hook")
        );
        for bad in [
            &["--profile", "mkv"][..],
            &["--max-height", "15"],
            &["--max-height", "4321"],
            &["--accuracy", "exact"],
            &["--poster-at", "1"],
            &["--callback-url", "ftp://h/x"],
            &["--fps", "0"],
            &["--fps", "31"],
            &["--normalize-audio", "-4"],
        ] {
            let args = [&["hopster", "clip", "--video-id", "v"][..], bad].concat();
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?}");
        }
        let gif = [
            "hopster",
            "clip",
            "--video-id",
            "v",
            "--profile",
            "gif",
            "--fps",
            "8",
        ];
        let Command::Clip(args) = Cli::try_parse_from(gif).unwrap().command else {
            panic!("not clip")
        };
        assert_eq!((args.profile, args.fps), (Some(Profile::Gif), Some(8)));
        let loud = |extra: &[&'static str]| {
            let argv = [&["hopster", "clip", "--video-id", "v"][..], extra].concat();
            let Command::Clip(args) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("not clip")
            };
            args.normalize_audio
        };
        let argv = [
            "hopster",
            "clip",
            "--video-id",
            "v",
            "--clip",
            "00:00:10-00:00:12.5",
            "--clip",
            "00:00:01-00:00:02",
        ];
        let Command::Clip(args) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("not clip")
        };
        let tc = |t: &str| Timecode::parse(t).unwrap();
        assert_eq!(
            args.clips,
            [
                ClipRange {
                    start: tc("00:00:10"),
                    stop: tc("00:00:12.5")
                },
                ClipRange {
                    start: tc("00:00:01"),
                    stop: tc("00:00:02")
                }
            ]
        );
        for bad in [
            &["--clip", "00:00:10"][..],
            &["--clip", "x-00:00:02"],
            &["--clip", "00:00:01-00:00:02", "--start", "00:00:00"],
        ] {
            let argv = [&["hopster", "clip", "--video-id", "v"][..], bad].concat();
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?}");
        }
        assert_eq!(loud(&[]), None);
        assert_eq!(loud(&["--normalize-audio"]), Some(-16));
        assert_eq!(loud(&["--normalize-audio", "-23"]), Some(-23));
        assert_eq!(loud(&["--normalize-audio", "--profile", "mp3"]), Some(-16));
    }
}
