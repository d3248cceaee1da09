//! The outbound address guard: one function that decides whether a resolved address may be connected
//! to. Every outbound fetch of a user-supplied URL (client metadata documents, MCP discovery, tool
//! servers) resolves the host, then asks `check_ip` for each address before connecting.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused (public text: names the range, never the full URL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("loopback addresses are not allowed")]
    Loopback,
    #[error("private network addresses are not allowed")]
    Private,
    #[error("link-local addresses (including cloud metadata) are not allowed")]
    LinkLocal,
    #[error("shared address space (100.64.0.0/10) is not allowed")]
    Shared,
    #[error("unspecified, broadcast, multicast, documentation or reserved addresses are not allowed")]
    Reserved,
}

/// Decide whether `ip` may be the target of an outbound connection. `allow_loopback` is only true in
/// the embedded default (`LATCHKEY_ALLOW_LOOPBACK_OUTBOUND`).
pub fn check_ip(ip: IpAddr, allow_loopback: bool) -> Result<(), Refused> {
    match ip {
        IpAddr::V4(v4) => check_v4(v4, allow_loopback),
        IpAddr::V6(v6) => {
            // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible forms are judged as the IPv4 address.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return check_v4(v4, allow_loopback);
            }
            check_v6(v6, allow_loopback)
        }
    }
}

fn check_v4(ip: Ipv4Addr, allow_loopback: bool) -> Result<(), Refused> {
    let o = ip.octets();
    if ip.is_loopback() {
        return if allow_loopback { Ok(()) } else { Err(Refused::Loopback) };
    }
    if ip.is_private() {
        return Err(Refused::Private);
    }
    if ip.is_link_local() {
        return Err(Refused::LinkLocal);
    }
    if o[0] == 100 && (o[1] & 0xc0) == 64 {
        return Err(Refused::Shared);
    }
    let reserved = o[0] == 0
        || ip.is_broadcast()
        || ip.is_multicast()
        || o[0] >= 240
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24 IETF protocol assignments
        || (o[0] == 192 && o[1] == 0 && o[2] == 2) // TEST-NET-1
        || (o[0] == 198 && o[1] == 51 && o[2] == 100) // TEST-NET-2
        || (o[0] == 203 && o[1] == 0 && o[2] == 113) // TEST-NET-3
        || (o[0] == 198 && (o[1] & 0xfe) == 18); // 198.18.0.0/15 benchmarking
    if reserved {
        return Err(Refused::Reserved);
    }
    Ok(())
}

fn check_v6(ip: Ipv6Addr, allow_loopback: bool) -> Result<(), Refused> {
    let seg = ip.segments();
    if ip.is_loopback() {
        return if allow_loopback { Ok(()) } else { Err(Refused::Loopback) };
    }
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(Refused::Reserved);
    }
    if (seg[0] & 0xfe00) == 0xfc00 {
        return Err(Refused::Private); // fc00::/7 unique local
    }
    if (seg[0] & 0xffc0) == 0xfe80 {
        return Err(Refused::LinkLocal); // fe80::/10
    }
    if (seg[0] & 0xffc0) == 0xfec0 {
        return Err(Refused::Private); // fec0::/10 deprecated site-local
    }
    if seg[0] == 0x2001 && seg[1] == 0x0db8 {
        return Err(Refused::Reserved); // documentation
    }
    if seg[0] == 0x0064 && seg[1] == 0xff9b {
        // NAT64 (64:ff9b::/96): judge the embedded IPv4 address.
        let v4 = Ipv4Addr::new((seg[6] >> 8) as u8, seg[6] as u8, (seg[7] >> 8) as u8, seg[7] as u8);
        return check_v4(v4, allow_loopback);
    }
    if seg[0] == 0x2002 {
        // 6to4 (2002::/16): judge the embedded IPv4 address.
        let v4 = Ipv4Addr::new((seg[1] >> 8) as u8, seg[1] as u8, (seg[2] >> 8) as u8, seg[2] as u8);
        return check_v4(v4, allow_loopback);
    }
    if seg[..6] == [0, 0, 0, 0, 0, 0] {
        return Err(Refused::Reserved); // ::/96 IPv4-compatible (deprecated)
    }
    Ok(())
}

