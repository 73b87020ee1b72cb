//! The process's metrics, rendered in the Prometheus text format at `/metrics`.
//!
//! One registry per process: each service is its own process, so the gateway's numbers are
//! the gateway's and each worker's are its own. Series are created on first use.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{LazyLock, Mutex};

/// Upper bounds of the duration histograms, in seconds.
const SECONDS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];
/// Upper bounds of the ffmpeg speed histogram (clip seconds per wall second).
const SPEED: &[f64] = &[0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// Every metric this code base emits: name, type, help, histogram buckets.
const FAMILIES: &[(&str, &str, &str, &[f64])] = &[
    (
        "hopster_jobs_total",
        "counter",
        "Jobs this process moved into each state.",
        &[],
    ),
    (
        "hopster_stage_duration_seconds",
        "histogram",
        "Time to handle one message, by stage and outcome.",
        SECONDS,
    ),
    (
        "hopster_ffmpeg_speed",
        "histogram",
        "Clip seconds transcoded per wall-clock second.",
        SPEED,
    ),
    (
        "hopster_downloaded_bytes_total",
        "counter",
        "Source bytes read (staged downloads and ranged reads).",
        &[],
    ),
    (
        "hopster_retries_total",
        "counter",
        "Transient failures scheduled for another try, by stage.",
        &[],
    ),
    (
        "hopster_dead_lettered_total",
        "counter",
        "Messages parked in the dead-letter queue, by stage.",
        &[],
    ),
    (
        "hopster_callbacks_total",
        "counter",
        "Callback delivery attempts, by outcome.",
        &[],
    ),
    (
        "hopster_http_requests_total",
        "counter",
        "HTTP requests the gateway answered, by route pattern and status.",
        &[],
    ),
    (
        "hopster_swept_objects_total",
        "counter",
        "Objects deleted by the retention sweep, by kind.",
        &[],
    ),
    (
        "hopster_jobs_requeued_total",
        "counter",
        "Stranded queued jobs the reaper published again.",
        &[],
    ),
    (
        "hopster_rate_limited_total",
        "counter",
        "Requests the gateway refused with 429 rate_limited, by limit.",
        &[],
    ),
];

#[derive(Default)]
struct Histogram {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Registry {
    /// (family, labels) → value.
    counters: BTreeMap<(&'static str, String), f64>,
    histograms: BTreeMap<(&'static str, String), Histogram>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Default::default);

fn labels(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect::<Vec<_>>()
        .join(",")
}

fn family(name: &str) -> (&'static str, &'static [f64]) {
    FAMILIES
        .iter()
        .find(|f| f.0 == name)
        .map(|f| (f.0, f.3))
        .unwrap_or_else(|| panic!("metric {name} is not declared in FAMILIES"))
}

/// Adds `by` to a counter.
pub fn count(name: &str, pairs: &[(&str, &str)], by: f64) {
    let (name, _) = family(name);
    let mut r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    *r.counters.entry((name, labels(pairs))).or_default() += by;
}

/// Records one observation in a histogram.
pub fn observe(name: &str, pairs: &[(&str, &str)], value: f64) {
    let (name, bounds) = family(name);
    let mut r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let h = r.histograms.entry((name, labels(pairs))).or_default();
    if h.buckets.is_empty() {
        h.buckets = vec![0; bounds.len()];
    }
    for (slot, bound) in h.buckets.iter_mut().zip(bounds) {
        if value <= *bound {
            *slot += 1;
        }
    }
    h.sum += value;
    h.count += 1;
}

/// A job entered `state` in this process.
pub fn job_entered(state: shared_proto::JobState) {
    count("hopster_jobs_total", &[("state", state.as_str())], 1.0);
}

/// The registry in the Prometheus text exposition format (version 0.0.4).
pub fn render() -> String {
    let r = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = String::new();
    for (name, kind, help, bounds) in FAMILIES {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for ((family, l), value) in &r.counters {
            if family == name {
                let _ = writeln!(out, "{name}{} {value}", braces(l));
            }
        }
        for ((family, l), h) in &r.histograms {
            if family != name {
                continue;
            }
            let sep = if l.is_empty() { "" } else { "," };
            for (bound, n) in bounds.iter().zip(&h.buckets) {
                let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(out, "{name}_bucket{{{l}{sep}le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum{} {}", braces(l), h.sum);
            let _ = writeln!(out, "{name}_count{} {}", braces(l), h.count);
        }
    }
    out
}

fn braces(l: &str) -> String {
    if l.is_empty() {
        String::new()
    } else {
        format!("{{{l}}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_the_text_format() {
        count("hopster_retries_total", &[("stage", "unit-test")], 2.0);
        observe("hopster_ffmpeg_speed", &[("profile", "unit\"test")], 3.0);
        let text = render();
        assert!(text.contains("# TYPE hopster_retries_total counter"));
        assert!(
            text.contains("hopster_retries_total{stage=\"unit-test\"} 2"),
            "{text}"
        );
        assert!(text.contains("hopster_ffmpeg_speed_bucket{profile=\"unit\\\"test\",le=\"2\"} 0"));
        assert!(text.contains("hopster_ffmpeg_speed_bucket{profile=\"unit\\\"test\",le=\"4\"} 1"));
        assert!(text.contains("hopster_ffmpeg_speed_count{profile=\"unit\\\"test\"} 1"));
    }
}
