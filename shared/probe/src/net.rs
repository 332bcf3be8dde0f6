//! Address resolution as blackbox's `chooseProtocol`, and the link-local guard.

use crate::config::IpProtocol;
use crate::registry::Ctx;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

/// 169.254.0.0/16 (IPv4 link-local, EC2 instance metadata 169.254.169.254, ECS task
/// metadata 169.254.170.2), fe80::/10 (IPv6 link-local), fd00:ec2::/32 (EC2 IPv6
/// metadata and DNS), and the IPv4-mapped forms of the first.
pub fn is_link_local_or_metadata(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_forbidden(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_forbidden(v4);
            }
            let s = v6.segments();
            (s[0] & 0xffc0) == 0xfe80 || (s[0] == 0xfd00 && s[1] == 0x0ec2)
        }
    }
}

fn v4_forbidden(v4: Ipv4Addr) -> bool {
    let o = v4.octets();
    o[0] == 169 && o[1] == 254
}

/// The refusal message used by every prober.
pub fn refusal(ip: IpAddr) -> String {
    format!(
        "refusing to probe {ip}: link-local and instance-metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::/32) are blocked; set `allow_link_local: true` on the module to allow"
    )
}

/// FNV-1a 32 of the 4- or 16-byte address, as blackbox's `probe_ip_addr_hash`.
pub fn ip_hash(ip: IpAddr) -> f64 {
    let bytes: Vec<u8> = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets().to_vec(),
        },
    };
    let mut h: u32 = 0x811c9dc5;
    for b in bytes {
        h ^= b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    h as f64
}

/// Parses a host that may be an IP literal (with or without brackets).
pub fn parse_ip_literal(host: &str) -> Option<IpAddr> {
    let h = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    h.parse::<IpAddr>().ok()
}

/// Resolves all addresses of a host (system resolver; IP literals skip it).
pub async fn lookup(host: &str) -> Result<Vec<IpAddr>, String> {
    if let Some(ip) = parse_ip_literal(host) {
        return Ok(vec![ip]);
    }
    if host.is_empty() {
        return Err("empty host name".into());
    }
    let addrs = tokio::net::lookup_host((host, 0u16))
        .await
        .map_err(|e| format!("lookup {host}: {e}"))?;
    let mut out: Vec<IpAddr> = Vec::new();
    for a in addrs {
        if !out.contains(&a.ip()) {
            out.push(a.ip());
        }
    }
    if out.is_empty() {
        return Err(format!("lookup {host}: no such host"));
    }
    Ok(out)
}

/// blackbox's chooseProtocol: registers probe_ip_protocol, probe_dns_lookup_time_seconds,
/// probe_ip_addr_hash; returns the address and the lookup time in seconds. Also applies
/// the link-local guard.
pub async fn choose_protocol(
    ctx: &mut Ctx,
    preferred: IpProtocol,
    fallback: bool,
    host: &str,
) -> (Result<IpAddr, String>, f64) {
    ctx.reg.gauge(
        "probe_ip_protocol",
        "Specifies whether probe ip protocol is IP4 or IP6",
    );
    ctx.reg.gauge(
        "probe_dns_lookup_time_seconds",
        "Returns the time taken for probe dns lookup in seconds",
    );
    ctx.reg.gauge(
        "probe_ip_addr_hash",
        "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
    );
    let proto = match preferred {
        IpProtocol::Ip4 => "ip4",
        IpProtocol::Ip6 => "ip6",
    };
    ctx.info(
        "Resolving target address",
        &[("target", &host), ("ip_protocol", &proto)],
    );
    let start = Instant::now();
    let res = lookup(host).await;
    let lookup_time = start.elapsed().as_secs_f64();
    ctx.reg.add("probe_dns_lookup_time_seconds", lookup_time);
    let ips = match res {
        Ok(ips) => ips,
        Err(e) => {
            ctx.error(
                "Resolution with IP protocol failed",
                &[("target", &host), ("err", &e)],
            );
            return (Err(e), lookup_time);
        }
    };
    let want_v4 = preferred == IpProtocol::Ip4;
    let chosen = ips.iter().find(|ip| ip.is_ipv4() == want_v4).copied();
    let ip = match (chosen, fallback) {
        (Some(ip), _) => ip,
        (None, true) => ips[ips.len() - 1],
        (None, false) => {
            let e = format!("lookup {host}: no suitable address found ({proto})");
            ctx.error(
                "Resolution with IP protocol failed",
                &[("target", &host), ("ip_protocol", &proto), ("err", &e)],
            );
            return (Err(e), lookup_time);
        }
    };
    ctx.info("Resolved target address", &[("target", &host), ("ip", &ip)]);
    ctx.reg
        .set("probe_ip_protocol", if ip.is_ipv4() { 4.0 } else { 6.0 });
    ctx.reg.set("probe_ip_addr_hash", ip_hash(ip));
    if !ctx.allow_link_local && is_link_local_or_metadata(ip) {
        let e = refusal(ip);
        ctx.error(
            "Refusing address",
            &[("target", &host), ("ip", &ip), ("err", &e)],
        );
        return (Err(e), lookup_time);
    }
    (Ok(ip), lookup_time)
}

/// Checks an address picked after the first resolution (redirect targets).
pub fn guard(ctx: &mut Ctx, ip: IpAddr) -> Result<(), String> {
    if !ctx.allow_link_local && is_link_local_or_metadata(ip) {
        return Err(refusal(ip));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_ranges() {
        for s in [
            "169.254.169.254",
            "169.254.170.2",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "febf::1",
        ] {
            assert!(is_link_local_or_metadata(s.parse().unwrap()), "{s}");
        }
        for s in [
            "127.0.0.1",
            "10.0.0.1",
            "169.253.1.1",
            "::1",
            "fd00:ec3::1",
            "fec0::1",
            "2001:db8::1",
        ] {
            assert!(!is_link_local_or_metadata(s.parse().unwrap()), "{s}");
        }
    }

    #[tokio::test]
    async fn guard_applies_after_resolution_unless_allowed() {
        let mut ctx = Ctx::new(0, "m", "t", false);
        let (r, _) = choose_protocol(&mut ctx, IpProtocol::Ip4, true, "169.254.169.254").await;
        assert!(r.unwrap_err().contains("refusing to probe 169.254.169.254"));
        let mut ctx = Ctx::new(0, "m", "t", true);
        let (r, _) = choose_protocol(&mut ctx, IpProtocol::Ip4, true, "169.254.169.254").await;
        assert_eq!(r.unwrap(), "169.254.169.254".parse::<IpAddr>().unwrap());
        assert_eq!(ctx.reg.get("probe_ip_protocol"), Some(4.0));
        // ip6 preferred without fallback: an IPv4-only host is an error, as in blackbox.
        let mut ctx = Ctx::new(0, "m", "t", false);
        let (r, _) = choose_protocol(&mut ctx, IpProtocol::Ip6, false, "127.0.0.1").await;
        assert!(r.unwrap_err().contains("no suitable address"));
    }

    #[test]
    fn ip_hash_matches_blackbox() {
        // blackbox_exporter 0.23 reports this for 127.0.0.1 (reference capture).
        assert_eq!(ip_hash("127.0.0.1".parse().unwrap()), 3.668918509e9);
    }
}
