//! API keys: with keys configured, every route but `GET /`, health and the web page's static
//! files needs `Authorization: Bearer KEY` (the video routes also take `?key=KEY`, since a
//! `<video src>` cannot send headers). Keys are compared as SHA-256 digests in constant time.

use crate::error::ApiError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse, ResponseError};
use hopster_common::settings::Secret;
use sha2::{Digest, Sha256};
use shared_proto::ErrorCode;

/// The accepted keys, as digests (the keys themselves are not kept around).
#[derive(Clone, Default)]
pub struct ApiKeys(Vec<[u8; 32]>);

impl ApiKeys {
    pub fn new(keys: &[Secret]) -> Self {
        // An empty key would let `Authorization: Bearer ` in: ignore blanks (an unset
        // `${VAR:-}` in a compose file yields one).
        ApiKeys(
            keys.iter()
                .map(|k| k.expose().trim())
                .filter(|k| !k.is_empty())
                .map(digest)
                .collect(),
        )
    }

    pub fn is_enabled(&self) -> bool {
        !self.0.is_empty()
    }

    /// Whether `candidate` is one of the keys; looks at every key whatever matches.
    pub fn accepts(&self, candidate: &str) -> bool {
        let candidate = digest(candidate);
        self.0.iter().fold(false, |found, key| {
            found | constant_time_eq(key, &candidate)
        })
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Routes anyone may call (the OpenAPI document gives them `security: []`).
pub(crate) fn is_public(method: &actix_web::http::Method, path: &str) -> bool {
    method == actix_web::http::Method::GET
        && (path == "/"
            || path == "/healthz"
            || path == "/readyz"
            || path == "/metrics"
            || path == "/v1/vocabulary"
            || path == "/ui"
            || path.starts_with("/ui/"))
}

fn presented_key(req: &ServiceRequest) -> Option<String> {
    if let Some(value) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return value.strip_prefix("Bearer ").map(|k| k.trim().to_owned());
    }
    let path = req.path();
    // What browsers load by URL (`<video>`, `<img>`, HLS segments, `EventSource`) cannot send
    // headers.
    if path.ends_with("/video")
        || path.ends_with("/poster")
        || path.ends_with("/events")
        || path.ends_with("/storyboard.jpg")
        || path.ends_with("/storyboard.vtt")
        || path.contains("/hls/")
        || path == "/download"
    {
        return crate::routes::body::query_value(req.query_string(), "key");
    }
    None
}

/// The middleware: refuses a request without a valid key, in the error format of the API the
/// route belongs to.
pub async fn require_key(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let keys = req
        .app_data::<web::Data<ApiKeys>>()
        .cloned()
        .unwrap_or_default();
    if !keys.is_enabled() || is_public(req.method(), req.path()) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let presented = presented_key(&req);
    if let Some(key) = presented.as_deref().filter(|k| keys.accepts(k)) {
        // The key is who the request is charged to by the limits (crate::limits).
        req.extensions_mut()
            .insert(crate::limits::Client::Key(digest(key)));
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let message = match presented {
        None => "an API key is required: send `Authorization: Bearer KEY`",
        Some(_) => "the API key is not valid",
    };
    let response = if req.path().starts_with("/v1/") || req.path() == "/openapi.json" {
        ApiError::new(ErrorCode::Unauthorized, message).error_response()
    } else {
        HttpResponse::Unauthorized().json(shared_proto::api::SeedErrorBody::new(401, message))
    };
    let mut response = response;
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    Ok(req.into_response(response).map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_keys_are_accepted() {
        let keys = ApiKeys::new(&[Secret::new("alpha"), Secret::new("beta")]);
        assert!(keys.accepts("alpha") && keys.accepts("beta"));
        for wrong in ["", "alph", "alphaa", "ALPHA", "beta "] {
            assert!(!keys.accepts(wrong), "{wrong:?}");
        }
        assert!(!ApiKeys::new(&[]).is_enabled());
        let blank = ApiKeys::new(&[Secret::new(""), Secret::new("  ")]);
        assert!(!blank.is_enabled() && !blank.accepts(""));
    }
}
