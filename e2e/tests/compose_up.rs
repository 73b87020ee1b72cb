//! The full stack for real: `docker compose up --build -d` of the repository's
//! docker-compose.yml, unchanged, on this machine's Docker engine, with the secrets from the
//! environment. The base images are local stand-ins (`scripts/stand-in-images`); the source
//! video is served from the host at `host.docker.internal`, as the compose file expects.
//!
//! One test, in order: healthy services; a clip with an API key on the published port 5000,
//! downloaded and probed; a presigned `?redirect=1` URL fetched from the host; the bucket made
//! by the init hook; three transcoders sharing 12 jobs; a transcoder killed mid-transcode;
//! a RabbitMQ restart with jobs in flight; non-root users, tini as PID 1 and a clean exit on
//! SIGTERM; `down -v` leaving nothing behind. Prints the figures the README quotes.
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

use e2e::api::Api;
use e2e::docker::{docker, ensure_stand_in_images, inspect, Project};
use e2e::media::probe_bytes;
use e2e::source::SourceServer;
use e2e::{random_name, TempDir};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const GATEWAY: &str = "http://127.0.0.1:5000";
const BUCKET: &str = "hopster-media";
const JOB_DEADLINE: Duration = Duration::from_secs(180);

/// The host ports the compose file publishes must be free.
fn assert_ports_free() {
    for port in [5000u16, 4566, 15672] {
        assert!(
            std::net::TcpListener::bind(("0.0.0.0", port)).is_ok(),
            "port {port} is taken: docker-compose.yml publishes it (is scripts/run or another stack running?)"
        );
    }
}

/// The address containers reach the host at as `host.docker.internal` (`host-gateway`), as
/// the engine itself resolves it for a container.
fn host_gateway() -> std::net::IpAddr {
    let hosts = docker(&[
        "run",
        "--rm",
        "--add-host",
        "the-host:host-gateway",
        "debian:bookworm-slim",
        "getent",
        "hosts",
        "the-host",
    ]);
    hosts
        .split_whitespace()
        .next()
        .and_then(|ip| ip.parse().ok())
        .unwrap_or_else(|| panic!("the host-gateway address from {hosts:?}"))
}

fn clip(start: u32, stop: u32) -> Value {
    let t = |s: u32| format!("00:00:{s:02}");
    json!({"video_id": "sixty", "start": t(start), "stop": t(stop)})
}

async fn submit(api: &Api, body: &Value) -> String {
    let (code, job) = api.post("/v1/jobs", body).await;
    assert!(
        code == 202 || code == 200,
        "submitting {body}: {code} {job}"
    );
    job["id"].as_str().expect("a job id").to_owned()
}

async fn completed(api: &Api, id: &str) -> Value {
    let (job, states) = api.wait_for_job(id, JOB_DEADLINE).await;
    assert_eq!(job["state"], "completed", "{id} went {states:?}: {job}");
    job
}

/// The transcoder's host name (the container's) from a job's `worker` (`host:pid`).
fn worker_host(job: &Value) -> String {
    job["worker"]
        .as_str()
        .and_then(|w| w.rsplit_once(':'))
        .map(|(host, _)| host.to_owned())
        .unwrap_or_else(|| panic!("no worker in {job}"))
}

async fn download(api: &Api, id: &str) -> Vec<u8> {
    let r = api
        .http
        .get(api.url(&format!("/v1/jobs/{id}/video")))
        .bearer_auth(api.key.as_deref().expect("a key"))
        .send()
        .await
        .expect("GET video");
    assert_eq!(r.status(), 200, "video of {id}");
    r.bytes().await.expect("video bytes").to_vec()
}

/// Scales to three transcoders (starting any that died) and waits for every healthcheck.
async fn three_transcoders(project: &Project) {
    project.compose(&[
        "up",
        "-d",
        "--no-recreate",
        "--scale",
        "transcoder-worker=3",
    ]);
    project.wait_healthy(Duration::from_secs(120)).await;
}

