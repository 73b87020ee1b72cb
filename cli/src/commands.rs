//! The subcommands.

use crate::api::{CreateJob, Job};
use crate::args::{ClipArgs, Command, DownloadArgs, InspectArgs, JobArgs, JobsArgs, PosterArgs};
use crate::client::Client;
use crate::download::{self, Saved};
use crate::error::CliError;
use crate::hint::ResumeHint;
use crate::output::{
    describe_job, inspection_summary, print_json, result_summary, source_summary, Target,
};
use crate::progress::{JobView, Mode};
use crate::wait;
use serde::Serialize;
use shared_proto::{AudioOptions, JobId, JobState, Profile};
use std::path::Path;

/// What `clip`, `download` and `poster` print with `--json`: the job and the file.
#[derive(Serialize)]
struct JobAndFile<'a> {
    #[serde(flatten)]
    job: &'a Job,
    file: &'a Saved,
}

/// Runs one subcommand against `client`. `completions` needs no server: the crate's `run`
/// answers it before a client exists.
pub async fn run(
    client: &Client,
    command: Command,
    json: bool,
    hint: &ResumeHint,
) -> Result<(), CliError> {
    match command {
        Command::Clip(args) => clip(client, args, json, hint).await,
        Command::Status(JobArgs { id }) => status(client, &id, json).await,
        Command::Wait(JobArgs { id }) => wait_for(client, &id, json, hint).await,
        Command::Download(args) => download(client, args, json, hint).await,
        Command::Poster(args) => poster(client, args, json).await,
        Command::Cancel(JobArgs { id }) => cancel(client, &id, json).await,
        Command::Jobs(args) => jobs(client, args, json).await,
        Command::Inspect(args) => inspect(client, args, json).await,
        Command::Completions(_) => Ok(()),
    }
}

/// `-o -` makes the file the command's stdout, which `--json` wants for its document.
fn check_stdout(output: Option<&Path>, json: bool) -> Result<(), CliError> {
    if json && Target::is_stdout(output) {
        return Err(CliError::Usage(
            "`-o -` writes the file to stdout, where `--json` would put its document; use one \
             of them (`hopster --json status ID` shows the job)"
                .to_owned(),
        ));
    }
    Ok(())
}

async fn clip(
    client: &Client,
    args: ClipArgs,
    json: bool,
    hint: &ResumeHint,
) -> Result<(), CliError> {
    check_stdout(args.output.as_deref(), json)?;
    let profile = args.profile.unwrap_or_default();
    if profile == Profile::Hls && args.output.is_some() {
        return Err(CliError::Usage(
            "an hls result is a playlist and segments that players read from the server; it \
             is not saved, so -o does not apply"
                .to_owned(),
        ));
    }
    let submission = CreateJob {
        url: args.url,
        video_id: args.video_id,
        start: args.start,
        stop: args.stop,
        accuracy: args.accuracy,
        profile: args.profile,
        max_height: args.max_height,
        poster_at: args.poster_at,
        callback_url: args.callback_url,
        fps: args.fps,
        clips: (!args.clips.is_empty()).then_some(args.clips),
        audio: args.normalize_audio.map(|lufs| AudioOptions {
            normalize: true,
            target_lufs: Some(lufs),
        }),
    };
    submission.check().map_err(|e| CliError::Usage(e.message))?;
    hint.set(
        "the job may or may not have been accepted; the same `hopster clip` again finds the \
         same job",
    );
    let (job, new) = client.submit(&submission).await?;
    let id = job.status.id.clone();
    let target = Target::of(args.output.as_deref(), &id, profile.extension());
    let download_again = format!("hopster download {id} -o {}", target.shell_arg());
    hint.set(format!(
        "job {id} keeps running on the server; follow it with `hopster wait {id}`, then \
         `{download_again}`"
    ));
    if args.no_wait {
        if json {
            return print_json(&job);
        }
        let what = if new { "submitted" } else { "already known" };
        println!("job {id} {what}: {}", job.status.state.as_str());
        println!("  source   {}", source_summary(&job.status));
        println!("  follow   hopster wait {id}");
        if profile != Profile::Hls {
            println!("  download {download_again}");
        }
        return Ok(());
    }
    let mode = Mode::detect(json);
    let job = wait::until_done(client, job, &mut JobView::new(mode)).await?;
    if profile == Profile::Hls {
        return report_completed(client, &job, json);
    }
    hint.set(format!(
        "the partial file is kept; resume it with `{download_again}`"
    ));
    let saved = download::fetch(client, &job, &target, mode)
        .await
        .map_err(|e| e.with_hint(&format!("resume with `{download_again}`")))?;
    report_saved(&job, &saved, json)
}

async fn status(client: &Client, id: &JobId, json: bool) -> Result<(), CliError> {
    let job = client.job(id).await?;
    if json {
        return print_json(&job);
    }
    println!("{}", describe_job(&job, client.server()));
    Ok(())
}

async fn wait_for(
    client: &Client,
    id: &JobId,
    json: bool,
    hint: &ResumeHint,
) -> Result<(), CliError> {
    let job = client.job(id).await?;
    hint.set(format!(
        "job {id} keeps running on the server; follow it again with `hopster wait {id}`"
    ));
    let job = wait::until_done(client, job, &mut JobView::new(Mode::detect(json))).await?;
    report_completed(client, &job, json)
}

