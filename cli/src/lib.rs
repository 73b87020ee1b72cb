//! The `hopster` command-line client: submits clips to a Hopster gateway, follows their
//! progress and downloads the results. `main` only parses arguments and maps the outcome to an
//! exit code; see [`error`] for the codes.

mod api;
pub mod args;
mod client;
mod commands;
mod download;
pub mod error;
mod hint;
mod output;
mod progress;
mod sse;
mod wait;

use crate::args::{Cli, Command};
use crate::client::Client;
use crate::error::CliError;
use crate::hint::ResumeHint;
use clap::CommandFactory;

/// Runs the parsed command to its end, or until Ctrl-C.
pub fn run(cli: Cli) -> Result<(), CliError> {
    if let Command::Completions(args) = &cli.command {
        // From the same definition that parses the arguments, so the script never drifts.
        let mut command = Cli::command();
        let name = command.get_name().to_owned();
        clap_complete::generate(args.shell, &mut command, name, &mut std::io::stdout());
        return Ok(());
    }
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
