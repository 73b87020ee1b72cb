//! The operations endpoints every worker serves: `/healthz`, `/readyz`, `/metrics`.

use crate::{Broker, Store};
use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context;
use tokio_util::sync::CancellationToken;

/// Whether the broker connection is up and the store answers.
pub async fn readiness(broker: &Broker, store: &Store) -> (bool, bool) {
    let store_ok = store.head("readyz-probe").await.is_ok();
    (broker.is_connected(), store_ok)
}

/// `/readyz`'s answer: 200 when both are reachable, 503 naming what is not.
pub fn readiness_response((broker, store): (bool, bool)) -> HttpResponse {
    let body = shared_proto::api::Readiness { broker, store };
    if broker && store {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `/metrics`' answer.
pub fn metrics_response() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::render())
}

/// Binds `bind` and serves the three endpoints until `shutdown`; returns the bound port, or
/// `None` when `bind` cannot be bound (logged): the endpoints are for watching a worker, and a
/// taken port must not stop it from working.
pub fn serve(bind: &str, broker: Broker, store: Store, shutdown: CancellationToken) -> Option<u16> {
    match start(bind, broker, store, shutdown) {
        Ok(port) => Some(port),
        Err(e) => {
            log::error!(
                "no /healthz, /readyz or /metrics: {e:#}; set HOPSTER__WORKER__HTTP_BIND to a \
                 free address (port 0 picks one)"
            );
            None
        }
    }
}

fn start(
    bind: &str,
    broker: Broker,
    store: Store,
    shutdown: CancellationToken,
) -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind(bind)
        .with_context(|| format!("binding {bind} (worker.http_bind)"))?;
    let port = listener.local_addr()?.port();
    let state = web::Data::new((broker, store));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route(
                "/healthz",
                web::get()
                    .to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "ok"})) }),
            )
            .route(
                "/readyz",
                web::get().to(|s: web::Data<(Broker, Store)>| async move {
                    readiness_response(readiness(&s.0, &s.1).await)
                }),
            )
            .route("/metrics", web::get().to(|| async { metrics_response() }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    tokio::spawn(async move {
        shutdown.cancelled().await;
        handle.stop(true).await;
    });
    log::info!("operations endpoints on port {port} (/healthz, /readyz, /metrics)");
    Ok(port)
}
