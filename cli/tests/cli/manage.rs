//! Managing jobs: cancelling, the listing's state filter, and following a job when its event
//! stream fails.

use crate::support::*;
use e2e::stack::{Options, Stack};
use e2e::TempDir;
use hopster_common::settings::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_job_is_cancelled_on_the_server_and_jobs_filters_by_state() {
    // No workers: jobs stay queued until cancelled.
    let stack = Stack::spawn(Options {
        backend: Backend::Fs,
        workers: false,
    })
    .await;
    let dir = TempDir::new("hopster-cli");
    let server = ["--server", &stack.base_url, "--json"];
    let mut ids = Vec::new();
    for stop in ["00:00:01", "00:00:02"] {
        let out = hopster(
            &dir.0,
            &[
                &server[..],
                &["clip", "--video-id", "sixty", "--stop", stop, "--no-wait"],
            ]
            .concat(),
        )
        .await;
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        ids.push(stdout_json(&out)["id"].as_str().expect("an id").to_owned());
    }
    let (kept, cancelled) = (&ids[0], &ids[1]);

    let out = hopster(&dir.0, &[&server[..], &["cancel", cancelled]].concat()).await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(stdout_json(&out)["state"], "cancelled");
    let (_, job) = stack.get_json(&format!("/v1/jobs/{cancelled}")).await;
    assert_eq!(job["state"], "cancelled", "{job}");
    // Cancelling again is not an error; waiting for it is a job that did not complete.
    let out = hopster(&dir.0, &[&server[..], &["cancel", cancelled]].concat()).await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let out = hopster(&dir.0, &[&server[..], &["wait", cancelled]].concat()).await;
    assert_eq!(code(&out), JOB_FAILED, "{}", text(&out.stderr));
    assert_eq!(stdout_json(&out)["job"]["state"], "cancelled");

    let listed = |out: std::process::Output| -> Vec<String> {
        assert_eq!(code(&out), 0, "{}", text(&out.stderr));
        stdout_json(&out)
            .as_array()
            .expect("a list")
            .iter()
            .map(|j| j["id"].as_str().expect("an id").to_owned())
            .collect()
    };
    for (state, expected) in [
        ("cancelled", vec![cancelled.clone()]),
        ("queued", vec![kept.clone()]),
        ("completed", vec![]),
    ] {
        let out = hopster(&dir.0, &[&server[..], &["jobs", "--state", state]].concat()).await;
        assert_eq!(listed(out), expected, "{state}");
    }
    // Text output too: one line per job.
    let out = hopster(
        &dir.0,
        &["--server", &stack.base_url, "jobs", "--state", "queued"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("{kept}  queued")),
        "{lines:?}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wait_polls_when_the_event_stream_cannot_be_opened_or_drops() {
    let stack = stack().await;
    let dir = TempDir::new("hopster-cli");
    for (fault, stop) in [
        (EventsFault::Refuse, "00:00:02"),
        (EventsFault::Cut, "00:00:03"),
    ] {
        let (status, job) = stack
            .post(
                "/v1/jobs",
                &serde_json::json!({"url": sixty(&stack), "start": "00:00:01", "stop": stop}),
            )
            .await;
        assert_eq!(status, 202, "{job}");
        let id = job["id"].as_str().expect("an id").to_owned();
        let (proxy, recorded) = events_proxy(&stack.base_url, fault).await;
        let out = hopster(&dir.0, &["--server", &proxy, "wait", &id]).await;
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(code(&out), 0, "{fault:?}: {stderr}");
        assert!(
            stdout.starts_with(&format!("job {id} completed: ")),
            "{stdout}"
        );
        assert!(stderr.contains("polling instead"), "{fault:?}: {stderr}");
        let (_, job) = stack.get_json(&format!("/v1/jobs/{id}")).await;
        assert_eq!(job["state"], "completed", "{job}");
        let sent = text(&recorded.lock().expect("lock")).to_ascii_lowercase();
        assert!(
            sent.contains(&format!("/v1/jobs/{id}/event")),
            "{fault:?}: {sent}"
        );
        // `wait` reads the job once before following it; more reads are the polling.
        assert!(polls(&recorded, &id) >= 2, "{fault:?}: {sent}");
    }
    stack.stop().await;
}
