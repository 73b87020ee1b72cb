//! The notify stage: POSTs a finished job's signed status to its `callback_url` and records
//! every attempt on the job. A failed delivery is a transient failure like any other stage's:
//! the worker loop retries it with backoff by the stage's policy (`[notify]`), for up to a day
//! after the first attempt, and then parks the message in the dead-letter queue.

use hopster_common::notify::{signature, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use hopster_common::retry::RetryPolicy;
use hopster_common::settings::Settings;
use hopster_common::worker::{Stage, StageError};
use hopster_common::{guard, Store};
use shared_proto::{topology, ErrorCode, NotifyAttempt, NotifyJob};
use std::time::Duration;

pub struct Notifier {
    store: Store,
    http: reqwest::Client,
    secret: Option<String>,
    policy: RetryPolicy,
    guard: guard::Policy,
}

impl Notifier {
    pub fn new(settings: &Settings, store: Store) -> anyhow::Result<Self> {
        let policy = guard::Policy::of(&settings.sources);
        let http = guard::guarded_builder(&policy)
            .timeout(Duration::from_secs(settings.notify.timeout_secs.max(1)))
            // A receiver that redirects is answering, not accepting: no hop past the guard.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hopster-callback/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let secret = settings
            .gateway
            .secret_key
            .as_ref()
            .map(|s| s.expose().to_owned());
        if secret.is_none() {
            log::warn!(
                "no server secret ({}): callbacks cannot be signed and will not be sent",
                hopster_common::settings::SECRET_KEY_VAR
            );
        }
        Ok(Notifier {
            store,
            http,
            secret,
            policy: RetryPolicy::of_callbacks(&settings.notify),
            guard: policy,
        })
    }

    /// One delivery: the status as the body, signed; `Ok(status)` when the receiver answered.
    async fn deliver(&self, url: &str, body: Vec<u8>) -> Result<u16, String> {
        // The gateway refused internal addresses at submission; a receiver's name is checked
        // where it resolves. This is the same check again, for an address host.
        guard::check_literal(url, &self.guard).map_err(|e| e.to_string())?;
        let secret = self
            .secret
            .as_deref()
            .ok_or("no server secret is configured, so the callback cannot be signed")?;
        let timestamp = hopster_common::now_ms() / 1000;
        let signed = signature(secret.as_bytes(), timestamp, &body)
            .ok_or("the server secret cannot key an HMAC")?;
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signed)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    text = format!("{text}: {s}");
                    source = s.source();
                }
                text
            })?;
        Ok(response.status().as_u16())
    }
}

impl Stage for Notifier {
    type Message = NotifyJob;
    const KEY: &'static str = topology::NOTIFY;

    fn retry_policy(&self) -> RetryPolicy {
        self.policy
    }

    async fn handle(&self, job: NotifyJob) -> Result<(), StageError> {
        let id = job.job_id.clone();
        let Some(status) = self.store.status(&id).await? else {
            log::warn!("job {id}: gone before its callback was delivered; dropping it");
            return Ok(());
        };
        let Some(url) = status.spec.callback_url.clone() else {
            return Ok(());
        };
        if status
            .notifications
            .iter()
            .any(|n| n.delivered || n.attempt >= job.attempt)
        {
            // Delivered already, or this attempt was recorded by a delivery that died before
            // its ack: never call the receiver twice for one attempt.
            return Ok(());
        }
        let body = serde_json::to_vec(&status).unwrap_or_default();
        let outcome = self.deliver(&url, body).await;
        let delivered = matches!(outcome, Ok(code) if (200..300).contains(&code));
        let age_ms = hopster_common::now_ms().saturating_sub(job.first_queued_ms);
        // Whether the worker loop will give up after this attempt: the same policy decides.
        let last = self
            .policy
            .next_delay_ms(job.attempt, Some(age_ms))
            .is_none();
        let give_up = !delivered && (self.secret.is_none() || last);
        let attempt = NotifyAttempt {
            attempt: job.attempt,
            at_ms: hopster_common::now_ms(),
            http_status: outcome.as_ref().ok().copied(),
            error: match &outcome {
                Ok(code) if !delivered => Some(format!("the receiver answered {code}")),
                Ok(_) => None,
                Err(e) => Some(e.clone()),
            },
            delivered,
            gave_up: give_up,
        };
        let label = if delivered { "delivered" } else { "failed" };
        hopster_common::metrics::count("hopster_callbacks_total", &[("outcome", label)], 1.0);
        log::info!(
            "job {id}: callback attempt {} to {url}: {}",
            job.attempt,
            attempt.error.as_deref().unwrap_or("delivered")
        );
        let error = attempt.error.clone().unwrap_or_default();
        self.store
            .update_status(&id, |s| s.notifications.push(attempt))
            .await?;
        match outcome {
            _ if delivered => Ok(()),
            // Nothing can be signed: no later try would do better.
            _ if self.secret.is_none() => Err(StageError::abort(ErrorCode::Internal, error)),
            _ => Err(StageError::retry(ErrorCode::SourceUnreachable, error)),
        }
    }
}
