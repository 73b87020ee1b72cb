//! The OpenAPI 3 document at `GET /openapi.json`, generated from the handlers' annotations and
//! the contract's types, so it cannot drift from the code unnoticed (a test checks every route
//! and every error code appear in it).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared_proto::{ErrorCode, JobState, Timecode};
use utoipa::{OpenApi, ToSchema};

/// `POST /v1/jobs`: exactly one of `url` and `video_id` (a `null` field counts as absent).
/// Rules between fields are the handler's: `start` before `stop`, the clip at most
/// `sources.max_clip_secs` long, `poster_at` inside it, `max_height` and `poster_at` only
/// with video profiles, `accuracy: keyframe` only with `mp4` and no `max_height`.
#[allow(dead_code)] // documentation only: the handler reads the body field by field
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"video_id": "sample", "start": "00:00:10", "stop": "00:00:13"}))]
pub struct CreateJob {
    /// An absolute http(s) URL without credentials, on a public address. The pattern is a
    /// safe subset, for generated examples; any URL the WHATWG parser takes is accepted.
    #[schema(
        max_length = 2048,
        pattern = r"^https?://[a-z][a-z0-9]{0,15}(\.[a-z][a-z0-9]{0,15}){0,3}(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]{0,16}){0,4}$"
    )]
    url: Option<String>,
    /// A catalogue id, mapped to a URL by `sources.video_url_template`.
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,128}$")]
    video_id: Option<String>,
    /// Clip start; the beginning when absent.
    start: Option<Timecode>,
    /// Clip end; the end of the source when absent. Must be after `start`.
    stop: Option<Timecode>,
    /// `frame` (default: re-encode, frame-accurate) or `keyframe` (stream copy from the
    /// keyframe at or before `start`; the result reports `start_achieved`).
    accuracy: Option<shared_proto::Accuracy>,
    /// `mp4` (default, H.264/AAC), `webm` (VP9/Opus), `audio` (AAC in m4a), `mp3`, or `hls`
    /// (H.264/AAC playlist and segments).
    profile: Option<shared_proto::Profile>,
    /// Scale the video down to at most this height, keeping the aspect ratio.
    #[schema(minimum = 16, maximum = 4320)]
    max_height: Option<u32>,
    /// Where in the clip the poster is taken; default one second in.
    poster_at: Option<Timecode>,
    /// POSTed the signed status when the job completes, fails or is cancelled (an absolute
    /// http(s) URL; the pattern is a safe subset, as for `url`).
    #[schema(
        max_length = 2048,
        pattern = r"^https?://[a-z][a-z0-9]{0,15}(\.[a-z][a-z0-9]{0,15}){0,3}(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~-]{0,16}){0,4}$"
    )]
    callback_url: Option<String>,
}

/// The v1 error format.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[allow(dead_code)]
#[derive(ToSchema)]
pub struct ErrorDetail {
    code: ErrorCode,
    message: String,
}

/// `GET /v1/jobs`.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct JobList {
    jobs: Vec<crate::routes::JobView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// `POST /schedule` (the seed's API).
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(example = json!({"video_id": "sample", "start": "00:00:03", "stop": "00:00:06"}))]
pub struct Schedule {
    #[schema(pattern = r"^[A-Za-z0-9_-]{1,128}$")]
    video_id: String,
    start: Option<Timecode>,
    stop: Option<Timecode>,
}

/// `GET /healthz`.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: String,
}

/// `GET /readyz`: what answers.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct Readiness {
    broker: bool,
    store: bool,
}

/// A result's bytes (`GET /v1/jobs/{id}/video` and the like).
pub struct Bytes;

impl utoipa::PartialSchema for Bytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .into()
    }
}

impl ToSchema for Bytes {}

/// The seed's answer to `POST /schedule`.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct VideoFile {
    /// `{video_id}_from_{HHMMSSffffff|start}_till_{HHMMSSffffff|end}.mp4`
    video_file: String,
}

/// The seed's answer to `GET /progress`.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct SeedProgress {
    is_finished: bool,
    state: JobState,
}

/// The seed's error format. Codes: 100 malformed request or missing parameter, 200 no such
/// video (or not ready), 300 bad time or range, 400 the job failed, 401 API key missing or
/// wrong, 429 too many new jobs from this client, 500 service unavailable.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct SeedErrorBody {
    error: SeedErrorDetail,
}

#[allow(dead_code)]
#[derive(ToSchema)]
pub struct SeedErrorDetail {
    message: String,
    code: u16,
}

/// A plain message.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct Message {
    message: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hopster",
        description = "Cut, transcode and store video clips. With API keys configured \
            (HOPSTER__AUTH__API_KEYS), every route but `GET /`, `/healthz`, `/readyz`, \
            `/metrics` and the web page (`/ui`) needs `Authorization: Bearer KEY` (those have \
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
        crate::events::stream,
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
    components(schemas(ErrorCode, ErrorBody, SeedErrorBody, CreateJob, Schedule)),
    modifiers(&BearerAuth, &PublicRoutes, &ExactlyOneSource, &JobLinks)
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

/// `CreateJob` takes exactly one of `url` and `video_id` as a string (`null` is absent), which
/// a derive cannot say: its schema becomes `allOf` of the fields and that `oneOf`.
struct ExactlyOneSource;

impl utoipa::Modify for ExactlyOneSource {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, OneOfBuilder, Type};
        let Some(schemas) = openapi.components.as_mut().map(|c| &mut c.schemas) else {
            return;
        };
        let Some(fields) = schemas.remove("CreateJob") else {
            return;
        };
        let present = |field: &str| {
            ObjectBuilder::new()
                .property(field, ObjectBuilder::new().schema_type(Type::String))
                .required(field)
        };
        let one_of = OneOfBuilder::new()
            .item(present("url"))
            .item(present("video_id"));
        let all_of = AllOfBuilder::new()
            .item(fields)
            .item(one_of)
            .description(Some(
                "Exactly one of `url` and `video_id`; the other absent or `null`.",
            ))
            .examples([json!({"video_id": "sample", "start": "00:00:10", "stop": "00:00:13"})]);
        schemas.insert("CreateJob".to_owned(), all_of.into());
    }
}

/// OpenAPI links from a submitted job to what can be done with it: the stateful flow
/// create → get → video, poster, events → cancel.
struct JobLinks;

impl utoipa::Modify for JobLinks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::link::LinkBuilder;
        use utoipa::openapi::RefOr;
        let links = [
            ("GetJob", "show", "The job's state, progress and result"),
            ("GetVideo", "video", "The result, once completed"),
            ("GetPoster", "poster", "The poster, once completed"),
            ("FollowEvents", "stream", "The job's status changes, live"),
            ("CancelJob", "cancel", "Cancel the job"),
        ];
        let Some(create) = openapi
            .paths
            .paths
            .get_mut("/v1/jobs")
            .and_then(|item| item.post.as_mut())
        else {
            return;
        };
        for status in ["200", "202"] {
            if let Some(RefOr::T(response)) = create.responses.responses.get_mut(status) {
                for (name, operation, description) in links {
                    let link = LinkBuilder::new()
                        .operation_id(operation)
                        .parameter("id", "$response.body#/id")
                        .description(description)
                        .build();
                    response.links.insert(name.to_owned(), RefOr::T(link));
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
