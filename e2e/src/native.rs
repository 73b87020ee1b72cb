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
    /// The file its stdout and stderr go to.
    pub log: PathBuf,
    child: Child,
}

impl Service {
    /// Starts `name` with exactly `env` (plus PATH, so it finds ffmpeg, and LLVM_PROFILE_FILE,
    /// so a coverage build counts what the service ran), logging to a file
    /// under `log_dir`.
    pub fn start(name: &str, env: &BTreeMap<String, String>, log_dir: &Path) -> Service {
        let log_path = log_dir.join(format!("{name}-{}.log", crate::random_name("run")));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(binary(name))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            // Where an instrumented build writes its counters (scripts/coverage).
            .envs(std::env::var("LLVM_PROFILE_FILE").map(|f| ("LLVM_PROFILE_FILE", f)))
            .envs(env)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Service {
            name: name.to_owned(),
            log: log_path,
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

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
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
        // An instrumented build (scripts/coverage) writes its counters when it exits, not when
        // it is killed: let it shut down the way a deployment stops it.
        if std::env::var_os("LLVM_PROFILE_FILE").is_some()
            && matches!(self.child.try_wait(), Ok(None))
        {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.pid().to_string())
                .status();
            let _ = self.wait_exit(std::time::Duration::from_secs(15));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment that configures a service exactly as `settings` do: every key as
/// `HOPSTER__SECTION__KEY` (the server secret as `HOPSTER_SERVER_SECRET_KEY`).
pub fn env_from_settings(settings: &hopster_common::Settings) -> BTreeMap<String, String> {
    let value = serde_json::to_value(settings).expect("settings serialize");
    let mut env = BTreeMap::new();
    for (section, keys) in value.as_object().expect("sections") {
        for (key, v) in keys.as_object().expect("keys") {
            let text = match v {
                serde_json::Value::Null => continue,
                serde_json::Value::Array(items) if items.is_empty() => continue,
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(","),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let name = if section == "gateway" && key == "secret_key" {
                hopster_common::settings::SECRET_KEY_VAR.to_owned()
            } else {
                format!(
                    "HOPSTER__{}__{}",
                    section.to_uppercase(),
                    key.to_uppercase()
                )
            };
            env.insert(name, text);
        }
    }
    env.insert(
        "RUST_LOG".into(),
        "info,lapin=warn,tracing::span=warn".into(),
    );
    env
}

/// The environment of a service, by name.
type EnvFor = Box<dyn Fn(&str) -> BTreeMap<String, String> + Send + Sync>;

/// The services as processes, plus a client of the gateway.
pub struct NativeStack {
    pub api: crate::api::Api,
    /// The gateway's port.
    pub port: u16,
    pub services: Vec<Service>,
    env: EnvFor,
    logs: crate::TempDir,
    /// The transcoders' work directories: a process killed mid-job cannot remove its own, so
    /// they live here and go with the stack.
    work: crate::TempDir,
}

impl NativeStack {
    /// Starts the gateway and `workers`, each with the environment `env(name)`, and waits
    /// until the gateway is ready. The gateway binds port 0 and logs the port it got (a port
    /// chosen in advance could be taken by another test before the gateway binds it); `port`
    /// holds it.
    pub async fn start(
        workers: &[&str],
        env: impl Fn(&str) -> BTreeMap<String, String> + Send + Sync + 'static,
    ) -> NativeStack {
        let env = move |name: &str| {
            let mut env = env(name);
            if name == "api-gateway" {
                env.insert("HOPSTER__GATEWAY__BIND".into(), "127.0.0.1:0".into());
            }
            env
        };
        let mut stack = NativeStack {
            api: crate::api::Api::new(String::new()),
            port: 0,
            services: Vec::new(),
            env: Box::new(env),
            logs: crate::TempDir::new("hopster-logs"),
            work: crate::TempDir::new("hopster-work"),
        };
        stack.add("api-gateway");
        stack.port = stack
            .logged_port("api-gateway", "api-gateway listening on port ")
            .await;
        stack.api = crate::api::Api::new(format!("http://127.0.0.1:{}", stack.port));
        for name in workers {
            stack.add(name);
        }
        let started = std::time::Instant::now();
        while stack
            .api
            .http
            .get(stack.api.url("/readyz"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
            != 200
        {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "the gateway did not become ready: {}",
                stack.log_tail("api-gateway")
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        stack
    }

    /// Starts one more service process; returns its index in `services`.
    pub fn add(&mut self, name: &str) -> usize {
        let mut env = (self.env)(name);
        env.entry("HOPSTER__TRANSCODER__WORK_DIR".into())
            .or_insert_with(|| self.work.0.display().to_string());
        self.services.push(Service::start(name, &env, &self.logs.0));
        self.services.len() - 1
    }

    /// Kills service `i` (SIGKILL, as a crash) and starts a new process of the same name with
    /// the same environment in its place, as a supervisor would.
    pub fn restart(&mut self, i: usize) {
        let name = self.services[i].name.clone();
        let mut env = (self.env)(&name);
        env.entry("HOPSTER__TRANSCODER__WORK_DIR".into())
            .or_insert_with(|| self.work.0.display().to_string());
        // Dropping the old one kills it and reaps it.
        self.services[i] = Service::start(&name, &env, &self.logs.0);
    }

    /// The port that the process `name` logged after `marker` (as in "… on port 41234"),
    /// waiting up to 30 s for the line. Services given port 0 pick their own, so a test
    /// never races another process for a port it chose in advance.
    pub async fn logged_port(&mut self, name: &str, marker: &str) -> u16 {
        let i = self
            .services
            .iter()
            .position(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name} is running"));
        match self.logged_port_of(i, marker).await {
            Some(port) => port,
            None => panic!("{name} exited: {}", self.log_tail(name)),
        }
    }

    /// The port that service `i` logged after `marker`, waiting up to 30 s for the line;
    /// `None` if the process exited first.
    pub async fn logged_port_of(&mut self, i: usize, marker: &str) -> Option<u16> {
        let started = std::time::Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.services[i].log).unwrap_or_default();
            let found = text.lines().find_map(|line| {
                let (_, rest) = line.split_once(marker)?;
                rest.split_whitespace().next()?.parse::<u16>().ok()
            });
            if found.is_some() {
                return found;
            }
            if !self.services[i].is_running() {
                return None;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "{} never logged `{marker}`: {text}",
                self.services[i].name
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Everything every process has logged so far.
    pub fn logs_text(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(&self.logs.0) {
            for entry in entries.flatten() {
                out.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        out
    }

    /// The end of the logs of every process named `name`, for failure messages.
    pub fn log_tail(&self, name: &str) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(&self.logs.0) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(name) {
                    let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(15).collect();
                    out.push_str(&tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// A free loopback port (bound and released; the race is acceptable in tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}
