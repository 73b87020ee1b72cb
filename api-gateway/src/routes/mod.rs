//! The routes: v1, the seed's, health.

mod body;
pub(crate) mod health;
pub(crate) mod seed;
pub(crate) mod ui;
pub(crate) mod v1;

pub(crate) use v1::JobView;

use crate::error::ApiError;
use crate::methods::Methods;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use shared_proto::ErrorCode;

/// A query parameter's decoded value; `None` when absent or the query is malformed.
pub(crate) fn query_value(query: &str, name: &str) -> Option<String> {
    body::query_param(query, name).ok().flatten()
}

/// `text` with everything but RFC 3986's unreserved characters percent-encoded.
pub(crate) fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    v1::configure(cfg);
    seed::configure(cfg);
    health::configure(cfg);
    crate::openapi::configure(cfg);
    ui::configure(cfg);
    cfg.default_service(web::to(unknown_route));
}

/// No route took the request: `405` with `Allow` when the path is a documented one (another
/// method would do), else `404`.
async fn unknown_route(req: HttpRequest) -> HttpResponse {
    let allowed = req
        .app_data::<web::Data<Methods>>()
        .and_then(|m| m.allowed(req.path()));
    let Some(allow) = allowed.and_then(|a| HeaderValue::from_str(a).ok()) else {
        return ApiError::new(
            ErrorCode::UnknownRoute,
            format!("no route for {} {}", req.method(), req.path()),
        )
        .error_response();
    };
    let mut response = ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "{} does not take {}; it takes {}",
            req.path(),
            req.method(),
            allow.to_str().unwrap_or_default()
        ),
    )
    .error_response();
    response.headers_mut().insert(header::ALLOW, allow);
    response
}
