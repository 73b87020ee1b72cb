//! Plumbing shared by Hopster's services, written once: settings, the store, the broker and
//! the worker loop that every consumer runs.

pub mod broker;
pub mod guard;
mod index;
pub mod metrics;
pub mod notify;
pub mod ops;
pub mod retry;
pub mod settings;
pub mod store;
pub mod tracker;
pub mod worker;

pub use broker::Broker;
pub use settings::Settings;
pub use store::Store;

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, the timestamps of the status model.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// `host:pid`, recorded on the status so it shows which replica did the work.
pub fn worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

/// Starts `env_logger` at `info` unless `RUST_LOG` says otherwise.
pub fn init_logging() {
    let env = env_logger::Env::default().default_filter_or("info,lapin=warn,tracing::span=warn");
    // A second init (tests start several services in one process) is harmless.
    let _ = env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .try_init();
}

/// The HTTP client for sources, used by the downloader and the transcoder's range proxy: the
/// SSRF guard's resolver, peer check and redirect policy, the configured timeouts, no proxy.
pub fn source_client(settings: &Settings) -> anyhow::Result<reqwest::Client> {
    use std::time::Duration;
    let policy = guard::Policy::of(&settings.sources);
    Ok(guard::guarded_builder(&policy)
        .connect_timeout(Duration::from_secs(settings.sources.connect_timeout_secs))
        .read_timeout(Duration::from_secs(settings.sources.read_timeout_secs))
        .timeout(Duration::from_secs(settings.sources.total_timeout_secs))
        .redirect(guard::redirect_policy(&policy))
        .user_agent(concat!("hopster/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// A token cancelled on the first SIGTERM or Ctrl-C; a second signal exits at once.
pub fn shutdown_on_signals() -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    log::error!("cannot listen for SIGTERM: {e}");
                    return;
                }
            };
        for round in 0..2 {
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
            if round == 0 {
                log::info!("shutting down: no new work; finishing what is in flight (signal again to exit now)");
                trigger.cancel();
            } else {
                log::warn!("second signal: exiting now");
                std::process::exit(1);
            }
        }
    });
    token
}

/// Connects a worker's broker and store from its settings.
pub async fn connect(settings: &Settings, name: &str) -> anyhow::Result<(Broker, Store)> {
    use anyhow::Context;
    let store = Store::from_settings(&settings.store).context("opening the store")?;
    // At start the broker may still be coming up (compose, a restart): keep trying for a while.
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_secs(settings.amqp.connect_retry_secs);
    let mut backoff = retry::Backoff::new(
        std::time::Duration::from_millis(250),
        std::time::Duration::from_secs(5),
    );
    let broker = loop {
        match Broker::connect(&settings.amqp, name).await {
            Ok(broker) => break broker,
            Err(e) if std::time::Instant::now() < deadline => {
                let delay = backoff.next_delay();
                log::warn!("{name}: broker not reachable yet ({e}); retrying in {delay:?}");
                tokio::time::sleep(delay).await;
            }
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("connecting to the broker for {name}"))
                )
            }
        }
    };
    let store = store.with_events(std::sync::Arc::new(broker.clone()));
    Ok((broker, store))
}
