//! Fair use per client: a token bucket of submissions and a count of open event streams, per
//! client and in total. A client is its API key when keys are configured, else its TCP peer
//! address: never a forwarded header, which the client writes itself.

use actix_web::{HttpMessage, HttpRequest};
use hopster_common::settings::LimitsSettings;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Who a request is charged to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Client {
    /// The SHA-256 digest of the API key it presented (set by the auth middleware).
    Key([u8; 32]),
    /// The peer address; an IPv6 client by its /64, which one host commonly holds whole.
    Addr(IpAddr),
}

impl Client {
    /// The client of a request: the key the auth middleware accepted, else the peer address.
    pub fn of(req: &HttpRequest) -> Client {
        if let Some(client) = req.extensions().get::<Client>() {
            return client.clone();
        }
        let ip = req
            .peer_addr()
            .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip().to_canonical());
        Client::Addr(match ip {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
            v4 => v4,
        })
    }
}

/// A refusal: which limit, and when trying again makes sense.
#[derive(Debug, Clone, Copy)]
pub struct Refused {
    pub limit: &'static str,
    pub retry_after: Duration,
}

impl Refused {
    /// `Retry-After` in whole seconds, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

/// The gateway's limits, shared by every worker thread.
pub struct Limits {
    submissions: Mutex<Buckets>,
    per_minute: u32,
    streams: Mutex<Streams>,
    max_streams: usize,
    max_streams_per_client: usize,
}

#[derive(Default)]
struct Buckets {
    by_client: HashMap<Client, Bucket>,
    pruned: Option<Instant>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
struct Streams {
    total: usize,
    by_client: HashMap<Client, usize>,
}

/// What a refused stream is told to wait: streams end when their job does, so there is no
/// exact time; the events' own keep-alive period is a fair guess.
const STREAM_RETRY: Duration = Duration::from_secs(5);

impl Limits {
    pub fn new(settings: &LimitsSettings) -> Arc<Limits> {
        Arc::new(Limits {
            submissions: Mutex::default(),
            per_minute: settings.submissions_per_minute,
            streams: Mutex::default(),
            max_streams: settings.max_event_streams,
            max_streams_per_client: settings.max_event_streams_per_client,
        })
    }

    /// Takes one submission token of `client`. The permit gives it back when dropped unless it
    /// is [`Permit::keep`]t, so a submission that started no work costs nothing.
    pub fn submission(self: &Arc<Self>, client: &Client) -> Result<Permit, Refused> {
        if self.per_minute == 0 {
            return Ok(Permit(None));
        }
        let capacity = f64::from(self.per_minute);
        let per_sec = capacity / 60.0;
        let now = Instant::now();
        let mut b = self.submissions.lock().unwrap_or_else(|e| e.into_inner());
        // A bucket left alone for a minute is full again, the same as no bucket: forget those,
        // once a minute, so the map holds only clients of the last minute.
        if b.pruned
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(60))
        {
            b.by_client
                .retain(|_, bucket| now.duration_since(bucket.at) < Duration::from_secs(60));
            b.pruned = Some(now);
        }
        let bucket = b.by_client.entry(client.clone()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_sec).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(Permit(Some((self.clone(), client.clone()))))
        } else {
            Err(Refused {
                limit: "submissions",
                retry_after: Duration::from_secs_f64((1.0 - bucket.tokens) / per_sec),
            })
        }
    }

