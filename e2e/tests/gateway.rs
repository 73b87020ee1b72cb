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

/// Every malformed input gets its documented status and code, never a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_their_status_and_code() {
    let stack = gateway_only().await;
    let url = format!("{}/sixty.mp4", stack.source.base_url);
    let raw = |body: &str| body.to_owned();
    let v1_cases: Vec<(String, u16, &str)> = vec![
        (raw("not json"), 400, "invalid_json"),
        (raw("[1,2]"), 400, "invalid_json"),
        (raw("{}"), 400, "missing_source"),
        (
            json!({"url": url, "video_id": "sixty"}).to_string(),
            400,
            "missing_source",
        ),
        (
            json!({"url": "file:///etc/passwd"}).to_string(),
            400,
            "invalid_url",
        ),
        (json!({"url": 5}).to_string(), 400, "invalid_request"),
        (
            json!({"url": url, "colour": "red"}).to_string(),
            400,
            "invalid_request",
        ),
        (
            json!({"video_id": "../src"}).to_string(),
            400,
            "invalid_video_id",
        ),
        (
            json!({"url": url, "start": "5"}).to_string(),
            400,
            "invalid_timecode",
        ),
        (
            json!({"url": url, "start": "Mon"}).to_string(),
            400,
            "invalid_timecode",
        ),
        (
            json!({"url": url, "stop": "-00:00:01"}).to_string(),
            400,
            "invalid_timecode",
        ),
        (
            json!({"url": url, "start": "00:00:05", "stop": "00:00:05"}).to_string(),
            400,
            "invalid_clip_range",
        ),
        (
            json!({"url": url, "start": "00:00:06", "stop": "00:00:05"}).to_string(),
            400,
            "invalid_clip_range",
        ),
        (
            format!("{{\"url\": \"{}\"}}", "x".repeat(70_000)),
            413,
            "body_too_large",
        ),
    ];
    for (body, status, code) in v1_cases {
        let r = stack
            .http
            .post(stack.url("/v1/jobs"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("POST");
        let got_status = r.status().as_u16();
        let got: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(
            (got_status, got["error"]["code"].as_str()),
            (status, Some(code)),
            "{}: {got}",
            &body[..body.len().min(80)]
        );
        assert!(!got["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty());
    }
    for (path, status, code) in [
        (
            "/v1/jobs/0123456789abcdef0123456789abcdef",
            404,
            "unknown_job",
        ),
        ("/v1/jobs/..%2F..%2Fetc%2Fpasswd", 404, "unknown_job"),
        (
            "/v1/jobs/0123456789abcdef0123456789abcdef/video",
            404,
            "unknown_job",
        ),
        ("/v2/nothing", 404, "unknown_route"),
    ] {
        let (got_status, got) = stack.get_json(path).await;
        assert_eq!(
            (got_status, got["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}: {got}"
        );
    }

    let seed_posts: Vec<(String, u64)> = vec![
        (raw("not json"), 100),
        (raw("[1]"), 100),
        (raw("{}"), 200),
        (json!({"video_id": null}).to_string(), 200),
        (json!({"video_id": 7}).to_string(), 200),
        (json!({"video_id": "../src"}).to_string(), 200),
        (json!({"video_id": "sixty", "start": "5"}).to_string(), 300),
        (
            json!({"video_id": "sixty", "start": "Mon"}).to_string(),
            300,
        ),
        (json!({"video_id": "sixty", "start": 5}).to_string(), 300),
        (
            json!({"video_id": "sixty", "start": "00:00:05", "stop": "00:00:05"}).to_string(),
            300,
        ),
        (
            json!({"video_id": "sixty", "start": "00:00:06", "stop": "00:00:05"}).to_string(),
            300,
        ),
    ];
    for (body, code) in seed_posts {
        let r = stack
            .http
            .post(stack.url("/schedule"))
            .body(body.clone())
            .send()
            .await
            .expect("POST");
        let got_status = r.status().as_u16();
        let got: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(
            (got_status, got["error"]["code"].as_u64()),
            (400, Some(code)),
            "{body}: {got}"
        );
    }
    for (path, code) in [
        ("/progress", 100),
        ("/download", 100),
        (
            "/progress?reference=never_scheduled_from_start_till_end.mp4",
            200,
        ),
        ("/progress?reference=a%2Bb_from_start_till_end.mp4", 200),
        ("/download?video_file=..%2F..%2Fetc%2Fpasswd", 200),
        ("/download?video_file=..%2Fsrc_from_start_till_end.mp4", 200),
        ("/download?video_file=never_from_start_till_end.mp4", 200),
    ] {
        let (got_status, got) = stack.get_json(path).await;
        assert_eq!(
            (got_status, got["error"]["code"].as_u64()),
            (400, Some(code)),
            "{path}: {got}"
        );
    }
    // Nothing malformed reached the queue.
    assert_eq!(stack.queue_len(topology::DOWNLOAD).await, 0);
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
