//! The Docker engine for the compose test: a Compose project under a random name, its
//! containers, their health, and `down -v` when it is dropped.
//!
//! The engine here has no registry, so `scripts/stand-in-images` first builds local images
//! under the tags the Dockerfile and docker-compose.yml pull. Builds use the legacy builder
//! (`DOCKER_BUILDKIT=0`): BuildKit would pull its own frontend and helper images.

use crate::compose::repo_root;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs a command, panicking with its output when it fails.
fn run(mut command: Command, what: &str) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not start: {e}"));
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    assert!(
        status.success(),
        "{what} failed ({status}):\n{stdout}\n{}",
        String::from_utf8_lossy(&stderr)
    );
    stdout
}

/// `docker ARGS`, answering its standard output.
pub fn docker(args: &[&str]) -> String {
    let mut command = Command::new("docker");
    command.args(args);
    run(command, &format!("docker {}", args.join(" ")))
}

/// The Compose tool: `docker compose` (v2) where the plugin is there, else `docker-compose`.
fn compose_tool() -> Vec<String> {
    let v2 = Command::new("docker")
        .args(["compose", "version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if v2 {
        vec!["docker".into(), "compose".into()]
    } else {
        vec!["docker-compose".into()]
    }
}

/// Builds the stand-in base images that are missing (`scripts/stand-in-images`).
pub fn ensure_stand_in_images() {
    let mut command = Command::new(repo_root().join("scripts/stand-in-images"));
    command.stdout(Stdio::inherit()).stderr(Stdio::inherit());
    run(command, "scripts/stand-in-images");
}

/// What `docker inspect` says of a container, in the parts the tests read.
#[derive(Debug, Deserialize)]
pub struct Inspected {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Config")]
    pub config: InspectedConfig,
    #[serde(rename = "State")]
    pub state: InspectedState,
}

#[derive(Debug, Deserialize)]
pub struct InspectedConfig {
    #[serde(rename = "Hostname")]
    pub hostname: String,
    #[serde(rename = "Labels", default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub struct InspectedState {
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "ExitCode")]
    pub exit_code: i64,
    #[serde(rename = "Health")]
    pub health: Option<InspectedHealth>,
}

#[derive(Debug, Deserialize)]
pub struct InspectedHealth {
    #[serde(rename = "Status")]
    pub status: String,
}

pub fn inspect(ids: &[String]) -> Vec<Inspected> {
    if ids.is_empty() {
        return Vec::new();
    }
    let mut args = vec!["inspect"];
    args.extend(ids.iter().map(String::as_str));
    serde_json::from_str(&docker(&args)).expect("docker inspect answers JSON")
}

/// One Compose project of the repository's docker-compose.yml, as it is, under a random
/// project name, with the shell variables it interpolates given by the test.
pub struct Project {
    pub name: String,
    env: BTreeMap<String, String>,
    tool: Vec<String>,
}

impl Project {
    pub fn new(name: String, env: BTreeMap<String, String>) -> Project {
        Project {
            name,
            env,
            tool: compose_tool(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.tool[0]);
        command
            .args(&self.tool[1..])
            .args(["-p", &self.name, "-f"])
            .arg(repo_root().join("docker-compose.yml"))
            .args(args)
            .current_dir(repo_root())
            .envs(&self.env)
            .env("DOCKER_BUILDKIT", "0")
            .env("COMPOSE_DOCKER_CLI_BUILD", "1");
        command
    }

    /// `compose ARGS`, answering its standard output; the build's output goes to the test's.
    pub fn compose(&self, args: &[&str]) -> String {
        run(
            self.command(args),
            &format!("{} {}", self.tool.join(" "), args.join(" ")),
        )
    }

    /// The ids of the service's containers (all the project's for `""`), running or not.
    pub fn container_ids(&self, service: &str) -> Vec<String> {
        let mut args = vec!["ps", "-q"];
        if !service.is_empty() {
            args.push(service);
        }
        self.compose(&args)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub fn containers(&self, service: &str) -> Vec<Inspected> {
        inspect(&self.container_ids(service))
    }

    /// Waits until every container of the project is running and, where it has a
    /// healthcheck, healthy.
    pub async fn wait_healthy(&self, deadline: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let all = inspect(&self.container_ids(""));
            let pending: Vec<String> = all
                .iter()
                .filter(|c| {
                    c.state.status != "running"
                        || c.state
                            .health
                            .as_ref()
                            .is_some_and(|h| h.status != "healthy")
                })
                .map(|c| {
                    format!(
                        "{} {}/{}",
                        c.config
                            .labels
                            .get("com.docker.compose.service")
                            .map_or("?", String::as_str),
                        c.state.status,
                        c.state.health.as_ref().map_or("-", |h| h.status.as_str())
                    )
                })
                .collect();
            if !all.is_empty() && pending.is_empty() {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < deadline,
                "not healthy after {deadline:?}: {pending:?}\n{}",
                self.compose(&["logs", "--tail", "30"])
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// What is left of the project on the engine: containers, networks, volumes.
    pub fn leftovers(&self) -> Vec<String> {
        let label = format!("label=com.docker.compose.project={}", self.name);
        let mut left = Vec::new();
        for (kind, args) in [
            ("container", vec!["ps", "-aq", "--filter", &label]),
            ("network", vec!["network", "ls", "-q", "--filter", &label]),
            ("volume", vec!["volume", "ls", "-q", "--filter", &label]),
        ] {
            left.extend(
                docker(&args)
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| format!("{kind} {l}")),
            );
        }
        left
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        // Also after a failed test: nothing of the project stays behind.
        let _ = self
            .command(&["down", "-v", "--remove-orphans", "-t", "5"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
