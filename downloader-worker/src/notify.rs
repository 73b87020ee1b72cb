//! The notify stage: POSTs a finished job's signed status to its `callback_url`, recording
//! every attempt on the job, and retries with backoff for up to a day.

use hopster_common::notify::{signature, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use hopster_common::settings::{NotifySettings, Settings};
use hopster_common::worker::{Stage, StageError};
use hopster_common::{guard, Broker, Store};
use shared_proto::{topology, NotifyAttempt, NotifyJob, Topology};
use std::time::Duration;

pub struct Notifier {
    store: Store,
    broker: Broker,
    http: reqwest::Client,
    secret: Option<String>,
    settings: NotifySettings,
    allow_private: bool,
}

impl Notifier {
    pub fn new(settings: &Settings, store: Store, broker: Broker) -> anyhow::Result<Self> {
        let allow_private = settings.downloader.allow_private_networks;
        let http = guard::guarded_builder(allow_private)
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
            broker,
            http,
            secret,
            settings: settings.notify.clone(),
            allow_private,
        })
    }

    /// One delivery: the status as the body, signed; `Ok(status)` when the receiver answered.
    async fn deliver(&self, url: &str, body: Vec<u8>) -> Result<u16, String> {
        // The gateway refused internal addresses at submission; a receiver's name is checked
        // where it resolves. This is the same check again, for an address host.
        guard::check_literal(url, self.allow_private).map_err(|e| e.to_string())?;
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

    fn backoff(&self, attempt: u32) -> u64 {
        let base = self.settings.retry_base_ms.max(1);
        base.saturating_mul(1u64 << attempt.saturating_sub(1).min(30))
            .min(self.settings.retry_max_ms.max(base))
    }
}

impl Stage for Notifier {
    type Message = NotifyJob;
    const KEY: &'static str = topology::NOTIFY;

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
        let elapsed_ms = hopster_common::now_ms().saturating_sub(job.first_queued_ms);
        let delay_ms = self.backoff(job.attempt);
        let give_up = !delivered
            && (self.secret.is_none()
                || elapsed_ms + delay_ms > self.settings.give_up_after_secs * 1000);
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
        self.store
            .update_status(&id, |s| s.notifications.push(attempt))
            .await?;
        if delivered || give_up {
            return Ok(());
        }
        let next = NotifyJob {
            attempt: job.attempt + 1,
            ..job
        };
        let body = serde_json::to_vec(&next).unwrap_or_default();
        self.broker
            .publish_raw(
                &Topology::retry_key(topology::NOTIFY),
                &body,
                Default::default(),
                Some(delay_ms),
            )
            .await?;
        Ok(())
    }
}
