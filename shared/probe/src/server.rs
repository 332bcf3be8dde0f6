//! blackbox-compatible HTTP endpoint: `GET /probe?target=..&module=..[&debug=true]`.

use crate::config::Modules;
use crate::Prober;
use argus_model::{Clock, Millis};
use bytes::Bytes;
use http::{Response, StatusCode};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

fn text(status: StatusCode, ctype: &str, body: impl Into<Bytes>) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, ctype)
        .body(body.into())
        .unwrap_or_else(|_| Response::new(Bytes::new()))
}

/// blackbox's timeout rule: the Prometheus scrape-timeout header (default 120 s) minus
/// 0.5 s, capped by the module's timeout.
fn timeout_for(p: &Prober, m: &crate::Module, header: Option<f64>) -> Duration {
    let Some(h) = header else {
        return p.timeout_for(m);
    };
    let max = (if h > 0.0 { h } else { 120.0 }) - 0.5;
    let t = match m.timeout {
        Some(mt) if mt.as_secs_f64() < max || max < 0.0 => mt.as_secs_f64(),
        _ => max,
    };
    let t = if t.is_finite() {
        t.clamp(0.001, 3600.0)
    } else {
        3600.0
    };
    Duration::from_secs_f64(t)
}

pub(crate) async fn handle_probe(
    p: &Prober,
    query: &str,
    scrape_timeout: Option<f64>,
    modules: &Modules,
    now: Millis,
) -> Response<Bytes> {
    let q: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let module_name = get("module")
        .filter(|m| !m.is_empty())
        .unwrap_or("http_2xx");
    let Some(module) = modules.get(module_name) else {
        return text(
            StatusCode::BAD_REQUEST,
            "text/plain; charset=utf-8",
            format!("Unknown module \"{module_name}\"\n"),
        );
    };
    let Some(target) = get("target").filter(|t| !t.is_empty()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "text/plain; charset=utf-8",
            "Target parameter is missing\n",
        );
    };
    let mut module = module.clone();
    if let (Some(hostname), crate::ProbeKind::Http(h)) = (get("hostname"), &mut module.kind) {
        if let Some((_, v)) = h
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        {
            if v != hostname {
                return text(
                    StatusCode::BAD_REQUEST,
                    "text/plain; charset=utf-8",
                    format!("host header defined both in module configuration ({v}) and with URL-parameter 'hostname' ({hostname})\n"),
                );
            }
        }
        h.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("host"));
        h.headers.push(("Host".into(), hostname.to_string()));
    }
    let timeout = timeout_for(p, &module, scrape_timeout);
    let outcome = p.probe_with_timeout(target, &module, now, timeout).await;
    let metrics = outcome.text();
    if get("debug") == Some("true") {
        let config = serde_saphyr::to_string(&module.source)
            .unwrap_or_else(|e| format!("Error marshalling config: {e}\n"));
        let body = format!(
            "Logs for the probe:\n{}\n\n\n\nMetrics that would have been returned:\n{}\n\n\nModule configuration:\n{}",
            outcome.log.join("\n"),
            metrics,
            config
        );
        return text(StatusCode::OK, "text/plain", body);
    }
    text(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        metrics,
    )
}

/// The blackbox-compatible endpoint as a service for the shared HTTP edge
/// ([`argus_http`]): `/probe`, `/-/healthy`, `/-/ready` and a small index.
pub struct Endpoint {
    prober: Arc<Prober>,
    modules: Arc<Modules>,
}

impl Endpoint {
    pub fn new(prober: Arc<Prober>, modules: Arc<Modules>) -> Self {
        Endpoint { prober, modules }
    }
}

impl argus_http::Handler for Endpoint {
    fn handle(
        &self,
        req: http::Request<Bytes>,
        now: Millis,
    ) -> impl std::future::Future<Output = Response<Bytes>> + Send {
        route(&self.prober, &self.modules, req, now)
    }
}

/// Serves the endpoint on `listener` with the default [`argus_http::Limits`] until the
/// task is dropped/aborted, which also ends its open connections (as `argus dev` on
/// 127.0.0.1:9115).
pub async fn serve(
    prober: Arc<Prober>,
    modules: Arc<Modules>,
    listener: TcpListener,
    clock: Arc<dyn Clock>,
) {
    let ep = Arc::new(Endpoint::new(prober, modules));
    argus_http::serve(listener, ep, clock, argus_http::Limits::default()).await
}

async fn route(
    p: &Prober,
    modules: &Modules,
    req: http::Request<Bytes>,
    now: Millis,
) -> Response<Bytes> {
    match (req.method(), req.uri().path()) {
        (&http::Method::GET, "/probe") | (&http::Method::POST, "/probe") => {
            let header = req
                .headers()
                .get("X-Prometheus-Scrape-Timeout-Seconds")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().parse::<f64>());
            let header = match header {
                None => None,
                Some(Ok(v)) => Some(v),
                Some(Err(e)) => {
                    return text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "text/plain; charset=utf-8",
                        format!("Failed to parse timeout from Prometheus header: {e}\n"),
                    )
                }
            };
            handle_probe(p, req.uri().query().unwrap_or(""), header, modules, now).await
        }
        (_, "/-/healthy") | (_, "/-/ready") => text(StatusCode::OK, "text/plain; charset=utf-8", "Healthy"),
        (&http::Method::GET, "/") => text(
            StatusCode::OK,
            "text/html; charset=utf-8",
            "<html><head><title>Argus probe</title></head><body><h1>Argus probe (blackbox_exporter compatible)</h1><p><a href=\"probe?target=prometheus.io&module=http_2xx\">Probe prometheus.io for http_2xx</a></p><p><a href=\"probe?target=prometheus.io&module=http_2xx&debug=true\">Debug probe prometheus.io for http_2xx</a></p></body></html>",
        ),
        _ => text(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "404 page not found\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_timeout_header_rule() {
        let p = Prober::new(crate::ProberConfig::default());
        let mods =
            crate::config::load_modules("modules:\n  t:\n    prober: http\n    timeout: 3s\n")
                .unwrap();
        let plain = mods.get("http_2xx").unwrap();
        let t3 = mods.get("t").unwrap();
        assert_eq!(timeout_for(&p, plain, None), Duration::from_secs(10));
        assert_eq!(
            timeout_for(&p, plain, Some(5.0)),
            Duration::from_millis(4500)
        );
        assert_eq!(timeout_for(&p, t3, Some(10.0)), Duration::from_secs(3));
        assert_eq!(timeout_for(&p, t3, Some(2.0)), Duration::from_millis(1500));
        assert_eq!(
            timeout_for(&p, plain, Some(0.0)),
            Duration::from_millis(119_500)
        );
        // Absurd headers never panic.
        assert_eq!(
            timeout_for(&p, plain, Some(f64::INFINITY)),
            Duration::from_secs(3600)
        );
        assert_eq!(
            timeout_for(&p, plain, Some(f64::NAN)),
            Duration::from_millis(119_500)
        );
        assert_eq!(
            timeout_for(&p, plain, Some(1e300)),
            Duration::from_secs(3600)
        );
    }
}
