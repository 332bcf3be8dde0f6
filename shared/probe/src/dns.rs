//! The `dns` prober (blackbox's ProbeDNS): one query over UDP or TCP to the target server.

use crate::config::{DnsModule, DnsTransport, RrValidator};
use crate::net;
use crate::registry::Ctx;
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// miekg/dns `RR.String()`: `name.\tTTL\tCLASS\tTYPE\tRDATA`.
pub fn rr_string(r: &Record) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}",
        r.name,
        r.ttl,
        r.dns_class,
        r.record_type(),
        r.data
    )
}

fn rcode_name(c: u16) -> &'static str {
    match c {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADSIG",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        _ => "UNKNOWN",
    }
}

fn valid_rrs(ctx: &mut Ctx, rrs: &[String], v: &RrValidator) -> bool {
    if rrs.is_empty() && !v.fail_if_not_matches_regexp.is_empty() {
        ctx.error(
            "fail_if_not_matches_regexp specified but no RRs returned",
            &[],
        );
        return false;
    }
    if rrs.is_empty() && !v.fail_if_none_matches_regexp.is_empty() {
        ctx.error(
            "fail_if_none_matches_regexp specified but no RRs returned",
            &[],
        );
        return false;
    }
    let mut any_match = false;
    let mut all_match = true;
    for rr in rrs {
        ctx.info("Validating RR", &[("rr", rr)]);
        for re in &v.fail_if_matches_regexp {
            if re.is_match(rr) {
                ctx.error(
                    "At least one RR matched regexp",
                    &[("regexp", re), ("rr", rr)],
                );
                return false;
            }
        }
        for re in &v.fail_if_all_match_regexp {
            if !re.is_match(rr) {
                all_match = false;
            }
        }
        for re in &v.fail_if_not_matches_regexp {
            if !re.is_match(rr) {
                ctx.error(
                    "At least one RR did not match regexp",
                    &[("regexp", re), ("rr", rr)],
                );
                return false;
            }
        }
        for re in &v.fail_if_none_matches_regexp {
            if re.is_match(rr) {
                any_match = true;
            }
        }
    }
    // As blackbox 0.23: `fail_if_all_match_regexp` fails when NOT all RRs match.
    if !v.fail_if_all_match_regexp.is_empty() && !all_match {
        ctx.error("Not all RRs matched regexp", &[]);
        return false;
    }
    if !v.fail_if_none_matches_regexp.is_empty() && !any_match {
        ctx.error("None of the RRs did matched any regexp", &[]);
        return false;
    }
    true
}

pub(crate) async fn probe_dns(
    ctx: &mut Ctx,
    target: &str,
    m: &DnsModule,
    deadline: tokio::time::Instant,
) -> bool {
    ctx.reg.vec(
        "probe_dns_duration_seconds",
        "Duration of DNS request by phase",
    );
    ctx.reg.gauge(
        "probe_dns_answer_rrs",
        "Returns number of entries in the answer resource record list",
    );
    ctx.reg.gauge(
        "probe_dns_authority_rrs",
        "Returns number of entries in the authority resource record list",
    );
    ctx.reg.gauge(
        "probe_dns_additional_rrs",
        "Returns number of entries in the additional resource record list",
    );
    ctx.reg.gauge(
        "probe_dns_query_succeeded",
        "Displays whether or not the query was executed successfully",
    );
    for phase in ["resolve", "connect", "request"] {
        ctx.reg
            .add_l("probe_dns_duration_seconds", &[("phase", phase)], 0.0);
    }
    let mut timing = (None, None);
    let r = tokio::time::timeout_at(deadline, run_dns(ctx, target, m, &mut timing)).await;
    // Phases measured so far (also on timeout, like miekg's Exchange error path).
    let (connect, request) = timing;
    if let Some(c) = connect {
        ctx.reg
            .set_l("probe_dns_duration_seconds", &[("phase", "connect")], c);
    }
    if let Some(r) = request {
        ctx.reg
            .set_l("probe_dns_duration_seconds", &[("phase", "request")], r);
    }
    match r {
        Ok(s) => s,
        Err(_) => {
            ctx.error(
                "Error while sending a DNS query",
                &[("err", &"i/o timeout (probe timeout)")],
            );
            false
        }
    }
}

async fn exchange(
    transport: DnsTransport,
    server: SocketAddr,
    wire: &[u8],
    id: u16,
    timing: &mut (Option<f64>, Option<f64>),
    start: Instant,
) -> Result<Vec<u8>, String> {
    match transport {
        DnsTransport::Udp => {
            let bind: SocketAddr = if server.is_ipv4() {
                (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0).into()
            } else {
                (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0).into()
            };
            let sock = UdpSocket::bind(bind)
                .await
                .map_err(|e| format!("dial udp {server}: {e}"))?;
            sock.connect(server)
                .await
                .map_err(|e| format!("dial udp {server}: {e}"))?;
            let t = Instant::now();
            timing.0 = Some(t.duration_since(start).as_secs_f64());
            sock.send(wire)
                .await
                .map_err(|e| format!("write udp {server}: {e}"))?;
            let mut buf = vec![0u8; 65535];
            loop {
                let n = sock
                    .recv(&mut buf)
                    .await
                    .map_err(|e| format!("read udp {server}: {e}"))?;
                timing.1 = Some(t.elapsed().as_secs_f64());
                if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
                    buf.truncate(n);
                    return Ok(buf);
                }
            }
        }
        DnsTransport::Tcp => {
            let mut s = TcpStream::connect(server)
                .await
                .map_err(|e| format!("dial tcp {server}: {e}"))?;
            let t = Instant::now();
            timing.0 = Some(t.duration_since(start).as_secs_f64());
            let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(wire);
            s.write_all(&framed)
                .await
                .map_err(|e| format!("write tcp {server}: {e}"))?;
            let mut len = [0u8; 2];
            s.read_exact(&mut len)
                .await
                .map_err(|e| format!("read tcp {server}: {e}"))?;
            let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
            s.read_exact(&mut buf)
                .await
                .map_err(|e| format!("read tcp {server}: {e}"))?;
            timing.1 = Some(t.elapsed().as_secs_f64());
            Ok(buf)
        }
    }
}

