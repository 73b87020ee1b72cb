//! Typed settings: defaults in code → optional file (`HOPSTER_CONFIG`) → environment
//! (`HOPSTER__SECTION__KEY`, plus the seed's `HOPSTER_SERVER_SECRET_KEY`). Every service
//! reads the same type, and unknown keys are an error, so a typo in a deployment fails at
//! start instead of being ignored. `hopster.sample.toml` lists every key.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// The seed's variable for the server secret, kept for old deployments.
pub const SECRET_KEY_VAR: &str = "HOPSTER_SERVER_SECRET_KEY";

/// All settings of all services.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub gateway: GatewaySettings,
    pub auth: AuthSettings,
    pub limits: LimitsSettings,
    pub downloader: DownloaderSettings,
    pub amqp: AmqpSettings,
    pub store: StoreSettings,
    pub sources: SourceSettings,
    pub transcoder: TranscoderSettings,
    pub worker: WorkerSettings,
    pub notify: NotifySettings,
    pub retention: RetentionSettings,
    pub recovery: RecoverySettings,
}

/// `[recovery]`: the reaper of stranded jobs (run by the downloader).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoverySettings {
    /// A job still `queued` this long after its last change, with the download queue empty,
    /// is published again (`HOPSTER__RECOVERY__REQUEUE_AFTER_SECS`); 0: never.
    pub requeue_after_secs: u64,
}

impl Default for RecoverySettings {
    fn default() -> Self {
        RecoverySettings {
            requeue_after_secs: 300,
        }
    }
}

/// A value that is never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// `[gateway]`: the REST API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// Listen address (`HOPSTER__GATEWAY__BIND`); the seed's port.
    pub bind: String,
    /// The server secret (`HOPSTER_SERVER_SECRET_KEY`); the gateway refuses to start without it.
    pub secret_key: Option<Secret>,
    /// Largest accepted request body (`HOPSTER__GATEWAY__MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// A new connection's first request head must arrive within this long, or the connection
    /// is answered `408` and closed (`HOPSTER__GATEWAY__CLIENT_REQUEST_TIMEOUT_SECS`; actix-web's
    /// `client_request_timeout`). It is a deadline from the moment the connection opens, not an
    /// idle timer, so a client sending its head a byte at a time (slowloris) is cut off too. 0 turns
    /// it off.
    pub client_request_timeout_secs: u64,
    /// How long a closing connection may take to flush and shut down before it is dropped
    /// (`HOPSTER__GATEWAY__CLIENT_DISCONNECT_TIMEOUT_SECS`; 0: dropped at once).
    pub client_disconnect_timeout_secs: u64,
    /// An idle kept-alive connection is closed after this long
    /// (`HOPSTER__GATEWAY__KEEP_ALIVE_SECS`; 0 turns keep-alive off).
    pub keep_alive_secs: u64,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            bind: "0.0.0.0:5000".into(),
            secret_key: None,
            max_body_bytes: 64 * 1024,
            client_request_timeout_secs: 5,
            client_disconnect_timeout_secs: 1,
            keep_alive_secs: 5,
        }
    }
}

/// `[auth]`: who may call the API.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Accepted API keys (`HOPSTER__AUTH__API_KEYS`, comma-separated). Empty: no
    /// authentication, and the gateway says so loudly at start.
    pub api_keys: Vec<Secret>,
}

/// `[limits]`: fair use per client. A client is its API key when keys are configured, else
/// its TCP peer address (never a forwarded header, which the client writes itself).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSettings {
    /// New jobs one client may submit per minute, over `POST /v1/jobs` and `POST /schedule`
    /// together (`HOPSTER__LIMITS__SUBMISSIONS_PER_MINUTE`): a token bucket of this many,
    /// refilled continuously, so a burst of this size is allowed, then one per
    /// 60/N seconds. Repeats of an existing job do not count. Past it: `429 rate_limited` with
    /// `Retry-After`. 0: no limit.
    pub submissions_per_minute: u32,
    /// Live event streams (`GET /v1/jobs/{id}/events`) open at once in this gateway, all
    /// clients together (`HOPSTER__LIMITS__MAX_EVENT_STREAMS`). 0: no limit.
    pub max_event_streams: usize,
    /// Live event streams one client may hold open at once
    /// (`HOPSTER__LIMITS__MAX_EVENT_STREAMS_PER_CLIENT`). 0: no limit.
    pub max_event_streams_per_client: usize,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        LimitsSettings {
            submissions_per_minute: 60,
            max_event_streams: 1024,
            max_event_streams_per_client: 32,
        }
    }
}

