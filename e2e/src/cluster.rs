//! A three-node RabbitMQ cluster of containers from the compose file's (stand-in) RabbitMQ
//! image, on a private Docker network of its own, each node's AMQP port published on a
//! loopback port of the host. Removed, containers and network, when dropped.

use crate::docker::docker;
use std::time::{Duration, Instant};

/// One node: its container and the host port of its AMQP listener.
pub struct Node {
    pub container: String,
    /// The container's host name; the node is `rabbit@{host}`.
    pub host: String,
    pub port: u16,
}

pub struct Cluster {
    pub network: String,
    pub nodes: Vec<Node>,
}

/// The RabbitMQ image the compose file runs.
fn image() -> String {
    let compose = crate::compose::Compose::load();
    compose.service("rabbitmq")["image"]
        .as_str()
        .expect("the rabbitmq service's image")
        .to_owned()
}

/// Runs `args` in `container` until it succeeds (a node answers `rabbitmqctl` only once its
/// Erlang VM is up), up to a minute.
fn exec_until_ok(container: &str, args: &[&str]) {
    let started = Instant::now();
    loop {
        let ok = std::process::Command::new("docker")
            .arg("exec")
            .arg(container)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{container}: {} never succeeded",
            args.join(" ")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn exec(container: &str, args: &[&str]) -> String {
    let mut all = vec!["exec", container];
    all.extend_from_slice(args);
    docker(&all)
}

impl Cluster {
    /// Starts `n` nodes and joins them into one cluster: partition handling `pause_minority`
    /// (a node that sees no majority stops serving until it does again) and `net_ticktime`
    /// 10 s (a node off the network is noticed in about that, not the default minute).
    pub fn start(n: usize) -> Cluster {
        crate::docker::ensure_stand_in_images();
        let name = crate::random_name("hopster-test-rmq");
        let network = format!("{name}-net");
        docker(&["network", "create", &network]);
        let mut cluster = Cluster {
            network,
            nodes: Vec::new(),
        };
        let image = image();
        let cookie = crate::random_name("cookie");
        // The image's own start, after the shared cookie and the partition handling (written
        // once: a node started again by `start_node` runs this again).
        let script = "rm -f \"$HOME/.erlang.cookie\" && printf %s \"$COOKIE\" > \"$HOME/.erlang.cookie\" && chmod 400 \"$HOME/.erlang.cookie\" \
             && { grep -q '^net_ticktime' /etc/rabbitmq/rabbitmq.conf \
                  || printf 'cluster_partition_handling = pause_minority\\nnet_ticktime = 10\\n' >> /etc/rabbitmq/rabbitmq.conf; } \
             && exec rabbitmq-server";
        for i in 1..=n {
            let host = format!("rmq{i}");
            let container = format!("{name}-{host}");
            // A host port chosen here, not by Docker: a port Docker picks is picked again
            // when a killed node is started again, and the services' `amqp.urls` would go
            // stale.
            let port = crate::native::free_port();
            docker(&[
                "run",
                "-d",
                "--name",
                &container,
                "--hostname",
                &host,
                "--network",
                &cluster.network,
                "--network-alias",
                &host,
                "-e",
                &format!("COOKIE={cookie}"),
                "-p",
                &format!("127.0.0.1:{port}:5672"),
                &image,
                "sh",
                "-c",
                script,
            ]);
            cluster.nodes.push(Node {
                container,
                host,
                port,
            });
        }
        for node in &cluster.nodes {
            exec_until_ok(&node.container, &["rabbitmqctl", "-q", "await_startup"]);
        }
        let first = format!("rabbit@{}", cluster.nodes[0].host);
        for node in &cluster.nodes[1..] {
            exec(&node.container, &["rabbitmqctl", "-q", "stop_app"]);
            exec(
                &node.container,
                &["rabbitmqctl", "-q", "join_cluster", &first],
            );
            exec(&node.container, &["rabbitmqctl", "-q", "start_app"]);
            exec(&node.container, &["rabbitmqctl", "-q", "await_startup"]);
        }
        cluster
    }

    /// `amqp://` URLs of the nodes, as the host reaches them.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("amqp://guest:guest@127.0.0.1:{}/%2f", n.port))
            .collect()
    }

    /// Points `amqp` at the cluster: every node in `urls`, with a short heartbeat (a node cut
    /// off the network sends no RST, so only missed heartbeats tell a client its connection
    /// is dead), and quorum queues.
    pub fn configure(&self, amqp: &mut hopster_common::settings::AmqpSettings) {
        amqp.urls = self
            .urls()
            .into_iter()
            .map(|u| format!("{u}?heartbeat=5"))
            .collect();
        amqp.queue_type = hopster_common::settings::QueueType::Quorum;
    }

    /// The node (index) that leads the quorum queue `queue`, asked of node `via`.
    pub fn leader(&self, queue: &str, via: usize) -> Option<usize> {
        let out = exec(
            &self.nodes[via].container,
            &[
                "rabbitmqctl",
                "-q",
                "list_queues",
                "name",
                "leader",
                "--formatter",
                "json",
            ],
        );
        let rows: Vec<serde_json::Value> = serde_json::from_str(&out).ok()?;
        let leader = rows
            .iter()
            .find(|r| r["name"] == queue)?
            .get("leader")?
            .as_str()?
            .to_owned();
        self.nodes
            .iter()
            .position(|n| leader == format!("rabbit@{}", n.host))
    }

    /// Kills node `i` (SIGKILL, as a crash).
    pub fn kill(&self, i: usize) {
        docker(&["kill", &self.nodes[i].container]);
    }

    /// Starts killed node `i` again (same container, data and port) and waits until it is
    /// back in the cluster.
    pub fn start_node(&self, i: usize) {
        docker(&["start", &self.nodes[i].container]);
        exec_until_ok(
            &self.nodes[i].container,
            &["rabbitmqctl", "-q", "await_startup"],
        );
    }

    /// Takes node `i` off the cluster's network, or puts it back.
    pub fn disconnect(&self, i: usize) {
        docker(&[
            "network",
            "disconnect",
            &self.network,
            &self.nodes[i].container,
        ]);
    }

    pub fn reconnect(&self, i: usize) {
        let node = &self.nodes[i];
        docker(&[
            "network",
            "connect",
            "--alias",
            &node.host,
            &self.network,
            &node.container,
        ]);
    }

    /// How many running nodes node `via` counts in its cluster; 0 when it does not answer
    /// (a node paused for want of a majority).
    pub fn running(&self, via: usize) -> usize {
        let out = std::process::Command::new("docker")
            .args(["exec", &self.nodes[via].container])
            .args(["rabbitmqctl", "-q", "cluster_status", "--formatter", "json"])
            .output();
        out.ok()
            .filter(|o| o.status.success())
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
            .and_then(|v| v["running_nodes"].as_array().map(Vec::len))
            .unwrap_or(0)
    }

    /// Waits until node `via` counts `running` running nodes or fewer (`at_most`), or at
    /// least (`!at_most`).
    pub fn wait_running(
        &self,
        via: usize,
        running: usize,
        at_most: bool,
        deadline: Duration,
    ) -> Duration {
        let started = Instant::now();
        loop {
            let count = self.running(via);
            if (at_most && count <= running) || (!at_most && count >= running) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < deadline,
                "node {via} sees {count} running nodes after {deadline:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            let _ = std::process::Command::new("docker")
                .args(["rm", "-f", "-v", &node.container])
                .output();
        }
        let _ = std::process::Command::new("docker")
            .args(["network", "rm", &self.network])
            .output();
    }
}
