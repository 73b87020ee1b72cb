//! RabbitMQ: connect, declare the topology, publish with confirms, consume with a prefetch.

use crate::settings::AmqpSettings;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use serde::Serialize;
use shared_proto::topology::{self, Topology};
use std::sync::Arc;
use std::time::Duration;

/// AMQP delivery mode 2: the broker writes the message to disk.
const PERSISTENT: u8 = 2;

/// Why a broker call failed. All of these are transient: the broker may come back.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("broker request failed: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("the broker refused the message (nack) on `{0}`")]
    Nacked(String),
    #[error("no queue is bound to routing key `{0}`; the message was returned")]
    Unroutable(String),
    #[error("the broker did not confirm the message on `{0}` in time")]
    Timeout(String),
}

/// A connection with one confirming publish channel; cheap to clone.
#[derive(Clone)]
pub struct Broker {
    connection: Arc<Connection>,
    publisher: Channel,
    /// Status events: no confirms, not persistent (a missed one is re-read from the store).
    events: Channel,
    topology: Topology,
    publish_timeout: Duration,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("prefix", &self.topology.prefix())
            .finish()
    }
}

impl Broker {
    /// Connects (with lapin's automatic recovery, so a broker restart reconnects and
    /// re-declares), declares the topology and enables publisher confirms.
    pub async fn connect(settings: &AmqpSettings, name: &str) -> Result<Broker, BrokerError> {
        // Reconnect quickly and never give up: a service that stops trying after a long
        // broker outage would need a restart, which is what recovery is for.
        let props = ConnectionProperties::default()
            .with_connection_name(name.into())
            .configure_backoff(|b| {
                b.with_min_delay(Duration::from_millis(250))
                    .with_max_delay(Duration::from_secs(5))
                    .with_max_times(usize::MAX)
            })
            .enable_auto_recover();
        let connection = Connection::connect(&settings.url, props).await?;
        let publisher = connection.create_channel().await?;
        let topology = Topology::new(&settings.prefix);
        declare(&publisher, &topology).await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let events = connection.create_channel().await?;
        Ok(Broker {
            connection: Arc::new(connection),
            publisher,
            events,
            topology,
            publish_timeout: Duration::from_millis(settings.publish_timeout_ms),
        })
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Publishes `message` as persistent JSON and waits for the broker's confirm.
    pub async fn publish<T: Serialize>(
        &self,
        routing_key: &str,
        message: &T,
    ) -> Result<(), BrokerError> {
        let body = serde_json::to_vec(message).unwrap_or_default();
        self.publish_raw(routing_key, &body, FieldTable::default(), None)
            .await
    }

    /// Publishes raw bytes with headers and an optional per-message TTL, waiting for the
    /// confirm. `mandatory` makes an unbound routing key an error instead of a silent drop.
    pub async fn publish_raw(
        &self,
        routing_key: &str,
        body: &[u8],
        headers: FieldTable,
        expiration_ms: Option<u64>,
    ) -> Result<(), BrokerError> {
        let mut props = BasicProperties::default()
            .with_delivery_mode(PERSISTENT)
            .with_content_type("application/json".into())
            .with_headers(headers);
        if let Some(ms) = expiration_ms {
            props = props.with_expiration(ms.to_string().into());
        }
        let publish = async {
            self.publisher
                .basic_publish(
                    self.topology.exchange().into(),
                    routing_key.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    body,
                    props,
                )
                .await?
                .await
        };
        // While the broker is away a confirm may never come: bound the wait so callers
        // answer (the gateway: 503) instead of hanging.
        let confirm = tokio::time::timeout(self.publish_timeout, publish)
            .await
            .map_err(|_| BrokerError::Timeout(routing_key.to_owned()))??;
        if confirm.is_nack() {
            return Err(BrokerError::Nacked(routing_key.to_owned()));
        }
        if confirm.take_message().is_some() {
            return Err(BrokerError::Unroutable(routing_key.to_owned()));
        }
        Ok(())
    }

    /// Publishes to the dead-letter queue with the reason in a header.
    pub async fn dead_letter(&self, body: &[u8], reason: &str) -> Result<(), BrokerError> {
        let mut headers = FieldTable::default();
        headers.insert(
            topology::REASON_HEADER.into(),
            AMQPValue::LongString(LongString::from(reason.as_bytes().to_vec())),
        );
        self.publish_raw(topology::DEAD, body, headers, None).await
    }

    /// Starts consuming a stage's queue on a channel of its own, holding at most `prefetch`
    /// unacknowledged messages.
    pub async fn consume(&self, stage: &str, prefetch: u16) -> Result<Consumer, BrokerError> {
        let channel = self.connection.create_channel().await?;
        channel
            .basic_qos(prefetch.max(1), BasicQosOptions::default())
            .await?;
        let consumer = channel
            .basic_consume(
                self.topology.queue(stage).into(),
                format!("{}-{}", stage, crate::worker_id()).into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(consumer)
    }

    /// Publishes a status change to the events exchange; best effort, bounded to 250 ms.
    pub async fn announce(&self, status: &shared_proto::JobStatus) {
        let body = serde_json::to_vec(status).unwrap_or_default();
        let publish = self.events.basic_publish(
            self.topology.events_exchange().into(),
            status.id.as_str().into(),
            BasicPublishOptions::default(),
            &body,
            BasicProperties::default().with_content_type("application/json".into()),
        );
        match tokio::time::timeout(Duration::from_millis(250), publish).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => log::debug!("job {}: status event not published: {e}", status.id),
            Err(_) => log::debug!("job {}: status event timed out", status.id),
        }
    }

    /// Every status event from now on, on an exclusive queue of this connection's own.
    pub async fn subscribe_events(&self) -> Result<Consumer, BrokerError> {
        let channel = self.connection.create_channel().await?;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                queue.name().clone(),
                self.topology.events_exchange().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(channel
            .basic_consume(
                queue.name().clone(),
                format!("events-{}", crate::worker_id()).into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?)
    }

    /// Whether the connection is up now.
    pub fn is_connected(&self) -> bool {
        self.connection.status().connected()
    }

    /// Closes the connection; unacknowledged messages go back to their queues.
    pub async fn close(&self) {
        if let Err(e) = self.connection.close(200, "shutdown".into()).await {
            log::debug!("closing the broker connection: {e}");
        }
    }
}

fn string_arg(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes().to_vec()))
}

