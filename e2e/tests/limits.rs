//! Fair use per client, with real sockets against a real gateway: submission rate limits per
//! address and per API key, event-stream limits per client and in total, and slow clients
//! (slowloris) cut off while a normal client is still served.
#![allow(clippy::expect_used, clippy::unwrap_used)] // helpers outside #[test] fns panic to fail the test

use e2e::stack::{Options, Stack};
use hopster_common::settings::{Backend, Secret, Settings};
use serde_json::{json, Value};
use shared_proto::spec::{parse_bound, url_for_video_id};
use shared_proto::{topology, JobSpec};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Another loopback address: Linux routes all of 127/8 to lo, so a client bound to it is a
/// second client address for the gateway.
const OTHER_ADDRESS: [u8; 4] = [127, 0, 0, 2];

async fn gateway_with(tune: impl FnOnce(&mut Settings)) -> Stack {
    Stack::spawn_with(
        Options {
            backend: Backend::Fs,
            workers: false,
        },
        tune,
    )
    .await
}

/// A 1 s clip of the test video starting at `second`, as the v1 API takes it.
fn clip(second: u32) -> Value {
    json!({
        "video_id": "sixty",
        "start": format!("00:00:{second:02}"),
        "stop": format!("00:00:{:02}", second + 1),
    })
}

/// The id the job of [`clip`] would have.
fn clip_id(stack: &Stack, second: u32) -> shared_proto::JobId {
    let body = clip(second);
    let bound = |name: &'static str| parse_bound(name, body[name].as_str()).unwrap();
    let url = url_for_video_id(&stack.settings.sources.video_url_template, "sixty").unwrap();
    JobSpec::new(&url, None, bound("start"), bound("stop"))
        .unwrap()
        .job_id()
}

