//! Issue 19's cluster test: a three-node RabbitMQ cluster of containers (the compose file's
//! stand-in image) on a private network, quorum queues, the services as processes with
//! `amqp.urls` listing the three nodes. 50 jobs are in flight when the node that leads the
//! transcode queue is killed (`docker kill`); once the gateway accepts again a second node is
//! taken off the network (`docker network disconnect`) and put back. Afterwards every job
//! has completed, each exactly once, each clip of the right duration.
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

use e2e::cluster::Cluster;
use e2e::native::{env_from_settings, NativeStack};
use e2e::source::SourceServer;
use e2e::TempDir;
use hopster_common::settings::Backend;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const JOBS: usize = 50;
const CLIP_SECS: f64 = 2.0;

/// The `i`th distinct clip of the sixty-second source.
fn clip(url: &str, i: usize) -> Value {
    let start = (i as f64) * 0.5;
    let at = |t: f64| {
        format!(
            "00:00:{:02}.{:03}",
            t as u64,
            ((t.fract()) * 1000.0).round() as u64
        )
    };
    json!({"url": url, "start": at(start), "stop": at(start + CLIP_SECS)})
}

/// How many of `ids` have completed.
async fn completed(api: &e2e::api::Api, ids: &[String]) -> usize {
    let mut n = 0;
    for id in ids {
        let (_, status) = api.get_json(&format!("/v1/jobs/{id}")).await;
        n += usize::from(status["state"] == "completed");
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_jobs_survive_a_killed_leader_and_a_partitioned_node() {
    let cluster = Cluster::start(3);
    let media = TempDir::new("hopster-source");
    std::fs::copy(e2e::media::sixty_second_video(), media.0.join("sixty.mp4")).expect("media");
    let source = SourceServer::start(media.0.clone());
    let fs = TempDir::new("hopster-store");
    let mut settings = e2e::stack::settings(Backend::Fs, &source.base_url, None, &fs.0);
    cluster.configure(&mut settings.amqp);
    let prefix = settings.amqp.prefix.clone();
    let env = env_from_settings(&settings);
    let stack = NativeStack::start(
        &[
            "downloader-worker",
            "transcoder-worker",
            "transcoder-worker",
        ],
        move |_| env.clone(),
    )
    .await;
    let url = format!("{}/sixty.mp4", source.base_url);
    let mut ids = Vec::new();
    for i in 0..JOBS {
        let (code, job) = stack.api.post("/v1/jobs", &clip(&url, i)).await;
        assert_eq!(code, 202, "{job}");
        ids.push(job["id"].as_str().expect("id").to_owned());
    }
    let started = Instant::now();
    while completed(&stack.api, &ids).await < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "five jobs never completed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Kill the leader of the transcode queue.
    let queue = format!("{prefix}.transcode");
    let leader = cluster
        .leader(&queue, 0)
        .expect("the transcode queue's leader");
    let done_before = completed(&stack.api, &ids).await;
    cluster.kill(leader);
    let killed = Instant::now();
    let mut refused = 0;
    let mut probe = JOBS;
    let accepted = loop {
        let (code, body) = stack.api.post("/v1/jobs", &clip(&url, probe)).await;
        match code {
            202 => break body,
            503 => refused += 1,
            other => panic!("{other}: {body}"),
        }
        probe += 1;
        assert!(
            killed.elapsed() < Duration::from_secs(120),
            "never accepted again"
        );
    };
    let accepting_after = killed.elapsed();
    ids.push(accepted["id"].as_str().expect("id").to_owned());

    // Then cut a second node off the network, and put it back.
    let second = (0..3).find(|i| *i != leader).expect("another node");
    let third = (0..3)
        .find(|i| *i != leader && *i != second)
        .expect("a third node");
    cluster.disconnect(second);
    // Each of the two left is a minority now (pause_minority: both pause).
    let cut_off = cluster.wait_running(third, 1, true, Duration::from_secs(90));
    cluster.reconnect(second);
    let healed = cluster.wait_running(third, 2, false, Duration::from_secs(180));

    // Every job completes, once, with the right length.
    let mut last = Duration::ZERO;
    for id in &ids {
        let (status, _) = stack.api.wait_for_job(id, Duration::from_secs(300)).await;
        assert_eq!(
            status["state"],
            "completed",
            "{status}\n{}",
            stack.log_tail("transcoder-worker")
        );
        let duration = status["result"]["duration_secs"]
            .as_f64()
            .expect("duration");
        assert!((duration - CLIP_SECS).abs() <= 0.05, "{id}: {duration}");
        last = killed.elapsed().max(last);
    }
    let logs = stack.logs_text();
    // Why a submission was refused, as the gateway logged it.
    for line in logs
        .lines()
        .filter(|l| l.contains("api_gateway") && l.contains(" broker: "))
    {
        eprintln!("refused: {line}");
    }
    for id in &ids {
        let written = logs.matches(&format!("job {id}: result stored (")).count();
        assert_eq!(written, 1, "job {id}'s result was written {written} times");
    }
    let nacked = logs.matches("was refused; trying again").count();
    eprintln!(
        "FIGURE cluster: {JOBS} jobs, {done_before} done when the leader (node {}) was killed; \
         the gateway accepted again {accepting_after:?} after the kill ({refused} refused with \
         503; {nacked} publishes nacked during the election and sent again); node {} cut off (seen by the third after {cut_off:?}) and back, the cluster whole \
         again {healed:?} after the reconnect; \
         all {} jobs completed, each result written once, the last {last:?} after the kill",
        leader + 1,
        second + 1,
        ids.len()
    );
}
