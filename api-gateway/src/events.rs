//! Live status: the gateway follows the events exchange (every status write the services
//! make) into its hot cache and a broadcast channel, which `routes::events` streams from.

use futures::StreamExt;
use hopster_common::Broker;
use shared_proto::JobStatus;
use std::time::Duration;
use tokio::sync::broadcast;

/// Feeds every status event into `tx` (and the hot cache) for as long as the process runs.
/// The subscription is re-made after a broker outage.
pub fn follow(
    broker: Broker,
    tx: broadcast::Sender<JobStatus>,
    hot: std::sync::Arc<crate::hot::HotStatus>,
) {
    tokio::spawn(async move {
        loop {
            match broker.subscribe_events().await {
                Ok(mut consumer) => {
                    while let Some(delivery) = consumer.next().await {
                        let Ok(delivery) = delivery else { break };
                        if let Ok(status) = serde_json::from_slice::<JobStatus>(&delivery.data) {
                            hot.put(&status);
                            let _ = tx.send(status);
                        }
                    }
                    log::warn!("the status event subscription ended; subscribing again");
                }
                Err(e) => log::warn!("subscribing to status events: {e}; retrying"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}
