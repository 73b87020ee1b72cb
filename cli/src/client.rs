//! The v1 API over HTTP. Transport failures and `{"error": …}` bodies become [`CliError`]s
//! here and nowhere else, so every command maps them to the same exit codes.

use crate::api::{CreateJob, ErrorBody, Job, JobList};
use crate::error::CliError;
use reqwest::header::{ACCEPT, CONTENT_TYPE, RANGE};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use shared_proto::api::{CreateSource, SourceView};
use shared_proto::{JobId, JobState};
use std::time::Duration;

/// A client of one gateway.
pub struct Client {
    http: reqwest::Client,
    server: String,
    api_key: Option<String>,
}

impl Client {
    /// `server` has been checked by the argument parser (http(s), no trailing slash).
    pub fn new(server: &str, api_key: Option<String>) -> Result<Client, CliError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("hopster/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            // Per read, not per request: a large download may take long but never stalls.
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| CliError::Local(format!("cannot set up HTTP: {}", chain(&e))))?;
        Ok(Client {
            http,
            server: server.to_owned(),
            api_key: api_key.filter(|k| !k.is_empty()),
        })
    }

    /// The gateway's base URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    fn with_auth(&self, req: RequestBuilder) -> RequestBuilder {
        match &self.api_key {
            Some(key) => req.bearer_auth(key),
            None => req,
        }
    }

    async fn send(&self, req: RequestBuilder) -> Result<Response, CliError> {
        self.with_auth(req).send().await.map_err(transport)
    }

    /// `POST /v1/jobs`; `true` with the job when the server made a new one (`202`), `false`
    /// when the same clip was asked for before (`200`).
    pub async fn submit(&self, submission: &CreateJob) -> Result<(Job, bool), CliError> {
        let url = format!("{}/v1/jobs", self.server);
        let response = self.send(self.http.post(url).json(submission)).await?;
        let new = response.status() == StatusCode::ACCEPTED;
        Ok((json(ok(response).await?).await?, new))
    }

    /// `POST /v1/sources`; `true` with the inspection when the server started one (`202`).
    pub async fn inspect(&self, source: &CreateSource) -> Result<(SourceView, bool), CliError> {
        let url = format!("{}/v1/sources", self.server);
        let response = self.send(self.http.post(url).json(source)).await?;
        let new = response.status() == StatusCode::ACCEPTED;
        Ok((json(ok(response).await?).await?, new))
    }

    /// `GET /v1/sources/{id}`.
    pub async fn source(&self, id: &JobId) -> Result<SourceView, CliError> {
        let url = format!("{}/v1/sources/{id}", self.server);
        json(ok(self.send(self.http.get(url)).await?).await?).await
    }

    /// `GET /v1/jobs/{id}`.
    pub async fn job(&self, id: &JobId) -> Result<Job, CliError> {
        let url = format!("{}/v1/jobs/{id}", self.server);
        json(ok(self.send(self.http.get(url)).await?).await?).await
    }

    /// `GET /v1/jobs`, newest first, only jobs in `state` when given.
    pub async fn jobs(&self, state: Option<JobState>) -> Result<Vec<Job>, CliError> {
        // A state's name is plain lower-case ASCII: nothing to encode.
        let query = state.map_or(String::new(), |s| format!("?state={}", s.as_str()));
        let url = format!("{}/v1/jobs{query}", self.server);
        let list: JobList = json(ok(self.send(self.http.get(url)).await?).await?).await?;
        Ok(list.jobs)
    }

    /// `DELETE /v1/jobs/{id}`: the job, now cancelled.
    pub async fn cancel(&self, id: &JobId) -> Result<Job, CliError> {
        let url = format!("{}/v1/jobs/{id}", self.server);
        json(ok(self.send(self.http.delete(url)).await?).await?).await
    }

    /// `GET /v1/jobs/{id}/poster`.
    pub async fn poster(&self, id: &JobId) -> Result<Response, CliError> {
        let url = format!("{}/v1/jobs/{id}/poster", self.server);
        ok(self.send(self.http.get(url)).await?).await
    }

    /// `GET /v1/jobs/{id}/events`: the open stream, or why it could not be opened.
    pub async fn events(&self, id: &JobId) -> Result<Response, CliError> {
        let url = format!("{}/v1/jobs/{id}/events", self.server);
        let req = self.http.get(url).header(ACCEPT, "text/event-stream");
        let response = ok(self.send(req).await?).await?;
        let is_stream = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_stream {
            return Err(CliError::server(
                "invalid_response",
                "the event stream is not text/event-stream",
            ));
        }
        Ok(response)
    }

    /// `GET /v1/jobs/{id}/video`, from byte `from` on. `200`, `206` and `416` come back as
    /// they are: what they mean for the local file is the caller's decision.
    pub async fn video(&self, id: &JobId, from: u64) -> Result<Response, CliError> {
        let mut req = self.http.get(format!("{}/v1/jobs/{id}/video", self.server));
        if from > 0 {
            req = req.header(RANGE, format!("bytes={from}-"));
        }
        let response = self.send(req).await?;
        if response.status() == StatusCode::RANGE_NOT_SATISFIABLE {
            return Ok(response);
        }
        ok(response).await
    }
}

/// A transport failure: connection refused, DNS, timeout, or a body cut short. Reqwest's own
/// message hides the cause ("error sending request"), so the whole chain is shown.
pub fn transport(e: reqwest::Error) -> CliError {
    if e.is_decode() {
        return CliError::server("invalid_response", chain(&e));
    }
    // The top message ("error sending request for url (…)") says nothing the URL and the
    // causes do not.
    let causes = std::error::Error::source(&e).map(chain);
    match (e.url(), causes) {
        (Some(url), Some(causes)) => CliError::Connection(format!("{url}: {causes}")),
        _ => CliError::Connection(chain(&e)),
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// Passes a success through; turns anything else into the server's error.
async fn ok(response: Response) -> Result<Response, CliError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let body = response.bytes().await.map_err(transport)?;
    let parsed = is_json
        .then(|| serde_json::from_slice::<ErrorBody>(&body).ok())
        .flatten();
    Err(match parsed {
        Some(ErrorBody { error }) => CliError::server(error.code.as_str(), error.message),
        None => {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.trim().chars().take(200).collect();
            CliError::server(
                format!("http_{}", status.as_u16()),
                if text.is_empty() {
                    format!("the server answered {status}")
                } else {
                    format!("the server answered {status}: {text}")
                },
            )
        }
    })
}

async fn json<T: DeserializeOwned>(response: Response) -> Result<T, CliError> {
    let body = response.bytes().await.map_err(transport)?;
    serde_json::from_slice(&body).map_err(|e| {
        CliError::server(
            "invalid_response",
            format!("the server's answer is not what this client expects: {e}"),
        )
    })
}
