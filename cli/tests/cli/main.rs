//! The `hopster` binary against the real gateway and workers (in-process, the machine's
//! RabbitMQ under a random prefix, real ffmpeg), run as a user would run it. One test binary;
//! the modules only group the tests.
#![allow(clippy::expect_used)] // helpers outside #[test] fns panic to fail the test

mod jobs;
mod manage;
mod offline;
mod outputs;
mod resume;
mod support;
