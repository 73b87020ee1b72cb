//! The SSRF guard inside a real HTTP client: every redirect hop is checked again, names are
//! checked where they resolve, and redirects are capped.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers

use hopster_common::guard::{
    redirect_policy, refusal, system_lookup, GuardedResolver, PeerCheckLayer, Policy,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A loopback server that counts the bytes it is sent and answers 200.
async fn counting_server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                if let Ok(n) = socket.read(&mut buf).await {
                    counter.fetch_add(n, Ordering::SeqCst);
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .await;
                }
            });
        }
    });
    (addr, received)
}

/// The last line: with every check above it switched off (a resolver that allows anything, no
/// URL check, no redirect policy), the peer check alone refuses an internal peer before a
/// request byte is written, by IP literal and by name.
#[tokio::test]
async fn the_peer_check_refuses_an_internal_peer_before_a_byte_is_sent() {
    let (addr, received) = counting_server().await;
    let careless = |peer_check: bool| {
        let builder = reqwest::Client::builder()
            .dns_resolver(GuardedResolver {
                policy: Policy::open(),
                lookup: system_lookup(),
            })
            .no_proxy();
        let builder = if peer_check {
            builder.connector_layer(PeerCheckLayer {
                policy: Policy::public(),
            })
        } else {
            builder
        };
        builder.build().unwrap()
    };
    let port = addr.port();
    for url in [
        format!("http://127.0.0.1:{port}/v.mp4"),
        format!("http://2130706433:{port}/v.mp4"),
        format!("http://localhost:{port}/v.mp4"),
    ] {
        let err = careless(true).get(&url).send().await.unwrap_err();
        let why = refusal(&err).unwrap_or_else(|| panic!("{url}: not refused: {err:?}"));
        assert!(why.contains("loopback"), "{url}: {why}");
    }
    assert_eq!(
        received.load(Ordering::SeqCst),
        0,
        "no request byte reached the server"
    );
    // The same careless client without the layer does reach it: the test can fail.
    let ok = careless(false)
        .get(format!("http://127.0.0.1:{port}/v.mp4"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(received.load(Ordering::SeqCst) > 0);
    // Allowed private networks pass the layer.
    let allowed = reqwest::Client::builder()
        .connector_layer(PeerCheckLayer {
            policy: Policy::open(),
        })
        .no_proxy()
        .build()
        .unwrap();
    let ok = allowed
        .get(format!("http://127.0.0.1:{port}/v.mp4"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

/// A loopback server: `/to-loopback` and `/to-localhost` redirect to `/final` by IP and by
/// name, `/loop` redirects to itself, `/final` answers 200 and is counted.
async fn server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let finals = Arc::new(AtomicUsize::new(0));
    let counter = finals.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let response = match path.as_str() {
                    "/to-loopback" => format!("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/final\r\nContent-Length: 0\r\n\r\n"),
                    "/to-localhost" => format!("HTTP/1.1 302 Found\r\nLocation: http://localhost:{port}/final\r\nContent-Length: 0\r\n\r\n"),
                    "/loop" => "HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n".to_owned(),
                    _ => {
                        counter.fetch_add(1, Ordering::SeqCst);
                        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_owned()
                    }
                };
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (format!("http://127.0.0.1:{port}"), finals)
}

fn client(allow_private: bool) -> reqwest::Client {
    let policy = Policy {
        allow_private,
        ..Policy::default()
    };
    reqwest::Client::builder()
        .dns_resolver(GuardedResolver {
            policy: policy.clone(),
            lookup: system_lookup(),
        })
        .redirect(redirect_policy(&policy))
        .no_proxy()
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_redirect_to_loopback_is_refused_at_the_hop() {
    let (base, finals) = server().await;
    // The first hop's IP literal is the downloader's own check; here only the redirect counts.
    for path in ["/to-loopback", "/to-localhost"] {
        let err = client(false)
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap_err();
        let why =
            refusal(&err).unwrap_or_else(|| panic!("{path}: not refused by the guard: {err:?}"));
        assert!(why.contains("loopback"), "{path}: {why}");
    }
    assert_eq!(
        finals.load(Ordering::SeqCst),
        0,
        "the redirect target was never contacted"
    );
    // With private networks allowed the same redirects are followed.
    let ok = client(true)
        .get(format!("{base}/to-loopback"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn more_than_five_redirects_are_refused() {
    let (base, _) = server().await;
    let err = client(true)
        .get(format!("{base}/loop"))
        .send()
        .await
        .unwrap_err();
    assert!(
        refusal(&err).is_some_and(|why| why.contains("more than 5 redirects")),
        "{err:?}"
    );
}
