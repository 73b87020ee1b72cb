// A submission allocates many small blocks on one thread (the HTTP worker) that others free
// (lapin's I/O thread). With mimalloc the gateway spent about 130 µs of CPU per submission
// instead of 155 with glibc's malloc (issue 18 goal 7; `bench/RESULTS.md`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
