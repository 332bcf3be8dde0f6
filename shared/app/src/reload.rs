//! Configuration reload for a running process (`argus dev`): SIGHUP, `POST /-/reload`,
//! and file_sd files re-read when they change and every `refresh_interval`.
//!
//! [`Live`] holds the services built from the configuration ([`Services`]: probe,
//! evaluator, notifier) behind a lock and swaps them as a whole. A reload re-reads
//! argus.yml (through the `load` closure the caller gives, which applies its command
//! line overrides), the prometheus.yml it names, the rule files, the Alertmanager
//! configuration and the modules, and builds every new service before swapping: any
//! error keeps the running configuration, and says why (in the returned error, and as
//! `argus_config_last_reload_successful 0`). The store, and the gateway with the groups
//! pushed to it, are never rebuilt.
//!
//! Rule state lives in the store keyed by `<file name>/<group name>` (see
//! `evaluator`), so a reload keeps the state (pending `for` timers, firing alerts) of
//! every group that is still there; a group that was removed stops being evaluated.
//!
//! [`Live::handle`] serves `POST /-/reload` (and `PUT`, as Prometheus) and the two
//! gauges in the Prometheus text format; it can be mounted on any port (the query
//! port and the Alertmanager port in `argus dev`).

use crate::config::AppConfig;
use crate::evaluator::Evaluator;
use crate::pipeline::{self, Pipeline};
use crate::probe_svc::ProbeService;
use crate::promconfig::{self, Loaded};
use anyhow::Result;
use argus_model::{Kv, Millis};
use argus_notify::Notifier;
use argus_pushgw::Gateway;
use bytes::Bytes;
use std::sync::{Arc, Mutex, RwLock};

/// What a configuration builds; swapped as a whole by a reload.
pub struct Services {
    pub config: AppConfig,
    pub probe: Arc<ProbeService>,
    pub evaluator: Arc<Evaluator>,
    pub notifier: Arc<Notifier>,
    pub prometheus: Option<Loaded>,
    /// Problems found while building (a bad rule file...): reported, not fatal.
    pub warnings: Vec<String>,
}

/// The reload gauges, as Prometheus names them (with the `argus_` prefix).
#[derive(Clone, Debug, PartialEq)]
pub struct ReloadStatus {
    pub successful: bool,
    /// Unix seconds of the last successful (re)load.
    pub last_success_s: f64,
    pub last_error: Option<String>,
}

type LoadFn = dyn Fn() -> Result<AppConfig> + Send + Sync;

pub struct Live {
    kv: Arc<dyn Kv>,
    access: pipeline::StoreAccess,
    gateway: Arc<Gateway>,
    load: Box<LoadFn>,
    notifications_log: Option<String>,
    current: RwLock<Arc<Services>>,
    status: Mutex<ReloadStatus>,
    /// One reload at a time (SIGHUP and HTTP may race).
    busy: tokio::sync::Mutex<()>,
    token: Option<String>,
}

/// What a reload changed, for the log.
#[derive(Clone, Debug, Default)]
pub struct ReloadReport {
    pub rule_groups: Vec<String>,
    pub targets_written: usize,
    pub targets_removed: usize,
    pub warnings: Vec<String>,
}

impl std::fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "configuration reloaded: rule groups {}",
            if self.rule_groups.is_empty() {
                "(none)".to_string()
            } else {
                self.rule_groups.join(", ")
            }
        )?;
        if self.targets_written + self.targets_removed > 0 {
            write!(
                f,
                "; {} targets from the Prometheus config ({} removed)",
                self.targets_written, self.targets_removed
            )?;
        }
        for w in &self.warnings {
            write!(f, "\n    warning: {w}")?;
        }
        Ok(())
    }
}

async fn build_services(
    kv: &Arc<dyn Kv>,
    access: pipeline::StoreAccess,
    gateway: &Arc<Gateway>,
    mut config: AppConfig,
    notifications_log: Option<&str>,
) -> Result<Services> {
    let prometheus = promconfig::prepare(&mut config)?;
    let probe = Arc::new(pipeline::build_probe(kv.clone(), &config, gateway.clone())?);
    let (notifier, evaluator, warnings) = pipeline::build_alerting(
        kv,
        &config,
        access,
        gateway.clone(),
        None,
        notifications_log,
    )
    .await?;
    Ok(Services {
        config,
        probe,
        evaluator: Arc::new(evaluator),
        notifier,
        prometheus,
        warnings,
    })
}