    fn refund(&self, client: &Client) {
        let capacity = f64::from(self.per_minute);
        let mut b = self.submissions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bucket) = b.by_client.get_mut(client) {
            bucket.tokens = (bucket.tokens + 1.0).min(capacity);
        }
    }

    /// A slot for one live event stream of `client`, held until the slot is dropped (with the
    /// response stream, when the job ends or the client goes away).
    pub fn event_stream(self: &Arc<Self>, client: &Client) -> Result<StreamSlot, Refused> {
        let mut s = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let mine = s.by_client.get(client).copied().unwrap_or(0);
        let full = |max: usize, open: usize| max != 0 && open >= max;
        if full(self.max_streams, s.total) || full(self.max_streams_per_client, mine) {
            return Err(Refused {
                limit: "event_streams",
                retry_after: STREAM_RETRY,
            });
        }
        s.total += 1;
        *s.by_client.entry(client.clone()).or_default() += 1;
        Ok(StreamSlot {
            limits: self.clone(),
            client: client.clone(),
        })
    }

    /// Open event streams: in total, and of `client` (for the tests).
    #[cfg(test)]
    pub fn open_streams(&self, client: &Client) -> (usize, usize) {
        let s = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        (s.total, s.by_client.get(client).copied().unwrap_or(0))
    }
}

/// One submission token, given back on drop unless kept.
pub struct Permit(Option<(Arc<Limits>, Client)>);

impl Permit {
    /// The submission started work: the token is spent.
    pub fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some((limits, client)) = self.0.take() {
            limits.refund(&client);
        }
    }
}

/// One open event stream; dropping it frees the slot.
pub struct StreamSlot {
    limits: Arc<Limits>,
    client: Client,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut s = self
            .limits
            .streams
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        s.total = s.total.saturating_sub(1);
        if let Some(n) = s.by_client.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.by_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_minute: u32, streams: usize, per_client: usize) -> Arc<Limits> {
        Limits::new(&LimitsSettings {
            submissions_per_minute: per_minute,
            max_event_streams: streams,
            max_event_streams_per_client: per_client,
        })
    }

    #[test]
    fn a_burst_of_the_bucket_size_passes_then_the_next_waits_for_a_token() {
        let l = limits(6, 0, 0);
        let a = Client::Addr([10, 0, 0, 1].into());
        for _ in 0..6 {
            l.submission(&a).unwrap().keep();
        }
        let refused = l.submission(&a).err().unwrap();
        // 6 a minute is one every 10 s.
        assert!(
            (9..=10).contains(&refused.retry_after_secs()),
            "{refused:?}"
        );
        // Another client has a bucket of its own.
        l.submission(&Client::Addr([10, 0, 0, 2].into()))
            .unwrap()
            .keep();
    }

    #[test]
    fn a_permit_not_kept_gives_its_token_back() {
        let l = limits(1, 0, 0);
        let a = Client::Key([7; 32]);
        drop(l.submission(&a).unwrap());
        l.submission(&a).unwrap().keep();
        assert!(l.submission(&a).is_err());
    }

    #[test]
    fn zero_means_no_limit() {
        let l = limits(0, 0, 0);
        let a = Client::Addr([10, 0, 0, 1].into());
        for _ in 0..10_000 {
            l.submission(&a).unwrap().keep();
        }
        let slots: Vec<_> = (0..1000).map(|_| l.event_stream(&a).unwrap()).collect();
        assert_eq!(l.open_streams(&a), (1000, 1000));
        drop(slots);
        assert_eq!(l.open_streams(&a), (0, 0));
    }

    #[test]
    fn streams_are_capped_per_client_and_in_total_and_freed_on_drop() {
        let l = limits(0, 3, 2);
        let (a, b, c) = (
            Client::Addr([10, 0, 0, 1].into()),
            Client::Addr([10, 0, 0, 2].into()),
            Client::Addr([10, 0, 0, 3].into()),
        );
        let a1 = l.event_stream(&a).unwrap();
        let _a2 = l.event_stream(&a).unwrap();
        assert!(l.event_stream(&a).is_err(), "per client");
        let _b1 = l.event_stream(&b).unwrap();
        assert!(l.event_stream(&c).is_err(), "in total");
        drop(a1);
        let _c1 = l.event_stream(&c).unwrap();
        assert_eq!(l.open_streams(&a), (3, 1));
    }
}
