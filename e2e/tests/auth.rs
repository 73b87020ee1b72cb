//! API keys on every route, the OpenAPI document covering every route and error code, and
//! secrets kept out of logs and error bodies.
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

use e2e::native::{env_from_settings, NativeStack};
use e2e::s3::S3Server;
use e2e::source::SourceServer;
use e2e::stack::{delete_topology, Options, Stack};
use e2e::TempDir;
use hopster_common::settings::{Backend, Secret};
use serde_json::{json, Value};
use shared_proto::topology::Topology;
use shared_proto::ErrorCode;
use std::time::Duration;

const KEY: &str = "test-key-one";
const JOB: &str = "0123456789abcdef0123456789abcdef";

/// Every route: method, path as requested, path as documented, and whether anyone may call it.
fn routes() -> Vec<(&'static str, String, &'static str, bool)> {
    vec![
        ("GET", "/".into(), "/", true),
        ("GET", "/healthz".into(), "/healthz", true),
        ("GET", "/readyz".into(), "/readyz", true),
        ("GET", "/metrics".into(), "/metrics", true),
        ("GET", "/v1/vocabulary".into(), "/v1/vocabulary", true),
        ("GET", "/ui".into(), "/ui", true),
        ("GET", "/ui/app.js".into(), "/ui/app.js", true),
        ("GET", "/ui/style.css".into(), "/ui/style.css", true),
        ("POST", "/schedule".into(), "/schedule", false),
        (
            "GET",
            "/progress?reference=x_from_start_till_end.mp4".into(),
            "/progress",
            false,
        ),
        (
            "GET",
            "/download?video_file=x_from_start_till_end.mp4".into(),
            "/download",
            false,
        ),
        ("POST", "/v1/jobs".into(), "/v1/jobs", false),
        ("GET", "/v1/jobs".into(), "/v1/jobs", false),
        ("GET", format!("/v1/jobs/{JOB}"), "/v1/jobs/{id}", false),
        ("DELETE", format!("/v1/jobs/{JOB}"), "/v1/jobs/{id}", false),
        (
            "GET",
            format!("/v1/jobs/{JOB}/video"),
            "/v1/jobs/{id}/video",
            false,
        ),
        (
            "GET",
            format!("/v1/jobs/{JOB}/poster"),
            "/v1/jobs/{id}/poster",
            false,
        ),
        (
            "GET",
            format!("/v1/jobs/{JOB}/events"),
            "/v1/jobs/{id}/events",
            false,
        ),
        ("GET", "/openapi.json".into(), "/openapi.json", false),
    ]
}

