//! A client of the gateway's API for tests: JSON calls and waiting for jobs.

use serde_json::Value;
use std::time::{Duration, Instant};

pub struct Api {
    pub base_url: String,
    pub http: reqwest::Client,
    /// Sent as `Authorization: Bearer KEY` by [`Api::post`] and [`Api::get_json`].
    pub key: Option<String>,
}

impl Api {
    pub fn new(base_url: String) -> Api {
        Api {
            base_url,
            http: reqwest::Client::new(),
            key: None,
        }
    }

    fn keyed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(key) => req.bearer_auth(key),
            None => req,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// POSTs JSON and returns the status code and body.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .keyed(self.http.post(self.url(path)))
            .json(body)
            .send()
            .await
            .expect("POST");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self
            .keyed(self.http.get(self.url(path)))
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// GETs `path`: the status code, the `Content-Type` and the body's bytes.
    pub async fn get_bytes(&self, path: &str) -> (u16, String, Vec<u8>) {
        let r = self
            .keyed(self.http.get(self.url(path)))
            .send()
            .await
            .expect("GET");
        let code = r.status().as_u16();
        let kind = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (code, kind, r.bytes().await.expect("body").to_vec())
    }

    /// Polls the job until it reaches a terminal state or `deadline` passes; returns the last
    /// status seen and every state observed on the way.
    pub async fn wait_for_job(&self, id: &str, deadline: Duration) -> (Value, Vec<String>) {
        let started = Instant::now();
        let mut seen: Vec<String> = Vec::new();
        loop {
            let (code, status) = self.get_json(&format!("/v1/jobs/{id}")).await;
            assert_eq!(code, 200, "status of {id}: {status}");
            let state = status["state"].as_str().unwrap_or_default().to_owned();
            if seen.last() != Some(&state) {
                seen.push(state.clone());
            }
            if matches!(state.as_str(), "completed" | "failed" | "cancelled") {
                return (status, seen);
            }
            assert!(
                started.elapsed() < deadline,
                "job {id} still {state} after {deadline:?}: {status}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `check` holds or `deadline` passes.
    pub async fn wait_until<F, Fut>(&self, deadline: Duration, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        while !check().await {
            assert!(started.elapsed() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
