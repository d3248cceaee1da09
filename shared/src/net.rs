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

#[cfg(test)]
mod tests {
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
}
