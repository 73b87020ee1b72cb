//! docker-compose.yml and the Dockerfile checked against the code (there is no Docker engine
//! here), and the compose configuration run natively: the same environment, service host
//! names rewritten to loopback, the real binaries.
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

use e2e::compose::{init_hook_buckets, repo_root, Compose};
use e2e::native::NativeStack;
use e2e::s3::S3Server;
use e2e::source::SourceServer;
use e2e::stack::{delete_topology, queue_counts};
use e2e::{random_name, TempDir};
use hopster_common::Settings;
use serde_json::json;
use shared_proto::topology::{self, Topology};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use yaml_rust2::Yaml;

const SERVICES: [&str; 3] = ["api-gateway", "downloader-worker", "transcoder-worker"];

/// The compose key the native runs use.
const API_KEY: &str = "compose-test-key";

fn shell() -> BTreeMap<String, String> {
    [
        (
            "HOPSTER_SERVER_SECRET_KEY".to_owned(),
            "compose-test-secret".to_owned(),
        ),
        ("HOPSTER_API_KEYS".to_owned(), API_KEY.to_owned()),
        // The native run's source is on loopback.
        (
            "HOPSTER_ALLOW_PRIVATE_NETWORKS".to_owned(),
            "true".to_owned(),
        ),
    ]
    .into()
}

