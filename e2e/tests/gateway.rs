//! The gateway alone (no workers), so what it queues stays in the queue to be counted.
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

use e2e::stack::{Options, Stack};
use hopster_common::settings::Backend;
use serde_json::{json, Value};
use shared_proto::topology;

async fn gateway_only() -> Stack {
    Stack::spawn(Options {
        backend: Backend::Fs,
        workers: false,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_request_twice_is_one_job_and_one_message() {
    let stack = gateway_only().await;
    let url = format!("{}/sixty.mp4", stack.source.base_url);
    let body = json!({"url": url, "start": "00:00:03", "stop": "00:00:06"});
    let (first, a) = stack.post("/v1/jobs", &body).await;
    let (second, b) = stack.post("/v1/jobs", &body).await;
    assert_eq!((first, second), (202, 200));
    assert_eq!(a["id"], b["id"]);
    // The seed's schedule of the same clip (its video id maps to the same URL) is the same job.
    let (code, seed) = stack
        .post(
            "/schedule",
            &json!({"video_id": "sixty", "start": "00:00:03", "stop": "00:00:06"}),
        )
        .await;
    assert_eq!(
        (code, seed["video_file"].as_str()),
        (200, Some("sixty_from_000003000000_till_000006000000.mp4"))
    );
    assert_eq!(stack.queue_len(topology::DOWNLOAD).await, 1);
    // A different clip is a different job and message.
    stack
        .post(
            "/v1/jobs",
            &json!({"url": url, "start": "00:00:03", "stop": "00:00:07"}),
        )
        .await;
    assert_eq!(stack.queue_len(topology::DOWNLOAD).await, 2);
    // Not ready yet: 409 on v1, "not finished" on the seed API.
    let id = a["id"].as_str().expect("id");
    let (code, body) = stack.get_json(&format!("/v1/jobs/{id}/video")).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (409, Some("not_ready"))
    );
    let (code, body) = stack
        .get_json("/progress?reference=sixty_from_000003000000_till_000006000000.mp4")
        .await;
    assert_eq!((code, body["is_finished"].as_bool()), (200, Some(false)));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_listed_newest_first_and_filtered_by_state() {
    let stack = gateway_only().await;
    let url = format!("{}/sixty.mp4", stack.source.base_url);
    let mut ids = Vec::new();
    for stop in ["00:00:04", "00:00:05", "00:00:06"] {
        let (_, job) = stack
            .post("/v1/jobs", &json!({"url": url, "stop": stop}))
            .await;
        ids.push(job["id"].as_str().expect("id").to_owned());
    }
    let listed = |body: &Value| -> Vec<String> {
        body["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .map(|j| j["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let (code, body) = stack.get_json("/v1/jobs").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        listed(&body),
        ids.iter().rev().cloned().collect::<Vec<_>>(),
        "newest first"
    );
    let (_, body) = stack.get_json("/v1/jobs?limit=2").await;
    assert_eq!(listed(&body).len(), 2);
    let (_, body) = stack.get_json("/v1/jobs?state=queued&limit=100").await;
    assert_eq!(listed(&body).len(), 3);
    let (_, body) = stack.get_json("/v1/jobs?state=completed").await;
    assert!(listed(&body).is_empty());
    for bad in [
        "/v1/jobs?limit=0",
        "/v1/jobs?limit=101",
        "/v1/jobs?limit=x",
        "/v1/jobs?state=done",
    ] {
        let (code, body) = stack.get_json(bad).await;
        assert_eq!(
            (code, body["error"]["code"].as_str()),
            (400, Some("invalid_request")),
            "{bad}: {body}"
        );
    }
    stack.stop().await;
}

#[tokio::test]
async fn the_gateway_refuses_to_start_without_the_server_secret() {
    let mut settings = hopster_common::Settings::default();
    settings.gateway.secret_key = None;
    let err = api_gateway::Application::build(settings)
        .await
        .err()
        .expect("must refuse");
    assert!(
        err.to_string().contains("HOPSTER_SERVER_SECRET_KEY"),
        "{err}"
    );
}

/// What the gateway answers reads back as the contract's own types, and the lists it serves
/// the web page are the contract's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answers_are_the_contract_s_types() {
    let stack = gateway_only().await;
    let (code, body) = stack.get_json("/v1/vocabulary").await;
    assert_eq!(code, 200);
    let served: shared_proto::api::Vocabulary = serde_json::from_value(body).expect("vocabulary");
    assert_eq!(served, shared_proto::api::Vocabulary::new());
    let url = format!("{}/sixty.mp4", stack.source.base_url);
    let (code, job) = stack
        .post("/v1/jobs", &json!({"url": url, "stop": "00:00:02"}))
        .await;
    assert_eq!(code, 202);
    let job: shared_proto::JobView = serde_json::from_value(job).expect("a JobView");
    let (code, list) = stack.get_json("/v1/jobs?limit=1").await;
    assert_eq!(code, 200);
    let list: shared_proto::JobList = serde_json::from_value(list).expect("a JobList");
    assert_eq!(
        list.jobs.first().map(|j| &j.status.id),
        Some(&job.status.id)
    );
    let (code, error) = stack
        .post("/v1/jobs", &json!({"url": url, "colour": "red"}))
        .await;
    assert_eq!(code, 400);
    let error: shared_proto::ErrorBody = serde_json::from_value(error).expect("an ErrorBody");
    assert_eq!(error.error.code, shared_proto::ErrorCode::InvalidRequest);
    assert!(
        error.error.message.contains("colour"),
        "{}",
        error.error.message
    );
    stack.stop().await;
}
