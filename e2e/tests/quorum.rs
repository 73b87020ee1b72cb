//! `amqp.queue_type = "quorum"` on the machine's RabbitMQ (Debian's 3.10): every queue of the
//! topology is a quorum queue, a job runs through them, the delay queues' per-message TTL
//! still brings a retry back, and a message redelivered past the delivery limit is
//! dead-lettered by the queue itself, whatever its consumer does.
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

use e2e::stack::{Options, RemoveOnDrop, Stack};
use hopster_common::settings::{AmqpSettings, Backend, QueueType};
use hopster_common::Broker;
use lapin::options::{BasicGetOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use serde_json::json;
use shared_proto::topology::{self, Topology};
use std::time::{Duration, Instant};

fn quorum_settings() -> AmqpSettings {
    AmqpSettings {
        prefix: e2e::random_name("hopster-test-quorum"),
        queue_type: QueueType::Quorum,
        delivery_limit: 3,
        ..AmqpSettings::default()
    }
}

/// `(name, type, arguments)` of the broker's queues under `prefix`, from rabbitmqctl.
fn queue_types(prefix: &str) -> Vec<(String, String)> {
    let out = e2e::as_root(&[
        "rabbitmqctl",
        "-q",
        "list_queues",
        "name",
        "type",
        "--formatter",
        "json",
    ])
    .output()
    .expect("rabbitmqctl");
    assert!(out.status.success(), "{out:?}");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    let mut found: Vec<(String, String)> = rows
        .iter()
        .filter_map(|r| {
            let name = r["name"].as_str()?;
            name.starts_with(prefix).then(|| {
                (
                    name.to_owned(),
                    r["type"].as_str().unwrap_or("?").to_owned(),
                )
            })
        })
        .collect();
    found.sort();
    found
}

/// Polls `queue` with basic.get until a message comes, up to `deadline`.
async fn get_one(
    channel: &lapin::Channel,
    queue: &str,
    deadline: Duration,
) -> lapin::message::BasicGetMessage {
    let started = Instant::now();
    loop {
        if let Some(message) = channel
            .basic_get(queue.into(), BasicGetOptions::default())
            .await
            .expect("basic.get")
        {
            return message;
        }
        assert!(started.elapsed() < deadline, "nothing arrived in {queue}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_queues_bring_retries_back_and_dead_letter_past_the_delivery_limit() {
    let settings = quorum_settings();
    let _topology = RemoveOnDrop::new(&settings.url, &settings.prefix);
    let broker = Broker::connect(&settings, "quorum-test")
        .await
        .expect("broker");
    let t = Topology::new(settings.prefix.clone());
    let types = queue_types(&settings.prefix);
    assert_eq!(types.len(), 9, "{types:?}");
    assert!(types.iter().all(|(_, kind)| kind == "quorum"), "{types:?}");

    let conn = lapin::Connection::connect(&settings.url, lapin::ConnectionProperties::default())
        .await
        .expect("connect");
    let channel = conn.create_channel().await.expect("channel");

    // A retry: into the delay queue with a per-message TTL; it expires back onto the work
    // queue (quorum queues take per-message TTLs since 3.10).
    let sent = Instant::now();
    broker
        .publish_raw(
            &Topology::retry_key(topology::DOWNLOAD),
            b"retry me",
            FieldTable::default(),
            Some(300),
        )
        .await
        .expect("publish to the delay queue");
    let back = get_one(
        &channel,
        &t.queue(topology::DOWNLOAD),
        Duration::from_secs(30),
    )
    .await;
    let waited = sent.elapsed();
    assert_eq!(back.delivery.data, b"retry me");
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    eprintln!("FIGURE quorum delay queue: a 300 ms TTL came back after {waited:?}");
    back.delivery
        .ack(lapin::options::BasicAckOptions::default())
        .await
        .expect("ack");

    // A message its consumer requeues every time (as a worker killed mid-job would): the
    // queue dead-letters it after `delivery_limit` redeliveries.
    broker
        .publish_raw(topology::TRANSCODE, b"poison", FieldTable::default(), None)
        .await
        .expect("publish");
    let mut deliveries = 0;
    let dead = t.queue(topology::DEAD);
    let started = Instant::now();
    loop {
        if let Some(parked) = channel
            .basic_get(dead.as_str().into(), BasicGetOptions::default())
            .await
            .expect("basic.get dead")
        {
            assert_eq!(parked.delivery.data, b"poison");
            break;
        }
        if let Some(m) = channel
            .basic_get(
                t.queue(topology::TRANSCODE).as_str().into(),
                BasicGetOptions::default(),
            )
            .await
            .expect("basic.get")
        {
            deliveries += 1;
            m.delivery
                .reject(BasicRejectOptions { requeue: true })
                .await
                .expect("reject");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never dead-lettered after {deliveries} deliveries"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The first delivery plus `delivery_limit` redeliveries; the next return parks it.
    assert_eq!(deliveries, settings.delivery_limit + 1);
    let _ = conn.close(0, "done".into()).await;
    broker.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_clip_runs_through_quorum_queues() {
    let amqp = quorum_settings();
    let stack = Stack::spawn_with(
        Options {
            backend: Backend::Fs,
            workers: true,
        },
        move |s| {
            s.amqp.queue_type = QueueType::Quorum;
            s.amqp.delivery_limit = amqp.delivery_limit;
        },
    )
    .await;
    let types = queue_types(stack.topology().prefix());
    assert!(
        types.len() == 9 && types.iter().all(|(_, kind)| kind == "quorum"),
        "{types:?}"
    );
    let url = format!("{}/sixty.mp4", stack.source.base_url);
    let (code, job) = stack
        .post(
            "/v1/jobs",
            &json!({"url": url, "start": "00:00:10", "stop": "00:00:13"}),
        )
        .await;
    assert_eq!(code, 202, "{job}");
    let (done, _) = stack
        .wait_for_job(job["id"].as_str().expect("id"), Duration::from_secs(120))
        .await;
    assert_eq!(done["state"], "completed", "{done}");
    let duration = done["result"]["duration_secs"].as_f64().expect("duration");
    assert!((duration - 3.0).abs() <= 0.05, "{duration}");
    stack.stop().await;
}
