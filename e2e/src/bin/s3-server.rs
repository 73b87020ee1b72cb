//! A standalone S3 API (s3s-fs over a temp directory) for the benchmarks in `bench/`.
//!
//! ```text
//! s3-server BUCKET ACCESS_KEY SECRET_KEY [PORT]
//! ```
//!
//! Serves one empty bucket on `127.0.0.1:PORT` (0 or absent: any free port) and prints the
//! endpoint (`http://127.0.0.1:PORT`) as the first line of stdout. Runs until SIGINT or
//! SIGTERM, then removes its data directory. Served the same way as `e2e::s3::S3Server`.

use anyhow::{bail, Context};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use std::io::Write;
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinSet;

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

    let root = e2e::TempDir::new("hopster-s3-server");
    // s3s-fs keeps a bucket as a directory under its root.
    std::fs::create_dir_all(root.0.join(bucket)).context("creating the bucket")?;
    let fs = s3s_fs::FileSystem::new(&root.0)
        .map_err(|e| anyhow::anyhow!("opening the s3s-fs root: {e:?}"))?;
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(
        access_key.as_str(),
        secret_key.to_owned(),
    ));
    let service = builder.build();

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .context("binding the S3 port")?;
    let addr = listener.local_addr().context("S3 address")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "http://{addr}")?;
        out.flush()?;
    }

    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let http = Builder::new(TokioExecutor::new());
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((socket, _)) = accepted else { continue };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                connections.spawn(async move {
                    let _ = conn.await;
                });
                while connections.try_join_next().is_some() {}
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    connections.abort_all();
    drop(root);
    Ok(())
}
