//! A private RabbitMQ node for tests that stop and start the broker, so they never disturb
//! the machine's shared broker (or other tests on it).

use std::path::PathBuf;
use std::process::Command;

pub struct PrivateBroker {
    pub node: String,
    pub port: u16,
    dir: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn ctl(node: &str, args: &[&str]) -> bool {
    Command::new("rabbitmqctl")
        .args(["-q", "-n", node])
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

impl PrivateBroker {
    /// Starts a node on free ports with its own data directory; waits until it serves.
    pub fn start() -> PrivateBroker {
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
        assert!(
            ctl(&broker.node, &["wait", pid.to_str().unwrap_or_default()]),
            "the private broker did not start"
        );
        assert!(
            ctl(&broker.node, &["await_startup"]),
            "the private broker did not start"
        );
        broker
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