/// `[downloader]`: kept so old deployments still start; its one key moved to `[sources]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DownloaderSettings {
    /// Deprecated spelling of `sources.allow_private_networks`
    /// (`HOPSTER__DOWNLOADER__ALLOW_PRIVATE_NETWORKS`); when given, it is the value used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_private_networks: Option<bool>,
}

/// `[amqp]`: the broker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpSettings {
    /// Broker URL (`HOPSTER__AMQP__URL`).
    pub url: String,
    /// The nodes of a RabbitMQ cluster (`HOPSTER__AMQP__URLS`, comma-separated); when given,
    /// `url` is not used. A service connects to the first node that answers, and reconnects
    /// to the next one when its node goes away. The nodes share users and vhosts, so the
    /// first URL's credentials and vhost are used for all.
    pub urls: Vec<String>,
    /// Name prefix of the exchange and queues (`HOPSTER__AMQP__PREFIX`).
    pub prefix: String,
    /// Messages a worker holds at once, i.e. its concurrency (`HOPSTER__AMQP__PREFETCH`).
    pub prefetch: u16,
    /// How long a publish waits with no broker node reachable before it counts as failed
    /// (`HOPSTER__AMQP__PUBLISH_TIMEOUT_MS`); the gateway then answers 503. While a node is
    /// connected the confirm is awaited up to six times as long (a quorum queue's leader
    /// election holds confirms back).
    pub publish_timeout_ms: u64,
    /// How long a service keeps trying to reach the broker at start
    /// (`HOPSTER__AMQP__CONNECT_RETRY_SECS`).
    pub connect_retry_secs: u64,
    /// The type of the work, delay and dead-letter queues (`HOPSTER__AMQP__QUEUE_TYPE`):
    /// `classic`, or `quorum` (replicated on a cluster). Fixed when a queue is declared:
    /// changing it needs the migration in the README.
    pub queue_type: QueueType,
    /// Quorum queues: deliveries of one message before the queue dead-letters it, whatever
    /// the worker decided (`HOPSTER__AMQP__DELIVERY_LIMIT`); catches a message that kills its
    /// worker every time.
    pub delivery_limit: u32,
}

/// `[amqp] queue_type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    #[default]
    Classic,
    Quorum,
}

impl AmqpSettings {
    /// The broker nodes: `urls`, or `url` alone.
    pub fn nodes(&self) -> Vec<&str> {
        if self.urls.is_empty() {
            vec![self.url.as_str()]
        } else {
            self.urls.iter().map(String::as_str).collect()
        }
    }
}

impl QueueType {
    /// The `x-queue-type` argument's value.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Classic => "classic",
            QueueType::Quorum => "quorum",
        }
    }
}

impl Default for AmqpSettings {
    fn default() -> Self {
        AmqpSettings {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            urls: Vec::new(),
            prefix: "hopster".into(),
            prefetch: 1,
            publish_timeout_ms: 5000,
            connect_retry_secs: 60,
            queue_type: QueueType::Classic,
            delivery_limit: 10,
        }
    }
}

/// Which object store backs the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A directory on this machine: the embedded default for a single machine.
    Fs,
    /// Any S3 API: AWS, localstack, MinIO, s3s-fs.
    S3,
}

/// `[store]`: where statuses, sources and results live.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// `fs` or `s3` (`HOPSTER__STORE__BACKEND`).
    pub backend: Backend,
    /// Directory of the `fs` backend (`HOPSTER__STORE__ROOT`); created if missing.
    pub root: PathBuf,
    /// Bucket of the `s3` backend (`HOPSTER__STORE__BUCKET`).
    pub bucket: String,
    /// S3 endpoint (`HOPSTER__STORE__ENDPOINT`); unset means AWS.
    pub endpoint: Option<String>,
    /// S3 region (`HOPSTER__STORE__REGION`).
    pub region: String,
    /// S3 access key id (`HOPSTER__STORE__ACCESS_KEY_ID`); unset falls back to `AWS_*`.
    pub access_key_id: Option<String>,
    /// S3 secret key (`HOPSTER__STORE__SECRET_ACCESS_KEY`).
    pub secret_access_key: Option<Secret>,
    /// Retries of one S3 request inside the client (`HOPSTER__STORE__MAX_RETRIES`); beyond
    /// them the worker's own retry with backoff takes over.
    pub max_retries: usize,
    /// Longest time one S3 request may spend retrying (`HOPSTER__STORE__RETRY_TIMEOUT_SECS`).
    pub retry_timeout_secs: u64,
    /// The endpoint clients reach the bucket at, for presigned URLs
    /// (`HOPSTER__STORE__PUBLIC_ENDPOINT`); unset = `endpoint`.
    pub public_endpoint: Option<String>,
    /// How long a presigned URL is valid (`HOPSTER__STORE__PRESIGN_EXPIRY_SECS`).
    pub presign_expiry_secs: u64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            backend: Backend::Fs,
            root: PathBuf::from(".hopster/store"),
            bucket: "hopster".into(),
            endpoint: None,
            region: "us-east-1".into(),
            access_key_id: None,
            secret_access_key: None,
            max_retries: 3,
            retry_timeout_secs: 10,
            public_endpoint: None,
            presign_expiry_secs: 3600,
        }
    }
}

