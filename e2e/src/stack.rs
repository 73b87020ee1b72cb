//! The whole job path in one test process: gateway, downloader and transcoder against the
//! machine's RabbitMQ (random prefix), a real S3 API or a temp directory, and a source server.

use crate::api::Api;
use crate::s3::{S3Server, ACCESS_KEY, SECRET_KEY};
use crate::source::SourceServer;
use crate::{random_name, TempDir};
use hopster_common::settings::{Backend, Secret, Settings};
use hopster_common::Store;
use lapin::options::{ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use shared_proto::topology::{self, Topology};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How to spawn the stack.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub backend: Backend,
    /// Start the two workers (off: only the gateway, so tests can inspect queued messages).
    pub workers: bool,
}

pub struct Stack {
    pub api: Api,
    pub store: Store,
    pub settings: Settings,
    pub source: SourceServer,
    /// The directory the source server serves (tests may add files).
    pub media_dir: std::path::PathBuf,
    shutdown: CancellationToken,
    gateway: actix_web::dev::ServerHandle,
    workers: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    inspector: lapin::Channel,
    _connection: lapin::Connection,
    _s3: Option<S3Server>,
    _dirs: Vec<TempDir>,
    /// Removes the topology if the test ends (or fails) without `stop`.
    cleanup: Option<RemoveOnDrop>,
}

/// The test settings: fast retries and progress, the given store, a random prefix.
pub fn settings(
    backend: Backend,
    source_base: &str,
    s3: Option<&S3Server>,
    fs_root: &std::path::Path,
) -> Settings {
    let mut s = Settings::default();
    s.gateway.bind = "127.0.0.1:0".into();
    s.gateway.secret_key = Some(Secret::new("test-secret"));
    s.amqp.prefix = random_name("hopster-test");
    if let Ok(url) = std::env::var("HOPSTER_TEST_AMQP_URL") {
        s.amqp.url = url;
    }
    s.store.backend = backend;
    s.store.root = fs_root.to_path_buf();
    if let Some(s3) = s3 {
        s.store.bucket = s3.bucket.clone();
        s.store.endpoint = Some(s3.endpoint.clone());
        s.store.access_key_id = Some(ACCESS_KEY.into());
        s.store.secret_access_key = Some(Secret::new(SECRET_KEY));
    }
    s.sources.video_url_template = format!("{source_base}/{{video_id}}.mp4");
    // Test sources live on loopback; the hostile-input tests turn the guard back on.
    s.sources.allow_private_networks = true;
    s.worker.retry_base_ms = 100;
    s.worker.retry_max_ms = 1000;
    s.worker.progress_interval_ms = 200;
    s.worker.shutdown_grace_secs = 5;
    // Both workers run in the test process: each takes a free port.
    s.worker.http_bind = "127.0.0.1:0".into();
    s
}

impl Stack {
    /// Spawns everything; the 60 s test video is served as `{source}/sixty.mp4` (video id
    /// `sixty`).
    pub async fn spawn(options: Options) -> Stack {
        Stack::spawn_with(options, |_| {}).await
    }

