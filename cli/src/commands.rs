//! The subcommands.

use crate::args::{ClipArgs, Command, DownloadArgs, JobArgs};
use crate::client::{Client, Job, Submission};
use crate::download::{self, Saved};
use crate::error::CliError;
use crate::output::{
    describe_job, output_path, print_json, result_summary, shell_path, source_summary,
};
use crate::progress::{JobView, Mode};
use crate::wait;
use crate::ResumeHint;
use serde::Serialize;
use shared_proto::{JobId, JobState, SpecError};

/// What `clip` and `download` print with `--json`: the job and the file.
#[derive(Serialize)]
struct JobAndFile<'a> {
    #[serde(flatten)]
    job: &'a Job,
    file: &'a Saved,
}

/// Runs one subcommand against `client`.
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
        Command::Jobs => jobs(client, json).await,
    }
}

async fn clip(
    client: &Client,
    args: ClipArgs,
    json: bool,
    hint: &ResumeHint,
) -> Result<(), CliError> {
    if let (Some(start), Some(stop)) = (args.start, args.stop) {
        if start >= stop {
            return Err(CliError::Usage(
                SpecError::StartNotBeforeStop { start, stop }.to_string(),
            ));
        }
    }
    let submission = Submission {
        url: args.url,
        video_id: args.video_id,
        start: args.start,
        stop: args.stop,
    };
    hint.set(
        "the job may or may not have been accepted; the same `hopster clip` again finds the \
         same job",
    );
    let (job, new) = client.submit(&submission).await?;
    let id = job.status.id.clone();
    let path = output_path(args.output.as_deref(), &id);
    let download_again = format!("hopster download {id} -o {}", shell_path(&path));
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
        println!("  download {download_again}");
        return Ok(());
    }
    let mode = Mode::detect(json);
    let job = wait::until_done(client, job, &mut JobView::new(mode)).await?;
    hint.set(format!(
        "the partial file is kept; resume it with `{download_again}`"
    ));
    let saved = download::fetch(client, &job, &path, mode)
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
    if json {
        return print_json(&job);
    }
    let summary = job
        .status
        .result
        .as_ref()
        .map(result_summary)
        .unwrap_or_default();
    println!("job {id} completed: {summary}");
    println!("  download hopster download {id}");
    Ok(())
}

async fn download(
    client: &Client,
    args: DownloadArgs,
    json: bool,
    hint: &ResumeHint,
) -> Result<(), CliError> {
    let id = args.id;
    let job = client.job(&id).await?;
    match job.status.state {
        JobState::Completed => {}
        JobState::Failed | JobState::Cancelled => return Err(CliError::JobFailed(Box::new(job))),
        state => {
            return Err(CliError::server(
                "not_ready",
                format!(
                    "job {id} is {}; the video is not ready yet (follow it with `hopster wait \
                     {id}`)",
                    state.as_str()
                ),
            ))
        }
    }
    let path = output_path(args.output.as_deref(), &id);
    let again = format!("hopster download {id} -o {}", shell_path(&path));
    hint.set(format!(
        "the partial file is kept; resume it with `{again}`"
    ));
    let saved = download::fetch(client, &job, &path, Mode::detect(json))
        .await
        .map_err(|e| e.with_hint(&format!("resume with `{again}`")))?;
    report_saved(&job, &saved, json)
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
    println!("saved {} ({summary}{resumed})", saved.path.display());
    Ok(())
}

async fn jobs(client: &Client, json: bool) -> Result<(), CliError> {
    let mut jobs = client.jobs().await?;
    jobs.sort_by_key(|job| std::cmp::Reverse(job.status.created_at_ms));
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