impl Live {
    /// Takes over a running pipeline (its store and gateway are kept for good).
    /// `load` re-reads the configuration on each reload.
    pub fn new(
        p: &Pipeline,
        prometheus: Option<Loaded>,
        load: Box<LoadFn>,
        notifications_log: Option<String>,
        now: Millis,
    ) -> Live {
        let services = Services {
            config: p.config.clone(),
            probe: p.probe.clone(),
            evaluator: p.evaluator.clone(),
            notifier: p.notifier.clone(),
            prometheus,
            warnings: p.warnings.clone(),
        };
        Live {
            kv: p.kv.clone(),
            access: p.access,
            gateway: p.gateway.clone(),
            load,
            notifications_log,
            current: RwLock::new(Arc::new(services)),
            status: Mutex::new(ReloadStatus {
                successful: true,
                last_success_s: now as f64 / 1000.0,
                last_error: None,
            }),
            busy: tokio::sync::Mutex::new(()),
            token: None,
        }
    }

    /// Requires `Authorization: Bearer <token>` on `/-/reload`.
    pub fn with_token(mut self, token: Option<String>) -> Live {
        self.token = token;
        self
    }

    fn authorized(&self, req: &http::Request<Bytes>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        req.headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| {
                use sha2::Digest;
                // Compare digests: constant time in the token's content.
                sha2::Sha256::digest(t.trim().as_bytes()) == sha2::Sha256::digest(token.as_bytes())
            })
    }

    /// The services of the running configuration.
    pub fn current(&self) -> Arc<Services> {
        self.current.read().expect("reload lock").clone()
    }

    pub fn status(&self) -> ReloadStatus {
        self.status.lock().expect("status lock").clone()
    }

    /// Re-reads everything and swaps on success; on error the running configuration
    /// stays and the error says why.
    pub async fn reload(&self, now: Millis) -> Result<ReloadReport> {
        let _one = self.busy.lock().await;
        let res = self.try_reload().await;
        let mut st = self.status.lock().expect("status lock");
        match &res {
            Ok(_) => {
                st.successful = true;
                st.last_success_s = now as f64 / 1000.0;
                st.last_error = None;
            }
            Err(e) => {
                st.successful = false;
                st.last_error = Some(format!("{e:#}"));
            }
        }
        res
    }

    async fn try_reload(&self) -> Result<ReloadReport> {
        let config = (self.load)()?;
        let s = build_services(
            &self.kv,
            self.access,
            &self.gateway,
            config,
            self.notifications_log.as_deref(),
        )
        .await?;
        // At start a bad rule file is reported and left out; on a reload it keeps the
        // running configuration, as Prometheus's reload does.
        if !s.warnings.is_empty() {
            anyhow::bail!("{}", s.warnings.join("; "));
        }
        let mut report = ReloadReport {
            rule_groups: s.evaluator.groups().map(String::from).collect(),
            warnings: s.warnings.clone(),
            ..ReloadReport::default()
        };
        if let Some(l) = &s.prometheus {
            report.warnings.extend(
                promconfig::summary(l)
                    .into_iter()
                    .filter(|w| w.starts_with("warning:"))
                    .map(|w| w.trim_start_matches("warning: ").to_string()),
            );
        }
        // Targets last: the new services are built, so nothing below can fail halfway
        // for a reason of configuration.
        let targets = s.prometheus.as_ref().map(|l| l.plan.targets.clone());
        *self.current.write().expect("reload lock") = Arc::new(s);
        if let Some(t) = targets {
            let synced = promconfig::sync_targets(self.kv.as_ref(), &t).await?;
            report.targets_written = synced.written;
            report.targets_removed = synced.removed.len();
        }
        Ok(report)
    }

    /// Re-reads the file_sd files of the running prometheus.yml (their change or the
    /// refresh interval): the targets table follows, nothing else is rebuilt. `None`
    /// when the configuration has no prometheus.yml.
    pub async fn refresh_targets(&self) -> Option<Result<promconfig::Synced>> {
        let _one = self.busy.lock().await;
        let cur = self.current();
        let l = cur.prometheus.as_ref()?;
        let fresh = match l.refresh() {
            Ok(f) => f,
            Err(e) => return Some(Err(e)),
        };
        let res = promconfig::sync_targets(self.kv.as_ref(), &fresh.plan.targets).await;
        if res.is_ok() {
            let next = Services {
                config: cur.config.clone(),
                probe: cur.probe.clone(),
                evaluator: cur.evaluator.clone(),
                notifier: cur.notifier.clone(),
                prometheus: Some(fresh),
                warnings: cur.warnings.clone(),
            };
            *self.current.write().expect("reload lock") = Arc::new(next);
        }
        Some(res)
    }

    /// The two gauges in the text exposition format.
    pub fn metrics_text(&self) -> String {
        let st = self.status();
        format!(
            "# HELP argus_config_last_reload_successful Whether the last configuration reload attempt was successful.\n\
             # TYPE argus_config_last_reload_successful gauge\n\
             argus_config_last_reload_successful {}\n\
             # HELP argus_config_last_reload_success_timestamp_seconds Timestamp of the last successful configuration reload.\n\
             # TYPE argus_config_last_reload_success_timestamp_seconds gauge\n\
             argus_config_last_reload_success_timestamp_seconds {}\n",
            if st.successful { 1 } else { 0 },
            argus_expfmt_float(st.last_success_s)
        )
    }

    /// `POST`/`PUT /-/reload` → 200 or 500 with the reason (as Prometheus), behind the
    /// bearer token when one is set. Anything else: `None` (not ours).
    pub async fn handle(
        &self,
        req: &http::Request<Bytes>,
        now: Millis,
    ) -> Option<http::Response<Bytes>> {
        let path = req.uri().path().trim_end_matches('/');
        let text = |code: http::StatusCode, body: String| {
            http::Response::builder()
                .status(code)
                .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                .body(Bytes::from(body))
                .expect("static response")
        };
        match (req.method().as_str(), path) {
            (_, "/-/reload") if !self.authorized(req) => {
                let mut r = text(
                    http::StatusCode::UNAUTHORIZED,
                    "missing or wrong bearer token\n".into(),
                );
                r.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer"),
                );
                Some(r)
            }
            ("POST" | "PUT", "/-/reload") => Some(match self.reload(now).await {
                Ok(r) => text(http::StatusCode::OK, format!("{r}\n")),
                Err(e) => text(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    format!("failed to reload config: {e:#}\n"),
                ),
            }),
            (_, "/-/reload") => Some(text(
                http::StatusCode::METHOD_NOT_ALLOWED,
                "This endpoint requires a POST or PUT request.\n".into(),
            )),
            _ => None,
        }
    }
}

