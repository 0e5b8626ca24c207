//! Keeps URL imports on the public internet: an image file URL must not make the server reach
//! its own network (loopback, private ranges, cloud metadata, …), which would let anyone with
//! an account read internal services (server-side request forgery).
//!
//! An address is checked wherever the HTTP client could reach it:
//! - the URL itself, when the image is created and before every request (IP literals such as
//!   `http://2130706433/` never pass through a resolver);
//! - every name the client resolves (`GuardedResolver`): only permitted addresses are handed to
//!   the connector, so a name that resolves to a blocked address, or is rebound to one, cannot
//!   be reached;
//! - every redirect hop (`redirect_policy`), at most 5, never from https down to http.
//!
//! The client also ignores proxy settings from the environment. An operator allow-list
//! (`IMPORT_ALLOWED_NETWORKS`) admits chosen networks on purpose, such as private object
//! storage or a lab's own source server.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, LazyLock};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Redirects an import follows at most.
pub const MAX_REDIRECTS: usize = 5;

/// Why an address may not be reached, in the words the image's failure reason uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockedKind {
    Unspecified,
    Loopback,
    Private,
    SharedAddressSpace,
    LinkLocal,
    Multicast,
    Reserved,
}

impl BlockedKind {
    fn describe(self) -> &'static str {
        match self {
            BlockedKind::Unspecified => "an unspecified address",
            BlockedKind::Loopback => "a loopback address",
            BlockedKind::Private => "a private network address",
            BlockedKind::SharedAddressSpace => "a carrier-grade NAT address",
            BlockedKind::LinkLocal => "a link-local address (where cloud metadata services live)",
            BlockedKind::Multicast => "a multicast address",
            BlockedKind::Reserved => "a reserved or documentation address",
        }
    }
}

fn nets(list: &[(&str, BlockedKind)]) -> Vec<(IpNet, BlockedKind)> {
    list.iter()
        .map(|(net, kind)| (net.parse().expect("a valid network literal"), *kind))
        .collect()
}

/// Every range that is not the public internet (IANA special-purpose registries).
static BLOCKED: LazyLock<Vec<(IpNet, BlockedKind)>> = LazyLock::new(|| {
    use BlockedKind::*;
    nets(&[
        ("0.0.0.0/8", Unspecified),
        ("10.0.0.0/8", Private),
        ("100.64.0.0/10", SharedAddressSpace),
        ("127.0.0.0/8", Loopback),
        ("169.254.0.0/16", LinkLocal),
        ("172.16.0.0/12", Private),
        ("192.0.0.0/24", Reserved),
        ("192.0.2.0/24", Reserved),
        ("192.88.99.0/24", Reserved),
        ("192.168.0.0/16", Private),
        ("198.18.0.0/15", Reserved),
        ("198.51.100.0/24", Reserved),
        ("203.0.113.0/24", Reserved),
        ("224.0.0.0/4", Multicast),
        ("240.0.0.0/4", Reserved),
        // ::/96 holds :: and ::1 and the deprecated IPv4-compatible addresses.
        ("::1/128", Loopback),
        ("::/96", Unspecified),
        ("64:ff9b:1::/48", Private),
        ("100::/64", Reserved),
        ("2001::/23", Reserved),
        ("2001:db8::/32", Reserved),
        ("fc00::/7", Private),
        ("fe80::/10", LinkLocal),
        ("fec0::/10", LinkLocal),
        ("ff00::/8", Multicast),
    ])
});

/// The IPv4 address an IPv6 address carries, for the forms that reach IPv4 hosts:
/// IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::`).
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let last32 = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..5] == [0, 0, 0, 0, 0] && s[5] == 0xffff {
        return Some(last32());
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(last32());
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

/// Which addresses imports may connect to.
#[derive(Clone, Debug, Default)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
}