/// `[sources]`: where videos come from and how much of them we accept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceSettings {
    /// URL of a catalogue id (`HOPSTER__SOURCES__VIDEO_URL_TEMPLATE`); contains `{video_id}`.
    pub video_url_template: String,
    /// Largest source accepted, checked while streaming (`HOPSTER__SOURCES__MAX_BYTES`).
    pub max_bytes: u64,
    /// TCP connect timeout (`HOPSTER__SOURCES__CONNECT_TIMEOUT_SECS`).
    pub connect_timeout_secs: u64,
    /// Longest silence while reading the source (`HOPSTER__SOURCES__READ_TIMEOUT_SECS`).
    pub read_timeout_secs: u64,
    /// Longest a whole download may take (`HOPSTER__SOURCES__TOTAL_TIMEOUT_SECS`).
    pub total_timeout_secs: u64,
    /// Longest source accepted, by its probed duration (`HOPSTER__SOURCES__MAX_DURATION_SECS`).
    pub max_duration_secs: u64,
    /// Longest clip accepted (`HOPSTER__SOURCES__MAX_CLIP_SECS`).
    pub max_clip_secs: u64,
    /// Longest animation (`gif`, `webp`) accepted (`HOPSTER__SOURCES__MAX_ANIMATION_SECS`):
    /// every frame of one is held in a palette or an image file.
    pub max_animation_secs: u64,
    /// Widest video frame accepted, read from the probe before anything is decoded
    /// (`HOPSTER__SOURCES__MAX_WIDTH`).
    pub max_width: u32,
    /// Tallest video frame accepted (`HOPSTER__SOURCES__MAX_HEIGHT`).
    pub max_height: u32,
    /// Most pixels in one video frame (`HOPSTER__SOURCES__MAX_PIXELS`); also ffmpeg's
    /// `-max_pixels` wherever it decodes a source, so no decoder allocates a larger frame.
    pub max_pixels: u64,
    /// Highest video frame rate accepted (`HOPSTER__SOURCES__MAX_FPS`).
    pub max_fps: u32,
    /// Most streams (video, audio, subtitles, attachments…) in one source
    /// (`HOPSTER__SOURCES__MAX_STREAMS`).
    pub max_streams: u32,
    /// Allow sources and callbacks on loopback, private, link-local and other internal
    /// addresses (`HOPSTER__SOURCES__ALLOW_PRIVATE_NETWORKS`), which turns the SSRF guard off
    /// in the gateway, the downloader, the transcoder's range proxy and the notifier alike.
    /// Off by default: the service fetches URLs that strangers give it. Development runs
    /// against a local source turn it on.
    pub allow_private_networks: bool,
    /// Internal `ip:port`s fetched although the guard is on
    /// (`HOPSTER__SOURCES__TRUSTED_ADDRESSES`, comma-separated): an internal catalogue or
    /// media server the operator runs. Exact: another port on the same address is refused.
    pub trusted_addresses: Vec<std::net::SocketAddr>,
    /// Largest HLS playlist read, master or media (`HOPSTER__SOURCES__MAX_PLAYLIST_BYTES`).
    pub max_playlist_bytes: u64,
    /// Most HLS segments fetched for one job (`HOPSTER__SOURCES__MAX_SEGMENTS`).
    pub max_segments: u32,
}

