//! Helpers of the CLI tests: running the binary, reading its output, a recording proxy.

use e2e::stack::{Options, Stack};
use hopster_common::settings::Backend;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const USAGE: i32 = 2;
pub const JOB_FAILED: i32 = 3;
pub const CONNECTION: i32 = 4;
pub const SERVER: i32 = 5;
pub const INTERRUPTED: i32 = 130;

pub fn command(dir: &Path, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_hopster"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("HOPSTER_SERVER")
        .env_remove("HOPSTER_API_KEY")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Runs `hopster ARGS` in `dir` to its end.
pub async fn hopster(dir: &Path, args: &[&str]) -> Output {
    let run = command(dir, args).output();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("hopster finished within a minute")
        .expect("running hopster")
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("an exit code, not a signal")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}",
            text(&out.stdout)
        )
    })
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub async fn stack() -> Stack {
    Stack::spawn(Options {
        backend: Backend::Fs,
        workers: true,
    })
    .await
}

pub fn sixty(stack: &Stack) -> String {
    format!("{}/sixty.mp4", stack.source.base_url)
}

/// A TCP forwarder to `upstream` that keeps every byte the client sent, to see its requests.
pub async fn recording_proxy(upstream: &str) -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("addr"));
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let sink = recorded.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(&upstream).await.expect("upstream");
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut buf = vec![0; 16 * 1024];
                while let Ok(n @ 1..) = client_read.read(&mut buf).await {
                    sink.lock().expect("lock").extend_from_slice(&buf[..n]);
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = server_write.shutdown().await;
            });
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                let _ = client_write.shutdown().await;
            });
        }
    });
    (address, recorded)
}

/// What [`events_proxy`] does to `GET /v1/jobs/{id}/events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventsFault {
    /// The request reaches the gateway as `/eventz`, which answers 404: no stream opens.
    Refuse,
    /// The stream's first event is passed on, then the connection is closed.
    Cut,
}

/// Like [`recording_proxy`], with the job event stream broken as `fault` says.
pub async fn events_proxy(upstream: &str, fault: EventsFault) -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("addr"));
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let sink = recorded.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(&upstream).await.expect("upstream");
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let sink = sink.clone();
            // Requests on one connection follow each other: once the events request went up,
            // what comes down is its answer.
            let streaming = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let seen = streaming.clone();
            tokio::spawn(async move {
                let mut buf = vec![0; 16 * 1024];
                while let Ok(n @ 1..) = client_read.read(&mut buf).await {
                    let mut chunk = buf[..n].to_vec();
                    sink.lock().expect("lock").extend_from_slice(&chunk);
                    let text = String::from_utf8_lossy(&chunk).into_owned();
                    if let Some(at) = text.find("/events HTTP/1.1") {
                        match fault {
                            EventsFault::Refuse => chunk[at + "/event".len()] = b'z',
                            EventsFault::Cut => {
                                seen.store(true, std::sync::atomic::Ordering::SeqCst)
                            }
                        }
                    }
                    if server_write.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
                let _ = server_write.shutdown().await;
            });
            tokio::spawn(async move {
                let mut buf = vec![0; 16 * 1024];
                let mut answer = Vec::new();
                while let Ok(n @ 1..) = server_read.read(&mut buf).await {
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    if streaming.load(std::sync::atomic::Ordering::SeqCst) {
                        answer.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&answer);
                        if text
                            .find("\ndata: ")
                            .is_some_and(|at| text[at..].contains("\n\n"))
                        {
                            break; // one whole event went through: drop the connection
                        }
                    }
                }
                let _ = client_write.shutdown().await;
            });
        }
    });
    (address, recorded)
}

/// How many times `GET /v1/jobs/{id}` (the job itself, not a sub-resource) was sent.
pub fn polls(recorded: &Mutex<Vec<u8>>, id: &str) -> usize {
    text(&recorded.lock().expect("lock"))
        .to_ascii_lowercase()
        .matches(&format!("get /v1/jobs/{id} http/1.1"))
        .count()
}
