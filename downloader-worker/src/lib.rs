//! The downloader: stages a job's source in the store (or finds it staged already), then hands
//! the job to the transcoder.

mod fetch;
pub mod guard;

use hopster_common::settings::{Settings, SourceSettings, WorkerSettings};
use hopster_common::worker::{JobTracker, Stage, StageError, Worker};
use hopster_common::{Broker, Store};
use shared_proto::{
    keys, topology, DownloadJob, ErrorCode, JobState, JobStatus, TranscodeJob, MESSAGE_VERSION,
};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The download stage.
pub struct Downloader {
    store: Store,
    broker: Broker,
    http: reqwest::Client,
    sources: SourceSettings,
    worker: WorkerSettings,
    allow_private: bool,
}

impl Downloader {
    pub fn new(settings: &Settings, store: Store, broker: Broker) -> anyhow::Result<Self> {
        let allow_private = settings.downloader.allow_private_networks;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(settings.sources.connect_timeout_secs))
            .read_timeout(Duration::from_secs(settings.sources.read_timeout_secs))
            .timeout(Duration::from_secs(settings.sources.total_timeout_secs))
            .dns_resolver(guard::GuardedResolver {
                allow_private,
                lookup: guard::system_lookup(),
            })
            .redirect(guard::redirect_policy(allow_private))
            // A proxy from the environment would connect on our behalf, past the guard.
            .no_proxy()
            .user_agent(concat!("hopster-downloader/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Downloader {
            store,
            broker,
            http,
            sources: settings.sources.clone(),
            worker: settings.worker.clone(),
            allow_private,
        })
    }
}

impl Stage for Downloader {
    type Message = DownloadJob;
    const KEY: &'static str = topology::DOWNLOAD;

    async fn handle(&self, job: DownloadJob) -> Result<(), StageError> {
        let id = job.job_id.clone();
        let Some(status) = self.store.status(&id).await? else {
            log::warn!("job {id}: no status document; dropping the download message");
            return Ok(());
        };
        // Past downloading means an earlier delivery of this message already handed the job
        // on (and crashed before its ack): publishing again would transcode twice.
        if status.state.is_terminal() || status.state > JobState::Downloading {
            log::info!(
                "job {id}: already {}; nothing to download",
                status.state.as_str()
            );
            return Ok(());
        }
        let mut tracker = JobTracker::begin(
            self.store.clone(),
            status,
            JobState::Downloading,
            job.attempt,
            &self.worker,
        )
        .await?;

        let source_key = keys::source_key(&job.spec.url);
        if let Some(meta) = self.store.head(&source_key).await? {
            log::info!(
                "job {id}: source already staged ({} bytes); skipping the download",
                meta.size
            );
            let progress = &mut tracker.status_mut().progress.download;
            JobStatus::record_transfer(progress, meta.size, Some(meta.size));
            progress.cached = true;
        } else {
            log::info!("job {id}: downloading {}", job.spec.url);
            guard::check_literal(&job.spec.url, self.allow_private)
                .map_err(|e| StageError::abort(ErrorCode::SourceForbidden, e.to_string()))?;
            let bytes = fetch::stage_source(
                &self.http,
                &self.sources,
                &job.spec.url,
                &source_key,
                &mut tracker,
            )
            .await?;
            log::info!("job {id}: staged {bytes} bytes");
        }
        tracker.flush().await?;

        let next = TranscodeJob {
            version: MESSAGE_VERSION,
            job_id: id,
            spec: job.spec,
            source_key,
            attempt: 1,
        };
        self.broker.publish(topology::TRANSCODE, &next).await?;
        Ok(())
    }
}

/// Runs the downloader until `shutdown` fires.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (broker, store) = hopster_common::connect(&settings, "downloader-worker").await?;
    let stage = Downloader::new(&settings, store.clone(), broker.clone())?;
    Worker::new(stage, broker.clone(), store, settings.worker.clone())
        .run(settings.amqp.prefetch, shutdown)
        .await?;
    broker.close().await;
    Ok(())
}