/// POSTs `body` to `path` with `client`, optionally keyed; status, `Retry-After`, body.
async fn post(
    client: &reqwest::Client,
    stack: &Stack,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> (u16, Option<u64>, Value) {
    let mut req = client.post(stack.url(path)).json(body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let r = req.send().await.expect("POST");
    let status = r.status().as_u16();
    let retry = r.headers().get("retry-after").map(|v| {
        v.to_str()
            .unwrap()
            .parse::<u64>()
            .expect("Retry-After is whole seconds")
    });
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

fn from(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(address))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_past_the_limit_are_answered_429_with_retry_after_and_start_no_job() {
    // 3 a minute: a burst of 3, then one every 20 s, so nothing refills during the test.
    let stack = gateway_with(|s| s.limits.submissions_per_minute = 3).await;
    let http = reqwest::Client::new();
    for second in 1..=3 {
        let (code, _, job) = post(&http, &stack, "/v1/jobs", None, &clip(second)).await;
        assert_eq!(code, 202, "{job}");
    }
    let (code, retry, body) = post(&http, &stack, "/v1/jobs", None, &clip(4)).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    let retry = retry.expect("a Retry-After header");
    assert!((1..=20).contains(&retry), "Retry-After: {retry}");
    // The refused submission published nothing and created nothing.
    assert_eq!(stack.queue_len(topology::DOWNLOAD).await, 3);
    assert!(stack
        .store
        .status(&clip_id(&stack, 4))
        .await
        .unwrap()
        .is_none());
    let (_, listed) = stack.get_json("/v1/jobs").await;
    assert_eq!(listed["jobs"].as_array().map(Vec::len), Some(3), "{listed}");

    // A repeat of an existing job is answered, out of tokens or not, and costs nothing.
    let (code, _, again) = post(&http, &stack, "/v1/jobs", None, &clip(1)).await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(again["id"].as_str(), Some(clip_id(&stack, 1).as_str()));
    let (code, _, seed) = post(
        &http,
        &stack,
        "/schedule",
        None,
        &json!({"video_id": "sixty", "start": "00:00:02", "stop": "00:00:03"}),
    )
    .await;
    assert_eq!(
        (code, seed["video_file"].as_str()),
        (200, Some("sixty_from_000002000000_till_000003000000.mp4"))
    );

    // The seed API shares the bucket and answers in its own format.
    let (code, retry, seed) = post(
        &http,
        &stack,
        "/schedule",
        None,
        &json!({"video_id": "sixty", "start": "00:00:07", "stop": "00:00:08"}),
    )
    .await;
    assert_eq!(
        (code, seed["error"]["code"].as_u64()),
        (429, Some(429)),
        "{seed}"
    );
    assert!(retry.is_some_and(|r| (1..=20).contains(&r)), "{retry:?}");

    // A forwarded-for header is the client's own claim: it changes nothing.
    let r = http
        .post(stack.url("/v1/jobs"))
        .header("X-Forwarded-For", "203.0.113.9")
        .header("Forwarded", "for=203.0.113.9")
        .json(&clip(5))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);

    // Another address is another client, with a bucket of its own.
    let (code, _, job) = post(&from(OTHER_ADDRESS), &stack, "/v1/jobs", None, &clip(6)).await;
    assert_eq!(code, 202, "{job}");
    assert_eq!(stack.queue_len(topology::DOWNLOAD).await, 4);

    let (_, metrics) = {
        let r = http.get(stack.url("/metrics")).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    };
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("hopster_rate_limited_total{limit=\"submissions\"}")),
        "{metrics}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_bucket_refills_and_each_api_key_has_its_own() {
    // 12 a minute: one token every 5 s.
    let stack = gateway_with(|s| {
        s.limits.submissions_per_minute = 12;
        s.auth.api_keys = vec![Secret::new("key-a"), Secret::new("key-b")];
    })
    .await;
    let http = reqwest::Client::new();
    for second in 1..=12 {
        let (code, _, job) = post(&http, &stack, "/v1/jobs", Some("key-a"), &clip(second)).await;
        assert_eq!(code, 202, "{job}");
    }
    let (code, retry, _) = post(&http, &stack, "/v1/jobs", Some("key-a"), &clip(20)).await;
    assert_eq!(code, 429);
    assert!(retry.is_some_and(|r| (1..=5).contains(&r)), "{retry:?}");
    // Same address, another key: another client.
    let (code, _, job) = post(&http, &stack, "/v1/jobs", Some("key-b"), &clip(30)).await;
    assert_eq!(code, 202, "{job}");

    // Key a gets a token back within about Retry-After.
    let refused_at = Instant::now();
    let deadline = Duration::from_secs(30);
    let waited = loop {
        let (code, _, body) = post(&http, &stack, "/v1/jobs", Some("key-a"), &clip(20)).await;
        match code {
            202 => break refused_at.elapsed(),
            429 => assert!(
                refused_at.elapsed() < deadline,
                "no token after {deadline:?}"
            ),
            other => panic!("{other}: {body}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(stack.queue_len(topology::DOWNLOAD).await, 14);
    eprintln!("limits: key a's next submission was accepted {waited:?} after the refusal");
    stack.stop().await;
}

/// Opens `GET /v1/jobs/{id}/events` on a connection of its own; the open response on 200.
async fn open_stream(
    stack: &Stack,
    address: [u8; 4],
    id: &str,
) -> (u16, Option<u64>, Option<reqwest::Response>) {
    let r = from(address)
        .get(stack.url(&format!("/v1/jobs/{id}/events")))
        .send()
        .await
        .expect("GET events");
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    if status == 200 {
        (status, retry, Some(r))
    } else {
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(body["error"]["code"], "rate_limited", "{status}: {body}");
        (status, retry, None)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_past_either_limit_are_refused_and_a_closed_one_frees_its_slot() {
    let stack = gateway_with(|s| {
        s.limits.max_event_streams = 3;
        s.limits.max_event_streams_per_client = 2;
    })
    .await;
    // No workers: the job stays queued and its stream open.
    let (code, job) = stack.post("/v1/jobs", &clip(1)).await;
    assert_eq!(code, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let me = [127, 0, 0, 1];

    let (a1, _, first) = open_stream(&stack, me, &id).await;
    let (a2, _, _second) = open_stream(&stack, me, &id).await;
    assert_eq!((a1, a2), (200, 200));
    let (code, retry, _) = open_stream(&stack, me, &id).await;
    assert_eq!(code, 429, "a third stream of one client");
    assert!(retry.is_some_and(|r| r >= 1), "{retry:?}");

    let (b1, _, _third) = open_stream(&stack, OTHER_ADDRESS, &id).await;
    assert_eq!(b1, 200, "another client's first stream");
    let (code, retry, _) = open_stream(&stack, OTHER_ADDRESS, &id).await;
    assert_eq!(code, 429, "a fourth stream in total");
    assert!(retry.is_some(), "Retry-After");

    // The client goes away: its slot is freed with the response stream.
    drop(first);
    let closed_at = Instant::now();
    let deadline = Duration::from_secs(30);
    let (freed, _reopened) = loop {
        match open_stream(&stack, OTHER_ADDRESS, &id).await {
            (200, _, response) => break (closed_at.elapsed(), response),
            (429, _, _) => assert!(
                closed_at.elapsed() < deadline,
                "the slot was not freed within {deadline:?}"
            ),
            (other, _, _) => panic!("{other}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("limits: a closed event stream's slot was free again after {freed:?}");
    stack.stop().await;
}

/// How a slow connection ended.
#[derive(Debug, Default)]
struct Outcome {
    /// Time from connect until the server closed it; `None`: still open at the deadline.
    closed_after: Option<Duration>,
    got_408: bool,
    bytes_sent: usize,
}

/// One slowloris connection: sends a request head that never ends, a byte every `pace`,
/// until the server answers or closes it, or `deadline` passes.
async fn slow_client(
    port: u16,
    pace: Duration,
    deadline: Duration,
    started: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
) -> Outcome {
    let mut socket = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let connected = Instant::now();
    let head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    let filler = b"X-Slow: a\r\n";
    let mut outcome = Outcome::default();
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    let mut ticker = tokio::time::interval(pace);
    loop {
        tokio::select! {
            read = socket.read(&mut buf) => {
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                }
            }
            _ = ticker.tick() => {
                if connected.elapsed() > deadline {
                    return outcome;
                }
                let next = outcome.bytes_sent;
                let byte = if next < head.len() {
                    head[next]
                } else {
                    filler[(next - head.len()) % filler.len()]
                };
                if socket.write_all(&[byte]).await.is_err() {
                    break;
                }
                outcome.bytes_sent += 1;
                if outcome.bytes_sent == 1 {
                    started.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }
    closed.fetch_add(1, Ordering::SeqCst);
    outcome.closed_after = Some(connected.elapsed());
    outcome.got_408 = answer.starts_with(b"HTTP/1.1 408");
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_clients_are_cut_off_while_a_normal_client_is_served_promptly() {
    const SLOW: usize = 500;
    const TIMEOUT_SECS: u64 = 3;
    let stack = gateway_with(|s| s.gateway.client_request_timeout_secs = TIMEOUT_SECS).await;
    let port: u16 = stack.base_url.rsplit(':').next().unwrap().parse().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    // A byte every 100 ms: a 40-byte head would take 4 s, and this one never ends.
    let deadline = Duration::from_secs(TIMEOUT_SECS * 10);
    let tasks: Vec<_> = (0..SLOW)
        .map(|_| {
            tokio::spawn(slow_client(
                port,
                Duration::from_millis(100),
                deadline,
                started.clone(),
                closed.clone(),
            ))
        })
        .collect();
    stack
        .wait_until(
            Duration::from_secs(20),
            "every slow client to start",
            || {
                let started = started.clone();
                async move { started.load(Ordering::SeqCst) == SLOW }
            },
        )
        .await;

    // A normal client, while all of them are held.
    let normal = reqwest::Client::new();
    let asked = Instant::now();
    let health = normal.get(stack.url("/healthz")).send().await.unwrap();
    let health_took = asked.elapsed();
    let asked = Instant::now();
    let submitted = normal
        .post(stack.url("/v1/jobs"))
        .json(&clip(1))
        .send()
        .await
        .unwrap();
    let submit_took = asked.elapsed();
    let held = SLOW - closed.load(Ordering::SeqCst);
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(submitted.status().as_u16(), 202);
    assert_eq!(
        held, SLOW,
        "the normal client was answered while every slow one was held"
    );

    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let open: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.closed_after.is_none())
        .collect();
    assert!(
        open.is_empty(),
        "{} slow connections still open after {deadline:?}",
        open.len()
    );
    let times: Vec<Duration> = outcomes.iter().filter_map(|o| o.closed_after).collect();
    let (first, last) = (
        times.iter().min().copied().unwrap_or_default(),
        times.iter().max().copied().unwrap_or_default(),
    );
    let answered_408 = outcomes.iter().filter(|o| o.got_408).count();
    let most_bytes = outcomes.iter().map(|o| o.bytes_sent).max().unwrap_or(0);
    eprintln!(
        "limits: slowloris: {SLOW} slow connections held (a byte every 100 ms, at most \
         {most_bytes} bytes each); with client_request_timeout_secs = {TIMEOUT_SECS} the server \
         closed them all {first:?} to {last:?} after they connected, {answered_408} with a 408 \
         first; meanwhile a normal client's GET /healthz took {health_took:?} and its \
         POST /v1/jobs {submit_took:?}"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_after_the_keep_alive_time() {
    let stack = gateway_with(|s| s.gateway.keep_alive_secs = 1).await;
    let port: u16 = stack.base_url.rsplit(':').next().unwrap().parse().unwrap();
    let mut socket = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let sent = Instant::now();
    let mut answer = Vec::new();
    // The answer, then the server's close (read returns 0), within the deadline.
    let read_all = tokio::time::timeout(Duration::from_secs(20), socket.read_to_end(&mut answer))
        .await
        .expect("the server did not close the idle connection");
    let closed_after = sent.elapsed();
    read_all.unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(r#"{"status":"ok"}"#), "{text}");
    eprintln!("limits: keep_alive_secs = 1: the idle connection was closed {closed_after:?} after its request");
    stack.stop().await;
}
