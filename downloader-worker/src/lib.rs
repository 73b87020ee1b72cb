//! The downloader: stages a job's source in the store (or finds it staged already), then hands
//! the job to the transcoder.

mod fetch;
mod hls;
mod notify;
mod reaper;

pub use notify::Notifier;

use hopster_common::settings::{Settings, SourceSettings, WorkerSettings};
use hopster_common::worker::{JobTracker, Stage, StageError, Worker};
use hopster_common::{Broker, Store};
use shared_proto::{
    keys, topology, DownloadJob, ErrorCode, JobState, JobStatus, Profile, TranscodeJob,
    MESSAGE_VERSION,
};
use tokio_util::sync::CancellationToken;

/// The download stage.
pub struct Downloader {
    store: Store,
    broker: Broker,
    http: reqwest::Client,
    sources: SourceSettings,
    worker: WorkerSettings,
    guard: hopster_common::guard::Policy,
    /// The transcoder remuxes whole sources already in the profile (`transcoder.passthrough`).
    passthrough: bool,
}

impl Downloader {
    pub fn new(settings: &Settings, store: Store, broker: Broker) -> anyhow::Result<Self> {
        let http = hopster_common::source_client(settings)?;
        Ok(Downloader {
            store,
            broker,
            http,
            sources: settings.sources.clone(),
            worker: settings.worker.clone(),
            guard: hopster_common::guard::Policy::of(&settings.sources),
            passthrough: settings.transcoder.passthrough,
        })
    }
}

impl Stage for Downloader {
    type Message = DownloadJob;
    const KEY: &'static str = topology::DOWNLOAD;

    fn retry_policy(&self) -> hopster_common::retry::RetryPolicy {
        hopster_common::retry::RetryPolicy::of_jobs(&self.worker)
    }

    async fn handle(&self, job: DownloadJob) -> Result<(), StageError> {
        let id = job.job_id.clone();
        // Past downloading means an earlier delivery of this message already handed the job
        // on (and crashed before its ack): publishing again would transcode twice.
        let resumed = JobTracker::resume(
            self.store.clone(),
            &id,
            JobState::Downloading,
            job.attempt,
            &self.worker,
            |state| state > JobState::Downloading,
        )
        .await?;
        let Some(mut tracker) = resumed else {
            return Ok(());
        };

        let mut source_key = keys::source_key(&job.spec.url);
        let mut source_url = None;
        let mut hls = None;
        if let Some(meta) = self.store.head(&source_key).await? {
            log::info!(
                "job {id}: source already staged ({} bytes); skipping the download",
                meta.size
            );
            let progress = &mut tracker.status_mut().progress.download;
            JobStatus::record_transfer(progress, meta.size, Some(meta.size));
            progress.cached = true;
        } else {
            hopster_common::guard::check_literal(&job.spec.url, &self.guard)
                .map_err(|e| StageError::abort(ErrorCode::SourceForbidden, e.to_string()))?;
            // A clip needs only part of the source: when the source serves byte ranges, the
            // transcoder reads just those through its range proxy instead of a full copy. A
            // whole mp4 job may be a passthrough (the source remuxed as it is): it reads the
            // source once through the proxy too, rather than copying it into the store and out
            // again. An HLS playlist is read here: only the segments the clip needs are staged.
            let partial = job.spec.span() != (None, None);
            let remux = self.passthrough && job.spec.profile == Profile::Mp4;
            let sniffed = fetch::sniff(&self.http, &job.spec.url).await?;
            let ranges = sniffed.ranges.filter(|_| partial || remux);
            if hls::is_playlist(sniffed.content_type.as_deref(), &sniffed.first) {
                let staged = hls::stage(
                    &self.http,
                    &self.sources,
                    &self.guard,
                    &job.spec,
                    &mut tracker,
                )
                .await?;
                log::info!(
                    "job {id}: HLS, {} of {} segments{}",
                    staged.hls.segments,
                    staged.hls.listed,
                    staged
                        .bytes
                        .map(|b| format!(" staged ({b} bytes)"))
                        .unwrap_or_else(|| " staged already".into())
                );
                source_key = staged.key;
                hls = Some(staged.hls);
            } else if let Some(size) = ranges {
                log::info!("job {id}: the source serves ranges ({size} bytes); not staging it");
                tracker.status_mut().progress.download.total_bytes = Some(size);
                source_url = Some(job.spec.url.clone());
            } else {
                log::info!("job {id}: downloading {}", job.spec.url);
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
        }
        tracker.flush().await?;

        let next = TranscodeJob {
            version: MESSAGE_VERSION,
            job_id: id,
            spec: job.spec,
            source_key,
            source_url,
            hls,
            attempt: 1,
        };
        self.broker.publish(topology::TRANSCODE, &next).await?;
        Ok(())
    }
}

/// Runs the downloader until `shutdown` fires: the download stage, callback delivery, the
/// retention sweep and the operations endpoints.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (broker, store) = hopster_common::connect(&settings, "downloader-worker").await?;
    let stage = Downloader::new(&settings, store.clone(), broker.clone())?;
    let notifier = Notifier::new(&settings, store.clone())?;
    hopster_common::ops::serve(
        &settings.worker.http_bind,
        broker.clone(),
        store.clone(),
        shutdown.clone(),
    );
    tokio::spawn(sweep_periodically(
        store.clone(),
        settings.retention.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(reaper::reap_periodically(
        store.clone(),
        broker.clone(),
        settings.recovery.clone(),
        shutdown.clone(),
    ));
    let downloads = Worker::new(
        stage,
        broker.clone(),
        store.clone(),
        settings.worker.clone(),
    )
    .run(settings.amqp.prefetch, shutdown.clone());
    // Deliveries are short HTTP calls: several at once, whatever the download concurrency.
    let callbacks = Worker::new(notifier, broker.clone(), store, settings.worker.clone())
        .run(settings.amqp.prefetch.max(8), shutdown);
    let (downloads, callbacks) = tokio::join!(downloads, callbacks);
    downloads?;
    callbacks?;
    broker.close().await;
    Ok(())
}

/// Runs the retention sweep every `sweep_interval_secs` (the first one a minute after start,
/// or at once when the interval is shorter), until shutdown.
async fn sweep_periodically(
    store: Store,
    retention: hopster_common::settings::RetentionSettings,
    shutdown: CancellationToken,
) {
    if retention.max_age_secs == 0 {
        log::info!("retention sweep off (retention.max_age_secs = 0)");
        return;
    }
    let interval = std::time::Duration::from_secs(retention.sweep_interval_secs.max(1));
    let mut wait = interval.min(std::time::Duration::from_secs(60));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = interval;
        match store
            .sweep(std::time::Duration::from_secs(retention.max_age_secs))
            .await
        {
            Ok(swept) => log::info!("retention sweep: {swept:?}"),
            Err(e) => log::warn!("retention sweep failed: {e}; trying again next time"),
        }
    }
}