fn str_list(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Binaries of the workspace, from `cargo metadata`.
fn workspace_binaries_and_members() -> (BTreeSet<String>, Vec<String>) {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(repo_root())
        .output()
        .expect("cargo metadata");
    assert!(out.status.success());
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata json");
    let root = std::fs::canonicalize(repo_root()).expect("root");
    let mut bins = BTreeSet::new();
    let mut members = Vec::new();
    for package in meta["packages"].as_array().expect("packages") {
        let manifest = std::path::PathBuf::from(package["manifest_path"].as_str().expect("path"));
        let dir = manifest
            .parent()
            .expect("dir")
            .strip_prefix(&root)
            .expect("in the repo");
        members.push(dir.to_string_lossy().into_owned());
        for target in package["targets"].as_array().expect("targets") {
            if target["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
            {
                bins.insert(target["name"].as_str().expect("name").to_owned());
            }
        }
    }
    (bins, members)
}

#[test]
fn the_compose_file_agrees_with_the_code() {
    let compose = Compose::load();
    for name in compose.service_names() {
        let s = compose.service(&name);
        let image = s["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no pinned image"));
        let tag = image
            .rsplit_once(':')
            .map(|(_, t)| t)
            .filter(|t| !t.contains('/'));
        assert!(
            tag.is_some_and(|t| !t.is_empty() && t != "latest"),
            "{name}: image `{image}` is not pinned"
        );
        assert_eq!(
            s["restart"].as_str(),
            Some("unless-stopped"),
            "{name}: restart policy"
        );
    }
    assert_eq!(
        compose.service("localstack")["image"].as_str(),
        Some("localstack/localstack:4.13.1")
    );
    let ls_env = compose.environment("localstack", &shell());
    assert_eq!(ls_env.get("SERVICES").map(String::as_str), Some("s3"));
    let rabbit_check = str_list(&compose.service("rabbitmq")["healthcheck"]["test"]);
    assert!(
        rabbit_check.contains(&"rabbitmq-diagnostics".to_owned())
            && rabbit_check.contains(&"ping".to_owned()),
        "{rabbit_check:?}"
    );
    assert!(compose.service("rabbitmq")["image"]
        .as_str()
        .is_some_and(|i| i.ends_with("-management")));
    assert!(str_list(&compose.service("rabbitmq")["ports"])
        .iter()
        .any(|p| p.ends_with(":15672")));

    let buckets = init_hook_buckets();
    assert_eq!(
        buckets.len(),
        1,
        "one bucket created by the init hook: {buckets:?}"
    );
    let ls_check = str_list(&compose.service("localstack")["healthcheck"]["test"]);
    assert!(
        ls_check.contains(&buckets[0]),
        "localstack's healthcheck waits for the bucket: {ls_check:?}"
    );
    assert!(str_list(&compose.service("localstack")["volumes"])
        .iter()
        .any(|v| v.starts_with("./localstack/init/ready.d:/etc/localstack/init/ready.d")));
    for hook in std::fs::read_dir(repo_root().join("localstack/init/ready.d")).expect("hooks") {
        use std::os::unix::fs::PermissionsExt;
        let mode = hook
            .expect("hook")
            .metadata()
            .expect("meta")
            .permissions()
            .mode();
        assert!(mode & 0o111 != 0, "init hooks must be executable");
    }

    let (bins, members) = workspace_binaries_and_members();
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).expect("Dockerfile");
    for name in SERVICES {
        let s = compose.service(name);
        let env = compose.environment(name, &shell());
        // Every HOPSTER variable is a key the settings know: deny_unknown_fields fails otherwise.
        for key in env.keys().filter(|k| k.starts_with("HOPSTER")) {
            assert!(
                key.starts_with("HOPSTER__") || key == "HOPSTER_SERVER_SECRET_KEY",
                "{name}: `{key}` is read by nothing"
            );
        }
        let settings = Settings::load_from(env.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            settings.store.bucket, buckets[0],
            "{name} uses the bucket the init hook creates"
        );
        for dep in ["rabbitmq", "localstack"] {
            assert_eq!(
                s["depends_on"][dep]["condition"].as_str(),
                Some("service_healthy"),
                "{name} waits for {dep}"
            );
        }
        let target = s["build"]["target"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} is built from the repo"));
        assert!(
            dockerfile.contains(&format!(" AS {target}\n")),
            "Dockerfile has no stage {target}"
        );
        assert!(bins.contains(name), "{name} is a workspace binary");
        if name != "api-gateway" {
            assert!(
                s["container_name"].is_badvalue() && s["ports"].is_badvalue(),
                "{name} must scale: no container_name, no ports"
            );
        }
    }
    assert!(compose
        .environment("api-gateway", &shell())
        .contains_key("HOPSTER_SERVER_SECRET_KEY"));
    // Secure by default: API keys are required, and private sources refused unless asked for.
    let mut strict = shell();
    strict.remove("HOPSTER_ALLOW_PRIVATE_NETWORKS");
    for name in ["api-gateway", "downloader-worker"] {
        let settings = Settings::load_from(compose.environment(name, &strict)).expect("settings");
        assert!(
            !settings.sources.allow_private_networks,
            "{name} guards against SSRF by default"
        );
    }
    let gateway =
        Settings::load_from(compose.environment("api-gateway", &strict)).expect("settings");
    assert_eq!(
        gateway.auth.api_keys.len(),
        1,
        "the gateway requires API keys"
    );
    let mut keyless = shell();
    keyless.remove("HOPSTER_API_KEYS");
    assert!(
        std::panic::catch_unwind(|| compose.environment("api-gateway", &keyless)).is_err(),
        "compose refuses to start without keys"
    );
    assert!(str_list(&compose.service("api-gateway")["ports"]).contains(&"5000:5000".to_owned()));

    // The Dockerfile builds only real binaries and copies every member's manifest for the
    // cached dependency layer (a missing one breaks the build).
    for word in dockerfile.split_whitespace().collect::<Vec<_>>().windows(2) {
        if word[0] == "--bin" {
            assert!(
                bins.contains(word[1]),
                "Dockerfile builds `--bin {}`, which is no binary",
                word[1]
            );
        }
    }
    for member in members {
        assert!(
            dockerfile.contains(&format!("COPY {member}/Cargo.toml {member}/")),
            "Dockerfile does not copy {member}/Cargo.toml"
        );
    }
    // ffmpeg is installed in the transcoder's stage (and only there it is needed).
    let transcoder = dockerfile
        .split(" AS transcoder-worker\n")
        .nth(1)
        .and_then(|rest| rest.split("FROM ").next())
        .expect("transcoder-worker stage");
    assert!(
        transcoder.contains("ffmpeg"),
        "the transcoder stage needs ffmpeg"
    );
    assert!(dockerfile.contains("USER hopster") && dockerfile.contains("tini"));
    let ignore = std::fs::read_to_string(repo_root().join(".dockerignore")).expect(".dockerignore");
    assert!(ignore.lines().any(|l| l.trim_end_matches('/') == "target"));
}

