//! The SSRF guard: only http(s); every address a host resolves to, and every redirect hop, is
//! checked before a connection is made, and the connection goes to the checked addresses (the
//! resolver hands them to the HTTP client, so a second DNS answer cannot swap them: no
//! rebinding). At most five redirects.
//!
//! The last line of defence is [`PeerCheckLayer`]: whatever the checks above decided, the
//! address a connection actually reached is checked before the client writes a request byte
//! on it, so a mistake above cannot leak a request to an internal address.

use futures::future::BoxFuture;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use shared_proto::net::{forbidden_ip, forbidden_url};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 5;

/// A refused address: permanent, never retried.
#[derive(Debug, thiserror::Error)]
#[error("{host} is at {ip}, a {reason} address; only public addresses may be fetched")]
pub struct Forbidden {
    pub host: String,
    pub ip: IpAddr,
    pub reason: &'static str,
}

/// A refused URL (scheme, too many redirects).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Name → addresses; the system resolver in production, a table in tests.
pub type Lookup =
    Arc<dyn Fn(String) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> + Send + Sync>;

/// The system resolver.
pub fn system_lookup() -> Lookup {
    Arc::new(|host: String| {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    })
}

/// Which addresses may be fetched: public ones, plus every internal one when private networks
/// are allowed (`sources.allow_private_networks`), plus the exact internal `ip:port`s the
/// operator trusts (`sources.trusted_addresses`, such as an internal catalogue server).
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub allow_private: bool,
    pub trusted: Arc<[SocketAddr]>,
}

impl Policy {
    /// The policy of `[sources]`.
    pub fn of(sources: &crate::settings::SourceSettings) -> Policy {
        Policy {
            allow_private: sources.allow_private_networks,
            trusted: sources.trusted_addresses.clone().into(),
        }
    }

    /// Public addresses only.
    pub fn public() -> Policy {
        Policy::default()
    }

    /// Everything (private networks allowed).
    pub fn open() -> Policy {
        Policy {
            allow_private: true,
            trusted: Arc::new([]),
        }
    }

    /// Whether a connection to `peer` may carry a request.
    fn admits(&self, peer: SocketAddr) -> bool {
        self.allow_private
            || forbidden_ip(peer.ip()).is_none()
            || self.trusted.iter().any(|t| same_socket(*t, peer))
    }

    /// Whether a name may resolve to `ip`: it may when some trusted address is on it (the
    /// peer check then holds the connection to the trusted port).
    fn may_resolve_to(&self, ip: IpAddr) -> bool {
        self.allow_private
            || forbidden_ip(ip).is_none()
            || self.trusted.iter().any(|t| same_ip(t.ip(), ip))
    }

    /// Whether `url` is on a trusted address, spelled in any way the `url` crate reads as it.
    pub fn trusts(&self, url: &url::Url) -> bool {
        let (Some(ip), Some(port)) = (shared_proto::net::url_ip(url), url.port_or_known_default())
        else {
            return false;
        };
        self.trusted
            .iter()
            .any(|t| same_socket(*t, SocketAddr::new(ip, port)))
    }
}

/// The same address, an IPv4-mapped IPv6 spelling included.
fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

fn same_socket(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && same_ip(a.ip(), b.ip())
}

/// Checks an IP-address host without resolving anything. The host is the `url` crate's
/// reading of it, the one the HTTP client connects to.
pub fn check_url(url: &url::Url, policy: &Policy) -> Result<(), Forbidden> {
    if policy.allow_private || policy.trusts(url) {
        return Ok(());
    }
    match forbidden_url(url) {
        Some((ip, reason)) => Err(Forbidden {
            host: url.host_str().unwrap_or_default().to_owned(),
            ip,
            reason,
        }),
        None => Ok(()),
    }
}

/// [`check_url`] of a URL given as text; text that is no URL has no address to refuse (the
/// request itself then fails to build).
pub fn check_literal(url: &str, policy: &Policy) -> Result<(), Forbidden> {
    match url::Url::parse(url) {
        Ok(parsed) => check_url(&parsed, policy),
        Err(_) => Ok(()),
    }
}

