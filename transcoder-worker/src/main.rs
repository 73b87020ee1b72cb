use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hopster_common::init_logging();
    let settings = hopster_common::Settings::load().context("loading settings")?;
    let shutdown = hopster_common::shutdown_on_signals();
    transcoder_worker::run(settings, shutdown).await
}