/// The compose environment of `service`, rewritten for this machine: service host names to
/// loopback and a random queue prefix (tests never share state).
fn native_env(
    compose: &Compose,
    service: &str,
    s3_endpoint: &str,
    prefix: &str,
    source: &str,
) -> BTreeMap<String, String> {
    let mut shell = shell();
    shell.insert("HOPSTER_CATALOGUE_BASE_URL".into(), source.to_owned());
    let mut env = compose.environment(service, &shell);
    for value in env.values_mut() {
        *value = value
            .replace("@rabbitmq:5672", "@127.0.0.1:5672")
            .replace("http://localstack:4566", s3_endpoint);
    }
    env.insert("HOPSTER__AMQP__PREFIX".into(), prefix.to_owned());
    // The gateway's bind is NativeStack's (port 0, then read from its log).
    if service != "api-gateway" {
        // Each container has its own network namespace; processes on one machine do not.
        assert_eq!(
            env["HOPSTER__WORKER__HTTP_BIND"], "0.0.0.0:9090",
            "{service}"
        );
        env.insert("HOPSTER__WORKER__HTTP_BIND".into(), "127.0.0.1:0".into());
    }
    env
}

struct Native {
    stack: NativeStack,
    prefix: String,
    source: SourceServer,
    _s3: S3Server,
    _media: TempDir,
}

async fn native_stack(transcoders: usize) -> Native {
    let compose = Compose::load();
    let gateway_env = compose.environment("api-gateway", &shell());
    let media = TempDir::new("hopster-source");
    std::fs::copy(e2e::media::sixty_second_video(), media.0.join("sixty.mp4")).expect("media");
    let source = SourceServer::start(media.0.clone());
    let s3 = S3Server::start_with(
        &gateway_env["HOPSTER__STORE__BUCKET"],
        &gateway_env["HOPSTER__STORE__ACCESS_KEY_ID"],
        &gateway_env["HOPSTER__STORE__SECRET_ACCESS_KEY"],
    )
    .await;
    let prefix = random_name("hopster-compose");
    let (endpoint, base, p) = (s3.endpoint.clone(), source.base_url.clone(), prefix.clone());
    let workers: Vec<&str> = ["downloader-worker"]
        .into_iter()
        .chain(std::iter::repeat_n("transcoder-worker", transcoders))
        .collect();
    let mut stack = NativeStack::start(&workers, move |name| {
        native_env(&compose, name, &endpoint, &p, &base)
    })
    .await;
    stack.api.key = Some(API_KEY.to_owned());
    Native {
        stack,
        prefix,
        source,
        _s3: s3,
        _media: media,
    }
}