/// A refusal, worded for the image's failure reason or the form's error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl AddressPolicy {
    /// Blocks every non-public address except those in `allowed`.
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self { allowed }
    }

    /// Why `ip` may not be reached, or `None` if it may.
    pub fn blocked(&self, ip: IpAddr) -> Option<BlockedKind> {
        // An IPv6 form of an IPv4 address is judged as that IPv4 address.
        let ip = match ip {
            IpAddr::V6(v6) => embedded_ipv4(v6).map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if self.allowed.iter().any(|net| net.contains(&ip)) {
            return None;
        }
        BLOCKED
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, kind)| *kind)
    }

    fn refusal(ip: IpAddr, kind: BlockedKind) -> Refused {
        Refused(format!(
            "Imports may not reach {ip}: it is {}. Use a URL on the public internet.",
            kind.describe()
        ))
    }

    /// Checks a URL before it is requested (and each redirect target): http or https, no
    /// credentials, and a host that is a name or a permitted address.
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused(format!(
                "Imports use http or https only, not {}.",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused(
                "Image file URLs cannot contain a user name or password.".into(),
            ));
        }
        let ip = match url.host() {
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(Host::Domain(_)) => return Ok(()),
            None => return Err(Refused("The image file URL names no host.".into())),
        };
        match self.blocked(ip) {
            Some(kind) => Err(Self::refusal(ip, kind)),
            None => Ok(()),
        }
    }

    /// Keeps the permitted addresses of a resolved name; none left is a refusal.
    pub fn filter_resolved(
        &self,
        name: &str,
        addresses: Vec<SocketAddr>,
    ) -> Result<Vec<SocketAddr>, Refused> {
        let mut refused = None;
        let permitted: Vec<SocketAddr> = addresses
            .into_iter()
            .filter(|addr| match self.blocked(addr.ip()) {
                Some(kind) => {
                    refused.get_or_insert((addr.ip(), kind));
                    false
                }
                None => true,
            })
            .collect();
        match (permitted.is_empty(), refused) {
            (false, _) => Ok(permitted),
            (true, Some((ip, kind))) => Err(Refused(format!(
                "{name} resolves to {ip}, which imports may not reach: it is {}. Use a URL on the public internet.",
                kind.describe()
            ))),
            (true, None) => Err(Refused(format!(
                "Could not find the host {name}: the name does not resolve."
            ))),
        }
    }

    /// The redirect rule: at most `MAX_REDIRECTS` hops, never from https to http, and every
    /// target checked like the first URL.
    pub fn redirect_policy(self: &Arc<Self>) -> reqwest::redirect::Policy {
        let policy = Arc::clone(self);
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(Refused(format!(
                    "The source redirected more than {MAX_REDIRECTS} times."
                )));
            }
            let downgraded = attempt
                .previous()
                .last()
                .is_some_and(|from| from.scheme() == "https" && attempt.url().scheme() == "http");
            if downgraded {
                return attempt.error(Refused(
                    "The source redirected from https to plain http, which imports do not follow."
                        .into(),
                ));
            }
            match policy.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        })
    }
}

/// Resolves names with the system resolver and hands the client only permitted addresses.
pub struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<AddressPolicy>) -> Self {
        Self { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| {
                    Refused(format!(
                        "Could not find the host {host}: the name does not resolve."
                    ))
                })?
                .collect();
            let permitted = policy.filter_resolved(&host, resolved)?;
            let addrs: Addrs = Box::new(permitted.into_iter());
            Ok(addrs)
        })
    }
}