/// A DNS resolver for outbound clients: resolves with the system resolver, then refuses the name if
/// any address fails `check_ip`, so the connection can only go to checked addresses (no rebinding
/// between check and connect: the connector uses exactly what this returns).
#[derive(Clone, Copy, Debug)]
pub struct GuardedResolver {
    pub allow_loopback: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err("the host does not resolve".into());
            }
            for a in &addrs {
                check_ip(a.ip(), allow_loopback)
                    .map_err(|r| Box::new(r) as Box<dyn std::error::Error + Send + Sync>)?;
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The outbound client for user- or operator-supplied URLs (providers, MCP servers): every host
/// name goes through `GuardedResolver`, no proxies from the environment (they would bypass the
/// guard), no redirects, a 5 s connect timeout. Callers set a per-request timeout and call
/// `check_url_host` first, because IP-literal hosts skip the resolver.
pub fn guarded_client(allow_loopback: bool) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .dns_resolver(std::sync::Arc::new(GuardedResolver { allow_loopback }))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(5))
        .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Is the URL's host a loopback address or `localhost` (RFC 8252 §7.3, RFC 6761 §6.3)? A check of
/// the URL as written; connecting still goes through [`check_ip`] on the resolved address.
pub fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// What is wrong with the shape of a URL we would call out to (before its address is checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlShape {
    /// Not an absolute URL.
    NotUrl,
    /// A scheme other than http or https.
    NotHttp,
    /// http where only https is allowed (anything but loopback, or loopback not allowed).
    NotHttps,
    /// No host.
    NoHost,
    /// A user name or password.
    UserInfo,
    /// A fragment.
    Fragment,
}

/// The shape every URL we call out to has: https, or http to a loopback host where loopback is
/// allowed (`latchkey serve`, tests); a host; no user info; no fragment. The address is checked
/// separately ([`check_url_host`], and the guarded resolver at connect). Each caller words the
/// refusal in its own API's terms.
pub fn outbound_url(raw: &str, allow_loopback_http: bool) -> Result<url::Url, UrlShape> {
    let url = url::Url::parse(raw).map_err(|_| UrlShape::NotUrl)?;
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback_http && is_loopback_host(&url) => {}
        "http" => return Err(UrlShape::NotHttps),
        _ => return Err(UrlShape::NotHttp),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UrlShape::NoHost);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlShape::UserInfo);
    }
    if url.fragment().is_some() {
        return Err(UrlShape::Fragment);
    }
    Ok(url)
}

/// The guard for URLs whose host is an IP literal (the resolver never sees those).
pub fn check_url_host(url: &url::Url, allow_loopback: bool) -> Result<(), Refused> {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip), allow_loopback),
        Some(url::Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip), allow_loopback),
        Some(url::Host::Domain(_)) => Ok(()),
        None => Err(Refused::Reserved),
    }
}