impl Default for SourceSettings {
    fn default() -> Self {
        SourceSettings {
            video_url_template: "http://127.0.0.1:8000/{video_id}.mp4".into(),
            max_bytes: 4 * 1024 * 1024 * 1024,
            connect_timeout_secs: 10,
            read_timeout_secs: 30,
            total_timeout_secs: 3600,
            max_duration_secs: 6 * 3600,
            max_clip_secs: 3600,
            max_animation_secs: 30,
            // 8K UHD (7680×4320) in either orientation is the largest frame admitted.
            max_width: 7680,
            max_height: 7680,
            max_pixels: 7680 * 4320,
            max_fps: 240,
            max_streams: 32,
            allow_private_networks: false,
            trusted_addresses: Vec::new(),
            max_playlist_bytes: 1024 * 1024,
            max_segments: 2000,
        }
    }
}

/// `[transcoder]`: ffmpeg.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TranscoderSettings {
    /// ffmpeg binary (`HOPSTER__TRANSCODER__FFMPEG`).
    pub ffmpeg: String,
    /// ffprobe binary (`HOPSTER__TRANSCODER__FFPROBE`).
    pub ffprobe: String,
    /// ffmpeg/ffprobe processes at once in one worker (`HOPSTER__TRANSCODER__MAX_PROCESSES`).
    pub max_processes: usize,
    /// Threads per job, 0 = ffmpeg's choice (`HOPSTER__TRANSCODER__THREADS`): ffmpeg's decoder,
    /// filters and encoders all keep to it, and the source probe runs before ffmpeg.
    pub threads: u32,
    /// x264 preset (`HOPSTER__TRANSCODER__PRESET`).
    pub preset: String,
    /// x264 quality, lower is better (`HOPSTER__TRANSCODER__CRF`).
    pub crf: u8,
    /// Fixed part of ffmpeg's deadline (`HOPSTER__TRANSCODER__TIMEOUT_BASE_SECS`).
    pub timeout_base_secs: u64,
    /// Deadline added per second of clip (`HOPSTER__TRANSCODER__TIMEOUT_PER_CLIP_SEC`).
    pub timeout_per_clip_sec: f64,
    /// Where per-job temp directories go (`HOPSTER__TRANSCODER__WORK_DIR`); unset = system temp.
    pub work_dir: Option<PathBuf>,
    /// ffmpeg is killed and the try retried when it reports no progress for this long
    /// (`HOPSTER__TRANSCODER__STALL_TIMEOUT_SECS`).
    pub stall_timeout_secs: u64,
    /// Target length of an HLS segment (`HOPSTER__TRANSCODER__HLS_SEGMENT_SECS`).
    pub hls_segment_secs: u32,
    /// A whole-source mp4 job whose source is already H.264 (8-bit 4:2:0, within
    /// `max_height`) with AAC sound is remuxed as it is, not re-encoded; `false` re-encodes
    /// every job (`HOPSTER__TRANSCODER__PASSTHROUGH`).
    pub passthrough: bool,
    /// Address-space cap of every ffmpeg and ffprobe process, in MiB (RLIMIT_AS, set by
    /// util-linux's `prlimit` as it starts the program); 0 = no cap
    /// (`HOPSTER__TRANSCODER__MAX_MEMORY_MIB`). Over it, allocations fail and the job fails
    /// with `resource_limit` instead of the host running out of memory.
    pub max_memory_mib: u64,
    /// CPU-time cap of every ffmpeg and ffprobe process, as a multiple of its wall-clock
    /// deadline (RLIMIT_CPU); 0 = no cap (`HOPSTER__TRANSCODER__CPU_TIME_FACTOR`). 2.0 lets a
    /// run keep two cores busy for its whole deadline.
    pub cpu_time_factor: f64,
}

impl Default for TranscoderSettings {
    fn default() -> Self {
        TranscoderSettings {
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
            max_processes: 2,
            threads: 0,
            preset: "veryfast".into(),
            crf: 23,
            timeout_base_secs: 60,
            timeout_per_clip_sec: 10.0,
            work_dir: None,
            stall_timeout_secs: 60,
            hls_segment_secs: 4,
            passthrough: true,
            // A 4K clip measured 0.94 GiB resident, 2 GiB of address space being enough on 2
            // cores; more cores mean more threads, each with its stack and malloc arena.
            max_memory_mib: 4096,
            cpu_time_factor: 2.0,
        }
    }
}

