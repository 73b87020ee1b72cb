//! Building the gateway: settings checked, store and broker connected, listener bound (port 0
//! in tests), then served until stopped.

use crate::routes;
use actix_web::dev::Server;
use actix_web::http::KeepAlive;
use actix_web::{web, App, HttpServer};
use anyhow::{bail, Context};
use hopster_common::settings::{Settings, SECRET_KEY_VAR};
use std::net::TcpListener;
use std::time::Duration;

use crate::state::AppState;

/// A bound, not yet running gateway.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Checks the settings, connects, binds. Refuses to start without the server secret, as
    /// the seed did, naming the variable.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        if settings.gateway.secret_key.is_none() {
            bail!(
                "{SECRET_KEY_VAR} is not set; the gateway refuses to start without a server secret"
            );
        }
        if !settings.sources.video_url_template.contains("{video_id}") {
            bail!("HOPSTER__SOURCES__VIDEO_URL_TEMPLATE must contain `{{video_id}}`");
        }
        let (broker, store) = hopster_common::connect(&settings, "api-gateway").await?;
        let (events, _) = tokio::sync::broadcast::channel(4096);
        let hot: std::sync::Arc<crate::hot::HotStatus> = Default::default();
        crate::events::follow(broker.clone(), events.clone(), hot.clone());
        let state = AppState {
            store,
            broker,
            video_url_template: settings.sources.video_url_template.clone(),
            max_body_bytes: settings.gateway.max_body_bytes,
            guard: hopster_common::guard::Policy::of(&settings.sources),
            max_clip_secs: settings.sources.max_clip_secs,
            max_animation_secs: settings.sources.max_animation_secs,
            requeue_after_ms: settings.recovery.requeue_after_secs.saturating_mul(1000),
            hot,
            events,
            limits: crate::limits::Limits::new(&settings.limits),
        };
        let keys = crate::auth::ApiKeys::new(&settings.auth.api_keys);
        if !keys.is_enabled() {
            log::warn!(
                "NO API KEYS CONFIGURED: anyone who can reach this gateway can submit jobs and \
                 read every result. Set HOPSTER__AUTH__API_KEYS to require `Authorization: Bearer KEY`."
            );
        }
        let keys = web::Data::new(keys);
        let methods = web::Data::new(crate::methods::Methods::of(
            &<crate::openapi::ApiDoc as utoipa::OpenApi>::openapi(),
        ));
        let listener = TcpListener::bind(&settings.gateway.bind)
            .with_context(|| format!("binding {}", settings.gateway.bind))?;
        let port = listener.local_addr()?.port();
        let data = web::Data::new(state);
        let gateway = &settings.gateway;
        let keep_alive = match gateway.keep_alive_secs {
            0 => KeepAlive::Disabled,
            secs => KeepAlive::Timeout(Duration::from_secs(secs)),
        };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(keys.clone())
                .app_data(methods.clone())
                .wrap(actix_web::middleware::from_fn(crate::auth::require_key))
                .wrap(actix_web::middleware::from_fn(
                    crate::counted::count_requests,
                ))
                .configure(routes::configure)
                .configure(crate::openapi::configure)
                .default_service(web::to(crate::methods::unknown_route))
        })
        // Slow clients: the first request head must be in within the timeout (408 and closed
        // otherwise), an idle kept-alive connection is closed, and a closing one gets a bounded
        // time to go.
        .client_request_timeout(Duration::from_secs(gateway.client_request_timeout_secs))
        .client_disconnect_timeout(Duration::from_secs(gateway.client_disconnect_timeout_secs))
        .keep_alive(keep_alive)
        // Answers go out as soon as they are written: with Nagle's algorithm the last small
        // segment of a response (a JSON body, a clip's tail, an event) waited for the client's
        // delayed ACK, up to 40 ms on Linux (the bench's `GET /video` took 53 ms instead of 13).
        .tcp_nodelay(true)
        .listen(listener)?
        .run();
        Ok(Application { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server from elsewhere (tests).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server stops (SIGTERM/Ctrl-C finish requests in flight, then stop).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
