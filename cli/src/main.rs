//! The `hopster` command-line client.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = hopster::args::Cli::parse_or_exit();
    let json = cli.json;
    match hopster::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            hopster::report(&error, json);
            ExitCode::from(error.exit_code())
        }
    }
}