/// Declares everything durable: the exchange; per stage a work queue (rejects go to the
/// dead-letter queue) and a delay queue (expired messages go back to the work queue); and the
/// dead-letter queue. Declaring is idempotent, so every service does it at start.
async fn declare(channel: &Channel, topology: &Topology) -> Result<(), BrokerError> {
    let exchange = topology.exchange();
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            topology.events_exchange().as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let mut bindings: Vec<(String, String, FieldTable)> = Vec::new();
    for stage in Topology::stages() {
        let mut work = FieldTable::default();
        work.insert("x-dead-letter-exchange".into(), string_arg(&exchange));
        work.insert(
            "x-dead-letter-routing-key".into(),
            string_arg(topology::DEAD),
        );
        bindings.push((topology.queue(stage), stage.to_owned(), work));
        let mut delay = FieldTable::default();
        delay.insert("x-dead-letter-exchange".into(), string_arg(&exchange));
        delay.insert("x-dead-letter-routing-key".into(), string_arg(stage));
        let retry_key = Topology::retry_key(stage);
        bindings.push((topology.queue(&retry_key), retry_key, delay));
    }
    bindings.push((
        topology.queue(topology::DEAD),
        topology::DEAD.to_owned(),
        FieldTable::default(),
    ));
    for (queue, key, args) in bindings {
        channel
            .queue_declare(queue.as_str().into(), durable, args)
            .await?;
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.as_str().into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

impl crate::store::StatusSink for Broker {
    fn announce(&self, status: &shared_proto::JobStatus) -> futures::future::BoxFuture<'_, ()> {
        let status = status.clone();
        Box::pin(async move { Broker::announce(self, &status).await })
    }
}
