//! Hopster's gateway: the v1 jobs API and the seed's API over one job model.

pub mod auth;
mod counted;
pub mod error;
mod events;
mod failpoint;
mod hot;
mod jobs;
pub mod limits;
pub mod methods;
pub mod openapi;
mod range;
mod routes;
pub mod schemas;
pub mod startup;
pub mod state;

pub use startup::Application;
