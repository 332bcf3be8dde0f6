//! Argus' `scrape` prober: GET a target's Prometheus text endpoint, parse it with
//! argus-expfmt, and add `up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
//! `scrape_samples_post_metric_relabeling` as Prometheus does.

use crate::config::{Compression, ScrapeModule};
use crate::http::{execute, header, read_body, Exchange, HttpState};
use crate::net;
use crate::registry::Ctx;
use crate::Prober;
use argus_expfmt::{Metric, MetricFamily, MetricType, MetricValue};
use argus_model::Labels;
use bytes::Bytes;
use std::time::{Duration, Instant};

/// The Accept header: text format only (Argus does not parse OpenMetrics or protobuf).
pub const ACCEPT: &str = "text/plain;version=0.0.4;q=1,*/*;q=0.1";

/// The URL scraped for a target: a full `http(s)://` URL as is, else
/// `http://<target><metrics_path>`.
pub fn scrape_url(target: &str, m: &ScrapeModule) -> Result<url::Url, String> {
    let t = target.trim();
    let s = if t.starts_with("http://") || t.starts_with("https://") {
        t.to_string()
    } else if let Some((scheme, _)) = t.split_once("://") {
        return Err(format!("unsupported URL scheme {scheme:?} in target {t:?}: the scrape prober speaks http and https"));
    } else {
        format!("http://{t}{}", m.metrics_path)
    };
    let u = url::Url::parse(&s).map_err(|e| format!("invalid target URL {t:?}: {e}"))?;
    if u.host().is_none() {
        return Err(format!("invalid target URL {t:?}: no host"));
    }
    Ok(u)
}

pub(crate) struct Scraped {
    pub families: Vec<MetricFamily>,
    pub samples: usize,
}

pub(crate) async fn probe_scrape(
    ctx: &mut Ctx,
    p: &Prober,
    target: &str,
    m: &ScrapeModule,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> (bool, Vec<MetricFamily>) {
    let start = Instant::now();
    let res = match tokio::time::timeout_at(deadline, scrape(ctx, p, target, m, timeout)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "context deadline exceeded (scrape timeout {}s)",
            timeout.as_secs_f64()
        )),
    };
    let duration = start.elapsed().as_secs_f64();
    let (up, mut families, samples) = match res {
        Ok(s) => (true, s.families, s.samples),
        Err(e) => {
            ctx.error("Scrape failed", &[("err", &e)]);
            (false, Vec::new(), 0)
        }
    };
    let synth = |name: &str, v: f64| MetricFamily {
        name: name.to_string(),
        help: None,
        kind: MetricType::Untyped,
        metrics: vec![Metric {
            labels: Labels::new(),
            value: MetricValue::Untyped(v),
            timestamp_ms: None,
        }],
    };
    families.push(synth("up", if up { 1.0 } else { 0.0 }));
    families.push(synth("scrape_duration_seconds", duration));
    families.push(synth("scrape_samples_scraped", samples as f64));
    families.push(synth(
        "scrape_samples_post_metric_relabeling",
        samples as f64,
    ));
    (up, families)
}

async fn scrape(
    ctx: &mut Ctx,
    p: &Prober,
    target: &str,
    m: &ScrapeModule,
    timeout: Duration,
) -> Result<Scraped, String> {
    let mut url = scrape_url(target, m)?;
    let host = match url.host() {
        Some(url::Host::Ipv6(a)) => a.to_string(),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    let authority = match url.port() {
        Some(port) if host.contains(':') => format!("[{host}]:{port}"),
        Some(port) => format!("{host}:{port}"),
        None if host.contains(':') => format!("[{host}]"),
        None => host.clone(),
    };
    let (ip, _) = net::choose_protocol(ctx, m.ip_protocol, m.ip_protocol_fallback, &host).await;
    let ip = ip?;
    url.set_ip_host(ip)
        .map_err(|_| format!("cannot use address {ip} for {target:?}"))?;
    let mut headers = m.headers.clone();
    if header(&headers, "accept").is_none() {
        headers.push(("Accept".into(), ACCEPT.into()));
    }
    if header(&headers, "accept-encoding").is_none() {
        headers.push(("Accept-Encoding".into(), "gzip".into()));
    }
    headers.push((
        "X-Prometheus-Scrape-Timeout-Seconds".into(),
        format!("{}", timeout.as_secs_f64()),
    ));
    let host_override = header(&m.headers, "host");
    let server_name = m
        .client
        .tls
        .server_name
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| host.clone());
    let mut st = HttpState::default();
    let ex = Exchange {
        method: http::Method::GET,
        url,
        host_header: host_override.unwrap_or(authority),
        headers: &headers,
        body: Bytes::new(),
        client: &m.client,
        server_name,
        user_agent: &p.scrape_user_agent,
    };
    let fin = execute(ctx, p, &mut st, ex, ip).await?;
    let status = fin.resp.status();
    ctx.status_code = Some(status.as_u16());
    if status != http::StatusCode::OK {
        return Err(format!("server returned HTTP status {status}"));
    }
    let gzip = fin
        .resp
        .headers()
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let ctype = fin
        .resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if ctype.starts_with("application/vnd.google.protobuf")
        || ctype.starts_with("application/openmetrics-text")
    {
        return Err(format!(
            "unsupported exposition content type {ctype:?}: Argus scrapes the text format 0.0.4"
        ));
    }
    let body = read_body(
        fin.resp.into_body(),
        gzip.then_some(Compression::Gzip),
        m.body_size_limit,
        true,
    )
    .await;
    if body.exceeded {
        return Err(format!(
            "body size limit exceeded ({} bytes)",
            m.body_size_limit
        ));
    }
    if let Some(e) = body.error {
        return Err(format!("reading response body: {e}"));
    }
    let families = argus_expfmt::parse_text_bytes(&body.kept).map_err(|e| {
        format!(
            "invalid exposition text from {target}: line {}: {}",
            e.line, e.msg
        )
    })?;
    let samples: usize = families.iter().map(|f| argus_expfmt::series(f).len()).sum();
    if m.sample_limit > 0 && samples > m.sample_limit {
        return Err(format!(
            "sample limit exceeded: {samples} > {}",
            m.sample_limit
        ));
    }
    ctx.info(
        "Scrape succeeded",
        &[("samples", &samples), ("bytes", &body.bytes)],
    );
    Ok(Scraped { families, samples })
}
