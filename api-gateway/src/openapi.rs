//! The OpenAPI 3 document at `GET /openapi.json`, generated from the handlers' annotations and
//! the contract's types, so it cannot drift from the code unnoticed (a test checks every route
//! and every error code appear in it).

use actix_web::{web, HttpResponse};
use serde::Serialize;
use shared_proto::api::{CreateJobSchema, CreateSourceSchema, ErrorBody, Schedule, SeedErrorBody};
use shared_proto::ErrorCode;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hopster",
        description = "Cut, transcode and store video clips. With API keys configured \
            (HOPSTER__AUTH__API_KEYS), every route but `GET /`, `/healthz`, `/readyz`, \
            `/metrics`, `/v1/vocabulary` and the web page (`/ui`) needs `Authorization: Bearer KEY` (those have \
            `security: []`); the video routes also accept `?key=KEY`. A documented path asked \
            with another method answers `405 method_not_allowed` with `Allow`."
    ),
    paths(
        crate::routes::v1::create,
        crate::routes::v1::list,
        crate::routes::v1::show,
        crate::routes::v1::cancel,
        crate::routes::v1::video,
        crate::routes::v1::poster,
        crate::routes::v1::segment,
        crate::routes::v1::vocabulary,
        crate::routes::sources::create,
        crate::routes::sources::show,
        crate::routes::sources::storyboard_jpg,
        crate::routes::sources::storyboard_vtt,
        crate::routes::events::stream,
        crate::routes::seed::welcome,
        crate::routes::seed::schedule,
        crate::routes::seed::progress,
        crate::routes::seed::download,
        crate::routes::health::healthz,
        crate::routes::health::readyz,
        crate::routes::health::metrics,
        crate::routes::ui::index,
        crate::routes::ui::app_js,
        crate::routes::ui::style_css,
        openapi_json,
    ),
    components(schemas(
        ErrorCode,
        ErrorBody,
        SeedErrorBody,
        CreateJobSchema,
        CreateSourceSchema,
        Schedule
    )),
    modifiers(&BearerAuth, &PublicRoutes, &JobLinks)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            "api_key",
            Vec::<String>::new(),
        )]);
    }
}

/// `security: []` on the routes anyone may call (`crate::auth` decides which).
struct PublicRoutes;

impl utoipa::Modify for PublicRoutes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            if crate::auth::is_public(&actix_web::http::Method::GET, path) {
                if let Some(get) = item.get.as_mut() {
                    get.security = Some(Vec::new());
                }
            }
        }
    }
}

/// A link's name, the operation it leads to, and its description.
type Link = (&'static str, &'static str, &'static str);

/// OpenAPI links from a submitted job to what can be done with it: the stateful flow
/// create → get → video, poster, events → cancel; and from an inspection to it and its
/// storyboard.
struct JobLinks;

impl utoipa::Modify for JobLinks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::link::LinkBuilder;
        use utoipa::openapi::RefOr;
        // From a created job or inspection (200 or 202) to what can be done with it, by its id.
        let flows: [(&str, &[Link]); 2] = [
            (
                "/v1/jobs",
                &[
                    ("GetJob", "show", "The job's state, progress and result"),
                    ("GetVideo", "video", "The result, once completed"),
                    ("GetPoster", "poster", "The poster, once completed"),
                    ("FollowEvents", "stream", "The job's status changes, live"),
                    ("CancelJob", "cancel", "Cancel the job"),
                ],
            ),
            (
                "/v1/sources",
                &[
                    (
                        "GetSource",
                        "show_source",
                        "The inspection: state, streams, keyframes",
                    ),
                    (
                        "GetStoryboard",
                        "storyboard_jpg",
                        "The storyboard's sprite, once ready",
                    ),
                    (
                        "GetStoryboardCues",
                        "storyboard_vtt",
                        "The storyboard's cues, once ready",
                    ),
                ],
            ),
        ];
        for (path, links) in flows {
            let Some(create) = openapi
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| item.post.as_mut())
            else {
                continue;
            };
            for status in ["200", "202"] {
                if let Some(RefOr::T(response)) = create.responses.responses.get_mut(status) {
                    for (name, operation, description) in links {
                        let link = LinkBuilder::new()
                            .operation_id(*operation)
                            .parameter("id", "$response.body#/id")
                            .description(*description)
                            .build();
                        response.links.insert((*name).to_owned(), RefOr::T(link));
                    }
                }
            }
        }
        let Some(schedule) = openapi
            .paths
            .paths
            .get_mut("/schedule")
            .and_then(|item| item.post.as_mut())
        else {
            return;
        };
        if let Some(RefOr::T(response)) = schedule.responses.responses.get_mut("200") {
            for (name, operation, parameter) in [
                ("Progress", "progress", "reference"),
                ("Download", "download", "video_file"),
            ] {
                let link = LinkBuilder::new()
                    .operation_id(operation)
                    .parameter(parameter, "$response.body#/video_file")
                    .build();
                response.links.insert(name.to_owned(), RefOr::T(link));
            }
        }
    }
}

/// The OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "This document", body = Object, content_type = "application/json"),
              (status = 401, description = "`unauthorized`", body = ErrorBody)))]
pub async fn openapi_json() -> HttpResponse {
    #[derive(Serialize)]
    struct Failed<'a> {
        error: &'a str,
    }
    match ApiDoc::openapi().to_pretty_json() {
        Ok(json) => HttpResponse::Ok()
            .content_type("application/json")
            .body(json),
        Err(e) => HttpResponse::InternalServerError().json(Failed {
            error: &e.to_string(),
        }),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi_json));
}