/// A completed job, and how to get its result.
fn report_completed(client: &Client, job: &Job, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(job);
    }
    let id = &job.status.id;
    let result = job.status.result.as_ref();
    let summary = result.map(result_summary).unwrap_or_default();
    println!("job {id} completed: {summary}");
    match result.map(|r| r.profile) {
        Some(Profile::Hls) => println!("  play     ffplay {}/v1/jobs/{id}/video", client.server()),
        _ => println!("  download hopster download {id}"),
    }
    if result.is_some_and(|r| r.poster_key.is_some()) {
        println!("  poster   hopster poster {id}");
    }
    Ok(())
}

/// The job, when it is completed; why there is nothing to download otherwise.
async fn completed(client: &Client, id: &JobId, what: &str) -> Result<Job, CliError> {
    let job = client.job(id).await?;
    match job.status.state {
        JobState::Completed => Ok(job),
        JobState::Failed | JobState::Cancelled => Err(CliError::JobFailed(Box::new(job))),
        state => Err(CliError::server(
            "not_ready",
            format!(
                "job {id} is {}; the {what} is not ready yet (follow it with `hopster wait \
                 {id}`)",
                state.as_str()
            ),
        )),
    }
}

async fn download(
    client: &Client,
    args: DownloadArgs,
    json: bool,
    hint: &ResumeHint,
) -> Result<(), CliError> {
    check_stdout(args.output.as_deref(), json)?;
    let id = args.id;
    let job = completed(client, &id, "video").await?;
    let extension = job
        .status
        .result
        .as_ref()
        .map_or("mp4", |r| r.profile.extension());
    let target = Target::of(args.output.as_deref(), &id, extension);
    let again = format!("hopster download {id} -o {}", target.shell_arg());
    hint.set(format!(
        "the partial file is kept; resume it with `{again}`"
    ));
    let saved = download::fetch(client, &job, &target, Mode::detect(json))
        .await
        .map_err(|e| e.with_hint(&format!("resume with `{again}`")))?;
    report_saved(&job, &saved, json)
}

async fn poster(client: &Client, args: PosterArgs, json: bool) -> Result<(), CliError> {
    check_stdout(args.output.as_deref(), json)?;
    let id = args.id;
    let job = completed(client, &id, "poster").await?;
    let target = Target::of(args.output.as_deref(), &id, "jpg");
    let saved = download::poster(client, &id, &target).await?;
    if json {
        return print_json(&JobAndFile {
            job: &job,
            file: &saved,
        });
    }
    let size = job
        .status
        .result
        .as_ref()
        .map(|r| format!("{}x{} jpeg, ", r.width, r.height))
        .unwrap_or_default();
    let line = format!("{size}{}", indicatif::HumanBytes(saved.bytes));
    print_saved(&saved, &line);
    Ok(())
}

fn report_saved(job: &Job, saved: &Saved, json: bool) -> Result<(), CliError> {
    if json {
        return print_json(&JobAndFile { job, file: saved });
    }
    let summary = job
        .status
        .result
        .as_ref()
        .map(result_summary)
        .unwrap_or_default();
    let resumed = match saved.resumed_from {
        0 => String::new(),
        n if n == saved.bytes => ", already complete".to_owned(),
        n => format!(", resumed at byte {n}"),
    };
    print_saved(saved, &format!("{summary}{resumed}"));
    Ok(())
}

/// `saved PATH (…)` on stdout; after `-o -` the same words go to stderr, since stdout was the
/// file.
fn print_saved(saved: &Saved, details: &str) {
    match &saved.path {
        Some(path) => println!("saved {} ({details})", path.display()),
        None => eprintln!("wrote {} bytes to stdout ({details})", saved.bytes),
    }
}

async fn cancel(client: &Client, id: &JobId, json: bool) -> Result<(), CliError> {
    let job = client.cancel(id).await?;
    if json {
        return print_json(&job);
    }
    println!("job {id} {}", job.status.state.as_str());
    Ok(())
}

/// `POST /v1/sources`, then the inspection followed until it is ready or failed.
async fn inspect(client: &Client, args: InspectArgs, json: bool) -> Result<(), CliError> {
    use shared_proto::api::{CreateSource, SourceState};
    let source = CreateSource {
        url: args.url,
        video_id: args.video_id,
    };
    let (mut view, _) = client.inspect(&source).await?;
    while !view.status.state.is_terminal() {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        view = client.source(&view.status.id).await?;
    }
    if view.status.state == SourceState::Failed {
        let (code, message) = view.status.error.as_ref().map_or_else(
            || ("failed".to_owned(), String::new()),
            |e| (e.code.as_str().to_owned(), e.message.clone()),
        );
        return Err(CliError::InspectionFailed {
            id: view.status.id.to_string(),
            code,
            message,
        });
    }
    if json {
        return print_json(&view);
    }
    println!("{}", inspection_summary(client.server(), &view));
    Ok(())
}

async fn jobs(client: &Client, args: JobsArgs, json: bool) -> Result<(), CliError> {
    let jobs = client.jobs(args.state).await?;
    if json {
        return print_json(&jobs);
    }
    for job in &jobs {
        println!(
            "{}  {:<11}  {}",
            job.status.id,
            job.status.state.as_str(),
            source_summary(&job.status)
        );
    }
    Ok(())
}
