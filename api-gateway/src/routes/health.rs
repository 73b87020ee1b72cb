//! Liveness and readiness.

use crate::state::AppState;
use actix_web::{web, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "meta",
    responses((status = 200, description = "Alive", body = shared_proto::api::Health)))]
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(shared_proto::api::Health {
        status: "ok".to_owned(),
    })
}

/// The broker connection is up and the store answers.
#[utoipa::path(get, path = "/readyz", tag = "meta",
    responses((status = 200, description = "Broker and store reachable", body = shared_proto::api::Readiness),
              (status = 503, description = "Broker or store unreachable: which", body = shared_proto::api::Readiness)))]
pub(crate) async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    hopster_common::ops::readiness_response(
        hopster_common::ops::readiness(&state.broker, &state.store).await,
    )
}

/// The gateway's metrics (Prometheus text).
#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain")))]
pub(crate) async fn metrics() -> HttpResponse {
    hopster_common::ops::metrics_response()
}