/// Did this outbound error come from the address guard? Returns its reason.
pub fn refused_by_guard(err: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<Refused>() {
            return Some(*r);
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {

    #[test]
    fn outbound_urls_have_one_shape_everywhere() {
        use super::{outbound_url, UrlShape};
        assert!(outbound_url("https://hooks.example.com/x?y=1", false).is_ok());
        assert!(outbound_url("http://127.0.0.1:8000/cb", true).is_ok());
        assert!(outbound_url("http://localhost/cb", true).is_ok());
        for (raw, loopback, want) in [
            ("not a url", true, UrlShape::NotUrl),
            ("/relative", true, UrlShape::NotUrl),
            ("ftp://example.com/", true, UrlShape::NotHttp),
            ("file:///etc/passwd", true, UrlShape::NotHttp),
            ("http://example.com/", true, UrlShape::NotHttps),
            ("http://127.0.0.1/", false, UrlShape::NotHttps),
            ("https://user:pw@example.com/", true, UrlShape::UserInfo),
            ("https://user@example.com/", true, UrlShape::UserInfo),
            ("https://example.com/#frag", true, UrlShape::Fragment),
        ] {
            assert_eq!(outbound_url(raw, loopback).err(), Some(want), "{raw}");
        }
    }

    #[test]
    fn rfc8252_7_3_loopback_hosts_as_written() {
        for url in [
            "http://127.0.0.1:3000/cb",
            "http://[::1]/",
            "http://LOCALHOST:9/x",
            "http://127.8.9.1/",
        ] {
            assert!(is_loopback_host(&url::Url::parse(url).unwrap()), "{url}");
        }
        for url in [
            "http://localhost.example/",
            "https://10.0.0.1/",
            "https://example.com/",
            "http://[::2]/",
        ] {
            assert!(!is_loopback_host(&url::Url::parse(url).unwrap()), "{url}");
        }
    }

    use super::*;

    fn refused(s: &str) -> Option<Refused> {
        check_ip(s.parse().unwrap(), false).err()
    }

    #[test]
    fn refuses_private_loopback_link_local_shared_and_reserved_literals() {
        for (addr, why) in [
            ("10.0.0.1", Refused::Private),
            ("10.255.255.255", Refused::Private),
            ("172.16.0.1", Refused::Private),
            ("172.31.255.254", Refused::Private),
            ("192.168.1.1", Refused::Private),
            ("169.254.169.254", Refused::LinkLocal),
            ("100.64.0.1", Refused::Shared),
            ("100.127.255.254", Refused::Shared),
            ("127.0.0.1", Refused::Loopback),
            ("127.8.9.10", Refused::Loopback),
            ("0.0.0.0", Refused::Reserved),
            ("0.1.2.3", Refused::Reserved),
            ("255.255.255.255", Refused::Reserved),
            ("224.0.0.1", Refused::Reserved),
            ("::1", Refused::Loopback),
            ("::", Refused::Reserved),
            ("fc00::1", Refused::Private),
            ("fd12:3456::1", Refused::Private),
            ("fe80::1", Refused::LinkLocal),
            ("febf::1", Refused::LinkLocal),
            ("::ffff:127.0.0.1", Refused::Loopback),
            ("::ffff:10.0.0.1", Refused::Private),
            ("::ffff:169.254.169.254", Refused::LinkLocal),
            ("64:ff9b::a9fe:a9fe", Refused::LinkLocal),
            ("2002:c0a8:0101::1", Refused::Private),
            ("ff02::1", Refused::Reserved),
        ] {
            assert_eq!(refused(addr), Some(why), "{addr}");
        }
    }

    #[test]
    fn allows_public_addresses_and_loopback_only_when_configured() {
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.0",
            "2606:4700::1111",
        ] {
            assert_eq!(refused(addr), None, "{addr}");
        }
        assert!(check_ip("127.0.0.1".parse().unwrap(), true).is_ok());
        assert!(check_ip("::1".parse().unwrap(), true).is_ok());
        assert!(check_ip("::ffff:127.0.0.1".parse().unwrap(), true).is_ok());
        // Loopback allowance never opens private ranges.
        assert!(check_ip("10.0.0.1".parse().unwrap(), true).is_err());
        assert!(check_ip("169.254.169.254".parse().unwrap(), true).is_err());
    }

    #[test]
    fn ip_literal_urls_are_checked_without_resolving() {
        let u = |s: &str| url::Url::parse(s).unwrap();
        assert_eq!(
            check_url_host(&u("https://169.254.169.254/latest"), false),
            Err(Refused::LinkLocal)
        );
        assert_eq!(check_url_host(&u("https://[::1]/"), false), Err(Refused::Loopback));
        assert_eq!(check_url_host(&u("https://[fd00::1]/"), true), Err(Refused::Private));
        assert_eq!(check_url_host(&u("http://127.0.0.1:9/"), true), Ok(()));
        assert_eq!(check_url_host(&u("https://api.example.invalid/"), false), Ok(()));
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_that_resolve_to_loopback() {
        use reqwest::dns::Resolve;
        // `localhost` resolves locally (no network traffic); production policy refuses it.
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let err = GuardedResolver { allow_loopback: false }
            .resolve(name)
            .await
            .err()
            .unwrap();
        assert_eq!(refused_by_guard(err.as_ref()), Some(Refused::Loopback));
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        assert!(GuardedResolver { allow_loopback: true }.resolve(name).await.is_ok());
    }
}
