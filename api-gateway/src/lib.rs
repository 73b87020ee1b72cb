//! Hopster's gateway: the v1 jobs API and the seed's API over one job model.

pub mod auth;
pub mod error;
mod events;
mod hot;
mod jobs;
pub mod openapi;
mod range;
mod routes;
pub mod startup;

pub use startup::Application;
