//! LocalStack's S3, run natively: `localstack-core` at the version docker-compose.yml runs,
//! from the venv `scripts/localstack-venv` keeps, on a free loopback port. It is the real
//! emulator the compose stack uses; s3s-fs (`crate::s3`) stays where speed matters.

use crate::compose::repo_root;
use crate::native::free_port;
use crate::TempDir;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// LocalStack takes about 20 s to answer S3 here.
const START_DEADLINE: Duration = Duration::from_secs(120);

pub struct LocalStack {
    pub endpoint: String,
    child: std::process::Child,
    pub dir: TempDir,
}

impl LocalStack {
    pub async fn start() -> LocalStack {
        let out = Command::new(repo_root().join("scripts/localstack-venv"))
            .stderr(Stdio::inherit())
            .output()
            .expect("running scripts/localstack-venv");
        assert!(out.status.success(), "scripts/localstack-venv failed");
        let venv = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let dir = TempDir::new("hopster-localstack");
        let log = std::fs::File::create(dir.0.join("localstack.log")).expect("a log file");
        let port = free_port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let child = Command::new(format!("{venv}/bin/python"))
            .args(["-m", "localstack.runtime.main"])
            .env("RUNTIME_COMPONENTS", "aws")
            .env("SERVICES", "s3")
            .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
            // LocalStack accepts any presigned URL unless told to check signatures.
            .env("S3_SKIP_SIGNATURE_VALIDATION", "0")
            // Its state and caches in the test's own directory.
            .env("LOCALSTACK_VOLUME_DIR", dir.0.join("volume"))
            .env("FILESYSTEM_ROOT", dir.0.join("fs"))
            .env("HOME", &dir.0)
            .env("TMPDIR", &dir.0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting LocalStack");
        let mut ls = LocalStack {
            endpoint,
            child,
            dir,
        };
        ls.wait_ready().await;
        ls
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("localstack.log")).unwrap_or_default()
    }

    async fn wait_ready(&mut self) {
        let started = Instant::now();
        let http = reqwest::Client::new();
        loop {
            let health = http
                .get(format!("{}/_localstack/health", self.endpoint))
                .send()
                .await;
            if let Ok(r) = health {
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                if matches!(
                    body["services"]["s3"].as_str(),
                    Some("available" | "running")
                ) {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("LocalStack exited ({status}):\n{}", self.log());
            }
            assert!(
                started.elapsed() < START_DEADLINE,
                "LocalStack did not answer S3 within {START_DEADLINE:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Creates a bucket (LocalStack takes unsigned requests).
    pub async fn create_bucket(&self, name: &str) {
        let r = reqwest::Client::new()
            .put(format!("{}/{name}", self.endpoint))
            .send()
            .await
            .expect("PUT bucket");
        assert!(r.status().is_success(), "creating {name}: {}", r.status());
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
