//! Following jobs: a real clip, `--json`, a failing job, Ctrl-C.

use crate::support::*;
use e2e::stack::{Options, Stack};
use e2e::TempDir;
use hopster_common::settings::Backend;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_clip_from_ten_to_thirteen_seconds_is_saved_three_seconds_long() {
    let stack = stack().await;
    let dir = TempDir::new("hopster-cli");
    let file = dir.0.join("clip.mp4");
    let (proxy, recorded) = recording_proxy(&stack.base_url).await;
    let out = hopster(
        &dir.0,
        &[
            "--server",
            &proxy,
            "clip",
            "--url",
            &sixty(&stack),
            "--start",
            "00:00:10",
            "--stop",
            "00:00:13",
            "-o",
            file.to_str().expect("a UTF-8 path"),
        ],
    )
    .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(code(&out), 0, "stdout: {stdout}\nstderr: {stderr}");
    let duration = e2e::media::probe(&file).duration;
    assert!((duration - 3.0).abs() <= 0.05, "duration {duration}");
    assert!(
        stdout.contains("saved ") && stdout.contains(file.to_str().expect("UTF-8")),
        "{stdout}"
    );
    // Without a terminal, progress is one line per step on stderr.
    assert!(stderr.contains(": queued"), "{stderr}");
    assert!(stderr.contains(": completed (3.0"), "{stderr}");
    assert!(stderr.lines().count() < 20, "{stderr}");
    // It followed the job's event stream, without polling.
    let id = stderr
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("job "))
        .and_then(|l| l.split(':').next())
        .expect("a progress line naming the job")
        .to_owned();
    let sent = text(&recorded.lock().expect("lock")).to_ascii_lowercase();
    assert!(
        sent.contains(&format!("get /v1/jobs/{id}/events ")),
        "{sent}"
    );
    assert_eq!(polls(&recorded, &id), 0, "{sent}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn json_output_is_one_document_with_the_job_id_and_state() {
    let stack = stack().await;
    let dir = TempDir::new("hopster-cli");
    let server = ["--server", &stack.base_url, "--json"];
    let source = sixty(&stack);
    let clip = [
        "clip", "--url", &source, "--start", "00:00:01", "--stop", "00:00:02",
    ];

    let out = hopster(&dir.0, &[&server[..], &clip, &["--no-wait"]].concat()).await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let submitted = stdout_json(&out);
    let id = submitted["id"].as_str().expect("an id").to_owned();
    assert_eq!(id.len(), 32);

    let out = hopster(&dir.0, &[&server[..], &clip].concat()).await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let clipped = stdout_json(&out);
    assert_eq!(clipped["id"], id.as_str());
    assert_eq!(clipped["state"], "completed");
    assert_eq!(clipped["file"]["sha256"], clipped["result"]["sha256"]);
    let saved = dir.0.join(format!("{id}.mp4"));
    let path = clipped["file"]["path"].as_str().expect("a path");
    assert!(
        Path::new(path).is_absolute() && path.ends_with(&format!("/{id}.mp4")),
        "{path}"
    );
    let bytes = std::fs::read(&saved).expect("the clip in the working directory");
    assert_eq!(
        Some(sha256_hex(&bytes).as_str()),
        clipped["file"]["sha256"].as_str()
    );

    let out = hopster(&dir.0, &[&server[..], &["status", &id]].concat()).await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let status = stdout_json(&out);
    assert_eq!(status["id"], id.as_str());
    assert_eq!(status["state"], "completed");
    assert_eq!(status["links"]["video"], format!("/v1/jobs/{id}/video"));

    // `jobs` lists it, newest first.
    let out = hopster(&dir.0, &[&server[..], &["jobs"]].concat()).await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let listing = stdout_json(&out);
    let first = &listing.as_array().expect("a list of jobs")[0];
    assert_eq!(
        (first["id"].as_str(), first["state"].as_str()),
        (Some(id.as_str()), Some("completed"))
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_that_fails_on_the_server_exits_3_and_names_its_code() {
    let stack = stack().await;
    let dir = TempDir::new("hopster-cli");
    let missing = format!("{}/missing.mp4", stack.source.base_url);
    let out = hopster(
        &dir.0,
        &["--server", &stack.base_url, "clip", "--url", &missing],
    )
    .await;
    assert_eq!(code(&out), JOB_FAILED, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("source_not_found"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_dir(&dir.0).expect("dir").count(),
        0,
        "no file is left"
    );

    let out = hopster(
        &dir.0,
        &[
            "--server",
            &stack.base_url,
            "--json",
            "clip",
            "--url",
            &missing,
            "--no-wait",
        ],
    )
    .await;
    let id = stdout_json(&out)["id"].as_str().expect("an id").to_owned();
    let out = hopster(
        &dir.0,
        &["--server", &stack.base_url, "--json", "wait", &id],
    )
    .await;
    assert_eq!(code(&out), JOB_FAILED, "{}", text(&out.stderr));
    let doc = stdout_json(&out);
    assert_eq!(doc["error"]["code"], "source_not_found");
    assert_eq!(doc["job"]["state"], "failed");

    let out = hopster(&dir.0, &["--server", &stack.base_url, "download", &id]).await;
    assert_eq!(code(&out), JOB_FAILED, "{}", text(&out.stderr));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ctrl_c_while_waiting_leaves_the_job_running_and_says_how_to_resume() {
    // No workers: the job stays queued for as long as the test needs.
    let stack = Stack::spawn(Options {
        backend: Backend::Fs,
        workers: false,
    })
    .await;
    let dir = TempDir::new("hopster-cli");
    let mut child = command(
        &dir.0,
        &[
            "--server",
            &stack.base_url,
            "clip",
            "--video-id",
            "sixty",
            "--stop",
            "00:00:04",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawning hopster");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), stderr.next_line())
        .await
        .expect("a progress line")
        .expect("reading stderr")
        .expect("a line");
    assert!(first.ends_with(": queued"), "{first}");
    let id = first
        .trim_start_matches("job ")
        .trim_end_matches(": queued")
        .to_owned();
    let pid = child.id().expect("a pid").to_string();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("hopster stopped")
        .expect("wait");
    let mut rest = Vec::new();
    while let Ok(Some(line)) = stderr.next_line().await {
        rest.push(line);
    }
    let rest = rest.join("\n");
    assert_eq!(status.code(), Some(INTERRUPTED), "{rest}");
    assert!(rest.contains(&format!("hopster wait {id}")), "{rest}");

    let out = hopster(
        &dir.0,
        &["--server", &stack.base_url, "--json", "status", &id],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(stdout_json(&out)["state"], "queued");
    // Not ready yet: a server-side refusal, not a job failure.
    let out = hopster(&dir.0, &["--server", &stack.base_url, "download", &id]).await;
    assert_eq!(code(&out), SERVER, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not_ready"));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inspect_prints_the_streams_keyframes_and_storyboard_and_exits_3_when_it_fails() {
    let stack = stack().await;
    let dir = TempDir::new("hopster-cli");
    let ranged = format!("{}/ranged/sixty.mp4", stack.source.base_url);
    let out = hopster(&dir.0, &["--server", &stack.base_url, "inspect", &ranged]).await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let said = text(&out.stdout);
    for line in [
        "  60.00 s, mov,mp4,m4a,3gp,3g2,mj2",
        "  stream 0: video h264 320x240 25.000 fps",
        "  keyframes: 30 (0.000 … 58.000 s)",
        "  storyboard: 30 tiles, one every 2.0 s: ",
    ] {
        assert!(said.contains(line), "{line:?} in {said}");
    }
    let out = hopster(
        &dir.0,
        &["--server", &stack.base_url, "--json", "inspect", &ranged],
    )
    .await;
    let doc = stdout_json(&out);
    assert_eq!(doc["state"], "ready");
    assert_eq!(doc["inspection"]["storyboard"]["tiles"], 30);

    let missing = format!("{}/ranged/missing.mp4", stack.source.base_url);
    let out = hopster(&dir.0, &["--server", &stack.base_url, "inspect", &missing]).await;
    assert_eq!(code(&out), JOB_FAILED, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("source_not_found"),
        "{}",
        text(&out.stderr)
    );
    let out = hopster(
        &dir.0,
        &["--server", &stack.base_url, "inspect", "ftp://x/y"],
    )
    .await;
    assert_ne!(code(&out), 0);
    stack.stop().await;
}