fn argus_expfmt_float(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The Alertmanager port of `argus dev`: `/-/reload`, `/metrics` (the notifier's, when
/// it has one, plus the reload gauges) and everything else to the running notifier.
/// The Alertmanager port with reload: `POST /-/reload` (and its gauges on `/metrics`)
/// answered here, the rest by the current notifier's API.
pub async fn handle_alertmanager(
    live: &Live,
    req: http::Request<Bytes>,
    now: Millis,
) -> http::Response<Bytes> {
    if let Some(r) = live.handle(&req, now).await {
        return r;
    }
    let metrics =
        req.method() == http::Method::GET && req.uri().path().trim_end_matches('/') == "/metrics";
    let r = live.current().notifier.handle_api(req, now).await;
    if !metrics {
        return r;
    }
    let mut text = if r.status().is_success() {
        String::from_utf8_lossy(r.body()).into_owned()
    } else {
        String::new()
    };
    text.push_str(&live.metrics_text());
    http::Response::builder()
        .header(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )
        .body(Bytes::from(text))
        .expect("static response")
}

/// The query port (`dev.query_listen`, :9090) with reload, as Prometheus serves it:
/// `POST /-/reload` (behind the same token as on the Alertmanager port), the reload
/// gauges on `GET /metrics` (the API has no `/metrics` of its own), the rest by `query`.
pub async fn handle_query<Q: argus_http::Handler>(
    live: &Live,
    query: &Q,
    req: http::Request<Bytes>,
    now: Millis,
) -> http::Response<Bytes> {
    if let Some(r) = live.handle(&req, now).await {
        return r;
    }
    if req.method() == http::Method::GET && req.uri().path().trim_end_matches('/') == "/metrics" {
        return http::Response::builder()
            .header(
                http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )
            .body(Bytes::from(live.metrics_text()))
            .expect("static response");
    }
    query.handle(req, now).await
}

/// The blackbox port (`dev.blackbox_listen`, :9115): `/probe` with the modules of the
/// running configuration (a reload that changes the modules file or the Prometheus
/// config's jobs takes effect at the next request), and `POST /-/reload` as
/// blackbox_exporter has it.
pub async fn handle_probe(
    live: &Live,
    req: http::Request<Bytes>,
    now: Millis,
) -> http::Response<Bytes> {
    if let Some(r) = live.handle(&req, now).await {
        return r;
    }
    let probe = live.current().probe.clone();
    let ep = argus_probe::Endpoint::new(probe.prober().clone(), probe.modules().clone());
    argus_http::Handler::handle(&ep, req, now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARGUS: &str = "rule_files: ['rules/*.yml']\n";
    const A: &str = "groups:\n  - name: a\n    rules:\n      - alert: Always\n        expr: vector(1) > 0\n        for: 1m\n";

    fn b(threshold: u32) -> String {
        format!("groups:\n  - name: b\n    rules:\n      - record: r\n        expr: vector({threshold})\n")
    }

    #[tokio::test]
    async fn reload_keeps_state_of_unchanged_groups_and_refuses_bad_files() {
        let dir = std::env::temp_dir().join(format!("argus-reload-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("rules")).unwrap();
        std::fs::write(dir.join("argus.yml"), ARGUS).unwrap();
        std::fs::write(dir.join("rules/a.yml"), A).unwrap();
        std::fs::write(dir.join("rules/b.yml"), b(1)).unwrap();
        let path = dir.join("argus.yml");
        let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open(dir.join("s.redb")).unwrap());
        let cfg = AppConfig::load(&path).unwrap();
        let p = Pipeline::build(kv, cfg, None).await.unwrap();
        let t0: Millis = 1_800_000_000_000;
        let load_path = path.clone();
        let live = Live::new(
            &p,
            None,
            Box::new(move || Ok(AppConfig::load(&load_path)?)),
            None,
            t0,
        )
        .with_token(Some("s3cret".into()));
        let r = live.current().evaluator.tick(t0).await.unwrap();
        assert_eq!(r.pending.len(), 1, "{r}");

        // Another group changes; group a's pending alert keeps its start time.
        std::fs::write(dir.join("rules/b.yml"), b(2)).unwrap();
        live.reload(t0 + 10_000).await.unwrap();
        assert!(live.status().successful);
        assert_eq!(live.status().last_success_s, (t0 + 10_000) as f64 / 1000.0);
        let r = live.current().evaluator.tick(t0 + 30_000).await.unwrap();
        assert_eq!((r.pending.len(), r.firing.len()), (1, 0), "{r}");
        let r = live.current().evaluator.tick(t0 + 61_000).await.unwrap();
        assert_eq!((r.pending.len(), r.firing.len()), (0, 1), "{r}");

        // A bad rule file: the running configuration stays, the gauge says so.
        std::fs::write(
            dir.join("rules/c.yml"),
            "groups:\n  - name: c\n    rules:\n      - alert: X\n        expr: sum(\n",
        )
        .unwrap();
        let e = live.reload(t0 + 70_000).await.unwrap_err().to_string();
        assert!(e.contains("c.yml") && e.contains("sum("), "{e}");
        let st = live.status();
        assert!(!st.successful && st.last_error.is_some());
        assert_eq!(st.last_success_s, (t0 + 10_000) as f64 / 1000.0);
        assert_eq!(
            live.current().evaluator.groups().collect::<Vec<_>>(),
            ["a.yml/a", "b.yml/b"]
        );
        let m = live.metrics_text();
        assert!(m.contains("argus_config_last_reload_successful 0\n"), "{m}");
        assert!(
            m.contains("argus_config_last_reload_success_timestamp_seconds 1800000010\n"),
            "{m}"
        );

        // Over HTTP: the token is required; the reason comes back with a 500.
        let req = |auth: Option<&str>| {
            let mut b = http::Request::builder().method("POST").uri("/-/reload");
            if let Some(a) = auth {
                b = b.header("authorization", a);
            }
            b.body(Bytes::new()).unwrap()
        };
        let r = live.handle(&req(None), t0 + 80_000).await.unwrap();
        assert_eq!(r.status(), 401);
        let r = live
            .handle(&req(Some("Bearer s3cret")), t0 + 80_000)
            .await
            .unwrap();
        assert_eq!(r.status(), 500);
        assert!(String::from_utf8_lossy(r.body()).contains("c.yml"));
        std::fs::remove_file(dir.join("rules/c.yml")).unwrap();
        let r = live
            .handle(&req(Some("Bearer s3cret")), t0 + 90_000)
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(live.status().successful);
        let get = http::Request::builder()
            .uri("/-/reload")
            .body(Bytes::new())
            .unwrap();
        assert_eq!(live.handle(&get, t0).await.unwrap().status(), 401);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod port_tests {
    use super::*;

    struct Api;
    impl argus_http::Handler for Api {
        fn handle(
            &self,
            req: http::Request<Bytes>,
            _now: Millis,
        ) -> impl std::future::Future<Output = http::Response<Bytes>> + Send {
            let body = format!("api {}", req.uri().path());
            async move { http::Response::new(Bytes::from(body)) }
        }
    }

    fn req(method: &str, uri: &str, token: Option<&str>) -> http::Request<Bytes> {
        let mut b = http::Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        b.body(Bytes::new()).unwrap()
    }

    fn body(r: &http::Response<Bytes>) -> String {
        String::from_utf8_lossy(r.body()).into_owned()
    }

    /// `POST /-/reload` on the query port (as Prometheus's :9090), behind the same token
    /// as the Alertmanager port's; the blackbox port's `/probe` then uses the reloaded
    /// modules, and takes `POST /-/reload` too (as blackbox_exporter).
    #[tokio::test]
    async fn query_port_reloads_and_probe_port_follows_the_modules() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("argus.yml"), "probe:\n  modules_file: modules.yml\n").unwrap();
        std::fs::write(
            d.join("modules.yml"),
            "modules:\n  tcp_old:\n    prober: tcp\n    timeout: 1s\n",
        )
        .unwrap();
        let path = d.join("argus.yml");
        let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open(d.join("s.redb")).unwrap());
        let cfg = AppConfig::load(&path).unwrap();
        let p = Pipeline::build(kv, cfg, None).await.unwrap();
        let lp = path.clone();
        let live = Live::new(
            &p,
            None,
            Box::new(move || Ok(AppConfig::load(&lp)?)),
            None,
            0,
        )
        .with_token(Some("t0ken".into()));
        // A closed loopback port: the probe fails fast, but the module is known.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let probe = |module: &str| {
            req(
                "GET",
                &format!("/probe?target=127.0.0.1:{port}&module={module}"),
                None,
            )
        };
        let r = handle_probe(&live, probe("tcp_new"), 1).await;
        assert_eq!(r.status(), 400, "{}", body(&r));
        assert!(
            body(&r).contains("Unknown module \"tcp_new\""),
            "{}",
            body(&r)
        );
        let r = handle_probe(&live, probe("tcp_old"), 1).await;
        assert_eq!(r.status(), 200);
        assert!(body(&r).contains("probe_success 0"), "{}", body(&r));

        std::fs::write(
            d.join("modules.yml"),
            "modules:\n  tcp_new:\n    prober: tcp\n    timeout: 1s\n",
        )
        .unwrap();
        // The query port: the API answers its own paths; reload needs the token.
        let r = handle_query(&live, &Api, req("GET", "/api/v1/query", None), 2).await;
        assert_eq!(body(&r), "api /api/v1/query");
        let r = handle_query(&live, &Api, req("POST", "/-/reload", None), 2).await;
        assert_eq!(r.status(), 401);
        let r = handle_query(&live, &Api, req("POST", "/-/reload", Some("wrong")), 2).await;
        assert_eq!(r.status(), 401);
        let r = handle_query(&live, &Api, req("POST", "/-/reload", Some("t0ken")), 3_000).await;
        assert_eq!(r.status(), 200, "{}", body(&r));
        let r = handle_probe(&live, probe("tcp_new"), 4).await;
        assert_eq!(r.status(), 200, "{}", body(&r));
        let r = handle_probe(&live, probe("tcp_old"), 4).await;
        assert_eq!(r.status(), 400, "the old module is gone: {}", body(&r));
        let m = handle_query(&live, &Api, req("GET", "/metrics", None), 5).await;
        assert!(
            body(&m).contains("argus_config_last_reload_successful 1\n")
                && body(&m).contains("argus_config_last_reload_success_timestamp_seconds 3\n"),
            "{}",
            body(&m)
        );

        // A bad modules file through the blackbox port: 500 with the reason, the
        // running modules stay.
        std::fs::write(d.join("modules.yml"), "modules:\n  x:\n    prober: nope\n").unwrap();
        let r = handle_probe(&live, req("POST", "/-/reload", None), 6).await;
        assert_eq!(r.status(), 401);
        let r = handle_probe(&live, req("POST", "/-/reload", Some("t0ken")), 6).await;
        assert_eq!(r.status(), 500, "{}", body(&r));
        assert!(body(&r).contains("nope"), "{}", body(&r));
        let r = handle_probe(&live, probe("tcp_new"), 7).await;
        assert_eq!(r.status(), 200);
        let m = handle_query(&live, &Api, req("GET", "/metrics", None), 8).await;
        assert!(body(&m).contains("argus_config_last_reload_successful 0\n"));
    }
}

#[cfg(test)]
mod file_sd_tests {
    use super::*;

    #[tokio::test]
    async fn file_sd_refresh_follows_the_files_and_keeps_a_bad_files_last_targets() {
        let dir = std::env::temp_dir().join(format!("argus-reload-sd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sd")).unwrap();
        std::fs::write(dir.join("argus.yml"), "prometheus_config: prometheus.yml\n").unwrap();
        std::fs::write(
            dir.join("prometheus.yml"),
            "scrape_configs:\n  - job_name: app\n    file_sd_configs: [{files: ['sd/*.json'], refresh_interval: 30s}]\n",
        )
        .unwrap();
        std::fs::write(dir.join("sd/a.json"), r#"[{"targets": ["127.0.0.1:1"]}]"#).unwrap();
        std::fs::write(dir.join("sd/b.json"), r#"[{"targets": ["127.0.0.1:2"]}]"#).unwrap();
        let path = dir.join("argus.yml");
        let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open(dir.join("s.redb")).unwrap());
        let mut cfg = AppConfig::load(&path).unwrap();
        let prom = promconfig::prepare(&mut cfg).unwrap();
        let p = Pipeline::build(kv.clone(), cfg, None).await.unwrap();
        let lp = path.clone();
        let live = Live::new(
            &p,
            prom,
            Box::new(move || Ok(AppConfig::load(&lp)?)),
            None,
            0,
        );
        assert_eq!(
            live.current()
                .prometheus
                .as_ref()
                .unwrap()
                .refresh_interval(),
            Some(std::time::Duration::from_secs(30))
        );
        let ids = || async {
            let (t, _) = crate::targets::load_all(kv.as_ref()).await.unwrap();
            t.into_iter().map(|t| t.id).collect::<Vec<_>>()
        };
        live.refresh_targets().await.unwrap().unwrap();
        assert_eq!(
            ids().await,
            ["prom:app/127.0.0.1:1", "prom:app/127.0.0.1:2"]
        );
        // b.json gets a second target, a.json breaks: a's last good target stays.
        std::fs::write(
            dir.join("sd/b.json"),
            r#"[{"targets": ["127.0.0.1:2", "127.0.0.1:3"]}]"#,
        )
        .unwrap();
        std::fs::write(dir.join("sd/a.json"), r#"[{"targets": ["#).unwrap();
        live.refresh_targets().await.unwrap().unwrap();
        assert_eq!(
            ids().await,
            [
                "prom:app/127.0.0.1:1",
                "prom:app/127.0.0.1:2",
                "prom:app/127.0.0.1:3"
            ]
        );
        let cur = live.current();
        let errs = &cur.prometheus.as_ref().unwrap().file_errors;
        assert!(
            errs.len() == 1 && errs[0].to_string().contains("a.json"),
            "{errs:?}"
        );
        // A file that goes away takes its targets with it.
        std::fs::remove_file(dir.join("sd/a.json")).unwrap();
        let s = live.refresh_targets().await.unwrap().unwrap();
        assert_eq!(s.removed, ["prom:app/127.0.0.1:1"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
