//! argus-status: the results history (run items), its hourly and daily uptime rollups,
//! and the pages a person opens in a browser: the status page (`/`), one page per
//! target (`/target/<id>`), the alerts view (`/alerts`) and shields-style badges
//! (`/badge/<id>/status.svg`, `/badge/<id>/uptime/<24h|7d|30d>.svg`). See README.md.
//!
//! [`StatusPage::handle`] answers its own paths and returns `None` for any other, so a
//! router (the query function, `argus dev`'s query listener) mounts it as its fallback.

pub mod badge;
pub mod html;
pub mod ids;
pub mod results;
pub mod rollup;
pub mod view;

use argus_model::{Kv, Millis};
use argus_rules::RuleGroup;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// `status_page:` in argus.yml.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusConfig {
    /// Serve `/`, `/target/...` and badges without authentication (opt-in). Error
    /// texts, debug output, labels and alerts are then hidden, and only the targets
    /// picked by `targets` / `labels` are shown (all when both are empty).
    #[serde(default)]
    pub public: bool,
    /// Public mode: target ids to show.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Public mode: show targets having all these labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Title of the pages.
    #[serde(default)]
    pub title: Option<String>,
}

impl StatusConfig {
    /// Whether a target may be shown in public mode.
    pub fn shows(&self, t: &argus_model::Target) -> bool {
        if !self.public || (self.targets.is_empty() && self.labels.is_empty()) {
            return true;
        }
        self.targets.contains(&t.id)
            || (!self.labels.is_empty()
                && self
                    .labels
                    .iter()
                    .all(|(k, v)| t.labels.get(k).is_some_and(|x| x == v)))
    }
}

/// The pages over one store. Built once (cold start) with the rule groups the evaluator
/// runs (for the alerts view) and the bearer token the API requires (`None` when the
/// function URL's IAM auth or loopback-only `argus dev` protects it).
pub struct StatusPage {
    kv: Arc<dyn Kv>,
    cfg: StatusConfig,
    groups: Vec<(String, RuleGroup)>,
    bearer_token: Option<String>,
    /// Closed rollups decoded once per process (see [`view::RollupCache`]).
    cache: Arc<view::RollupCache>,
    /// Failing locations that make a round down (`None`: a majority).
    quorum: Option<usize>,
}

/// Who is asking: a private view shows everything; a public one hides details.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    Private,
    Public,
}

pub(crate) enum Route {
    Index,
    Alerts,
    Target(String),
    Badge(String, BadgeKind),
    Css,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadgeKind {
    Status,
    Uptime(&'static str),
}

/// A page's query parameters (only `refresh=<5..3600 seconds>` is accepted).
#[derive(Clone, Copy, Debug, Default)]
pub struct Params {
    pub refresh: Option<u32>,
}

fn parse_params(q: Option<&str>, allow_refresh: bool) -> Result<Params, String> {
    let mut p = Params::default();
    for pair in q.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "refresh" if allow_refresh => {
                let n: u32 = v
                    .parse()
                    .ok()
                    .filter(|n| (5..=3600).contains(n))
                    .ok_or_else(|| {
                        "query parameter `refresh` must be a number of seconds from 5 to 3600"
                            .to_string()
                    })?;
                if p.refresh.replace(n).is_some() {
                    return Err("query parameter `refresh` given twice".into());
                }
            }
            _ => {
                return Err(format!(
                    "unknown query parameter `{}`",
                    ids::decode(k).unwrap_or_else(|_| k.to_string())
                ))
            }
        }
    }
    Ok(p)
}

impl StatusPage {
    pub fn new(
        kv: Arc<dyn Kv>,
        cfg: StatusConfig,
        groups: Vec<(String, RuleGroup)>,
        bearer_token: Option<String>,
    ) -> StatusPage {
        StatusPage {
            kv,
            cfg,
            groups,
            bearer_token,
            cache: Arc::new(view::RollupCache::new(view::DEFAULT_CACHE_BYTES)),
            quorum: None,
        }
    }

    /// With the configured quorum (`quorum:` in argus.yml, when `locations:` is).
    pub fn with_quorum(mut self, quorum: Option<usize>) -> StatusPage {
        self.quorum = quorum;
        self
    }

    /// Sharing `cache` (pages over the same store), or a cache of another budget.
    pub fn with_cache(mut self, cache: Arc<view::RollupCache>) -> StatusPage {
        self.cache = cache;
        self
    }

    /// The rollup cache, for its statistics.
    pub fn cache(&self) -> &Arc<view::RollupCache> {
        &self.cache
    }

    pub fn config(&self) -> &StatusConfig {
        &self.cfg
    }