async fn run_dns(
    ctx: &mut Ctx,
    target: &str,
    m: &DnsModule,
    timing: &mut (Option<f64>, Option<f64>),
) -> bool {
    let (host, port) = match crate::tcp::split_host_port(target) {
        Ok((h, p)) => (h, p),
        Err(_) => (
            target
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            53,
        ),
    };
    let (ip, lookup) =
        net::choose_protocol(ctx, m.ip_protocol, m.ip_protocol_fallback, &host).await;
    let ip = match ip {
        Ok(ip) => ip,
        Err(e) => {
            ctx.error("Error resolving address", &[("err", &e)]);
            return false;
        }
    };
    ctx.reg.add_l(
        "probe_dns_duration_seconds",
        &[("phase", "resolve")],
        lookup,
    );
    let server = SocketAddr::new(ip, port);
    let fqdn = if m.query_name.ends_with('.') {
        m.query_name.clone()
    } else {
        format!("{}.", m.query_name)
    };
    let name = match Name::from_utf8(&fqdn) {
        Ok(n) => n,
        Err(e) => {
            ctx.error("Error while sending a DNS query", &[("err", &e)]);
            return false;
        }
    };
    let mut msg = Message::query();
    msg.metadata.recursion_desired = m.recursion_desired;
    let mut q = Query::query(name, m.query_type);
    q.set_query_class(m.query_class);
    msg.add_query(q);
    let id = msg.metadata.id;
    let wire = match msg.to_vec() {
        Ok(w) => w,
        Err(e) => {
            ctx.error("Error while sending a DNS query", &[("err", &e)]);
            return false;
        }
    };
    let proto = match m.transport {
        DnsTransport::Udp => {
            if ip.is_ipv4() {
                "udp4"
            } else {
                "udp6"
            }
        }
        DnsTransport::Tcp => {
            if ip.is_ipv4() {
                "tcp4"
            } else {
                "tcp6"
            }
        }
    };
    ctx.info(
        "Making DNS query",
        &[
            ("target", &server),
            ("dial_protocol", &proto),
            ("query", &m.query_name),
            ("type", &m.query_type),
            ("class", &m.query_class),
        ],
    );
    let start = Instant::now();
    let resp = match exchange(m.transport, server, &wire, id, timing, start).await {
        Ok(b) => b,
        Err(e) => {
            if timing.0.is_none() {
                timing.0 = Some(start.elapsed().as_secs_f64());
            }
            ctx.error("Error while sending a DNS query", &[("err", &e)]);
            return false;
        }
    };
    let resp = match Message::from_vec(&resp) {
        Ok(r) => r,
        Err(e) => {
            ctx.error(
                "Error while sending a DNS query",
                &[("err", &format!("dns: bad response: {e}"))],
            );
            return false;
        }
    };
    let answers: Vec<String> = resp.answers.iter().map(rr_string).collect();
    let authority: Vec<String> = resp.authorities.iter().map(rr_string).collect();
    let mut additional: Vec<String> = resp.additionals.iter().map(rr_string).collect();
    if resp.edns.is_some() {
        // miekg/dns keeps the OPT pseudo-RR in Extra.
        additional.push(".\t0\tCLASS0\tOPT\t".to_string());
    }
    ctx.info(
        "Got response",
        &[
            ("answers", &answers.len()),
            ("authority", &authority.len()),
            ("additional", &additional.len()),
        ],
    );
    ctx.reg.set("probe_dns_answer_rrs", answers.len() as f64);
    ctx.reg
        .set("probe_dns_authority_rrs", authority.len() as f64);
    ctx.reg
        .set("probe_dns_additional_rrs", additional.len() as f64);
    ctx.reg.set("probe_dns_query_succeeded", 1.0);
    if m.query_type == RecordType::SOA {
        ctx.reg
            .gauge("probe_dns_serial", "Returns the serial number of the zone");
        for a in &resp.answers {
            if let RData::SOA(soa) = &a.data {
                ctx.reg.set("probe_dns_serial", soa.serial as f64);
            }
        }
    }
    let rcode: u16 = resp.metadata.response_code.into();
    let valid: &[u16] = if m.valid_rcodes.is_empty() {
        &[0]
    } else {
        &m.valid_rcodes
    };
    if !valid.contains(&rcode) {
        ctx.error(
            "Rcode is not one of the valid rcodes",
            &[("rcode", &rcode), ("string_rcode", &rcode_name(rcode))],
        );
        return false;
    }
    ctx.info(
        "Rcode is valid",
        &[("rcode", &rcode), ("string_rcode", &rcode_name(rcode))],
    );
    ctx.info("Validating Answer RRs", &[]);
    if !valid_rrs(ctx, &answers, &m.validate_answer) {
        ctx.error("Answer RRs validation failed", &[]);
        return false;
    }
    ctx.info("Validating Authority RRs", &[]);
    if !valid_rrs(ctx, &authority, &m.validate_authority) {
        ctx.error("Authority RRs validation failed", &[]);
        return false;
    }
    ctx.info("Validating Additional RRs", &[]);
    if !valid_rrs(ctx, &additional, &m.validate_additional) {
        ctx.error("Additional RRs validation failed", &[]);
        return false;
    }
    true
}
