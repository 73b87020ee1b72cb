//! The `hopster` command-line client: submits clips to a Hopster gateway, follows their
//! progress and downloads the results. `main` only parses arguments and maps the outcome to an
//! exit code; see [`error`] for the codes.

pub mod args;
mod client;
mod commands;
mod download;
pub mod error;
mod output;
mod progress;
mod wait;

use crate::args::Cli;
use crate::client::Client;
use crate::error::CliError;
use std::sync::Mutex;

/// What to tell the user if Ctrl-C ends the command now. Commands update it as they go, so
/// the interruption message always names the step that was cut short.
#[derive(Default)]
pub(crate) struct ResumeHint(Mutex<String>);

impl ResumeHint {
    fn set(&self, hint: impl Into<String>) {
        if let Ok(mut current) = self.0.lock() {
            *current = hint.into();
        }
    }

    fn get(&self) -> String {
        match self.0.lock() {
            Ok(hint) if !hint.is_empty() => hint.clone(),
            _ => "nothing was changed".to_owned(),
        }
    }
}

/// Runs the parsed command to its end, or until Ctrl-C.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Local(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let client = Client::new(&cli.server, cli.api_key)?;
        let hint = ResumeHint::default();
        // Ctrl-C drops the command where it is: a job on the server is never touched by it,
        // and the download writes whole chunks, so what is on disk can be resumed.
        tokio::select! {
            result = commands::run(&client, cli.command, cli.json, &hint) => result,
            Ok(()) = tokio::signal::ctrl_c() => Err(CliError::Interrupted(hint.get())),
        }
    })
}

/// Prints a failure: always on stderr; with `--json` also as the one JSON document on stdout.
pub fn report(error: &CliError, json: bool) {
    eprintln!("error: {error}");
    if json {
        println!("{}", error.to_json());
    }
}
