//! The OpenAPI document against the live service: schemathesis (PyPI, pinned by
//! `scripts/schemathesis-venv`) reads `/openapi.json` from a gateway with API keys on and both
//! workers running, and runs every check in every phase — examples, coverage, fuzzing and the
//! stateful phase, which follows the document's links (create → get → video, poster, events →
//! cancel). Its exceptions, each a rule JSON Schema cannot state, are in `e2e/schemathesis.toml`.
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

use e2e::stack::{Options, Stack};
use e2e::TempDir;
use hopster_common::settings::{Backend, Secret};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

const KEY: &str = "contract-test-key";
/// The whole run stays well under two minutes (it takes about 20 s).
const DEADLINE: Duration = Duration::from_secs(150);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// The venv's directory (made on first use; `scripts/test` makes it beforehand).
fn schemathesis_venv() -> PathBuf {
    let out = std::process::Command::new(repo_root().join("scripts/schemathesis-venv"))
        .stderr(Stdio::inherit())
        .output()
        .expect("running scripts/schemathesis-venv");
    assert!(out.status.success(), "scripts/schemathesis-venv failed");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schemathesis_finds_no_disagreement_between_the_document_and_the_service() {
    let venv = schemathesis_venv();
    let stack = Stack::spawn_with(
        Options {
            backend: Backend::Fs,
            workers: true,
        },
        |s| s.auth.api_keys = vec![Secret::new(KEY)],
    )
    .await;
    // The document's example job (`video_id: sample`) is a real clip here.
    std::fs::copy(
        stack.media_dir.join("sixty.mp4"),
        stack.media_dir.join("sample.mp4"),
    )
    .expect("the example's source");
    // Its report and caches go to a directory of its own, not the work tree.
    let work = TempDir::new("hopster-contract");
    let run = tokio::process::Command::new(venv.join("bin/schemathesis"))
        .arg("--config-file")
        .arg(repo_root().join("e2e/schemathesis.toml"))
        .arg("run")
        .arg(stack.url("/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {KEY}")])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", "20", "--seed", "1"])
        .args(["--request-timeout", "10", "--generation-database", "none"])
        .arg("--no-color")
        .current_dir(&work.0)
        .env("HOME", &work.0)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(DEADLINE, run)
        .await
        .expect("schemathesis finished within its deadline")
        .expect("running schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    stack.stop().await;
    assert!(
        out.status.success(),
        "schemathesis found disagreements ({}):\n{report}",
        out.status
    );
    assert!(report.contains(" passed"), "it tested nothing:\n{report}");
}
