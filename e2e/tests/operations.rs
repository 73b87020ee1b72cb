//! Operations: paging through jobs, the retention sweep, and every service's `/metrics`,
//! `/healthz` and `/readyz`.
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

use e2e::native::{env_from_settings, NativeStack};
use e2e::source::SourceServer;
use e2e::stack::{Options, Stack};
use e2e::TempDir;
use hopster_common::settings::Backend;
use hopster_common::Store;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

const JOB_DEADLINE: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_paged_newest_first_with_a_cursor() {
    let stack = Stack::spawn(Options {
        backend: Backend::S3,
        workers: false,
    })
    .await;
    let url = format!("{}/sixty.mp4", stack.source.base_url);
    let mut submitted = Vec::new();
    for second in 1..=5 {
        let (code, job) = stack
            .post(
                "/v1/jobs",
                &json!({"url": url, "start": format!("00:00:0{second}")}),
            )
            .await;
        assert_eq!(code, 202);
        submitted.push(job["id"].as_str().expect("id").to_owned());
        // Distinct creation times, so "newest first" has one answer.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (paged, pages) = page_all(&stack, 2).await;
    let ids: Vec<&String> = paged.iter().map(|(id, _)| id).collect();
    submitted.reverse();
    assert_eq!(
        ids,
        submitted.iter().collect::<Vec<_>>(),
        "newest first, each once"
    );
    assert_eq!(pages, 3);

    // Submitted at once, jobs share index objects (s3s-fs stores each as a file): every one
    // is still listed exactly once, newest first.
    let bodies: Vec<serde_json::Value> = (10..30)
        .map(|second| json!({"url": url, "start": format!("00:00:{second}")}))
        .collect();
    let burst =
        futures::future::join_all(bodies.iter().map(|body| stack.post("/v1/jobs", body))).await;
    assert!(burst.iter().all(|(code, _)| *code == 202), "{burst:?}");
    let (paged, _) = page_all(&stack, 3).await;
    let mut ids: Vec<&String> = paged.iter().map(|(id, _)| id).collect();
    assert!(
        paged.windows(2).all(|w| w[0].1 >= w[1].1),
        "newest first: {paged:?}"
    );
    ids.sort();
    ids.dedup();
    assert_eq!((paged.len(), ids.len()), (25, 25), "each job once");
    let (code, _) = stack.get_json("/v1/jobs?state=queued&limit=1").await;
    assert_eq!(code, 200);
    let (code, body) = stack.get_json("/v1/jobs?cursor=../../etc").await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    let (code, page) = stack.get_json("/v1/jobs?state=completed").await;
    assert_eq!(
        (code, page["jobs"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    stack.stop().await;
}

/// Every job `GET /v1/jobs` lists, `limit` to a page: (id, created_at_ms) in order, and
/// the number of pages.
async fn page_all(stack: &Stack, limit: usize) -> (Vec<(String, u64)>, usize) {
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/jobs?limit={limit}&cursor={c}"),
            None => format!("/v1/jobs?limit={limit}"),
        };
        let (code, page) = stack.get_json(&path).await;
        assert_eq!(code, 200, "{page}");
        let jobs = page["jobs"].as_array().expect("jobs");
        assert!(jobs.len() <= limit);
        paged.extend(jobs.iter().map(|j| {
            (
                j["id"].as_str().expect("id").to_owned(),
                j["created_at_ms"].as_u64().expect("created_at_ms"),
            )
        }));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (paged, pages),
        }
    }
}

async fn exists(store: &Store, key: &str) -> bool {
    store.head(key).await.expect("head").is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retention_sweep_deletes_old_outputs_and_sources_but_not_running_jobs() {
    let stack = Stack::spawn(Options {
        backend: Backend::S3,
        workers: true,
    })
    .await;
    let url = format!("{}/sixty.mp4", stack.source.base_url);
    let (_, job) = stack
        .post("/v1/jobs", &json!({"url": url, "stop": "00:00:02"}))
        .await;
    let id = job["id"].as_str().expect("id").to_owned();
    let (done, _) = stack.wait_for_job(&id, JOB_DEADLINE).await;
    assert_eq!(done["state"], "completed");
    let result = done["result"]["key"].as_str().expect("key").to_owned();
    let poster = done["result"]["poster_key"]
        .as_str()
        .expect("poster")
        .to_owned();
    let source = shared_proto::keys::source_key(&url);
    for key in [&result, &poster, &source] {
        assert!(exists(&stack.store, key).await, "{key} stored");
    }
    // A job still running (a whole-video job of the same source, so it needs the staged
    // source), and an orphan result from a crash long ago.
    let running = shared_proto::JobSpec::new(&url, None, None, None).expect("spec");
    let mut status = shared_proto::JobStatus::queued(running, 1);
    status.state = shared_proto::JobState::Transcoding;
    stack.store.put_status(&status).await.expect("put");
    let orphan = "results/ffffffffffffffffffffffffffffffff.mp4";
    stack
        .store
        .objects()
        .put(&Path::from(orphan), b"x".to_vec().into())
        .await
        .expect("put");

    // Nothing is old enough for a day's retention.
    let swept = stack
        .store
        .sweep(Duration::from_secs(86_400))
        .await
        .expect("sweep");
    assert_eq!(swept, Default::default());
    assert!(exists(&stack.store, &result).await);

    tokio::time::sleep(Duration::from_millis(20)).await;
    let swept = stack
        .store
        .sweep(Duration::from_millis(10))
        .await
        .expect("sweep");
    assert_eq!(
        (swept.jobs, swept.results, swept.sources),
        (1, 1, 0),
        "{swept:?}"
    );
    for key in [&result, &poster, orphan] {
        assert!(!exists(&stack.store, key).await, "{key} deleted");
    }
    assert!(
        exists(&stack.store, &source).await,
        "the staged source a running job refers to stays"
    );
    assert!(stack
        .store
        .status(&done_id(&id))
        .await
        .expect("read")
        .is_none());
    assert!(
        stack
            .store
            .status(&status.id)
            .await
            .expect("read")
            .is_some(),
        "a running job is never swept"
    );
    let (code, _) = stack.get_json(&format!("/v1/jobs/{id}/video")).await;
    assert_eq!(code, 404, "an expired result is gone, not an error");
    // Once that job has ended, its source goes with the next sweep.
    status.state = shared_proto::JobState::Failed;
    status.updated_at_ms = 1;
    stack.store.put_status(&status).await.expect("put");
    let swept = stack
        .store
        .sweep(Duration::from_millis(10))
        .await
        .expect("sweep");
    assert_eq!((swept.jobs, swept.sources), (1, 1), "{swept:?}");
    assert!(!exists(&stack.store, &source).await, "{source} deleted");
    stack.stop().await;
}

fn done_id(id: &str) -> shared_proto::JobId {
    shared_proto::JobId::parse(id).expect("id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_downloader_sweeps_on_its_own_schedule() {
    // Both workers are also given an ops port that is taken: that costs them their
    // endpoints (logged), not their work.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_at = taken.local_addr().expect("addr").to_string();
    let stack = Stack::spawn_with(
        Options {
            backend: Backend::Fs,
            workers: true,
        },
        |s| {
            s.retention.max_age_secs = 1;
            s.retention.sweep_interval_secs = 1;
            s.worker.http_bind = taken_at;
        },
    )
    .await;
    let url = format!("{}/sixty.mp4", stack.source.base_url);
    let (_, job) = stack
        .post("/v1/jobs", &json!({"url": url, "stop": "00:00:01"}))
        .await;
    let id = job["id"].as_str().expect("id").to_owned();
    let result = format!("results/{id}.mp4");
    stack
        .wait_until(JOB_DEADLINE, "the result to be stored", || async {
            exists(&stack.store, &result).await
        })
        .await;
    stack
        .wait_until(
            Duration::from_secs(30),
            "the sweep to delete the result",
            || async {
                !exists(&stack.store, &result).await
                    && stack
                        .store
                        .status(&done_id(&id))
                        .await
                        .expect("read")
                        .is_none()
            },
        )
        .await;
    stack.stop().await;
}

/// `name{labels} value` lines of a Prometheus text page, checked to parse.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            assert!(matches!(words.first(), Some(&"HELP" | &"TYPE")), "{line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let name = series.split('{').next().expect("name");
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad name: {line}"
        );
        assert_eq!(series.contains('{'), series.ends_with('}'), "{line}");
        out.insert(series.to_owned(), value);
    }
    out
}

