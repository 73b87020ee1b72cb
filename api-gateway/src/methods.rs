//! Which methods each documented path takes, read from the OpenAPI document: a request for a
//! known path with another method is answered `405 method_not_allowed` with `Allow`, not 404.

use crate::error::ApiError;
use actix_web::dev::ResourceDef;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use shared_proto::ErrorCode;
use utoipa::openapi::path::PathItem;
use utoipa::openapi::OpenApi;

/// The document's paths, matched as the router matches them, each with its `Allow` value.
pub struct Methods(Vec<(ResourceDef, String)>);

impl Methods {
    pub fn of(doc: &OpenApi) -> Methods {
        Methods(
            doc.paths
                .paths
                .iter()
                .map(|(path, item)| (ResourceDef::new(path.as_str()), allow(item)))
                .collect(),
        )
    }

    /// The `Allow` value of the documented path `path` matches, if any.
    pub fn allowed(&self, path: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(def, _)| def.is_match(path))
            .map(|(_, allow)| allow.as_str())
    }
}

fn allow(item: &PathItem) -> String {
    [
        ("GET", item.get.is_some()),
        ("HEAD", item.head.is_some()),
        ("POST", item.post.is_some()),
        ("PUT", item.put.is_some()),
        ("PATCH", item.patch.is_some()),
        ("DELETE", item.delete.is_some()),
        ("OPTIONS", item.options.is_some()),
        ("TRACE", item.trace.is_some()),
    ]
    .into_iter()
    .filter(|(_, present)| *present)
    .map(|(method, _)| method)
    .collect::<Vec<_>>()
    .join(", ")
}

/// No route took the request: `405` with `Allow` when the path is a documented one (another
/// method would do), else `404`.
pub async fn unknown_route(req: HttpRequest) -> HttpResponse {
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

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::OpenApi as _;

    #[test]
    fn every_documented_path_names_its_methods() {
        let methods = Methods::of(&crate::openapi::ApiDoc::openapi());
        assert_eq!(methods.allowed("/v1/jobs"), Some("GET, POST"));
        assert_eq!(
            methods.allowed("/v1/jobs/0123456789abcdef0123456789abcdef"),
            Some("GET, DELETE")
        );
        assert_eq!(methods.allowed("/v1/jobs/x/video"), Some("GET"));
        assert_eq!(methods.allowed("/schedule"), Some("POST"));
        assert_eq!(methods.allowed("/healthz"), Some("GET"));
        assert_eq!(methods.allowed("/v2/nothing"), None);
        assert_eq!(methods.allowed("/v1/jobs/x/y/z"), None);
    }
}
