//! What every request handler, middleware and background task of the gateway shares.

use crate::limits::Limits;
use hopster_common::{Broker, Store};
use std::sync::Arc;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub broker: Broker,
    /// `sources.video_url_template`.
    pub video_url_template: String,
    pub max_body_bytes: usize,
    /// `sources.allow_private_networks` and `sources.trusted_addresses`: IP-literal internal
    /// hosts are refused at submission unless they allow them (names are checked by the
    /// downloader, which resolves them).
    pub guard: hopster_common::guard::Policy,
    /// `sources.max_clip_secs`.
    pub max_clip_secs: u64,
    /// `sources.max_animation_secs`.
    pub max_animation_secs: u64,
    /// `recovery.requeue_after_secs`, in ms: an unfinished inspection untouched this long is
    /// queued again when asked for (0: never).
    pub requeue_after_ms: u64,
    /// Recently read statuses.
    pub hot: Arc<crate::hot::HotStatus>,
    /// Every status event the services publish, for `GET /v1/jobs/{id}/events`.
    pub events: tokio::sync::broadcast::Sender<shared_proto::JobStatus>,
    /// `[limits]`: submissions and event streams per client.
    pub limits: Arc<Limits>,
}
