//! A standalone S3 API (s3s-fs over a temp directory) for the benchmarks in `bench/`.
//!
//! ```text
//! s3-server BUCKET ACCESS_KEY SECRET_KEY [PORT]
//! ```
//!
//! Serves one empty bucket on `127.0.0.1:PORT` (0 or absent: any free port) and prints the
//! endpoint (`http://127.0.0.1:PORT`) as the first line of stdout. Runs until SIGINT or
//! SIGTERM, then removes its data directory. It is `e2e::s3::S3Server`, run as a process.

use anyhow::{bail, Context};
use std::io::Write;
use tokio::signal::unix::{signal, SignalKind};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 || args.len() > 4 {
        bail!("usage: s3-server BUCKET ACCESS_KEY SECRET_KEY [PORT]");
    }
    let (bucket, access_key, secret_key) = (&args[0], &args[1], &args[2]);
    let port: u16 = match args.get(3) {
        Some(p) => p.parse().context("PORT must be a number (0 = any)")?,
        None => 0,
    };
    let server = e2e::s3::S3Server::start_on(bucket, access_key, secret_key, port).await;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", server.endpoint)?;
        out.flush()?;
    }
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    // Dropping the server stops it and removes its data directory.
    drop(server);
    Ok(())
}
