//! The benchmark's reference for submissions (issue 18 goal 7): what RabbitMQ confirms when
//! nothing but lapin publishes. `CONNS` tasks each publish a persistent, mandatory message of
//! `BYTES` bytes through one confirming channel and wait for its confirm before the next, as
//! the gateway's requests do, for `SECS` seconds, to a durable direct exchange bound to a
//! durable classic queue of their own (deleted at the end).
//!
//! ```text
//! cargo run --release -p hopster-common --example bare_publisher -- AMQP_URL CONNS SECS BYTES
//! ```
//!
//! Prints one line: `BENCHJSON {"confirmed":N,"duration_s":S,"ok_rps":R,"p50_ms":..,"p99_ms":..}`, the
//! keys `bench.py wrk` reads.

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use std::time::{Duration, Instant};

const PERSISTENT: u8 = 2;

/// The one line the benchmark reads.
#[derive(serde::Serialize)]
struct Report {
    confirmed: usize,
    duration_s: f64,
    ok_rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, conns, secs, bytes] = args.as_slice() else {
        anyhow::bail!("usage: bare_publisher AMQP_URL CONNS SECS BYTES");
    };
    let conns: usize = conns.parse()?;
    let secs: f64 = secs.parse()?;
    let bytes: usize = bytes.parse()?;
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let name = format!("bare-publisher-{}", std::process::id());
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .exchange_declare(
            name.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_declare(name.as_str().into(), durable, FieldTable::default())
        .await?;
    channel
        .queue_bind(
            name.as_str().into(),
            name.as_str().into(),
            name.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let body = vec![b'x'; bytes];
    let began = Instant::now();
    let until = began + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let (channel, name, body) = (channel.clone(), name.clone(), body.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < until {
                    let sent = Instant::now();
                    let props = BasicProperties::default()
                        .with_delivery_mode(PERSISTENT)
                        .with_content_type("application/json".into());
                    let options = BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    };
                    let confirm = channel
                        .basic_publish(
                            name.as_str().into(),
                            name.as_str().into(),
                            options,
                            &body,
                            props,
                        )
                        .await?
                        .await?;
                    anyhow::ensure!(confirm.is_ack(), "the broker refused a message");
                    latencies.push(sent.elapsed());
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let took = began.elapsed().as_secs_f64();
    channel
        .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
        .await?;
    channel
        .exchange_delete(name.as_str().into(), Default::default())
        .await?;
    connection.close(200, "done".into()).await?;
    latencies.sort();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let report = Report {
        confirmed: latencies.len(),
        duration_s: took,
        ok_rps: latencies.len() as f64 / took,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
    };
    println!("BENCHJSON {}", serde_json::to_string(&report)?);
    Ok(())
}
