//! The routes: v1 (and its event stream), the seed's, health, the web page. Every handler
//! lives under here; the app is assembled in `startup`.

pub(crate) mod body;
pub(crate) mod events;
pub(crate) mod health;
pub(crate) mod seed;
pub(crate) mod sources;
pub(crate) mod ui;
pub(crate) mod v1;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    v1::configure(cfg);
    sources::configure(cfg);
    seed::configure(cfg);
    health::configure(cfg);
    ui::configure(cfg);
}
