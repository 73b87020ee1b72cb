//! The SSRF guard against every class of spelling of an internal address, with real sockets:
//! a counting server listens on loopback (IPv4 and, where it can, IPv6, on one port), and
//! each spelling of it is submitted as a source with the guard on, then used as a redirect
//! target. Every one is answered `source_forbidden` — at submission where the address can be
//! decided, else when the job fails — and the server serves 0 bytes.
//!
//! Spellings of other internal addresses (cloud metadata, private ranges) are in the table
//! too, but only those the pure classification refuses before any request is made are ever
//! submitted: a guard that failed on one of them must not send a packet there.
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

use e2e::stack::{Options, Stack};
use hopster_common::settings::Backend;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Hosts, each with `{port}` where the port goes (or none, for a port-less spelling).
const LOOPBACK: &[&str] = &[
    // IPv4 in integer, hex, octal, short and mixed forms.
    "127.0.0.1:{port}",
    "2130706433:{port}",
    "0x7f000001:{port}",
    "0X7F000001:{port}",
    "017700000001:{port}",
    "127.1:{port}",
    "127.0.1:{port}",
    "0x7f.1:{port}",
    "0x7f.0.1:{port}",
    "0177.1:{port}",
    "0177.0.0.1:{port}",
    "0x7f.0x0.0x0.0x1:{port}",
    "0177.0.0.01:{port}",
    "127.000.000.001:{port}",
    "127.0x0.0.1:{port}",
    "0x7f.0.0.0x1:{port}",
    "127.255.255.254:{port}",
    // Trailing dots.
    "127.0.0.1.:{port}",
    "2130706433.:{port}",
    // "This host": 0, 0.0.0.0, [::].
    "0:{port}",
    "0.0.0.0:{port}",
    "0x0:{port}",
    "00:{port}",
    "0.0:{port}",
    "[::]:{port}",
    "[0:0:0:0:0:0:0:0]:{port}",
    // IPv6 loopback.
    "[::1]:{port}",
    "[0:0:0:0:0:0:0:1]:{port}",
    "[0000::0001]:{port}",
    // IPv4-mapped and IPv4-compatible.
    "[::ffff:127.0.0.1]:{port}",
    "[::ffff:7f00:1]:{port}",
    "[0:0:0:0:0:ffff:127.0.0.1]:{port}",
    "[::FFFF:127.0.0.1]:{port}",
    "[::ffff:0.0.0.0]:{port}",
    "[::127.0.0.1]:{port}",
    "[::7f00:1]:{port}",
    // NAT64 (well-known and local-use), 6to4, Teredo.
    "[64:ff9b::127.0.0.1]:{port}",
    "[64:ff9b::7f00:1]:{port}",
    "[64:ff9b:1::7f00:1]:{port}",
    "[2002:7f00:1::]:{port}",
    "[2002:7f00:0001::1]:{port}",
    "[2001:0:4136:e378:8000:63bf:80ff:fffe]:{port}",
    "[2001::80ff:fffe]:{port}",
    // Unique local, site-local, link-local (with zone ids, which no URL parser accepts).
    "[fc00::1]:{port}",
    "[fd00::1]:{port}",
    "[fec0::1]:{port}",
    "[fe80::1]:{port}",
    "[fe80::1%25lo]:{port}",
    "[fe80::1%25eth0]:{port}",
    // IDNA: full-width digits and other full stops.
    "１２７.０.０.１:{port}",
    "127。0。0。1:{port}",
    "１２７．０．０．１:{port}",
    "０ｘ７ｆ.1:{port}",
    // Percent-encoded hosts.
    "%31%32%37.0.0.1:{port}",
    "127%2e0%2e0%2e1:{port}",
    "%30:{port}",
    // Userinfo tricks.
    "user@127.0.0.1:{port}",
    "user:pass@127.0.0.1:{port}",
    "videos.example.com@127.0.0.1:{port}",
    "videos.example.com:443@127.0.0.1:{port}",
    // Fragment and query tricks after the real host.
    "127.0.0.1:{port}/v.mp4#@videos.example.com",
    "127.0.0.1:{port}/v.mp4?@videos.example.com",
    // Names that resolve to loopback.
    "localhost:{port}",
    "LOCALHOST:{port}",
    "localhost.:{port}",
    "LocalHost:{port}",
    "media.localhost:{port}",
    "[::1]",
];

/// Internal, but not this machine: submitted only once the classification refuses them.
const ELSEWHERE: &[&str] = &[
    "169.254.169.254",
    "2852039166",
    "0xa9fea9fe",
    "0251.0376.0251.0376",
    "169.254.43518",
    "[::ffff:169.254.169.254]",
    "[::ffff:a9fe:a9fe]",
    "[64:ff9b::169.254.169.254]",
    "[fd00:ec2::254]",
    "10.0.0.1",
    "167772161",
    "192.168.0.1",
    "172.16.0.1",
    "100.64.0.1",
];

/// A server that counts connections and bytes it sends, on 127.0.0.1 and [::1] at one port.
struct Counting {
    port: u16,
    connections: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    ipv6: bool,
}

