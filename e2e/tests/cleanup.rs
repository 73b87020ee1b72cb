//! Tests leave nothing on the shared broker: a stack that ran a job with a callback (so every
//! queue of its topology, the notify queues included, was declared and used) and then
//! stopped has no queue or exchange of its prefix left, as `rabbitmqctl` lists them; nor has
//! a stack whose test failed before stopping it.
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

use e2e::hook::HookServer;
use e2e::stack::{broker_names, Options, Stack};
use hopster_common::settings::Backend;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_stack_leaves_no_queue_or_exchange_behind() {
    let hook = HookServer::start(vec![200]).await;
    let stack = Stack::spawn(Options {
        backend: Backend::Fs,
        workers: true,
    })
    .await;
    let prefix = format!("{}.", stack.settings.amqp.prefix);
    let url = format!("{}/sixty.mp4", stack.source.base_url);
    let (code, job) = stack
        .post(
            "/v1/jobs",
            &json!({"url": url, "start": "00:00:01", "stop": "00:00:02", "callback_url": hook.url}),
        )
        .await;
    assert_eq!(code, 202, "{job}");
    let id = job["id"].as_str().expect("an id");
    let (status, _) = stack.wait_for_job(id, Duration::from_secs(60)).await;
    assert_eq!(status["state"], "completed", "{status}");
    stack
        .wait_until(Duration::from_secs(30), "the callback", || async {
            let (_, job) = stack.get_json(&format!("/v1/jobs/{id}")).await;
            job["notifications"]
                .as_array()
                .is_some_and(|n| n.iter().any(|a| a["delivered"] == true))
        })
        .await;

    let before = broker_names(&prefix);
    for name in ["download", "transcode", "notify", "inspect", "dead"] {
        assert!(
            before
                .iter()
                .any(|n| n.ends_with(&format!("{prefix}{name}"))),
            "{prefix}{name} was declared: {before:?}"
        );
    }
    stack.stop().await;
    let after = broker_names(&prefix);
    assert!(after.is_empty(), "left on the broker: {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_whose_test_fails_before_stop_still_leaves_nothing_behind() {
    let prefix = e2e::random_name("hopster-test");
    let named = prefix.clone();
    let failed = tokio::spawn(async move {
        let _stack = Stack::spawn_with(
            Options {
                backend: Backend::Fs,
                workers: true,
            },
            move |s| s.amqp.prefix = named,
        )
        .await;
        let declared = broker_names(&format!("{}.", _stack.settings.amqp.prefix));
        assert!(!declared.is_empty(), "the stack declared its topology");
        panic!("a test failing before it stops its stack");
    })
    .await;
    assert!(failed.is_err_and(|e| e.is_panic()));
    let after = broker_names(&prefix);
    assert!(after.is_empty(), "left on the broker: {after:?}");
}