async fn call(stack: &Stack, method: &str, path: &str, key: Option<&str>) -> (u16, Value) {
    let url = stack.url(path);
    let mut req = match method {
        "POST" => stack
            .http
            .post(url)
            .json(&json!({"video_id": "sixty", "start": "00:00:01", "stop": "00:00:02"})),
        _ => stack.http.get(url),
    };
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let r = req.send().await.expect("request");
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

async fn keyed_stack() -> Stack {
    Stack::spawn_with(
        Options {
            backend: Backend::Fs,
            workers: false,
        },
        |s| {
            s.auth.api_keys = vec![Secret::new(KEY), Secret::new("test-key-two")];
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_but_the_public_ones_needs_a_valid_key() {
    let stack = keyed_stack().await;
    for (method, path, _, public) in routes() {
        let (anonymous, body) = call(&stack, method, &path, None).await;
        let (wrong, _) = call(&stack, method, &path, Some("not-a-key")).await;
        let (keyed, keyed_body) = call(&stack, method, &path, Some(KEY)).await;
        if public {
            assert_ne!(anonymous, 401, "{method} {path} is public");
        } else {
            assert_eq!((anonymous, wrong), (401, 401), "{method} {path}: {body}");
            let code = &body["error"]["code"];
            if path.starts_with("/v1/") || path == "/openapi.json" {
                assert_eq!(code, "unauthorized", "{path}: {body}");
            } else {
                assert_eq!(code, 401, "{path}: {body}");
            }
        }
        assert!(
            keyed != 401 && keyed < 500,
            "{method} {path} with a key: {keyed} {keyed_body}"
        );
    }
    // Players cannot send headers: the video routes also take ?key=, the others do not.
    let (code, _) = stack
        .get_json(&format!("/v1/jobs/{JOB}/video?key={KEY}"))
        .await;
    assert_eq!(code, 404, "authorized, and the job is unknown");
    let (code, _) = stack.get_json(&format!("/v1/jobs?key={KEY}")).await;
    assert_eq!(code, 401);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_error_code_is_in_the_openapi_document() {
    let stack = keyed_stack().await;
    let (code, doc) = call(&stack, "GET", "/openapi.json", Some(KEY)).await;
    assert_eq!(code, 200);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    for (method, _, documented, public) in routes() {
        let op = &doc["paths"][documented][method.to_lowercase()];
        assert!(
            op.is_object(),
            "{method} {documented} is not in /openapi.json"
        );
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {documented} has no responses"
        );
        // Public routes say so (`security: []`); the others inherit the document's bearer key.
        if public {
            assert_eq!(op["security"], json!([]), "{method} {documented}");
        } else {
            assert!(op.get("security").is_none(), "{method} {documented}");
        }
    }
    assert_eq!(
        doc["security"],
        json!([{"api_key": []}]),
        "the document's default"
    );
    // The stateful flow is linked from a submission's answer.
    for status in ["200", "202"] {
        let links = &doc["paths"]["/v1/jobs"]["post"]["responses"][status]["links"];
        for (name, operation) in [
            ("GetJob", "show"),
            ("GetVideo", "video"),
            ("GetPoster", "poster"),
            ("FollowEvents", "stream"),
            ("CancelJob", "cancel"),
        ] {
            assert_eq!(links[name]["operationId"], operation, "{status} {name}");
            assert_eq!(links[name]["parameters"]["id"], "$response.body#/id");
        }
    }
    let codes: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("the ErrorCode enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for code in ErrorCode::ALL {
        assert!(codes.contains(&code.as_str()), "{code} is not documented");
    }
    assert_eq!(codes.len(), ErrorCode::ALL.len());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_documented_path_asked_with_another_method_is_405_with_allow() {
    let stack = keyed_stack().await;
    let (_, doc) = call(&stack, "GET", "/openapi.json", Some(KEY)).await;
    let methods = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
    ];
    for (method, path, documented, _) in routes() {
        let item = &doc["paths"][documented];
        let allowed: Vec<&str> = methods
            .into_iter()
            .filter(|m| item.get(m.to_lowercase()).is_some())
            .collect();
        assert!(allowed.contains(&method), "{method} {documented}");
        for wrong in methods.into_iter().filter(|m| !allowed.contains(m)) {
            let r = stack
                .http
                .request(wrong.parse().expect("a method"), stack.url(&path))
                .bearer_auth(KEY)
                .send()
                .await
                .expect("request");
            assert_eq!(r.status(), 405, "{wrong} {path}");
            let allow = r.headers()["allow"].to_str().expect("Allow").to_owned();
            assert_eq!(allow, allowed.join(", "), "{wrong} {path}");
            if wrong != "HEAD" {
                let body: Value = r.json().await.expect("a JSON error");
                assert_eq!(
                    body["error"]["code"], "method_not_allowed",
                    "{wrong} {path}"
                );
            }
        }
    }
    // An unknown path is still 404, whatever the method.
    let r = stack
        .http
        .patch(stack.url("/v2/nothing"))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 404);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_never_appear_in_logs_or_error_bodies() {
    let (api_key, server_secret, s3_secret) = (
        "sentinel-api-key-7f3a",
        "sentinel-server-secret-91c2",
        "sentinel-s3-secret-44d1",
    );
    let media = TempDir::new("hopster-source");
    std::fs::copy(e2e::media::sixty_second_video(), media.0.join("sixty.mp4")).expect("media");
    let source = SourceServer::start(media.0.clone());
    let bucket = e2e::random_name("bucket");
    let s3 = S3Server::start_with(&bucket, "sentinel-access", s3_secret).await;
    let fs = TempDir::new("hopster-unused");
    let mut settings = e2e::stack::settings(Backend::S3, &source.base_url, Some(&s3), &fs.0);
    settings.store.access_key_id = Some("sentinel-access".into());
    settings.store.secret_access_key = Some(Secret::new(s3_secret));
    settings.gateway.secret_key = Some(Secret::new(server_secret));
    settings.auth.api_keys = vec![Secret::new(api_key)];
    let env = env_from_settings(&settings);
    let stack = NativeStack::start(&["downloader-worker", "transcoder-worker"], move |_| {
        env.clone()
    })
    .await;
    let api = &stack.api;
    let mut bodies = String::new();
    let sixty = format!("{}/sixty.mp4", source.base_url);
    let requests: Vec<(Option<&str>, Value)> = vec![
        (None, json!({"url": sixty})),
        (Some("wrong-key"), json!({"url": sixty})),
        (Some(api_key), json!({"url": "not a url"})),
        (
            Some(api_key),
            json!({"url": format!("{}/missing.mp4", source.base_url)}),
        ),
        (
            Some(api_key),
            json!({"url": sixty, "start": "00:00:01", "stop": "00:00:02"}),
        ),
    ];
    let mut ids = Vec::new();
    for (key, body) in requests {
        let mut req = api.http.post(api.url("/v1/jobs")).json(&body);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let r = req.send().await.expect("POST");
        let text = r.text().await.expect("body");
        if let Some(id) = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_owned))
        {
            ids.push(id);
        }
        bodies.push_str(&text);
    }
    assert_eq!(ids.len(), 2);
    for id in &ids {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let r = api
                .http
                .get(api.url(&format!("/v1/jobs/{id}")))
                .bearer_auth(api_key)
                .send()
                .await
                .expect("GET");
            let text = r.text().await.expect("body");
            bodies.push_str(&text);
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if matches!(v["state"].as_str(), Some("completed" | "failed")) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{text}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let logs = stack.logs_text();
    assert!(
        logs.contains("NO API KEYS") || logs.contains("consuming"),
        "the logs were read: {}",
        logs.len()
    );
    for secret in [api_key, server_secret, s3_secret] {
        assert!(
            !bodies.contains(secret),
            "{secret} appeared in a response body"
        );
        assert!(!logs.contains(secret), "{secret} appeared in the logs");
    }
    let conn =
        lapin::Connection::connect(&settings.amqp.url, lapin::ConnectionProperties::default())
            .await
            .expect("broker");
    delete_topology(
        &conn.create_channel().await.expect("channel"),
        &Topology::new(&settings.amqp.prefix),
    )
    .await;
}