/// Parses `IMPORT_ALLOWED_NETWORKS`: comma-separated networks (`10.1.0.0/16`) or single
/// addresses (`127.0.0.1`, `::1`).
pub fn parse_networks(raw: &str) -> Result<Vec<IpNet>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| {
                    item.parse::<IpAddr>().map(|ip| match ip {
                        IpAddr::V4(v4) => IpNet::V4(Ipv4Net::from(v4)),
                        IpAddr::V6(v6) => IpNet::V6(Ipv6Net::from(v6)),
                    })
                })
                .map_err(|_| format!("{item:?} is not a network (10.0.0.0/8) or an address"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(raw: &str) -> Url {
        Url::parse(raw).unwrap()
    }

    #[test]
    fn non_public_addresses_are_blocked() {
        let policy = AddressPolicy::default();
        for (raw, kind) in [
            ("127.0.0.1", BlockedKind::Loopback),
            ("127.9.9.9", BlockedKind::Loopback),
            ("::1", BlockedKind::Loopback),
            ("::ffff:127.0.0.1", BlockedKind::Loopback),
            ("64:ff9b::7f00:1", BlockedKind::Loopback),
            ("2002:7f00:1::", BlockedKind::Loopback),
            ("0.0.0.0", BlockedKind::Unspecified),
            ("::", BlockedKind::Unspecified),
            ("10.0.0.1", BlockedKind::Private),
            ("172.16.5.4", BlockedKind::Private),
            ("192.168.1.1", BlockedKind::Private),
            ("::ffff:10.0.0.1", BlockedKind::Private),
            ("fd00:ec2::254", BlockedKind::Private),
            ("100.64.0.1", BlockedKind::SharedAddressSpace),
            ("100.100.100.200", BlockedKind::SharedAddressSpace),
            ("169.254.169.254", BlockedKind::LinkLocal),
            ("fe80::1", BlockedKind::LinkLocal),
            ("224.0.0.1", BlockedKind::Multicast),
            ("ff02::1", BlockedKind::Multicast),
            ("255.255.255.255", BlockedKind::Reserved),
            ("192.0.2.10", BlockedKind::Reserved),
            ("2001:db8::1", BlockedKind::Reserved),
        ] {
            let ip: IpAddr = raw.parse().unwrap();
            assert_eq!(policy.blocked(ip), Some(kind), "{raw}");
        }
        for raw in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "172.32.0.1",
        ] {
            assert_eq!(policy.blocked(raw.parse().unwrap()), None, "{raw}");
        }
    }

    #[test]
    fn the_allow_list_admits_chosen_networks() {
        let policy = AddressPolicy::new(parse_networks("127.0.0.1, 10.1.0.0/16").unwrap());
        assert_eq!(policy.blocked("127.0.0.1".parse().unwrap()), None);
        assert_eq!(policy.blocked("::ffff:127.0.0.1".parse().unwrap()), None);
        assert_eq!(policy.blocked("10.1.200.3".parse().unwrap()), None);
        assert_eq!(
            policy.blocked("127.0.0.2".parse().unwrap()),
            Some(BlockedKind::Loopback)
        );
        assert_eq!(
            policy.blocked("10.2.0.1".parse().unwrap()),
            Some(BlockedKind::Private)
        );
        assert!(parse_networks("10.0.0.0/33").is_err());
        assert!(parse_networks("localhost").is_err());
        assert_eq!(parse_networks(" ").unwrap(), vec![]);
    }

    #[test]
    fn urls_are_judged_by_their_parsed_host() {
        let policy = AddressPolicy::default();
        // Every spelling of loopback the url crate normalises to an address.
        for raw in [
            "http://127.0.0.1/a.qcow2",
            "http://2130706433/a.qcow2",
            "http://0x7f000001/a.qcow2",
            "http://127.1/a.qcow2",
            "http://[::1]/a.qcow2",
            "http://[::ffff:127.0.0.1]/a.qcow2",
            "http://169.254.169.254/latest/meta-data",
            "ftp://example.com/a.qcow2",
            "http://user:pw@example.com/a.qcow2",
        ] {
            assert!(policy.check_url(&url(raw)).is_err(), "{raw}");
        }
        assert!(
            policy
                .check_url(&url("https://example.com/a.qcow2"))
                .is_ok()
        );
        assert!(
            policy
                .check_url(&url("http://93.184.215.14/a.qcow2"))
                .is_ok()
        );
        let refusal = policy
            .check_url(&url("http://10.0.0.1/a.qcow2"))
            .unwrap_err();
        assert_eq!(
            refusal.0,
            "Imports may not reach 10.0.0.1: it is a private network address. Use a URL on the public internet."
        );
    }

    #[test]
    fn resolved_names_keep_only_permitted_addresses() {
        let policy = AddressPolicy::default();
        let public: SocketAddr = "93.184.215.14:443".parse().unwrap();
        let private: SocketAddr = "10.0.0.7:443".parse().unwrap();
        assert_eq!(
            policy.filter_resolved("mixed.example", vec![private, public]),
            Ok(vec![public])
        );
        let refusal = policy
            .filter_resolved("internal.example", vec![private])
            .unwrap_err();
        assert!(
            refusal
                .0
                .starts_with("internal.example resolves to 10.0.0.7"),
            "{refusal}"
        );
    }
}
