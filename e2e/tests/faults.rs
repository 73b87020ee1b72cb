//! Fault tests with real processes and a real broker: a transcoder killed mid-transcode, a
//! broker restart under load, S3 outages shorter and longer than the retry budget, SIGTERM
//! during a transcode. Each asserts exact counts. They run one at a time (they time
//! recovery, and two at once would only measure each other).
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

use e2e::native::{env_from_settings, NativeStack};
use e2e::rabbit::PrivateBroker;
use e2e::s3::S3Server;
use e2e::source::SourceServer;
use e2e::stack::{delete_topology, queue_counts, RemoveOnDrop};
use e2e::TempDir;
use futures::StreamExt;
use hopster_common::settings::{Backend, Settings};
use hopster_common::Store;
use object_store::path::Path;
use serde_json::{json, Value};
use shared_proto::topology::{self, Topology};
use std::time::{Duration, Instant};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const DEADLINE: Duration = Duration::from_secs(180);

struct Rig {
    stack: NativeStack,
    /// Removes the test's queues and exchanges even when it fails (after `stack`, whose
    /// services would declare them again).
    _topology: RemoveOnDrop,
    settings: Settings,
    store: Store,
    source: SourceServer,
    s3: S3Server,
    _media: TempDir,
    _fs: TempDir,
}

/// A native stack on an in-process S3 API, with `tune` applied to the settings.
async fn rig(amqp_url: Option<String>, workers: &[&str], tune: impl FnOnce(&mut Settings)) -> Rig {
    let media = TempDir::new("hopster-source");
    std::fs::copy(e2e::media::sixty_second_video(), media.0.join("sixty.mp4")).expect("media");
    let source = SourceServer::start(media.0.clone());
    let s3 = S3Server::start().await;
    let fs = TempDir::new("hopster-unused-fs");
    let mut settings = e2e::stack::settings(Backend::S3, &source.base_url, Some(&s3), &fs.0);
    if let Some(url) = amqp_url {
        settings.amqp.url = url;
    }
    tune(&mut settings);
    let store = Store::from_settings(&settings.store).expect("store");
    let env = env_from_settings(&settings);
    let topology = RemoveOnDrop::new(&settings.amqp.url, &settings.amqp.prefix);
    let stack = NativeStack::start(workers, move |_| env.clone()).await;
    Rig {
        stack,
        _topology: topology,
        settings,
        store,
        source,
        s3,
        _media: media,
        _fs: fs,
    }
}

impl Rig {
    fn url(&self) -> String {
        format!("{}/sixty.mp4", self.source.base_url)
    }

    fn topology(&self) -> Topology {
        Topology::new(&self.settings.amqp.prefix)
    }

    async fn submit(&self, body: Value) -> String {
        let (code, job) = self.stack.api.post("/v1/jobs", &body).await;
        assert_eq!(code, 202, "{job}");
        job["id"].as_str().expect("id").to_owned()
    }

    async fn status(&self, id: &str) -> Value {
        self.stack.api.get_json(&format!("/v1/jobs/{id}")).await.1
    }

