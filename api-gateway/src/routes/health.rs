//! Liveness and readiness.

use crate::startup::AppState;
use actix_web::{web, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200, description = "Alive")))]
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// The broker connection is up and the store answers.
#[utoipa::path(get, path = "/readyz", tag = "meta",
    responses((status = 200, description = "Broker and store reachable"),
              (status = 503, description = "Broker or store unreachable")))]
pub(crate) async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let broker = state.broker.is_connected();
    let store = state.store.head("readyz-probe").await.is_ok();
    let body = serde_json::json!({"broker": broker, "store": store});
    if broker && store {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
