use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hopster_common::init_logging();
    let settings = hopster_common::Settings::load().context("loading settings")?;
    let app = api_gateway::Application::build(settings).await?;
    log::info!("api-gateway listening on port {}", app.port());
    app.run_until_stopped().await?;
    Ok(())
}