fn image_size_mib(image: &str) -> f64 {
    let bytes: f64 = docker(&["image", "inspect", "-f", "{{.Size}}", image])
        .trim()
        .parse()
        .expect("an image size");
    bytes / 1_048_576.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn docker_compose_up_runs_the_whole_stack() {
    ensure_stand_in_images();
    assert_ports_free();

    let media = TempDir::new("hopster-compose-source");
    std::fs::copy(e2e::media::sixty_second_video(), media.0.join("sixty.mp4")).expect("media");
    let source = SourceServer::start_on(media.0.clone(), host_gateway());
    let port = url::Url::parse(&source.base_url)
        .ok()
        .and_then(|u| u.port())
        .expect("the source server's port");
    let key = random_name("compose-key");
    let env: BTreeMap<String, String> = [
        ("HOPSTER_SERVER_SECRET_KEY", random_name("compose-secret")),
        ("HOPSTER_API_KEYS", key.clone()),
        // The source is on the host, a private address.
        ("HOPSTER_ALLOW_PRIVATE_NETWORKS", "true".to_owned()),
        (
            "HOPSTER_CATALOGUE_BASE_URL",
            format!("http://host.docker.internal:{port}"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let project = Project::new(random_name("hopster-test-compose"), env);
    let mut figures = BTreeMap::new();

    // 1–2. Up, healthy, and a first clip with a key on the published port.
    let up = Instant::now();
    project.compose(&["up", "--build", "-d"]);
    figures.insert("up_returned_s", up.elapsed().as_secs_f64());
    project.wait_healthy(Duration::from_secs(240)).await;
    figures.insert("healthy_s", up.elapsed().as_secs_f64());
    for service in ["api-gateway", "downloader-worker", "transcoder-worker"] {
        let containers = project.containers(service);
        assert!(
            containers.iter().all(|c| c
                .state
                .health
                .as_ref()
                .is_some_and(|h| h.status == "healthy")),
            "{service} has a healthcheck and passes it: {containers:?}"
        );
    }
    let mut api = Api::new(GATEWAY.to_owned());
    let (code, _) = api.get_json("/v1/jobs").await;
    assert_eq!(code, 401, "the compose stack wants an API key");
    api.key = Some(key.clone());
    let first = submit(&api, &clip(2, 5)).await;
    let job = completed(&api, &first).await;
    let bytes = download(&api, &first).await;
    figures.insert("up_to_first_clip_s", up.elapsed().as_secs_f64());
    assert_eq!(Some(bytes.len() as u64), job["result"]["size"].as_u64());
    let probed = probe_bytes(&bytes);
    assert!(
        (probed.duration - 3.0).abs() <= 0.05,
        "duration {}",
        probed.duration
    );

    // 3. ?redirect=1: a presigned URL naming the endpoint the host reaches, which works.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let r = no_redirect
        .get(api.url(&format!("/v1/jobs/{first}/video?redirect=1")))
        .bearer_auth(&key)
        .send()
        .await
        .expect("GET ?redirect=1");
    assert_eq!(r.status(), 302);
    let location = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .expect("a Location")
        .to_owned();
    let presigned = url::Url::parse(&location).expect("an absolute URL");
    assert_eq!(
        (presigned.host_str(), presigned.port()),
        (Some("localhost"), Some(4566)),
        "{location}"
    );
    let fetched = reqwest::get(presigned).await.expect("GET presigned");
    assert_eq!(fetched.status(), 200, "{location}");
    assert_eq!(fetched.bytes().await.expect("bytes").to_vec(), bytes);

    // 4. The bucket is the init hook's: the services never create one.
    let logs = project.compose(&["logs", "--no-color", "localstack"]);
    assert!(
        logs.contains(&format!("make_bucket: {BUCKET}")),
        "the init hook made the bucket:\n{logs}"
    );

    // 5. Three transcoders share 12 jobs.
    three_transcoders(&project).await;
    assert_eq!(project.container_ids("transcoder-worker").len(), 3);
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(submit(&api, &clip(10 + i, 11 + i)).await);
    }
    let mut hosts = BTreeSet::new();
    for id in &ids {
        hosts.insert(worker_host(&completed(&api, id).await));
    }
    let transcoder_hosts: BTreeSet<String> = project
        .containers("transcoder-worker")
        .into_iter()
        .map(|c| c.config.hostname)
        .collect();
    assert!(
        hosts.is_subset(&transcoder_hosts) && hosts.len() >= 2,
        "12 jobs ran on {hosts:?} of {transcoder_hosts:?}"
    );
    figures.insert("transcoders_used_of_3", hosts.len() as f64);

    // 6. A transcoder killed mid-transcode: its job completes on another.
    let long = submit(&api, &json!({"video_id": "sixty", "profile": "webm"})).await;
    let started = Instant::now();
    let victim = loop {
        let (_, job) = api.get_json(&format!("/v1/jobs/{long}")).await;
        assert_ne!(
            job["state"], "completed",
            "the long job ended before the kill"
        );
        if job["state"] == "transcoding" && job["worker"].is_string() {
            let host = worker_host(&job);
            // Once a transcoder has taken it (the downloader hands it over as `transcoding`).
            if transcoder_hosts.contains(&host) {
                break host;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the long job never transcoded: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let killed = project
        .containers("transcoder-worker")
        .into_iter()
        .find(|c| c.config.hostname == victim)
        .unwrap_or_else(|| panic!("no transcoder container is {victim}"));
    docker(&["kill", &killed.id]);
    let job = completed(&api, &long).await;
    assert_ne!(worker_host(&job), victim, "another transcoder finished it");
    let duration = job["result"]["duration_secs"].as_f64().expect("a duration");
    assert!((duration - 60.0).abs() <= 0.1, "duration {duration}");
    // The killed container comes back (restart: unless-stopped) or is replaced.
    three_transcoders(&project).await;

    // 7. RabbitMQ restarted with jobs in flight: none lost.
    let mut in_flight = Vec::new();
    for i in 0..6 {
        in_flight.push(submit(&api, &clip(30 + i, 32 + i)).await);
    }
    project.compose(&["restart", "rabbitmq"]);
    for id in &in_flight {
        let job = completed(&api, id).await;
        let bytes = download(&api, id).await;
        let d = probe_bytes(&bytes).duration;
        assert!((d - 2.0).abs() <= 0.05, "{id}: duration {d} ({job})");
    }
    project.wait_healthy(Duration::from_secs(120)).await;

    // 8. Our containers: a non-root user, tini as PID 1, exit 0 on SIGTERM within the grace.
    for (service, grace) in [
        ("api-gateway", 10u64),
        ("downloader-worker", 40),
        ("transcoder-worker", 40),
    ] {
        let id = project.container_ids(service).remove(0);
        let uid = docker(&["exec", &id, "id", "-u"]);
        assert_eq!(uid.trim(), "10001", "{service} runs as the hopster user");
        let init = docker(&["exec", &id, "cat", "/proc/1/cmdline"]);
        assert!(
            init.starts_with("/usr/bin/tini\0"),
            "{service}: PID 1 is {init:?}"
        );
        let stop = Instant::now();
        docker(&["stop", "-t", &grace.to_string(), &id]);
        let took = stop.elapsed();
        let state = &inspect(&[id])[0].state;
        assert_eq!(
            state.exit_code, 0,
            "{service} exits 0 on SIGTERM: {state:?}"
        );
        assert!(
            took < Duration::from_secs(grace),
            "{service} took {took:?} to stop"
        );
        figures.insert(
            match service {
                "api-gateway" => "sigterm_gateway_s",
                "downloader-worker" => "sigterm_downloader_s",
                _ => "sigterm_transcoder_s",
            },
            took.as_secs_f64(),
        );
    }

    for image in [
        "hopster/api-gateway:0.1.0",
        "hopster/downloader-worker:0.1.0",
        "hopster/transcoder-worker:0.1.0",
    ] {
        eprintln!("image {image}: {:.0} MiB", image_size_mib(image));
    }

    // 10. down -v leaves nothing.
    project.compose(&["down", "-v", "--remove-orphans"]);
    let left = project.leftovers();
    assert!(left.is_empty(), "left behind: {left:?}");
    eprintln!("compose figures: {figures:?}");
    drop(source);
}