    fn route(path: &str) -> Option<Result<Route, String>> {
        Some(Ok(match path {
            "/" => Route::Index,
            "/alerts" => Route::Alerts,
            "/static/status.css" => Route::Css,
            _ => {
                if let Some(enc) = path.strip_prefix("/target/") {
                    return Some(ids::decode(enc).map(Route::Target));
                }
                let rest = path.strip_prefix("/badge/")?;
                let (enc, kind) = rest.split_once('/')?;
                let kind = match kind {
                    "status.svg" => BadgeKind::Status,
                    "uptime/24h.svg" => BadgeKind::Uptime("24h"),
                    "uptime/7d.svg" => BadgeKind::Uptime("7d"),
                    "uptime/30d.svg" => BadgeKind::Uptime("30d"),
                    other => {
                        return Some(Err(format!(
                            "unknown badge `{other}`: use status.svg or uptime/<24h|7d|30d>.svg"
                        )))
                    }
                };
                return Some(ids::decode(enc).map(|id| Route::Badge(id, kind)));
            }
        }))
    }

    fn authorized(&self, req: &Request<Bytes>) -> bool {
        let Some(want) = &self.bearer_token else {
            return true;
        };
        let got = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        // Length-independent comparison of the bytes.
        got.len() == want.len()
            && got
                .bytes()
                .zip(want.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// Answers the status paths; `None` for any other path.
    pub async fn handle(&self, req: Request<Bytes>, now: Millis) -> Option<Response<Bytes>> {
        let route = Self::route(req.uri().path())?;
        let gzip = accepts_gzip(&req);
        let resp = self.answer(&req, route, now).await;
        Some(finish(resp, gzip, req.method() == Method::HEAD))
    }

    async fn answer(
        &self,
        req: &Request<Bytes>,
        route: Result<Route, String>,
        now: Millis,
    ) -> Response<Bytes> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = html::error_page(
                StatusCode::METHOD_NOT_ALLOWED,
                "These pages are read-only: use GET.",
            );
            r.headers_mut()
                .insert(header::ALLOW, http::HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        let route = match route {
            Ok(r) => r,
            Err(e) => return html::error_page(StatusCode::BAD_REQUEST, &e),
        };
        if let Route::Css = route {
            return html::stylesheet();
        }
        // A token holder (or, without a token, whoever reaches the URL: IAM or
        // loopback) sees everything; in public mode anyone else gets the public view.
        let has_token = self.bearer_token.is_some();
        let private = if has_token {
            self.authorized(req)
        } else {
            !self.cfg.public
        };
        let audience = match (private, self.cfg.public, &route) {
            (true, _, _) => Audience::Private,
            (false, true, Route::Alerts) if !has_token => {
                return html::error_page(
                    StatusCode::NOT_FOUND,
                    "The alerts page is not part of the public status page.",
                )
            }
            (false, true, r) if !matches!(r, Route::Alerts) => Audience::Public,
            _ => {
                let mut r = html::error_page(
                    StatusCode::UNAUTHORIZED,
                    "This page needs the API's bearer token (Authorization: Bearer ...).",
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer"),
                );
                return r;
            }
        };
        // Badges are images: no query parameters at all.
        let params = match parse_params(req.uri().query(), !matches!(route, Route::Badge(..))) {
            Ok(p) => p,
            Err(e) => return html::error_page(StatusCode::BAD_REQUEST, &e),
        };
        let ctx = html::Ctx {
            cfg: &self.cfg,
            audience,
            params,
            now,
            reading: view::Reading {
                cache: Some(&self.cache),
                quorum: self.quorum,
            },
        };
        let result = match route {
            Route::Index => html::index(self.kv.as_ref(), &ctx).await,
            Route::Target(id) => html::target(self.kv.as_ref(), &ctx, &id).await,
            Route::Alerts => html::alerts(self.kv.as_ref(), &ctx, &self.groups).await,
            Route::Badge(id, kind) => badge::badge(self.kv.as_ref(), &ctx, &id, kind).await,
            Route::Css => unreachable!("answered above"),
        };
        result.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "status page: store error");
            html::error_page(
                if e.is_retryable() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                },
                &format!("reading the store: {e}"),
            )
        })
    }
}

fn accepts_gzip(req: &Request<Bytes>) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.trim().split(';');
            parts.next().is_some_and(|n| n.trim() == "gzip")
                && !parts.any(|q| q.trim().replace(' ', "") == "q=0")
        })
}

/// Security headers, gzip for larger bodies, HEAD without a body.
fn finish(mut resp: Response<Bytes>, gzip: bool, head: bool) -> Response<Bytes> {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        http::HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::VARY,
        http::HeaderValue::from_static("Accept-Encoding"),
    );
    if gzip && resp.body().len() > 1024 {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        if enc.write_all(resp.body()).is_ok() {
            if let Ok(z) = enc.finish() {
                resp.headers_mut().insert(
                    header::CONTENT_ENCODING,
                    http::HeaderValue::from_static("gzip"),
                );
                *resp.body_mut() = Bytes::from(z);
            }
        }
    }
    if head {
        *resp.body_mut() = Bytes::new();
    }
    resp
}
