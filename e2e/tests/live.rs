//! Live progress and notifications, end to end: Server-Sent Events fed by the events
//! exchange, and signed webhooks retried after a failure.
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

use e2e::hook::HookServer;
use e2e::stack::{Options, Stack};
use futures::StreamExt;
use hmac::{Hmac, Mac};
use hopster_common::settings::Backend;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const JOB_DEADLINE: Duration = Duration::from_secs(120);

/// Reads `text/event-stream` from `path` until the server ends it; returns (event, data).
async fn events(stack: &Stack, path: &str) -> Vec<(String, Value)> {
    let r = stack
        .http
        .get(stack.url(path))
        .send()
        .await
        .expect("GET events");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut body = r.bytes_stream();
    let mut buffer = String::new();
    let started = Instant::now();
    while let Ok(Some(chunk)) = tokio::time::timeout(JOB_DEADLINE, body.next()).await {
        buffer.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        assert!(started.elapsed() < JOB_DEADLINE, "the stream did not end");
    }
    buffer
        .split("\n\n")
        .filter_map(|frame| {
            let mut event = None;
            let mut data = None;
            for line in frame.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = Some(e.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(d).expect("data is JSON"));
                }
            }
            Some((event?, data?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_deliver_every_state_in_order_and_end() {
    let stack = Stack::spawn(Options {
        backend: Backend::Fs,
        workers: true,
    })
    .await;
    let url = format!("{}/sixty.mp4", stack.source.base_url);
    let (code, job) = stack
        .post(
            "/v1/jobs",
            &json!({"url": url, "start": "00:00:05", "stop": "00:00:15"}),
        )
        .await;
    assert_eq!(code, 202);
    let id = job["id"].as_str().expect("id");
    let seen = events(&stack, &format!("/v1/jobs/{id}/events")).await;
    let states: Vec<&str> = seen.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(states.last(), Some(&"completed"), "{states:?}");
    let order = [
        "queued",
        "downloading",
        "transcoding",
        "uploading",
        "completed",
    ];
    let ranks: Vec<usize> = states
        .iter()
        .map(|s| order.iter().position(|o| o == s).expect("a known state"))
        .collect();
    assert!(
        ranks.windows(2).all(|w| w[0] <= w[1]),
        "in order: {states:?}"
    );
    // The stream began before the job left the queue or while it downloaded, so every later
    // state was pushed as it happened.
    for state in ["transcoding", "uploading", "completed"] {
        assert!(states.contains(&state), "{state} missing from {states:?}");
    }
    // Progress too: the transcoding events carry rising percentages.
    let percents: Vec<f64> = seen
        .iter()
        .filter(|(e, _)| e == "transcoding")
        .filter_map(|(_, d)| d["progress"]["transcode"]["percent"].as_f64())
        .collect();
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");
    let last = &seen.last().expect("an event").1;
    assert_eq!(last["result"]["key"], format!("results/{id}.mp4"));
    assert_eq!(last["links"]["events"], format!("/v1/jobs/{id}/events"));
    // A finished job's stream is its final state, at once.
    let again = events(&stack, &format!("/v1/jobs/{id}/events")).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].0, "completed");
    let (code, body) = stack
        .get_json("/v1/jobs/0123456789abcdef0123456789abcdef/events")
        .await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (404, Some("unknown_job"))
    );
    stack.stop().await;
}