    /// Waits until the job is transcoding and ffmpeg has reported progress.
    async fn wait_mid_transcode(&self, id: &str) {
        let started = Instant::now();
        loop {
            let s = self.status(id).await;
            if s["state"] == "transcoding"
                && s["progress"]["transcode"]["percent"]
                    .as_f64()
                    .unwrap_or(0.0)
                    >= 5.0
            {
                return;
            }
            assert!(
                s["state"] != "completed",
                "the transcode finished before the fault: make it slower"
            );
            assert!(
                started.elapsed() < DEADLINE,
                "never reached the middle of a transcode: {s}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn result_objects(&self) -> usize {
        let prefix = Path::from("results");
        self.store
            .objects()
            .list(Some(&prefix))
            .collect::<Vec<_>>()
            .await
            .len()
    }

    async fn cleanup(&self) {
        let conn = lapin::Connection::connect(
            &self.settings.amqp.url,
            lapin::ConnectionProperties::default(),
        )
        .await
        .expect("broker");
        let channel = conn.create_channel().await.expect("channel");
        delete_topology(&channel, &self.topology()).await;
    }

    async fn queue_len(&self, key: &str) -> u32 {
        let conn = lapin::Connection::connect(
            &self.settings.amqp.url,
            lapin::ConnectionProperties::default(),
        )
        .await
        .expect("broker");
        let channel = conn.create_channel().await.expect("channel");
        queue_counts(&channel, &self.topology(), key).await.0
    }
}

/// A long transcode: every frame encoded, slowly (no passthrough: a clip whose frames a
/// copy gives exactly would be remuxed in a moment).
fn slow_transcoder(s: &mut Settings) {
    s.transcoder.preset = "veryslow".into();
    s.transcoder.threads = 1;
    s.transcoder.passthrough = false;
}

fn pid_of(worker: &Value) -> String {
    worker
        .as_str()
        .and_then(|w| w.rsplit(':').next())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transcoder_killed_mid_transcode_is_replaced_and_the_job_completes() {
    let _serial = SERIAL.lock().await;
    let mut rig = rig(
        None,
        &["downloader-worker", "transcoder-worker"],
        slow_transcoder,
    )
    .await;
    // 59 s of the video, every frame encoded: a long transcode.
    let id = rig
        .submit(json!({"url": rig.url(), "stop": "00:00:59"}))
        .await;
    rig.wait_mid_transcode(&id).await;
    let killed = &mut rig.stack.services[2];
    killed.signal("KILL");
    assert!(killed.wait_exit(Duration::from_secs(10)).is_some());
    let replacement = rig.stack.add("transcoder-worker");
    let (status, _) = rig.stack.api.wait_for_job(&id, DEADLINE).await;
    assert_eq!(status["state"], "completed", "{status}");
    assert_eq!(
        pid_of(&status["worker"]),
        rig.stack.services[replacement].pid().to_string()
    );
    assert_eq!(status["attempt"], 1, "a redelivery is not a retry");
    let duration = status["result"]["duration_secs"]
        .as_f64()
        .expect("duration");
    assert!((duration - 59.0).abs() <= 0.1, "{duration}");
    assert_eq!(rig.result_objects().await, 1);
    rig.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_jobs_in_flight_all_complete_across_a_broker_restart() {
    let _serial = SERIAL.lock().await;
    let broker = PrivateBroker::start();
    let rig = rig(
        Some(broker.url()),
        &["downloader-worker", "transcoder-worker"],
        |s| {
            s.transcoder.preset = "slow".into();
            // Encoded, not remuxed: jobs still in flight when the fault comes.
            s.transcoder.passthrough = false;
            s.amqp.publish_timeout_ms = 2000;
        },
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..20u32 {
        let body = json!({"url": rig.url(), "start": format!("00:00:{:02}", i * 2), "stop": format!("00:00:{:02}.5", i * 2 + 1)});
        ids.push(rig.submit(body).await);
    }
    // Restart while some are done and most are not.
    let started = Instant::now();
    loop {
        let mut done = 0;
        for id in &ids {
            done += usize::from(rig.status(id).await["state"] == "completed");
        }
        if done >= 2 {
            assert!(
                done < 20,
                "all done before the restart: make the jobs slower"
            );
            break;
        }
        assert!(started.elapsed() < DEADLINE, "no job completed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    broker.stop_app();
    // While the broker is away a submission is refused with a code, not hung or lost.
    let asked = Instant::now();
    let (code, body) = rig
        .stack
        .api
        .post("/v1/jobs", &json!({"url": rig.url(), "start": "00:00:59"}))
        .await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (503, Some("broker_unavailable")),
        "{body}"
    );
    assert!(asked.elapsed() < Duration::from_secs(10));
    tokio::time::sleep(Duration::from_secs(2)).await; // the outage itself
    broker.start_app();
    let restarted = Instant::now();
    // The gateway accepts again without being restarted.
    let accepted_after = loop {
        let (code, _) = rig
            .stack
            .api
            .post("/v1/jobs", &json!({"url": rig.url(), "start": "00:00:58"}))
            .await;
        if code == 202 {
            break restarted.elapsed();
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(60),
            "the gateway never recovered ({code})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut completed = 0;
    for id in &ids {
        let (status, _) = rig.stack.api.wait_for_job(id, DEADLINE).await;
        assert_eq!(status["state"], "completed", "{status}");
        let d = status["result"]["duration_secs"]
            .as_f64()
            .expect("duration");
        assert!((d - 1.5).abs() <= 0.05, "{id}: {d}");
        completed += 1;
    }
    let all_done_after = restarted.elapsed();
    assert_eq!(completed, 20);
    // 20 results plus the one accepted after the restart, which may still run.
    let objects = rig.result_objects().await;
    assert!((20..=21).contains(&objects), "{objects} result objects");
    assert_eq!(rig.queue_len(topology::DEAD).await, 0);
    eprintln!("FIGURE broker restart: gateway accepting again {accepted_after:?} after start_app; 20/20 jobs completed, the last {all_done_after:?} after start_app");
    rig.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_retry_through_a_twenty_second_s3_outage_and_complete() {
    let _serial = SERIAL.lock().await;
    let mut rig = rig(None, &["downloader-worker", "transcoder-worker"], |s| {
        s.transcoder.preset = "slow".into();
        // Encoded, not remuxed: jobs still in flight when the fault comes.
        s.transcoder.passthrough = false;
        s.worker.retry_base_ms = 2000;
        s.worker.retry_max_ms = 16_000;
        s.worker.max_attempts = 5;
        s.store.max_retries = 1;
        s.store.retry_timeout_secs = 2;
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..6u32 {
        ids.push(rig.submit(json!({"url": rig.url(), "start": format!("00:00:{:02}", i * 5), "stop": format!("00:00:{:02}", i * 5 + 2)})).await);
    }
    let started = Instant::now();
    while rig.status(&ids[0]).await["state"] == "queued" {
        assert!(started.elapsed() < DEADLINE);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rig.s3.outage();
    tokio::time::sleep(Duration::from_secs(20)).await; // the outage itself
    rig.s3.restore().await;
    let mut retried = 0;
    for id in &ids {
        let (status, _) = rig.stack.api.wait_for_job(id, DEADLINE).await;
        assert_eq!(status["state"], "completed", "{status}");
        retried += status["retries"].as_u64().expect("retries");
    }
    assert!(retried > 0, "the outage should have cost some retries");
    assert_eq!(rig.result_objects().await, 6);
    assert_eq!(rig.queue_len(topology::DEAD).await, 0);
    eprintln!("FIGURE s3 outage 20 s: 6/6 jobs completed with {retried} retries");
    rig.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_s3_outage_longer_than_the_retry_budget_fails_the_jobs_into_the_dead_letter_queue() {
    let _serial = SERIAL.lock().await;
    let mut rig = rig(None, &[], |s| {
        s.worker.retry_base_ms = 200;
        s.worker.retry_max_ms = 400;
        s.worker.max_attempts = 2;
        // Three at once, so all three exhaust their budget during the outage.
        s.amqp.prefetch = 3;
        s.store.max_retries = 0;
        s.store.retry_timeout_secs = 1;
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..3u32 {
        ids.push(
            rig.submit(
                json!({"url": rig.url(), "start": format!("00:00:{:02}", i), "stop": "00:00:10"}),
            )
            .await,
        );
    }
    rig.s3.outage();
    rig.stack.add("downloader-worker");
    let started = Instant::now();
    while rig.queue_len(topology::DEAD).await < 3 {
        assert!(
            started.elapsed() < DEADLINE,
            "the messages never reached the dead-letter queue"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rig.s3.restore().await;
    for id in &ids {
        let (status, _) = rig.stack.api.wait_for_job(id, DEADLINE).await;
        assert_eq!(status["state"], "failed", "{status}");
        assert_eq!(status["error"]["code"], "store_unavailable", "{status}");
        assert!(
            status["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("gave up after 2 tries"),
            "{status}"
        );
    }
    assert_eq!(
        rig.queue_len(topology::DEAD).await,
        3,
        "parked exactly once each"
    );
    assert_eq!(rig.queue_len(topology::DOWNLOAD).await, 0);
    assert_eq!(rig.result_objects().await, 0);
    rig.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_a_transcode_hands_the_job_back_and_it_completes_elsewhere() {
    let _serial = SERIAL.lock().await;
    let mut rig = rig(None, &["downloader-worker", "transcoder-worker"], |s| {
        slow_transcoder(s);
        s.worker.shutdown_grace_secs = 1;
    })
    .await;
    // 59 s of the video, every frame encoded: a long transcode.
    let id = rig
        .submit(json!({"url": rig.url(), "stop": "00:00:59"}))
        .await;
    rig.wait_mid_transcode(&id).await;
    let stopping = &mut rig.stack.services[2];
    let asked = Instant::now();
    stopping.signal("TERM");
    let exit = stopping
        .wait_exit(Duration::from_secs(15))
        .expect("the transcoder exits after its grace period");
    assert!(exit.success(), "SIGTERM exits 0: {exit:?}");
    let took = asked.elapsed();
    let replacement = rig.stack.add("transcoder-worker");
    let (status, _) = rig.stack.api.wait_for_job(&id, DEADLINE).await;
    assert_eq!(status["state"], "completed", "{status}");
    assert_eq!(
        pid_of(&status["worker"]),
        rig.stack.services[replacement].pid().to_string()
    );
    assert_eq!(rig.result_objects().await, 1);
    eprintln!("FIGURE sigterm: transcoder exited 0 {took:?} after SIGTERM (grace 1 s); the job completed on the replacement");
    rig.cleanup().await;
}