/// `[worker]`: retries and progress, for both workers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    /// Tries of a stage before the job fails (`HOPSTER__WORKER__MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// First retry delay, doubled per try (`HOPSTER__WORKER__RETRY_BASE_MS`).
    pub retry_base_ms: u64,
    /// Longest retry delay (`HOPSTER__WORKER__RETRY_MAX_MS`).
    pub retry_max_ms: u64,
    /// Least time between two progress writes of one job (`HOPSTER__WORKER__PROGRESS_INTERVAL_MS`).
    pub progress_interval_ms: u64,
    /// How long shutdown waits for in-flight work (`HOPSTER__WORKER__SHUTDOWN_GRACE_SECS`).
    pub shutdown_grace_secs: u64,
    /// Where a worker serves `/healthz`, `/readyz` and `/metrics`
    /// (`HOPSTER__WORKER__HTTP_BIND`); port 0 picks a free one (logged).
    pub http_bind: String,
}

/// `[notify]`: delivery of `callback_url` (by the downloader worker).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifySettings {
    /// First retry delay, doubled per try (`HOPSTER__NOTIFY__RETRY_BASE_MS`).
    pub retry_base_ms: u64,
    /// Longest retry delay (`HOPSTER__NOTIFY__RETRY_MAX_MS`).
    pub retry_max_ms: u64,
    /// No retry is scheduled this long after the first attempt (`HOPSTER__NOTIFY__GIVE_UP_AFTER_SECS`).
    pub give_up_after_secs: u64,
    /// Longest wait for the receiver's answer (`HOPSTER__NOTIFY__TIMEOUT_SECS`).
    pub timeout_secs: u64,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            retry_base_ms: 5_000,
            retry_max_ms: 3_600_000,
            give_up_after_secs: 86_400,
            timeout_secs: 10,
        }
    }
}

/// `[retention]`: the sweep that deletes old results, posters, staged sources and finished
/// jobs (run by the downloader worker).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Age after which things are deleted; 0 keeps everything (`HOPSTER__RETENTION__MAX_AGE_SECS`).
    pub max_age_secs: u64,
    /// Time between two sweeps (`HOPSTER__RETENTION__SWEEP_INTERVAL_SECS`).
    pub sweep_interval_secs: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            max_age_secs: 7 * 86_400,
            sweep_interval_secs: 3_600,
        }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            max_attempts: 5,
            retry_base_ms: 1000,
            retry_max_ms: 60_000,
            progress_interval_ms: 500,
            shutdown_grace_secs: 30,
            http_bind: "0.0.0.0:9090".into(),
        }
    }
}

impl Settings {
    /// Loads from the process environment (and `HOPSTER_CONFIG`, when set).
    pub fn load() -> Result<Settings, config::ConfigError> {
        Settings::load_from(std::env::vars())
    }

