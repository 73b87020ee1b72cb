//! RabbitMQ: connect, declare the topology, publish with confirms, consume with a prefetch.

use crate::settings::{AmqpSettings, QueueType};
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::uri::AMQPUri;
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
    #[error("a broker URL does not parse: {0}")]
    Url(String),
    #[error(
        "declaring queue `{queue}` as {wanted} failed: {source}; a queue's type is fixed when \
         it is declared, so one of another type must be migrated (README: changing the queue type)"
    )]
    Declare {
        queue: String,
        wanted: &'static str,
        source: lapin::Error,
    },
}

/// A connection with one confirming publish channel; cheap to clone.
#[derive(Clone)]
pub struct Broker {
    connection: Arc<Connection>,
    publisher: Lane,
    /// Status events: no confirms, not persistent (a missed one is re-read from the store).
    events: Lane,
    topology: Topology,
    publish_timeout: Duration,
    /// For declaring the topology again (on another node after a failover).
    settings: Arc<AmqpSettings>,
}

/// A consumer and the channel it lives on, whose state tells whether lapin will recover the
/// consumer (a lost connection) or not (the channel closed by an error).
pub struct Subscription {
    pub channel: Channel,
    pub consumer: Consumer,
}

impl Subscription {
    /// Whether the consumer is gone for good (its channel closed or failed), so only a new
    /// subscription brings deliveries back.
    pub fn is_dead(&self) -> bool {
        is_gone(&self.channel)
    }
}

/// Whether a channel is closed for good: lapin recovers a channel whose connection dropped,
/// but not one the broker closed for an error (such as a publish to an exchange that a node
/// reached after a failover does not have yet).
fn is_gone(channel: &Channel) -> bool {
    let status = channel.status();
    !status.connected() && !status.reconnecting() && !status.initializing()
}

/// A publishing channel that is opened again, with the topology declared on it, when the
/// broker has closed it; without that one channel error would stop a service publishing until
/// it restarts.
#[derive(Clone)]
struct Lane {
    current: Arc<std::sync::Mutex<Channel>>,
    /// One renewal at a time.
    renewing: Arc<tokio::sync::Mutex<()>>,
    confirms: bool,
}

impl Lane {
    fn new(channel: Channel, confirms: bool) -> Lane {
        Lane {
            current: Arc::new(std::sync::Mutex::new(channel)),
            renewing: Arc::default(),
            confirms,
        }
    }

    fn get(&self) -> Channel {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("prefix", &self.topology.prefix())
            .finish()
    }
}

/// How long one node gets to accept a TCP connection before the next one is tried.
const NODE_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How many `publish_timeout`s a publish waits for its confirm while the connection is up.
const CONFIRM_WAIT_WHILE_CONNECTED: u32 = 6;

/// The TCP side of connecting to a cluster: every (re)connect tries the nodes in turn,
/// starting with the one that worked last, and takes the first that accepts. lapin's
/// recovery calls it whenever the connection drops, then replays the topology, the
/// consumers and the confirm mode on whichever node answered.
#[derive(Clone)]
struct Nodes {
    uris: Arc<[AMQPUri]>,
    last: Arc<std::sync::atomic::AtomicUsize>,
}

impl Nodes {
    fn parse(settings: &AmqpSettings) -> Result<Nodes, BrokerError> {
        let uris = settings
            .nodes()
            .iter()
            .map(|url| {
                url.parse::<AMQPUri>()
                    .map_err(|e| BrokerError::Url(format!("{e} (in {})", redacted(url))))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if uris.is_empty() {
            return Err(BrokerError::Url("no broker URL is configured".into()));
        }
        Ok(Nodes {
            uris: uris.into(),
            last: Arc::default(),
        })
    }

    /// The nodes to try, in order: the one that worked last, then the others.
    fn order(&self) -> impl Iterator<Item = usize> + '_ {
        let n = self.uris.len();
        let start = self.last.load(std::sync::atomic::Ordering::Relaxed);
        (0..n).map(move |k| (start + k) % n)
    }

    fn worked(&self, i: usize) {
        let before = self.last.swap(i, std::sync::atomic::Ordering::Relaxed);
        if before != i {
            let node = &self.uris[i];
            log::warn!(
                "broker: now on node {}:{} ({} of {})",
                node.authority.host,
                node.authority.port,
                i + 1,
                self.uris.len()
            );
        }
    }
}

/// A URL without its password, for messages.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => "(unparsable URL)".into(),
    }
}

