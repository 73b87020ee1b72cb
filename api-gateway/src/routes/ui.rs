//! The web page at `/ui`: plain HTML, CSS and JavaScript built into the binary (no separate
//! server, no CDN, no build step), served with a strict Content-Security-Policy.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

const INDEX_HTML: &str = include_str!("../../ui/index.html");
const APP_JS: &str = include_str!("../../ui/app.js");
const STYLE_CSS: &str = include_str!("../../ui/style.css");

/// Only the page's own files run or style; API calls go to this origin. `media-src` also
/// allows any http(s) URL so the form can preview the source video the user pasted.
const CSP: &str = "default-src 'self'; media-src 'self' http: https: blob:; \
                   img-src 'self' data:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/ui", web::get().to(index))
        .route("/ui/", web::get().to(index))
        .route("/ui/app.js", web::get().to(app_js))
        .route("/ui/style.css", web::get().to(style_css));
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .body(body)
}

/// The web page.
#[utoipa::path(get, path = "/ui", tag = "ui",
    responses((status = 200, description = "The page (also at `/ui/`)", body = String, content_type = "text/html")))]
pub(crate) async fn index() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

/// The web page's script.
#[utoipa::path(get, path = "/ui/app.js", tag = "ui",
    responses((status = 200, description = "JavaScript", body = String, content_type = "text/javascript")))]
pub(crate) async fn app_js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// The web page's style sheet.
#[utoipa::path(get, path = "/ui/style.css", tag = "ui",
    responses((status = 200, description = "CSS", body = String, content_type = "text/css")))]
pub(crate) async fn style_css() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test as web_test;
    use actix_web::App;

    #[actix_web::test]
    async fn the_page_and_its_assets_are_served_with_their_types_and_policy() {
        let app = web_test::init_service(App::new().configure(configure)).await;
        for (path, kind, body) in [
            ("/ui", "text/html", INDEX_HTML),
            ("/ui/", "text/html", INDEX_HTML),
            ("/ui/app.js", "text/javascript", APP_JS),
            ("/ui/style.css", "text/css", STYLE_CSS),
        ] {
            let res =
                web_test::call_service(&app, web_test::TestRequest::get().uri(path).to_request())
                    .await;
            assert_eq!(res.status(), 200, "{path}");
            let header = |name| {
                res.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            assert!(header(header::CONTENT_TYPE).starts_with(kind), "{path}");
            assert_eq!(header(header::CACHE_CONTROL), "no-cache", "{path}");
            let csp = header(header::CONTENT_SECURITY_POLICY);
            assert!(csp.starts_with("default-src 'self';"), "{path}: {csp}");
            assert!(csp.contains("script-src 'self';") && csp.contains("style-src 'self';"));
            assert_eq!(web_test::read_body(res).await.as_ref(), body.as_bytes());
        }
    }

    /// The policy forbids inline code and foreign assets; the page must not need them.
    #[test]
    fn the_page_uses_only_its_own_files() {
        assert!(INDEX_HTML.contains(r#"<script src="/ui/app.js" defer></script>"#));
        assert!(INDEX_HTML.contains(r#"<link rel="stylesheet" href="/ui/style.css">"#));
        assert!(INDEX_HTML.contains(r#"<meta name="viewport""#));
        for forbidden in ["<style", " style=", " onclick", " onload", "javascript:"] {
            assert!(!INDEX_HTML.contains(forbidden), "{forbidden}");
        }
        for text in [INDEX_HTML, APP_JS, STYLE_CSS] {
            for foreign in [
                "src=\"http",
                "href=\"http",
                "url(http",
                "@import",
                "innerHTML",
            ] {
                assert!(!text.contains(foreign), "{foreign}");
            }
        }
    }

    /// The page takes its lists from `/v1/vocabulary` and keeps no copy of them.
    #[test]
    fn the_page_keeps_no_copy_of_the_contract_s_lists() {
        assert!(APP_JS.contains("fetch('/v1/vocabulary'"));
        let vocabulary = shared_proto::api::Vocabulary::new();
        for e in &vocabulary.errors {
            assert!(
                !APP_JS.contains(&e.words),
                "app.js copies the words of `{}`",
                e.code
            );
        }
        for p in &vocabulary.profiles {
            assert!(
                !APP_JS.contains(&p.words),
                "app.js copies the words of {:?}",
                p.name
            );
        }
    }
}