    /// Loads from the given variables instead of the process's, so tests and the compose
    /// coherence check can feed an environment of their own.
    pub fn load_from(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, config::ConfigError> {
        let vars: std::collections::HashMap<String, String> = vars.into_iter().collect();
        let mut builder =
            config::Config::builder().add_source(config::Config::try_from(&Settings::default())?);
        if let Some(path) = vars.get("HOPSTER_CONFIG") {
            builder = builder.add_source(config::File::with_name(path).required(true));
        }
        let structured: config::Map<String, String> = vars
            .iter()
            .filter(|(k, _)| k.starts_with("HOPSTER__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("HOPSTER")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("auth.api_keys")
                .with_list_parse_key("sources.trusted_addresses")
                .with_list_parse_key("amqp.urls")
                .source(Some(structured)),
        );
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        if let Some(allow) = settings.downloader.allow_private_networks {
            settings.sources.allow_private_networks = allow;
        }
        if let Some(secret) = vars.get(SECRET_KEY_VAR).filter(|s| !s.is_empty()) {
            settings.gateway.secret_key = Some(Secret::new(secret.clone()));
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_without_any_variable() {
        let s = Settings::load_from(vars(&[])).unwrap();
        assert_eq!(s.gateway.bind, "0.0.0.0:5000");
        assert_eq!(s.amqp.url, "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(s.amqp.prefix, "hopster");
        assert_eq!(s.store.backend, Backend::Fs);
        assert!(s.gateway.secret_key.is_none());
    }

    #[test]
    fn environment_keys_override_defaults() {
        let s = Settings::load_from(vars(&[
            ("HOPSTER__GATEWAY__BIND", "127.0.0.1:0"),
            ("HOPSTER__AMQP__PREFETCH", "3"),
            ("HOPSTER__STORE__BACKEND", "s3"),
            ("HOPSTER__STORE__ACCESS_KEY_ID", "12345"),
            ("HOPSTER__STORE__SECRET_ACCESS_KEY", "sk"),
            (
                "HOPSTER__SOURCES__VIDEO_URL_TEMPLATE",
                "http://cdn/{video_id}",
            ),
            ("HOPSTER_SERVER_SECRET_KEY", "s3cret"),
            ("UNRELATED", "x"),
        ]))
        .unwrap();
        assert_eq!(s.gateway.bind, "127.0.0.1:0");
        assert_eq!(s.amqp.prefetch, 3);
        assert_eq!(s.store.backend, Backend::S3);
        assert_eq!(s.store.access_key_id.as_deref(), Some("12345"));
        assert_eq!(s.sources.video_url_template, "http://cdn/{video_id}");
        assert_eq!(
            s.gateway.secret_key.as_ref().map(Secret::expose),
            Some("s3cret")
        );
    }

    #[test]
    fn trusted_addresses_are_a_comma_separated_list_of_ip_ports() {
        let s = Settings::load_from(vars(&[(
            "HOPSTER__SOURCES__TRUSTED_ADDRESSES",
            "10.0.0.5:8080,[fd00::1]:443",
        )]))
        .unwrap();
        let expected: Vec<std::net::SocketAddr> = vec![
            "10.0.0.5:8080".parse().unwrap(),
            "[fd00::1]:443".parse().unwrap(),
        ];
        assert_eq!(s.sources.trusted_addresses, expected);
        let bad = Settings::load_from(vars(&[(
            "HOPSTER__SOURCES__TRUSTED_ADDRESSES",
            "media.internal:80",
        )]));
        assert!(bad.is_err(), "a name is not an address: {bad:?}");
    }

    #[test]
    fn api_keys_are_a_comma_separated_list() {
        let s = Settings::load_from(vars(&[("HOPSTER__AUTH__API_KEYS", "k1,k2")])).unwrap();
        let keys: Vec<&str> = s.auth.api_keys.iter().map(Secret::expose).collect();
        assert_eq!(keys, ["k1", "k2"]);
        assert!(!format!("{s:?}").contains("k1"));
        let s = Settings::load_from(vars(&[(
            "HOPSTER__SOURCES__ALLOW_PRIVATE_NETWORKS",
            "true",
        )]))
        .unwrap();
        assert!(s.sources.allow_private_networks);
        // The old place still works, for deployments that set it there.
        let s = Settings::load_from(vars(&[(
            "HOPSTER__DOWNLOADER__ALLOW_PRIVATE_NETWORKS",
            "true",
        )]))
        .unwrap();
        assert!(s.sources.allow_private_networks);
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it() {
        let err = Settings::load_from(vars(&[("HOPSTER__STORE__BUKET", "x")])).unwrap_err();
        assert!(err.to_string().contains("buket"), "{err}");
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings::load_from(vars(&[
            ("HOPSTER_SERVER_SECRET_KEY", "hunter2"),
            ("HOPSTER__STORE__SECRET_ACCESS_KEY", "hunter3"),
        ]))
        .unwrap();
        let printed = format!("{s:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("hunter3"),
            "{printed}"
        );
    }
}

#[cfg(test)]
mod sample_file {
    use super::*;

    const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../hopster.sample.toml");

    /// Every leaf key of the defaults, as `section.key`.
    fn keys(value: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        if let Some(map) = value.as_object() {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if v.is_object() {
                    keys(v, &path, out);
                } else {
                    out.push(path);
                }
            }
        }
    }

    #[test]
    fn the_sample_file_loads_and_documents_every_key_with_its_variable() {
        let loaded =
            Settings::load_from([("HOPSTER_CONFIG".to_owned(), SAMPLE.to_owned())]).unwrap();
        let defaults = Settings::default();
        assert_eq!(
            serde_json::to_value(&loaded).unwrap(),
            serde_json::to_value(&defaults).unwrap(),
            "the sample's values are the defaults"
        );
        let text = std::fs::read_to_string(SAMPLE).unwrap();
        let mut all = Vec::new();
        keys(&serde_json::to_value(&defaults).unwrap(), "", &mut all);
        for key in all {
            let var = if key == "gateway.secret_key" {
                "HOPSTER_SERVER_SECRET_KEY".to_owned()
            } else {
                format!("HOPSTER__{}", key.replace('.', "__").to_uppercase())
            };
            assert!(
                text.contains(&var),
                "hopster.sample.toml does not mention {var}"
            );
        }
    }
}