impl Broker {
    /// Connects to the first broker node that answers (with lapin's automatic recovery, so a
    /// lost connection reconnects — to another node of `amqp.urls` if its own is gone — and
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
        let nodes = Nodes::parse(settings)?;
        let first = nodes.uris[0].clone();
        let runtime = lapin::runtime::default_runtime()?;
        let connection = Connection::connector(
            first,
            runtime,
            async move |_uri, runtime| {
                use lapin::tcp::{AMQPUriTcpExt, OwnedTLSConfig};
                let mut failure = None;
                for i in nodes.order() {
                    let node = &nodes.uris[i];
                    let tls = OwnedTLSConfig::default();
                    let attempt = node.connect_with_config_async(tls.as_ref(), &runtime);
                    match tokio::time::timeout(NODE_CONNECT_TIMEOUT, attempt).await {
                        Ok(Ok(stream)) => {
                            nodes.worked(i);
                            return Ok(stream);
                        }
                        Ok(Err(e)) => failure = Some(e),
                        Err(_) => {
                            failure = Some(std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                format!(
                                    "{}:{} did not accept in {NODE_CONNECT_TIMEOUT:?}",
                                    node.authority.host, node.authority.port
                                ),
                            ))
                        }
                    }
                }
                Err(failure
                    .unwrap_or_else(|| std::io::Error::other("no broker node"))
                    .into())
            },
            props,
        )
        .await?;
        let publisher = connection.create_channel().await?;
        let topology = Topology::new(&settings.prefix);
        declare(&publisher, &topology, settings).await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let events = connection.create_channel().await?;
        Ok(Broker {
            connection: Arc::new(connection),
            publisher: Lane::new(publisher, true),
            events: Lane::new(events, false),
            topology,
            publish_timeout: Duration::from_millis(settings.publish_timeout_ms),
            settings: Arc::new(settings.clone()),
        })
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The lane's channel, opened again (topology declared, confirms on if the lane has them)
    /// if the broker has closed it.
    async fn channel(&self, lane: &Lane) -> Result<Channel, BrokerError> {
        let channel = lane.get();
        if !is_gone(&channel) {
            return Ok(channel);
        }
        let _one = lane.renewing.lock().await;
        let channel = lane.get();
        if !is_gone(&channel) {
            return Ok(channel);
        }
        let fresh = self.connection.create_channel().await?;
        declare(&fresh, &self.topology, &self.settings).await?;
        if lane.confirms {
            fresh
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
        }
        log::warn!("broker: a channel the broker closed was opened again");
        *lane
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh.clone();
        Ok(fresh)
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
    async fn publish_once(
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
        let publisher = self.channel(&self.publisher).await?;
        let once = || async {
            publisher
                .basic_publish(
                    self.topology.exchange().into(),
                    routing_key.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    body,
                    props.clone(),
                )
                .await?
                .await
        };
        // A connection lost under the publish (its node died) is recovered by lapin, on
        // another node when there is one: wait for that and publish again, so a submission
        // fails only while no node answers. The message may then be there twice; job ids
        // are deterministic and every stage skips a job that is past it.
        let publish = async {
            match once().await {
                Err(e) => {
                    publisher.wait_for_recovery(e).await?;
                    once().await
                }
                confirmed => confirmed,
            }
        };
        // While no node answers a confirm may never come: once the connection has been down
        // for `publish_timeout` the publish fails (the gateway answers 503). While it is up
        // the confirm is awaited longer: a quorum queue whose leader died holds its confirms
        // until the election is over, and a node that answers is no reason to refuse.
        let unreachable = async {
            let mut down_since: Option<std::time::Instant> = None;
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if self.is_connected() {
                    down_since = None;
                } else if down_since
                    .get_or_insert_with(std::time::Instant::now)
                    .elapsed()
                    >= self.publish_timeout
                {
                    return;
                }
            }
        };
        let confirm = tokio::select! {
            confirm = publish => confirm?,
            () = unreachable => return Err(BrokerError::Timeout(routing_key.to_owned())),
            () = tokio::time::sleep(self.publish_timeout * CONFIRM_WAIT_WHILE_CONNECTED) => {
                return Err(BrokerError::Timeout(routing_key.to_owned()))
            }
        };
        if confirm.is_nack() {
            return Err(BrokerError::Nacked(routing_key.to_owned()));
        }
        if confirm.take_message().is_some() {
            return Err(BrokerError::Unroutable(routing_key.to_owned()));
        }
        Ok(())
    }

    /// [`Broker::publish_once`], and again when the broker could not take the message:
    /// - unroutable: a node reached after a failover may not have the queues yet (lapin
    ///   replays each channel's declarations on its own, in no fixed order), so the topology
    ///   is declared again first;
    /// - refused (a nack): a quorum queue whose leader has just died refuses publishes until
    ///   its members have elected another, a few hundred milliseconds. A nacked message was
    ///   not enqueued, so publishing it again makes no duplicate. Tried again every 100 ms for
    ///   up to `publish_timeout`.
    pub async fn publish_raw(
        &self,
        routing_key: &str,
        body: &[u8],
        headers: FieldTable,
        expiration_ms: Option<u64>,
    ) -> Result<(), BrokerError> {
        let started = std::time::Instant::now();
        let mut declared = false;
        loop {
            match self
                .publish_once(routing_key, body, headers.clone(), expiration_ms)
                .await
            {
                Err(BrokerError::Unroutable(_)) if !declared => {
                    let publisher = self.channel(&self.publisher).await?;
                    declare(&publisher, &self.topology, &self.settings).await?;
                    declared = true;
                }
                // The broker closed the channel under the publish (a node reached after a
                // failover may not have the exchange yet): the next try opens another and
                // declares the topology on it. The message was not enqueued.
                Err(BrokerError::Amqp(e))
                    if is_gone(&self.publisher.get())
                        && started.elapsed() < self.publish_timeout =>
                {
                    log::warn!("broker: the publish to `{routing_key}` failed ({e}); trying again");
                }
                Err(BrokerError::Nacked(key)) => {
                    if started.elapsed() >= self.publish_timeout {
                        return Err(BrokerError::Nacked(key));
                    }
                    log::warn!("broker: the publish to `{key}` was refused; trying again");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                done => return done,
            }
        }
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
    /// unacknowledged messages. The topology is declared on that channel first: after a
    /// failover to a node that has never seen it, the queue must exist before the consume.
    pub async fn consume(&self, stage: &str, prefetch: u16) -> Result<Subscription, BrokerError> {
        let channel = self.connection.create_channel().await?;
        declare(&channel, &self.topology, &self.settings).await?;
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
        Ok(Subscription { channel, consumer })
    }

    /// Publishes a status change to the events exchange; best effort, bounded to 250 ms.
    pub async fn announce(&self, status: &shared_proto::JobStatus) {
        let body = serde_json::to_vec(status).unwrap_or_default();
        let publish = async {
            self.channel(&self.events)
                .await?
                .basic_publish(
                    self.topology.events_exchange().into(),
                    status.id.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    BasicProperties::default().with_content_type("application/json".into()),
                )
                .await
                .map_err(BrokerError::from)
        };
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

    /// Messages ready in a stage's work queue (not counting those delivered and not yet
    /// acked), read with a passive declare on a channel of its own.
    pub async fn ready(&self, routing_key: &str) -> Result<u32, BrokerError> {
        let channel = self.connection.create_channel().await?;
        let queue = channel
            .queue_declare(
                self.topology.queue(routing_key).as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await;
        let _ = channel.close(0, "done".into()).await;
        Ok(queue?.message_count())
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

/// The arguments every queue of the topology carries: its type, and for a quorum work queue
/// the delivery limit.
fn queue_args(settings: &AmqpSettings, work: bool) -> FieldTable {
    let mut args = FieldTable::default();
    if settings.queue_type == QueueType::Classic {
        // No `x-queue-type`: what every deployment before the setting declared, so their
        // queues stay equivalent.
        return args;
    }
    args.insert(
        "x-queue-type".into(),
        string_arg(settings.queue_type.as_str()),
    );
    if work {
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(settings.delivery_limit)),
        );
    }
    args
}

/// Declares everything durable: the exchange; per stage a work queue (rejects go to the
/// dead-letter queue) and a delay queue (expired messages go back to the work queue); and the
/// dead-letter queue, all of `amqp.queue_type`. Declaring is idempotent, so every service does
/// it at start; a queue that exists with another type is refused by the broker.
async fn declare(
    channel: &Channel,
    topology: &Topology,
    settings: &AmqpSettings,
) -> Result<(), BrokerError> {
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
        let mut work = queue_args(settings, true);
        work.insert("x-dead-letter-exchange".into(), string_arg(&exchange));
        work.insert(
            "x-dead-letter-routing-key".into(),
            string_arg(topology::DEAD),
        );
        bindings.push((topology.queue(stage), stage.to_owned(), work));
        let mut delay = queue_args(settings, false);
        delay.insert("x-dead-letter-exchange".into(), string_arg(&exchange));
        delay.insert("x-dead-letter-routing-key".into(), string_arg(stage));
        let retry_key = Topology::retry_key(stage);
        bindings.push((topology.queue(&retry_key), retry_key, delay));
    }
    bindings.push((
        topology.queue(topology::DEAD),
        topology::DEAD.to_owned(),
        queue_args(settings, false),
    ));
    for (queue, key, args) in bindings {
        channel
            .queue_declare(queue.as_str().into(), durable, args)
            .await
            .map_err(|source| BrokerError::Declare {
                queue: queue.clone(),
                wanted: settings.queue_type.as_str(),
                source,
            })?;
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
