//! The benchmark's HTTP reference for submissions (issue 18 goal 7): what actix-web alone
//! costs to take a JSON `POST` and answer `202` with a JSON body, at the gateway's settings
//! (its worker count, keep-alive and `TCP_NODELAY`), with no store and no broker. With the bare
//! publisher's own CPU per confirmed message it shows the floor under the gateway's CPU per
//! submission.
//!
//! ```text
//! cargo run --release -p hopster-common --example bare_http -- 127.0.0.1:0 [HOLD_US]
//! ```
//!
//! Prints the address it listens on (`http://IP:PORT`) as its first line, then serves
//! `POST /v1/jobs` until killed. With `HOLD_US`, each answer waits that long first, as the
//! gateway's wait for the broker's confirm: the same load then comes at about the gateway's
//! rate, with as few requests sharing a wake-up as there.

use actix_web::{web, App, HttpResponse, HttpServer};
use serde::{Deserialize, Serialize};
use std::net::TcpListener;
use std::time::Duration;

/// The fields the benchmark's `submit.lua` sends.
#[derive(Deserialize)]
struct Submission {
    url: String,
    start: String,
    stop: String,
}

/// An answer of about the gateway's size (a queued job's status).
#[derive(Serialize)]
struct Accepted<'a> {
    id: String,
    state: &'static str,
    url: &'a str,
    start: &'a str,
    stop: &'a str,
    created_at_ms: u128,
    status_url: String,
}

async fn submit(body: web::Json<Submission>, hold: web::Data<Duration>) -> HttpResponse {
    if !hold.is_zero() {
        tokio::time::sleep(**hold).await;
    }
    let id = format!("{:016x}", stand_in_id(&body.url, &body.start, &body.stop));
    let created_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    HttpResponse::Accepted().json(Accepted {
        status_url: format!("/v1/jobs/{id}"),
        id,
        state: "queued",
        url: &body.url,
        start: &body.start,
        stop: &body.stop,
        created_at_ms,
    })
}

/// A stand-in for the gateway's job id (a hash of the spec).
fn stand_in_id(url: &str, start: &str, stop: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (url, start, stop).hash(&mut h);
    h.finish()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let hold = match std::env::args().nth(2) {
        Some(us) => Duration::from_micros(us.parse()?),
        None => Duration::ZERO,
    };
    let listener = TcpListener::bind(&bind)?;
    println!("http://{}", listener.local_addr()?);
    let hold = web::Data::new(hold);
    HttpServer::new(move || {
        App::new()
            .app_data(hold.clone())
            .route("/v1/jobs", web::post().to(submit))
    })
    .tcp_nodelay(true)
    .listen(listener)?
    .run()
    .await?;
    Ok(())
}