async fn scrape(http: &reqwest::Client, port: u16, path: &str) -> (u16, String) {
    let r = http
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
        .expect("GET");
    (r.status().as_u16(), r.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_serves_metrics_health_and_readiness() {
    let media = TempDir::new("hopster-source");
    std::fs::copy(e2e::media::sixty_second_video(), media.0.join("sixty.mp4")).expect("media");
    let source = SourceServer::start(media.0.clone());
    let fs = TempDir::new("hopster-store");
    let settings = e2e::stack::settings(Backend::Fs, &source.base_url, None, &fs.0);
    // The services declare the topology; it goes when the test ends, passed or failed.
    let _topology = e2e::stack::RemoveOnDrop::new(&settings.amqp.url, &settings.amqp.prefix);
    // The workers pick their own ops ports (port 0) and log them: a port chosen here in
    // advance could be taken by another test's listener before the worker binds it.
    let env = env_from_settings(&settings);
    let mut stack = NativeStack::start(&["downloader-worker", "transcoder-worker"], move |_| {
        let mut env = env.clone();
        env.insert("HOPSTER__WORKER__HTTP_BIND".into(), "127.0.0.1:0".into());
        env
    })
    .await;
    let mut ops = BTreeMap::new();
    for name in ["downloader-worker", "transcoder-worker"] {
        let p = stack
            .logged_port(name, "operations endpoints on port ")
            .await;
        ops.insert(name, p);
    }
    let url = format!("{}/sixty.mp4", source.base_url);
    let (_, ok) = stack
        .api
        .post(
            "/v1/jobs",
            &json!({"url": url, "start": "00:00:02", "stop": "00:00:04"}),
        )
        .await;
    let (_, missing) = stack
        .api
        .post(
            "/v1/jobs",
            &json!({"url": format!("{}/missing.mp4", source.base_url)}),
        )
        .await;
    for (job, state) in [(&ok, "completed"), (&missing, "failed")] {
        let (done, _) = stack
            .api
            .wait_for_job(job["id"].as_str().expect("id"), JOB_DEADLINE)
            .await;
        assert_eq!(done["state"], state, "{done}");
    }
    let http = reqwest::Client::new();
    let mut pages = BTreeMap::new();
    for (name, p) in [("api-gateway", stack.port)].into_iter().chain(ops.clone()) {
        assert_eq!(scrape(&http, p, "/healthz").await.0, 200, "{name}");
        let (code, ready) = scrape(&http, p, "/readyz").await;
        assert_eq!(code, 200, "{name}: {ready}");
        assert!(ready.contains("\"broker\":true") && ready.contains("\"store\":true"));
        let (code, text) = scrape(&http, p, "/metrics").await;
        assert_eq!(code, 200, "{name}");
        pages.insert(name, parse_metrics(&text));
    }
    let value = |service: &str, series: &str| pages[service].get(series).copied().unwrap_or(0.0);
    assert_eq!(
        value("api-gateway", "hopster_jobs_total{state=\"queued\"}"),
        2.0
    );
    // Every answered request is counted by its route's pattern (never by the id in its path).
    assert_eq!(
        value(
            "api-gateway",
            "hopster_http_requests_total{route=\"/v1/jobs\",status=\"202\"}"
        ),
        2.0
    );
    assert!(
        value(
            "api-gateway",
            "hopster_http_requests_total{route=\"/v1/jobs/{id}\",status=\"200\"}"
        ) >= 2.0,
        "{:?}",
        pages["api-gateway"]
    );
    assert!(
        value(
            "api-gateway",
            "hopster_http_requests_total{route=\"/healthz\",status=\"200\"}"
        ) >= 1.0
    );
    assert_eq!(
        value(
            "downloader-worker",
            "hopster_jobs_total{state=\"downloading\"}"
        ),
        2.0
    );
    assert_eq!(
        value("downloader-worker", "hopster_jobs_total{state=\"failed\"}"),
        1.0
    );
    assert_eq!(
        value(
            "transcoder-worker",
            "hopster_jobs_total{state=\"completed\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            "transcoder-worker",
            "hopster_ffmpeg_speed_count{profile=\"mp4\"}"
        ),
        1.0
    );
    assert!(
        value(
            "transcoder-worker",
            "hopster_downloaded_bytes_total{how=\"ranged\"}"
        ) + value(
            "downloader-worker",
            "hopster_downloaded_bytes_total{how=\"staged\"}"
        ) > 0.0
    );
    assert_eq!(
        value(
            "transcoder-worker",
            "hopster_stage_duration_seconds_count{stage=\"transcode\",outcome=\"done\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            "downloader-worker",
            "hopster_stage_duration_seconds_count{stage=\"download\",outcome=\"failed\"}"
        ),
        1.0
    );
    drop(stack);
}
