//! Which network addresses a source may live at. Pure classification, no I/O: the gateway
//! checks IP-literal hosts with it at submission, the downloader checks every address a name
//! resolves to (and every redirect hop) before connecting.
//!
//! Hosts come out of URLs only through the `url` crate (WHATWG parsing), the parser the HTTP
//! client uses too: `http://2130706433/`, `http://127.1/`, `http://0x7f.1/` and
//! `http://１２７.０.０.１/` are all `Host::Ipv4(127.0.0.1)` to both, never a name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// Why an address is refused, or `None` for a public unicast address.
pub fn forbidden_ip(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible forms reach the IPv4 address.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            forbidden_v6(v6)
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified (\"this network\")")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local (cloud metadata lives here)")
    } else if a == 100 && (64..128).contains(&b) {
        Some("carrier-grade NAT")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() || a >= 240 {
        Some("reserved or broadcast")
    } else if ip.is_documentation()
        || (a == 198 && (18..20).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
    {
        Some("reserved for documentation, benchmarking or protocol assignments")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // The IPv4 address in segments `hi` and `lo`.
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if s[0] & 0xffc0 == 0xfec0 {
        Some("site-local (deprecated, private)")
    } else if s[0] & 0xfe00 == 0xfc00 {
        Some("unique local (private)")
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        Some("reserved for documentation")
    } else if s[0] == 0x2001 && s[1] == 0 {
        // Teredo tunnels to an IPv4 address (the client's, inverted, in the last 32 bits).
        Some("Teredo (an IPv4 tunnel)")
    } else if s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 1 {
        Some("local-use NAT64")
    } else if s[0] == 0x0064 && s[1] == 0xff9b {
        // NAT64 embeds an IPv4 address in the last 32 bits.
        forbidden_v4(embedded(s[6], s[7]))
    } else if s[0] == 0x2002 {
        // 6to4 embeds an IPv4 address in the 32 bits after the prefix.
        forbidden_v4(embedded(s[1], s[2]))
    } else if s[0] == 0x0100 && s[1..4].iter().all(|x| *x == 0) {
        Some("discard-only")
    } else if s[..6].iter().all(|x| *x == 0) {
        // Deprecated IPv4-compatible form ::a.b.c.d.
        Some("IPv4-compatible (deprecated)")
    } else {
        None
    }
}

/// The IP address of a URL's host, when the host is an address rather than a name.
pub fn url_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(_) => None,
    }
}

/// A refused host: the address it stands for and why. An IP host is refused by its class;
/// a name only when it is `localhost` or under `.localhost` (RFC 6761: always loopback,
/// whatever a resolver says), in any case and with or without a trailing dot. Other names are
/// checked where they resolve.
pub fn forbidden_url(url: &Url) -> Option<(IpAddr, &'static str)> {
    if let Some(Host::Domain(name)) = url.host() {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let loopback_name = name == "localhost" || name.ends_with(".localhost");
        return loopback_name.then_some((IpAddr::V4(Ipv4Addr::LOCALHOST), "loopback"));
    }
    let ip = url_ip(url)?;
    forbidden_ip(ip).map(|reason| (ip, reason))
}

/// [`forbidden_url`] of a URL given as text, which need not be acceptable otherwise: a URL
/// with credentials (`http://user@127.0.0.1/`) or an IPv6 zone id (`http://[fe80::1%25eth0]/`,
/// which the WHATWG parser refuses) still names its address, so that such a spelling is
/// answered as the internal address it is.
pub fn forbidden_url_text(text: &str) -> Option<(IpAddr, &'static str)> {
    if let Ok(url) = Url::parse(text) {
        return forbidden_url(&url);
    }
    // `[addr%25zone]`: the address without its zone.
    let (head, rest) = text.split_once('[')?;
    let (inside, tail) = rest.split_once(']')?;
    let (addr, _zone) = inside.split_once('%')?;
    forbidden_url(&Url::parse(&format!("{head}[{addr}]{tail}")).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(ip: &str) -> Option<&'static str> {
        forbidden_ip(ip.parse().unwrap())
    }

    #[test]
    fn internal_addresses_are_refused_with_a_reason() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "192.0.0.8",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "::127.0.0.1",
            "2001:db8::1",
        ] {
            assert!(check(ip).is_some(), "{ip} must be refused");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "64:ff9b::808:808",
        ] {
            assert_eq!(check(ip), None, "{ip}");
        }
    }

    #[test]
    fn tunnel_and_embedded_forms_are_refused() {
        for ip in [
            "fec0::1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "100::1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(check(ip).is_some(), "{ip} must be refused");
        }
        assert_eq!(check("2002:5db8:d822::1"), None, "6to4 of a public address");
    }

    #[test]
    fn hosts_come_out_of_urls_as_whatwg_parses_them() {
        for (text, want) in [
            ("http://2130706433/", Some("127.0.0.1")),
            ("http://127.1/", Some("127.0.0.1")),
            ("http://0x7f.0.0.1/", Some("127.0.0.1")),
            ("http://0177.0.0.1/", Some("127.0.0.1")),
            ("http://2852039166/", Some("169.254.169.254")),
            ("http://0/", Some("0.0.0.0")),
            ("http://１２７.０.０.１/", Some("127.0.0.1")),
            ("http://127.0.0.1./", Some("127.0.0.1")),
            ("http://%31%32%37.0.0.1/", Some("127.0.0.1")),
            ("http://[::ffff:127.0.0.1]/", Some("::ffff:127.0.0.1")),
            ("http://u:p@10.0.0.1/x", Some("10.0.0.1")),
            ("http://h.example:8080/v.mp4", None),
        ] {
            let url = Url::parse(text).unwrap();
            let ip = url_ip(&url).map(|ip| ip.to_string());
            assert_eq!(ip.as_deref(), want, "{text}");
        }
    }

    #[test]
    fn spellings_that_are_not_urls_still_name_their_address() {
        assert!(forbidden_url_text("http://[fe80::1%25eth0]:80/v.mp4").is_some());
        assert!(forbidden_url_text("http://user@127.0.0.1/v.mp4").is_some());
        assert!(forbidden_url_text("http://videos.example.com/v.mp4").is_none());
        for name in ["localhost", "LocalHost.", "a.b.localhost", "x.localhost."] {
            let url = format!("http://{name}:8000/v.mp4");
            assert!(forbidden_url_text(&url).is_some(), "{url}");
        }
        assert!(forbidden_url_text("http://localhost.example.com/").is_none());
        assert!(forbidden_url_text("not a url").is_none());
    }
}