/// A resolver that refuses a name if any of its addresses is internal (and not trusted).
pub struct GuardedResolver {
    pub policy: Policy,
    pub lookup: Lookup,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let lookup = self.lookup.clone();
        let policy = self.policy.clone();
        Box::pin(async move {
            let ips = lookup(host.clone()).await?;
            for ip in &ips {
                if policy.may_resolve_to(*ip) {
                    continue;
                }
                if let Some(reason) = forbidden_ip(*ip) {
                    return Err(Box::new(Forbidden {
                        host,
                        ip: *ip,
                        reason,
                    })
                        as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// A connector layer that checks the peer of every new connection, fail-closed: a connection
/// whose peer address is unknown is refused too.
#[derive(Clone, Debug)]
pub struct PeerCheckLayer {
    pub policy: Policy,
}

impl<S> tower_layer::Layer<S> for PeerCheckLayer {
    type Service = PeerCheck<S>;
    fn layer(&self, inner: S) -> PeerCheck<S> {
        PeerCheck {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service [`PeerCheckLayer`] makes.
#[derive(Clone, Debug)]
pub struct PeerCheck<S> {
    inner: S,
    policy: Policy,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, R> tower_service::Service<R> for PeerCheck<S>
where
    S: tower_service::Service<R, Error = BoxError>,
    S::Response: hyper_util::client::legacy::connect::Connection,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<S::Response, BoxError>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let connecting = self.inner.call(request);
        let policy = self.policy.clone();
        Box::pin(async move {
            let conn = connecting.await?;
            check_peer(peer_of(&conn), &policy)?;
            Ok(conn)
        })
    }
}

/// The remote address hyper recorded for a connection, if any.
fn peer_of(conn: &impl hyper_util::client::legacy::connect::Connection) -> Option<SocketAddr> {
    let mut extensions = http::Extensions::new();
    conn.connected().get_extras(&mut extensions);
    extensions
        .get::<hyper_util::client::legacy::connect::HttpInfo>()
        .map(|info| info.remote_addr())
}

/// Refuses an internal peer the policy does not admit, and a peer that is not known.
pub fn check_peer(peer: Option<SocketAddr>, policy: &Policy) -> Result<(), BoxError> {
    if policy.allow_private {
        return Ok(());
    }
    let Some(peer) = peer else {
        return Err(Box::new(Refused(
            "the address of the connection is unknown, so it cannot be checked".to_owned(),
        )));
    };
    match forbidden_ip(peer.ip()).filter(|_| !policy.admits(peer)) {
        Some(reason) => Err(Box::new(Forbidden {
            host: peer.to_string(),
            ip: peer.ip(),
            reason,
        })),
        None => Ok(()),
    }
}

/// A client builder with every guard on: the checked resolver, the peer check, no proxy.
/// Redirects are the caller's choice.
pub fn guarded_builder(policy: &Policy) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .dns_resolver(GuardedResolver {
            policy: policy.clone(),
            lookup: system_lookup(),
        })
        .connector_layer(PeerCheckLayer {
            policy: policy.clone(),
        })
        // A proxy from the environment would connect on our behalf, past the guard.
        .no_proxy()
}

/// The redirect policy: http(s) only, IP-literal hops checked (named hops are checked by the
/// resolver when the client connects), at most [`MAX_REDIRECTS`].
pub fn redirect_policy(policy: &Policy) -> reqwest::redirect::Policy {
    let policy = policy.clone();
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            let refused = Refused(format!("more than {MAX_REDIRECTS} redirects"));
            return attempt.error(refused);
        }
        let url = attempt.url().clone();
        if url.scheme() != "http" && url.scheme() != "https" {
            let refused = Refused(format!("a redirect to a {} URL was refused", url.scheme()));
            return attempt.error(refused);
        }
        match check_url(&url, &policy) {
            Ok(()) => attempt.follow(),
            Err(forbidden) => attempt.error(forbidden),
        }
    })
}

/// Finds a guard refusal in an error's source chain.
pub fn refusal(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(f) = e.downcast_ref::<Forbidden>() {
            return Some(f.to_string());
        }
        if let Some(r) = e.downcast_ref::<Refused>() {
            return Some(r.to_string());
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &'static [(&'static str, &'static str)]) -> Lookup {
        Arc::new(move |host: String| {
            Box::pin(async move {
                entries
                    .iter()
                    .filter(|(name, _)| *name == host)
                    .map(|(_, ip)| {
                        ip.parse::<IpAddr>()
                            .map_err(|e| std::io::Error::other(e.to_string()))
                    })
                    .collect()
            })
        })
    }

    fn resolver(policy: Policy) -> GuardedResolver {
        GuardedResolver {
            policy,
            lookup: table(&[
                ("videos.example.com", "93.184.216.34"),
                ("cdn.example.com", "127.0.0.1"),
                ("mixed.example.com", "93.184.216.34"),
                ("mixed.example.com", "10.0.0.7"),
                ("metadata.example.com", "169.254.169.254"),
            ]),
        }
    }

    async fn resolve(r: &GuardedResolver, host: &str) -> Result<Vec<SocketAddr>, String> {
        let name: Name = host.parse().map_err(|_| "bad name".to_owned())?;
        r.resolve(name)
            .await
            .map(Iterator::collect)
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn a_public_looking_name_that_resolves_inside_is_refused() {
        let r = resolver(Policy::public());
        assert!(resolve(&r, "videos.example.com").await.is_ok());
        for host in [
            "cdn.example.com",
            "mixed.example.com",
            "metadata.example.com",
        ] {
            let err = resolve(&r, host).await.unwrap_err();
            assert!(err.contains("only public addresses"), "{host}: {err}");
        }
        assert!(resolve(&resolver(Policy::open()), "cdn.example.com")
            .await
            .is_ok());
        // A trusted address opens its IP to names (the peer check then holds the port).
        let trusted = Policy {
            allow_private: false,
            trusted: Arc::new(["127.0.0.1:8000".parse().unwrap()]),
        };
        assert!(resolve(&resolver(trusted.clone()), "cdn.example.com")
            .await
            .is_ok());
        assert!(resolve(&resolver(trusted), "metadata.example.com")
            .await
            .is_err());
    }

    #[test]
    fn a_trusted_address_is_admitted_on_its_port_only() {
        let policy = Policy {
            allow_private: false,
            trusted: Arc::new(["127.0.0.1:8000".parse().unwrap()]),
        };
        for url in [
            "http://127.0.0.1:8000/v.m3u8",
            "http://2130706433:8000/v.m3u8",
            "http://[::ffff:127.0.0.1]:8000/v.m3u8",
        ] {
            assert!(check_literal(url, &policy).is_ok(), "{url}");
        }
        for url in [
            "http://127.0.0.1:8001/v.m3u8",
            "http://127.0.0.1/v.m3u8",
            "http://10.0.0.1:8000/v.m3u8",
        ] {
            assert!(check_literal(url, &policy).is_err(), "{url}");
        }
        let peer = |a: &str| Some(a.parse::<SocketAddr>().unwrap());
        assert!(check_peer(peer("127.0.0.1:8000"), &policy).is_ok());
        assert!(check_peer(peer("[::ffff:127.0.0.1]:8000"), &policy).is_ok());
        assert!(check_peer(peer("127.0.0.1:8001"), &policy).is_err());
        assert!(check_peer(None, &policy).is_err());
        assert!(check_peer(peer("93.184.216.34:80"), &policy).is_ok());
    }

    #[test]
    fn ip_literals_are_checked_without_resolving() {
        for url in [
            "http://127.0.0.1:8000/v.mp4",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://10.1.2.3/",
        ] {
            assert!(check_literal(url, &Policy::public()).is_err(), "{url}");
            assert!(check_literal(url, &Policy::open()).is_ok(), "{url}");
        }
        assert!(check_literal("http://93.184.216.34/v.mp4", &Policy::public()).is_ok());
        assert!(check_literal("http://videos.example.com/v.mp4", &Policy::public()).is_ok());
    }

    #[test]
    fn refusals_are_found_in_an_error_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] Forbidden);
        let forbidden = Forbidden {
            host: "h".into(),
            ip: "127.0.0.1".parse().unwrap(),
            reason: "loopback",
        };
        assert!(refusal(&Outer(forbidden)).is_some_and(|m| m.contains("loopback")));
        assert!(refusal(&std::io::Error::other("plain")).is_none());
    }
}
