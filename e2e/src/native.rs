//! The services as real processes (the binaries `cargo build --bins` made), for the
//! compose-native run, horizontal scaling and fault tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::SystemTime;

/// Where `cargo build` puts the binaries.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::compose::repo_root().join("target"))
        .join("debug")
}

fn newest_source(dirs: &[&str]) -> SystemTime {
    fn walk(dir: &Path, newest: &mut SystemTime) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, newest);
            } else if let Ok(modified) = entry.metadata().and_then(|m| m.modified()) {
                *newest = (*newest).max(modified);
            }
        }
    }
    let mut newest = SystemTime::UNIX_EPOCH;
    for dir in dirs {
        walk(
            &crate::compose::repo_root().join(dir).join("src"),
            &mut newest,
        );
    }
    newest
}

/// The path of a service binary, checked to exist and to be newer than its sources, so a
/// test never runs a stale build. `scripts/test` builds them before the tests run.
pub fn binary(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: run `cargo build --bins` first (scripts/test does)",
                path.display()
            )
        });
    let newest = newest_source(&["shared-proto", "common", name]);
    assert!(
        built >= newest,
        "{} is older than its sources: run `cargo build --bins` first (scripts/test does)",
        path.display()
    );
    path
}

/// A running service; killed when dropped.
pub struct Service {
    pub name: String,
    child: Child,
}

impl Service {
    /// Starts `name` with exactly `env` (plus PATH, so it finds ffmpeg), logging to a file
    /// under `log_dir`.
    pub fn start(name: &str, env: &BTreeMap<String, String>, log_dir: &Path) -> Service {
        let log = std::fs::File::create(
            log_dir.join(format!("{name}-{}.log", crate::random_name("run"))),
        )
        .expect("log file");
        let child = Command::new(binary(name))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Service {
            name: name.to_owned(),
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`TERM`, `KILL`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} {}", self.pid());
    }

    /// Waits for the process to exit, up to `deadline`; `None` if it is still running.
    pub fn wait_exit(&mut self, deadline: std::time::Duration) -> Option<std::process::ExitStatus> {
        let started = std::time::Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if started.elapsed() > deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
