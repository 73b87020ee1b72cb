//! Exchange, queue and routing-key names, all under one configurable prefix.

/// The routing key of the download stage.
pub const DOWNLOAD: &str = "download";
/// The routing key of the transcode stage.
pub const TRANSCODE: &str = "transcode";
/// The routing key of the callback-delivery stage.
pub const NOTIFY: &str = "notify";
/// The routing key of source inspections.
pub const INSPECT: &str = "inspect";
/// The routing key of the dead-letter queue.
pub const DEAD: &str = "dead";
/// Header carrying why a message was dead-lettered.
pub const REASON_HEADER: &str = "x-hopster-reason";

/// Names derived from the prefix (`HOPSTER__AMQP__PREFIX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    prefix: String,
}

impl Topology {
    pub fn new(prefix: impl Into<String>) -> Self {
        Topology {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The one durable direct exchange every message goes through.
    pub fn exchange(&self) -> String {
        self.prefix.clone()
    }

    /// The topic exchange every status change is published to (routing key: the job id), for
    /// live progress. Nothing there is durable: a missed event is re-read from the store.
    pub fn events_exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }

    /// The work queue of a stage (`DOWNLOAD`, `TRANSCODE`) or the dead-letter queue (`DEAD`).
    pub fn queue(&self, routing_key: &str) -> String {
        format!("{}.{routing_key}", self.prefix)
    }

    /// Routing key of a stage's delay queue: messages wait there for their backoff, then
    /// expire back onto the stage's own routing key.
    pub fn retry_key(stage: &str) -> String {
        format!("{stage}.retry")
    }

    /// Every stage with work queues.
    pub fn stages() -> [&'static str; 4] {
        [DOWNLOAD, TRANSCODE, NOTIFY, INSPECT]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefix() {
        let t = Topology::new("t1");
        assert_eq!(t.exchange(), "t1");
        assert_eq!(t.queue(DOWNLOAD), "t1.download");
        assert_eq!(
            t.queue(&Topology::retry_key(TRANSCODE)),
            "t1.transcode.retry"
        );
        assert_eq!(t.queue(DEAD), "t1.dead");
    }
}