async fn counting_server() -> Counting {
    let v4 = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding 127.0.0.1");
    let port = v4.local_addr().expect("address").port();
    let v6 = tokio::net::TcpListener::bind(("::1", port)).await.ok();
    let connections = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let ipv6 = v6.is_some();
    for listener in std::iter::once(v4).chain(v6) {
        let (connections, bytes) = (connections.clone(), bytes.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                let bytes = bytes.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let body = vec![0u8; 64 * 1024];
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    for part in [head.as_bytes(), &body] {
                        if socket.write_all(part).await.is_ok() {
                            bytes.fetch_add(part.len() as u64, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
    }
    Counting {
        port,
        connections,
        bytes,
        ipv6,
    }
}

fn url_of(host: &str, port: u16) -> String {
    let host = host.replace("{port}", &port.to_string());
    if host.contains('/') {
        format!("http://{host}")
    } else {
        format!("http://{host}/v.mp4")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_spelling_of_an_internal_address_is_forbidden_and_nothing_is_served() {
    let server = counting_server().await;
    let stack = Stack::spawn_with(
        Options {
            backend: Backend::Fs,
            workers: true,
        },
        |s| s.sources.allow_private_networks = false,
    )
    .await;
    let mut urls: Vec<String> = LOOPBACK.iter().map(|h| url_of(h, server.port)).collect();
    for host in ELSEWHERE {
        let url = url_of(host, 80);
        assert!(
            shared_proto::net::forbidden_url_text(&url).is_some(),
            "{url} is not classified as internal: not submitting it"
        );
        urls.push(url);
    }
    assert!(urls.len() >= 60, "{} spellings", urls.len());

    let (mut at_submission, mut at_fetch) = (0, Vec::new());
    for url in &urls {
        let body = json!({"url": url, "start": "00:00:01", "stop": "00:00:02"});
        let (code, answer) = stack.api.post("/v1/jobs", &body).await;
        match code {
            400 => {
                assert_eq!(
                    answer["error"]["code"], "source_forbidden",
                    "{url}: {answer}"
                );
                at_submission += 1;
            }
            // 200: a spelling that normalizes to one submitted before is that job.
            202 | 200 => at_fetch.push((
                url.clone(),
                answer["id"].as_str().expect("an id").to_owned(),
            )),
            other => panic!("{url}: {other} {answer}"),
        }
        // The same address as a callback is refused too (a public source, never fetched:
        // the submission itself is refused).
        if code == 400 {
            let body = json!({"url": "http://videos.example.com/v.mp4", "callback_url": url});
            let (code, answer) = stack.api.post("/v1/jobs", &body).await;
            assert_eq!(
                (code, answer["error"]["code"].as_str()),
                (400, Some("source_forbidden")),
                "callback {url}: {answer}"
            );
        }
    }
    for (url, id) in &at_fetch {
        let (job, states) = stack.api.wait_for_job(id, Duration::from_secs(60)).await;
        assert_eq!(
            (job["state"].as_str(), job["error"]["code"].as_str()),
            (Some("failed"), Some("source_forbidden")),
            "{url} went {states:?}: {job}"
        );
        // Refused, never retried.
        assert_eq!(job["retries"], 0, "{url}: {job}");
    }
    eprintln!(
        "{} spellings: {at_submission} refused at submission, {} when their job ran \
         ({:?}); the server (IPv6 too: {}) saw {} connections, {} bytes",
        urls.len(),
        at_fetch.len(),
        at_fetch.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>(),
        server.ipv6,
        server.connections.load(Ordering::SeqCst),
        server.bytes.load(Ordering::SeqCst)
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
    assert_eq!(server.bytes.load(Ordering::SeqCst), 0);
    stack.stop().await;
}

/// A loopback server whose `/to/{n}` redirects to the `n`th loopback spelling.
async fn redirector(target_port: u16) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let target = path
                    .strip_prefix("/to/")
                    .and_then(|n| n.parse::<usize>().ok())
                    .and_then(|n| LOOPBACK.get(n))
                    .map(|h| url_of(h, target_port))
                    .unwrap_or_default();
                let response = format!(
                    "HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_any_spelling_is_refused_at_the_hop() {
    let server = counting_server().await;
    let base = redirector(server.port).await;
    let mut settings = hopster_common::Settings::default();
    settings.sources.allow_private_networks = false;
    let client = hopster_common::source_client(&settings).expect("the source client");
    let mut refused = 0;
    for (n, host) in LOOPBACK.iter().enumerate() {
        // The first hop is the redirector's own loopback literal, which the client does not
        // check (the downloader does, before it): only the redirect is under test here.
        let result = client.get(format!("{base}/to/{n}")).send().await;
        match result {
            Err(e) if hopster_common::guard::refusal(&e).is_some() => refused += 1,
            Err(e) => panic!("{host}: not refused by the guard: {e:?}"),
            // A Location that is no URL (a zone id) is not followed at all: the client hands
            // back the redirect itself.
            Ok(r) if r.status().is_redirection() && r.url().as_str().starts_with(&base) => {
                refused += 1;
            }
            Ok(r) => panic!("{host}: followed to {} ({})", r.url(), r.status()),
        }
    }
    assert_eq!(refused, LOOPBACK.len());
    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
    assert_eq!(server.bytes.load(Ordering::SeqCst), 0);
}
