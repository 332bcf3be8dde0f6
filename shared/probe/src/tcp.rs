//! The `tcp` prober (blackbox's ProbeTCP): connect, optional TLS, query/response lines
//! with STARTTLS.

use crate::config::TcpModule;
use crate::http::Io;
use crate::net;
use crate::registry::Ctx;
use crate::tls::TlsFacts;
use crate::Prober;
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Splits `host:port` (`[v6]:port`) like Go's net.SplitHostPort.
pub(crate) fn split_host_port(target: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (h, p) = rest
            .split_once(']')
            .ok_or_else(|| format!("address {target}: missing ']' in address"))?;
        let p = p
            .strip_prefix(':')
            .ok_or_else(|| format!("address {target}: missing port in address"))?;
        (h.to_string(), p)
    } else {
        let (h, p) = target
            .rsplit_once(':')
            .ok_or_else(|| format!("address {target}: missing port in address"))?;
        if h.contains(':') {
            return Err(format!("address {target}: too many colons in address"));
        }
        (h.to_string(), p)
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("address {target}: invalid port {port:?}"))?;
    Ok((host, port))
}

const MAX_LINE: usize = 64 * 1024;

pub(crate) async fn probe_tcp(
    ctx: &mut Ctx,
    p: &Prober,
    target: &str,
    m: &TcpModule,
    deadline: tokio::time::Instant,
) -> bool {
    ctx.reg.gauge(
        "probe_failed_due_to_regex",
        "Indicates if probe failed due to regex",
    );
    match tokio::time::timeout_at(deadline, run_tcp(ctx, p, target, m)).await {
        Ok(s) => s,
        Err(_) => {
            ctx.error(
                "Error during TCP probe",
                &[("err", &"i/o timeout (probe timeout)")],
            );
            false
        }
    }
}