    /// Where the transcoder makes its per-job work directories.
    pub fn work_dir(&self) -> std::path::PathBuf {
        self.settings
            .transcoder
            .work_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir)
    }

    /// Like [`Stack::spawn`], with `tune` applied to the settings first.
    pub async fn spawn_with(options: Options, tune: impl FnOnce(&mut Settings)) -> Stack {
        let media = TempDir::new("hopster-source");
        std::fs::copy(
            crate::media::sixty_second_video(),
            media.0.join("sixty.mp4"),
        )
        .expect("copying media");
        let source = SourceServer::start(media.0.clone());
        let s3 = match options.backend {
            Backend::S3 => Some(S3Server::start().await),
            Backend::Fs => None,
        };
        let fs_root = TempDir::new("hopster-store");
        // The transcoder's per-job directories go here, and with the stack.
        let work = TempDir::new("hopster-work");
        let mut settings = settings(options.backend, &source.base_url, s3.as_ref(), &fs_root.0);
        settings.transcoder.work_dir = Some(work.0.clone());
        tune(&mut settings);
        let store = Store::from_settings(&settings.store).expect("opening the store");

        let app = api_gateway::Application::build(settings.clone())
            .await
            .expect("building the gateway");
        let base_url = format!("http://127.0.0.1:{}", app.port());
        let gateway = app.handle();
        tokio::spawn(app.run_until_stopped());

        let shutdown = CancellationToken::new();
        let mut workers = Vec::new();
        if options.workers {
            workers.push(tokio::spawn(downloader_worker::run(
                settings.clone(),
                shutdown.clone(),
            )));
            workers.push(tokio::spawn(transcoder_worker::run(
                settings.clone(),
                shutdown.clone(),
            )));
        }
        let connection =
            lapin::Connection::connect(&settings.amqp.url, lapin::ConnectionProperties::default())
                .await
                .expect("connecting the inspector");
        let inspector = connection
            .create_channel()
            .await
            .expect("inspector channel");
        let cleanup = RemoveOnDrop::new(&settings.amqp.url, &settings.amqp.prefix);
        Stack {
            api: Api::new(base_url),
            store,
            settings,
            source,
            media_dir: media.0.clone(),
            shutdown,
            gateway,
            workers,
            inspector,
            _connection: connection,
            _s3: s3,
            cleanup: Some(cleanup),
            _dirs: vec![media, fs_root, work],
        }
    }

    pub fn topology(&self) -> Topology {
        Topology::new(&self.settings.amqp.prefix)
    }

    /// Messages waiting in the queue of `routing_key`.
    pub async fn queue_len(&self, routing_key: &str) -> u32 {
        queue_counts(&self.inspector, &self.topology(), routing_key)
            .await
            .0
    }

    /// Publishes raw bytes to a stage, as a broken producer would.
    pub async fn publish_raw(&self, routing_key: &str, body: &[u8]) {
        let broker = hopster_common::Broker::connect(&self.settings.amqp, "test-publisher")
            .await
            .expect("connect");
        broker
            .publish_raw(routing_key, body, FieldTable::default(), None)
            .await
            .expect("publish");
        broker.close().await;
    }

    /// Stops the services and removes this test's queues and exchange.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        for worker in std::mem::take(&mut self.workers) {
            match tokio::time::timeout(Duration::from_secs(10), worker).await {
                Ok(Ok(Ok(()))) => {}
                other => panic!("a worker did not stop cleanly: {other:?}"),
            }
        }
        self.gateway.stop(true).await;
        delete_topology(&self.inspector, &self.topology()).await;
        if let Some(cleanup) = self.cleanup.take() {
            cleanup.disarm();
        }
    }
}

impl Drop for Stack {
    /// A test that fails before `stop`: the workers are told to stop first, so none
    /// subscribes again while `cleanup` deletes the topology.
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Removes the topology of a prefix when dropped, so a test that fails (panics) before its
/// own clean-up still leaves nothing on the broker. The deletion runs over a connection of its
/// own, on a thread with its own runtime: a drop may come while the test's runtime unwinds.
pub struct RemoveOnDrop {
    target: Option<(String, String)>,
}

impl RemoveOnDrop {
    pub fn new(amqp_url: &str, prefix: &str) -> RemoveOnDrop {
        RemoveOnDrop {
            target: Some((amqp_url.to_owned(), prefix.to_owned())),
        }
    }

    /// The test removed the topology itself.
    pub fn disarm(mut self) {
        self.target = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let Some((url, prefix)) = self.target.take() else {
            return;
        };
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(remove_topology(&url, &prefix));
            }
        })
        .join();
    }
}

impl std::ops::Deref for Stack {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// Removes a test's queues and exchange (best effort: a test's leftovers are harmless but
/// clutter the broker).
pub async fn delete_topology(channel: &lapin::Channel, t: &Topology) {
    let mut queues = vec![t.queue(topology::DEAD)];
    for stage in Topology::stages() {
        queues.push(t.queue(stage));
        queues.push(t.queue(&Topology::retry_key(stage)));
    }
    for queue in queues {
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    for exchange in [t.exchange(), t.events_exchange()] {
        let _ = channel
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await;
    }
}

/// [`delete_topology`] of `prefix` on the broker at `amqp_url`, over a connection of its own
/// (for stacks of real processes, which hold no channel the test can use).
pub async fn remove_topology(amqp_url: &str, prefix: &str) {
    let conn = lapin::Connection::connect(amqp_url, lapin::ConnectionProperties::default())
        .await
        .expect("connecting to the broker");
    let channel = conn.create_channel().await.expect("a channel");
    delete_topology(&channel, &Topology::new(prefix)).await;
    let _ = conn.close(0, "done".into()).await;
}

/// The names of the machine's broker's queues and exchanges that start with `prefix`, from
/// `rabbitmqctl` (the broker the tests use is the local one).
pub fn broker_names(prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    for what in ["list_queues", "list_exchanges"] {
        let out = crate::as_root(&["rabbitmqctl", "-q", what, "name"])
            .output()
            .expect("running rabbitmqctl");
        assert!(out.status.success(), "rabbitmqctl {what}: {out:?}");
        names.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::trim)
                .filter(|n| n.starts_with(prefix))
                .map(|n| format!("{what}: {n}")),
        );
    }
    names
}

/// Messages and consumers of the queue of `routing_key`.
pub async fn queue_counts(channel: &lapin::Channel, t: &Topology, routing_key: &str) -> (u32, u32) {
    let queue = channel
        .queue_declare(
            t.queue(routing_key).into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("inspecting a queue");
    (queue.message_count(), queue.consumer_count())
}
