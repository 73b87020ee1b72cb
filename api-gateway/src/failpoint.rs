//! Test-only failpoints, compiled in with the `failpoints` feature (the e2e crate turns it on;
//! release images are built without it). `HOPSTER_FAILPOINT=NAME` makes the gateway abort,
//! as a crash would, when it reaches the point `NAME`:
//!
//! - `after_create`: a new job's status is created and its message not yet published.

/// Aborts the process if `HOPSTER_FAILPOINT` names this point (read once).
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    static ARMED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var("HOPSTER_FAILPOINT").ok());
    if armed.as_deref() == Some(name) {
        log::error!("failpoint {name}: aborting");
        std::process::abort();
    }
}

/// Without the feature, nothing.
#[cfg(not(feature = "failpoints"))]
pub fn hit(_name: &str) {}