async fn run_tcp(ctx: &mut Ctx, p: &Prober, target: &str, m: &TcpModule) -> bool {
    let (host, port) = match split_host_port(target) {
        Ok(x) => x,
        Err(e) => {
            ctx.error("Error splitting target address and port", &[("err", &e)]);
            ctx.error("Error dialing TCP", &[("err", &e)]);
            return false;
        }
    };
    let (ip, _) = net::choose_protocol(ctx, m.ip_protocol, m.ip_protocol_fallback, &host).await;
    let ip = match ip {
        Ok(ip) => ip,
        Err(e) => {
            ctx.error("Error resolving address", &[("err", &e)]);
            ctx.error("Error dialing TCP", &[("err", &e)]);
            return false;
        }
    };
    let addr = SocketAddr::new(ip, port);
    let built = if m.tls || m.query_response.iter().any(|q| q.starttls) {
        match p.tls.get(&m.tls_config, false) {
            Ok(b) => Some(b),
            Err(e) => {
                ctx.error("Error creating TLS configuration", &[("err", &e)]);
                return false;
            }
        }
    } else {
        None
    };
    let sni = m
        .tls_config
        .server_name
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| host.clone());
    ctx.info(
        if m.tls {
            "Dialing TCP with TLS"
        } else {
            "Dialing TCP without TLS"
        },
        &[],
    );
    let tcp = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => {
            ctx.error(
                "Error dialing TCP",
                &[("err", &format!("dial tcp {addr}: {e}"))],
            );
            return false;
        }
    };
    let _ = tcp.set_nodelay(true);
    let mut io: Box<dyn Io> = Box::new(tcp);
    if m.tls {
        let Some(b) = &built else { return false };
        let name = match crate::tls::server_name(&sni) {
            Ok(n) => n,
            Err(e) => {
                ctx.error("Error dialing TCP", &[("err", &e)]);
                return false;
            }
        };
        match tokio_rustls::TlsConnector::from(b.config.clone())
            .connect(name, io)
            .await
        {
            Ok(t) => {
                TlsFacts::from_conn(t.get_ref().1, b).record(ctx);
                io = Box::new(t);
            }
            Err(e) => {
                ctx.error("Error dialing TCP", &[("err", &format!("tls: {e}"))]);
                return false;
            }
        }
    }
    ctx.info("Successfully dialed", &[]);
    let mut reader = BufReader::new(io);
    let mut line = Vec::new();
    for (i, qr) in m.query_response.iter().enumerate() {
        ctx.info("Processing query response entry", &[("entry_number", &i)]);
        let mut send = qr.send.clone();
        if let Some(re) = &qr.expect {
            let mut matched = false;
            loop {
                line.clear();
                match read_line(&mut reader, &mut line).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        ctx.error("Error reading from connection", &[("err", &e)]);
                        return false;
                    }
                }
                let text = String::from_utf8_lossy(&line).into_owned();
                ctx.debug("Read line", &[("line", &text)]);
                if let Some(caps) = re.captures(&text) {
                    ctx.info("Regexp matched", &[("regexp", re), ("line", &text)]);
                    let mut expanded = String::new();
                    caps.expand(&send, &mut expanded);
                    send = expanded;
                    matched = true;
                    break;
                }
            }
            if !matched {
                ctx.reg.set("probe_failed_due_to_regex", 1.0);
                ctx.error(
                    "Regexp did not match",
                    &[("regexp", re), ("line", &String::from_utf8_lossy(&line))],
                );
                return false;
            }
            ctx.reg.set("probe_failed_due_to_regex", 0.0);
        }
        if !send.is_empty() {
            ctx.debug("Sending line", &[("line", &send)]);
            let w = reader.get_mut();
            if let Err(e) = async {
                w.write_all(send.as_bytes()).await?;
                w.write_all(b"\n").await?;
                w.flush().await
            }
            .await
            {
                ctx.error("Failed to send", &[("err", &e)]);
                return false;
            }
        }
        if qr.starttls {
            let Some(b) = &built else { return false };
            let name = match crate::tls::server_name(&sni) {
                Ok(n) => n,
                Err(e) => {
                    ctx.error("Failed to create TLS configuration", &[("err", &e)]);
                    return false;
                }
            };
            let inner = reader.into_inner();
            match tokio_rustls::TlsConnector::from(b.config.clone())
                .connect(name, inner)
                .await
            {
                Ok(t) => {
                    ctx.info("TLS Handshake (client) succeeded.", &[]);
                    TlsFacts::from_conn(t.get_ref().1, b).record(ctx);
                    reader = BufReader::new(Box::new(t) as Box<dyn Io>);
                }
                Err(e) => {
                    ctx.error("TLS Handshake (client) failed", &[("err", &e)]);
                    return false;
                }
            }
        }
    }
    true
}

/// Reads one line (without `\n` / `\r\n`), at most 64 KiB like Go's bufio.Scanner.
async fn read_line(r: &mut BufReader<Box<dyn Io>>, out: &mut Vec<u8>) -> Result<usize, String> {
    loop {
        let buf = r.fill_buf().await.map_err(|e| e.to_string())?;
        if buf.is_empty() {
            return Ok(out.len());
        }
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            out.extend_from_slice(&buf[..i]);
            r.consume(i + 1);
            if out.last() == Some(&b'\r') {
                out.pop();
            }
            return Ok(out.len() + 1);
        }
        let n = buf.len();
        out.extend_from_slice(buf);
        r.consume(n);
        if out.len() > MAX_LINE {
            return Err("bufio.Scanner: token too long".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port() {
        assert_eq!(
            split_host_port("127.0.0.1:80").unwrap(),
            ("127.0.0.1".into(), 80)
        );
        assert_eq!(split_host_port("[::1]:53").unwrap(), ("::1".into(), 53));
        assert!(split_host_port("example.com")
            .unwrap_err()
            .contains("missing port"));
        assert!(split_host_port("::1:53").is_err());
        assert!(split_host_port("h:99999").is_err());
    }
}