async fn inspector() -> (lapin::Connection, lapin::Channel) {
    let conn = lapin::Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        lapin::ConnectionProperties::default(),
    )
    .await
    .expect("broker");
    let channel = conn.create_channel().await.expect("channel");
    (conn, channel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_compose_configuration_runs_a_job_natively() {
    let stack = native_stack(1).await;
    let url = format!("{}/sixty.mp4", stack.source.base_url);
    let (code, job) = stack
        .stack
        .api
        .post(
            "/v1/jobs",
            &json!({"url": url, "start": "00:00:20", "stop": "00:00:22.5"}),
        )
        .await;
    assert_eq!(code, 202, "{job}");
    let (status, _) = stack
        .stack
        .api
        .wait_for_job(job["id"].as_str().expect("id"), Duration::from_secs(120))
        .await;
    assert_eq!(status["state"], "completed", "{status}");
    let bytes = stack
        .stack
        .api
        .http
        .get(stack.stack.api.url(&format!(
            "/v1/jobs/{}/video",
            job["id"].as_str().expect("id")
        )))
        .bearer_auth(API_KEY)
        .send()
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body");
    let duration = e2e::media::probe_bytes(&bytes).duration;
    assert!((duration - 2.5).abs() <= 0.05, "{duration}");
    let (_conn, channel) = inspector().await;
    delete_topology(&channel, &Topology::new(&stack.prefix)).await;
    drop(stack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_transcoder_processes_share_ten_jobs() {
    let stack = native_stack(2).await;
    let (_conn, channel) = inspector().await;
    let t = Topology::new(&stack.prefix);
    let started = std::time::Instant::now();
    while queue_counts(&channel, &t, topology::TRANSCODE).await.1 < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "both transcoders should consume"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = format!("{}/sixty.mp4", stack.source.base_url);
    let mut ids = Vec::new();
    for i in 0..10u32 {
        let body = json!({"url": url, "start": format!("00:00:{:02}", i * 5), "stop": format!("00:00:{:02}", i * 5 + 2)});
        let (code, job) = stack.stack.api.post("/v1/jobs", &body).await;
        assert_eq!(code, 202, "{job}");
        ids.push(job["id"].as_str().expect("id").to_owned());
    }
    let mut per_worker: BTreeMap<String, usize> = BTreeMap::new();
    for id in &ids {
        let (status, _) = stack
            .stack
            .api
            .wait_for_job(id, Duration::from_secs(180))
            .await;
        assert_eq!(status["state"], "completed", "{status}");
        let worker = status["worker"].as_str().expect("worker id").to_owned();
        *per_worker.entry(worker).or_default() += 1;
    }
    let pids: BTreeSet<String> = stack
        .stack
        .services
        .iter()
        .filter(|s| s.name == "transcoder-worker")
        .map(|s| s.pid().to_string())
        .collect();
    assert_eq!(
        per_worker.len(),
        2,
        "both transcoders took work: {per_worker:?}"
    );
    for worker in per_worker.keys() {
        assert!(
            pids.iter().any(|p| worker.ends_with(&format!(":{p}"))),
            "{worker} is one of {pids:?}"
        );
    }
    assert_eq!(per_worker.values().sum::<usize>(), 10);
    delete_topology(&channel, &t).await;
}

/// `scripts/stand-in-images` builds exactly the images that docker-compose.yml and the
/// Dockerfile pull from a registry (services without `build:`, and `FROM` lines that name no
/// stage), so the compose test on a machine without a registry runs the files unchanged.
#[test]
fn the_stand_in_images_are_the_images_the_files_pull() {
    let compose = Compose::load();
    let mut pulled = BTreeSet::new();
    for name in compose.service_names() {
        let s = compose.service(&name);
        if s["build"].is_badvalue() {
            pulled.insert(s["image"].as_str().expect("an image").to_owned());
        }
    }
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).expect("Dockerfile");
    let mut args = BTreeMap::new();
    let mut stages = BTreeSet::new();
    for line in dockerfile.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["ARG", arg] => {
                if let Some((k, v)) = arg.split_once('=') {
                    args.insert(format!("${{{k}}}"), v.to_owned());
                }
            }
            ["FROM", image, rest @ ..] => {
                let mut image = (*image).to_owned();
                for (k, v) in &args {
                    image = image.replace(k, v);
                }
                if !stages.contains(&image) {
                    pulled.insert(image);
                }
                if let ["AS", stage] = rest {
                    stages.insert((*stage).to_owned());
                }
            }
            _ => {}
        }
    }
    let out = std::process::Command::new(repo_root().join("scripts/stand-in-images"))
        .arg("--list")
        .output()
        .expect("running scripts/stand-in-images --list");
    assert!(out.status.success(), "{out:?}");
    let listed: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(listed, pulled);
}
