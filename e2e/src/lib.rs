// Test support only: a panic is how a test reports a broken fixture.
#![allow(clippy::expect_used, clippy::unwrap_used)]

//! Test support for end-to-end tests: a real S3 API in-process (s3s-fs), a source server on
//! loopback, generated media, and the three services spawned against the machine's RabbitMQ
//! under a random prefix so tests never share state.

pub mod api;
pub mod browser;
pub mod cluster;
pub mod compose;
pub mod docker;
pub mod hook;
pub mod localstack;
pub mod media;
pub mod native;
pub mod rabbit;
pub mod s3;
pub mod source;
pub mod stack;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// A random lower-case name with `prefix`, for queue prefixes, buckets and directories.
pub fn random_name(prefix: &str) -> String {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{prefix}-{:016x}", h.finish())
}

/// A directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(random_name(prefix));
        std::fs::create_dir_all(&path).expect("creating a temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `args` as root: directly when we are root, else through passwordless sudo.
pub fn as_root(args: &[&str]) -> std::process::Command {
    let mut command = if is_root() {
        std::process::Command::new(args[0])
    } else {
        let mut sudo = std::process::Command::new("sudo");
        sudo.args(["-n", args[0]]);
        sudo
    };
    command
        .args(&args[1..])
        .env("DEBIAN_FRONTEND", "noninteractive");
    command
}
