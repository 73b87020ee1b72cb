//! Nothing stranded: a gateway killed between creating a job's status and publishing its
//! message (the `after_create` failpoint of a test build) leaves the job `queued` with no
//! message anywhere; the downloader's reaper publishes it again and the job completes.
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

use e2e::native::{env_from_settings, NativeStack};
use e2e::source::SourceServer;
use e2e::stack::RemoveOnDrop;
use e2e::TempDir;
use hopster_common::settings::Backend;
use hopster_common::{Broker, Store};
use serde_json::json;
use shared_proto::{topology, JobState};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_stranded_by_a_gateway_crash_is_published_again_and_completes() {
    let media = TempDir::new("hopster-source");
    std::fs::copy(e2e::media::sixty_second_video(), media.0.join("sixty.mp4")).expect("media");
    let source = SourceServer::start(media.0.clone());
    let fs = TempDir::new("hopster-store");
    let mut settings = e2e::stack::settings(Backend::Fs, &source.base_url, None, &fs.0);
    settings.recovery.requeue_after_secs = 2;
    let _topology = RemoveOnDrop::new(&settings.amqp.url, &settings.amqp.prefix);
    let store = Store::from_settings(&settings.store).expect("store");
    let env = env_from_settings(&settings);
    // The workers first, without the reaper's help yet: the gateway crashes at the failpoint.
    let mut stack = NativeStack::start(&["downloader-worker", "transcoder-worker"], move |name| {
        let mut env = env.clone();
        if name == "api-gateway" {
            env.insert("HOPSTER_FAILPOINT".into(), "after_create".into());
        }
        env
    })
    .await;
    let url = format!("{}/sixty.mp4", source.base_url);
    let submitted = stack
        .api
        .http
        .post(stack.api.url("/v1/jobs"))
        .json(&json!({"url": url, "start": "00:00:02", "stop": "00:00:04"}))
        .send()
        .await;
    assert!(
        submitted.is_err(),
        "the gateway died before answering: {submitted:?}"
    );
    let exit = stack.services[0].wait_exit(Duration::from_secs(10));
    assert!(exit.is_some_and(|s| !s.success()), "{exit:?}");

    // Stranded: a queued status, and no message in the download queue.
    let stranded = store
        .stale_queued(u64::MAX, None)
        .await
        .expect("listing statuses");
    assert_eq!(stranded.len(), 1, "{stranded:?}");
    let id = stranded[0].id.clone();
    assert_eq!(stranded[0].spec.url, url);
    let broker = Broker::connect(&settings.amqp, "recovery-test")
        .await
        .expect("broker");
    assert_eq!(broker.ready(topology::DOWNLOAD).await.expect("ready"), 0);
    broker.close().await;

    // The reaper (2 s here) publishes it again; it completes.
    let started = Instant::now();
    let done = loop {
        let status = store.status(&id).await.expect("status").expect("exists");
        if status.state.is_terminal() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "still {} after {:?}: {}",
            status.state.as_str(),
            started.elapsed(),
            stack.log_tail("downloader-worker")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done.state, JobState::Completed, "{done:?}");
    let duration = done.result.as_ref().expect("result").duration_secs;
    assert!((duration - 2.0).abs() <= 0.05, "{duration}");
    assert!(
        stack.logs_text().contains("published again"),
        "the reaper said what it did"
    );
    eprintln!(
        "FIGURE reaper: the stranded job completed {:?} after the gateway died (requeue_after 2 s)",
        started.elapsed()
    );
}