fn hmac_hex(secret: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(message);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_signed_retried_after_a_500_and_recorded() {
    let hook = HookServer::start(vec![500, 200]).await;
    let failing_hook = HookServer::start(vec![200]).await;
    let stack = Stack::spawn_with(
        Options {
            backend: Backend::Fs,
            workers: true,
        },
        |s| s.notify.retry_base_ms = 200,
    )
    .await;
    let url = format!("{}/sixty.mp4", stack.source.base_url);
    let (code, job) = stack
        .post(
            "/v1/jobs",
            &json!({"url": url, "start": "00:00:01", "stop": "00:00:02", "callback_url": hook.url}),
        )
        .await;
    assert_eq!(code, 202, "{job}");
    assert_eq!(job["spec"]["callback_url"], hook.url);
    let id = job["id"].as_str().expect("id").to_owned();
    // A job that fails notifies too.
    let (_, failed) = stack
        .post(
            "/v1/jobs",
            &json!({"url": format!("{}/missing.mp4", stack.source.base_url),
                    "callback_url": failing_hook.url}),
        )
        .await;
    let failed_id = failed["id"].as_str().expect("id").to_owned();

    let (done, _) = stack.wait_for_job(&id, JOB_DEADLINE).await;
    assert_eq!(done["state"], "completed");
    stack
        .wait_until(JOB_DEADLINE, "two callback attempts", || async {
            let (_, s) = stack.get_json(&format!("/v1/jobs/{id}")).await;
            s["notifications"].as_array().map_or(0, Vec::len) == 2
        })
        .await;
    let received = hook.received();
    assert_eq!(received.len(), 2, "one 500, then one retry");
    for r in &received {
        assert_eq!(r.path, "/hook");
        assert_eq!(r.headers["content-type"], "application/json");
        let timestamp = &r.headers["hopster-timestamp"];
        let age = hopster_common::now_ms() / 1000 - timestamp.parse::<u64>().expect("seconds");
        assert!(age < 120, "a fresh timestamp");
        // The receiver's check: HMAC-SHA256 over `timestamp.body` with the server secret.
        let mut signed = format!("{timestamp}.").into_bytes();
        signed.extend(&r.body);
        assert_eq!(
            r.headers["hopster-signature"],
            format!("v1={}", hmac_hex("test-secret", &signed))
        );
        assert_ne!(
            r.headers["hopster-signature"],
            format!("v1={}", hmac_hex("another-secret", &signed))
        );
        let body: Value = serde_json::from_slice(&r.body).expect("JSON body");
        assert_eq!(
            (body["id"].as_str(), body["state"].as_str()),
            (Some(id.as_str()), Some("completed"))
        );
    }
    let (_, status) = stack.get_json(&format!("/v1/jobs/{id}")).await;
    let attempts = status["notifications"].as_array().expect("attempts");
    assert_eq!(attempts[0]["attempt"], 1);
    assert_eq!(attempts[0]["http_status"], 500);
    assert_eq!(attempts[0]["delivered"], false);
    assert_eq!(attempts[1]["attempt"], 2);
    assert_eq!(attempts[1]["http_status"], 200);
    assert_eq!(attempts[1]["delivered"], true);
    assert!(attempts[1]["at_ms"].as_u64() > attempts[0]["at_ms"].as_u64());

    let (failed_status, _) = stack.wait_for_job(&failed_id, JOB_DEADLINE).await;
    assert_eq!(failed_status["state"], "failed");
    stack
        .wait_until(JOB_DEADLINE, "the failed job's callback", || async {
            !failing_hook.received().is_empty()
        })
        .await;
    let body: Value = serde_json::from_slice(&failing_hook.received()[0].body).expect("JSON body");
    assert_eq!(body["state"], "failed");
    assert_eq!(body["error"]["code"], "source_not_found");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_past_its_give_up_age_is_recorded_as_given_up_and_parked_once() {
    // With no time to retry in, the first failed delivery is the last: the worker loop's policy
    // (the notifier's own, declared once) gives up, the attempt says so, and the message is
    // parked in the dead-letter queue instead of looping.
    let hook = HookServer::start(vec![500, 500, 500]).await;
    let stack = Stack::spawn_with(
        Options {
            backend: Backend::Fs,
            workers: true,
        },
        |s| s.notify.give_up_after_secs = 0,
    )
    .await;
    let url = format!("{}/sixty.mp4", stack.source.base_url);
    let (code, job) = stack
        .post(
            "/v1/jobs",
            &json!({"url": url, "start": "00:00:01", "stop": "00:00:02", "callback_url": hook.url}),
        )
        .await;
    assert_eq!(code, 202, "{job}");
    let id = job["id"].as_str().expect("id").to_owned();
    let (done, _) = stack.wait_for_job(&id, JOB_DEADLINE).await;
    assert_eq!(done["state"], "completed");
    stack
        .wait_until(JOB_DEADLINE, "the parked callback", || async {
            stack.queue_len(shared_proto::topology::DEAD).await == 1
        })
        .await;
    let (_, status) = stack.get_json(&format!("/v1/jobs/{id}")).await;
    let attempts = status["notifications"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["http_status"], 500);
    assert_eq!(attempts[0]["gave_up"], true);
    assert_eq!(hook.received().len(), 1);
    // The job stays completed: a callback's failure is not the job's.
    assert_eq!(status["state"], "completed");
    stack.stop().await;
}
