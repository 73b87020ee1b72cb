//! The transcoder: probes the staged source, cuts the clip with ffmpeg, uploads the result and
//! writes the final status.

pub mod ffmpeg;
mod limits;
pub mod mp4info;
pub mod probe;
pub mod process;
mod proxy;
pub mod smart;
mod stage;
mod transfer;
pub mod webpinfo;
mod workdir;

pub use stage::{Inspector, Transcoder};

use hopster_common::settings::Settings;
use hopster_common::worker::Worker;
use tokio_util::sync::CancellationToken;

/// Runs the transcoder until `shutdown` fires.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (broker, store) = hopster_common::connect(&settings, "transcoder-worker").await?;
    let stage = Transcoder::new(&settings, store.clone())?.with_notifications(broker.clone());
    hopster_common::ops::serve(
        &settings.worker.http_bind,
        broker.clone(),
        store.clone(),
        shutdown.clone(),
    );
    // Source inspections are the transcoder's work too (ffprobe, ffmpeg, the range proxy), on
    // a queue of their own.
    let inspector = Inspector::new(Transcoder::new(&settings, store.clone())?);
    let transcodes = Worker::new(
        stage,
        broker.clone(),
        store.clone(),
        settings.worker.clone(),
    )
    .run(settings.amqp.prefetch, shutdown.clone());
    let inspections = Worker::new(inspector, broker.clone(), store, settings.worker.clone())
        .run(settings.amqp.prefetch, shutdown);
    tokio::try_join!(transcodes, inspections)?;
    broker.close().await;
    Ok(())
}
