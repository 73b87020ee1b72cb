//! A private RabbitMQ node for tests that stop and start the broker, so they never disturb
//! the machine's shared broker (or other tests on it).

use std::path::PathBuf;
use std::process::Command;

use crate::native::free_port;

pub struct PrivateBroker {
    pub node: String,
    pub port: u16,
    dir: PathBuf,
}

fn ctl(node: &str, args: &[&str]) -> bool {
    Command::new("rabbitmqctl")
        .args(["-q", "-n", node])
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

impl PrivateBroker {
    /// Starts a node on free ports with its own data directory; waits until it serves. The
    /// ports are picked free and handed to RabbitMQ (it cannot bind port 0 and say which it
    /// got), so another process may take one first: a node that does not come up is tried
    /// again on other ports, twice, and its log is shown.
    pub fn start() -> PrivateBroker {
        let mut logs = String::new();
        for _ in 0..3 {
            match PrivateBroker::try_start() {
                Ok(broker) => return broker,
                Err(log) => logs.push_str(&log),
            }
        }
        panic!("the private broker did not start, three times:\n{logs}");
    }

    /// One try of [`PrivateBroker::start`]; the end of the node's log when it fails.
    fn try_start() -> Result<PrivateBroker, String> {
        let name = crate::random_name("hopster");
        let node = format!("{name}@localhost");
        let port = free_port();
        let dir = std::env::temp_dir().join(&name);
        for sub in ["log", "mnesia"] {
            std::fs::create_dir_all(dir.join(sub)).expect("broker dirs");
        }
        std::fs::write(dir.join("enabled_plugins"), "[].\n").expect("plugins file");
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\n"),
        )
        .expect("conf");
        // Debian's wrapper drops to the rabbitmq user when started as root.
        if Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
        {
            let _ = Command::new("chown")
                .args(["-R", "rabbitmq:rabbitmq"])
                .arg(&dir)
                .status();
        }
        let status = Command::new("rabbitmq-server")
            .arg("-detached")
            .env("RABBITMQ_NODENAME", &node)
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .status()
            .expect(
                "rabbitmq-server is missing (apt-get install rabbitmq-server; scripts/test does)",
            );
        assert!(status.success(), "rabbitmq-server -detached failed");
        let broker = PrivateBroker { node, port, dir };
        let pid = broker.dir.join("pid");
        if ctl(&broker.node, &["wait", pid.to_str().unwrap_or_default()])
            && ctl(&broker.node, &["await_startup"])
        {
            return Ok(broker);
        }
        // Dropping it stops the node and removes its directory: read the log first.
        let mut log = format!("--- {} (port {}):\n", broker.node, broker.port);
        for entry in std::fs::read_dir(broker.dir.join("log"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            log.push_str(&tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
            log.push('\n');
        }
        Err(log)
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Stops the broker application (connections drop, durable state stays).
    pub fn stop_app(&self) {
        assert!(ctl(&self.node, &["stop_app"]), "stop_app");
    }

    pub fn start_app(&self) {
        assert!(ctl(&self.node, &["start_app"]), "start_app");
        assert!(ctl(&self.node, &["await_startup"]), "await_startup");
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        ctl(&self.node, &["stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
