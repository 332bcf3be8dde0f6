//! Alertmanager's v2 HTTP API over [`Notifier`], as plain `http` types so the same code
//! serves a Lambda function URL and the local server of `argus dev`.

use crate::alert::StoredAlert;
use crate::matcher::{parse_matchers, Matcher};
use crate::service::{Notifier, NotifyError};
use crate::silence::{gettable, PostableSilence, Silence, SilenceState};
use argus_model::time::rfc3339;
use argus_model::{Alert, Labels, Millis};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

fn respond(status: StatusCode, ctype: &str, body: impl Into<Bytes>) -> Response<Bytes> {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(ctype) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

fn json_resp(status: StatusCode, v: &Value) -> Response<Bytes> {
    respond(
        status,
        "application/json",
        serde_json::to_vec(v).unwrap_or_default(),
    )
}

/// Errors are a JSON string, as Alertmanager's v2 API returns them.
fn error(status: StatusCode, msg: impl Into<String>) -> Response<Bytes> {
    json_resp(status, &Value::String(msg.into()))
}

fn store_error(e: NotifyError) -> Response<Bytes> {
    match e {
        NotifyError::SilenceNotFound(id) => {
            error(StatusCode::NOT_FOUND, format!("silence {id} not found"))
        }
        NotifyError::Silence(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
        e if e.is_retryable() => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        e => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn query_params(uri: &http::Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

fn bool_param(params: &[(String, String)], name: &str, default: bool) -> Result<bool, String> {
    match params.iter().find(|(k, _)| k == name) {
        None => Ok(default),
        Some((_, v)) => match v.as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            other => Err(format!("parameter {name}: {other:?} is not a boolean")),
        },
    }
}

fn filters(params: &[(String, String)]) -> Result<Vec<Matcher>, String> {
    let mut out = Vec::new();
    for (k, v) in params {
        if k == "filter" {
            out.extend(parse_matchers(v).map_err(|e| format!("parameter filter: {e}"))?);
        }
    }
    Ok(out)
}

fn parse_time(field: &str, s: &str) -> Result<Millis, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{field}: invalid time {s:?}: {e}"))
}

impl Notifier {
    /// Serves one request of Alertmanager's v2 API (plus `/-/healthy`, `/-/ready`).
    pub async fn handle_api(&self, req: Request<Bytes>, now: Millis) -> Response<Bytes> {
        let path = req.uri().path().trim_end_matches('/').to_string();
        let method = req.method().clone();
        if matches!(method, Method::GET | Method::HEAD)
            && matches!(path.as_str(), "/-/healthy" | "/-/ready")
        {
            return respond(StatusCode::OK, "text/plain; charset=utf-8", "OK");
        }
        if let Some(token) = &self.options().api_token {
            let ok = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|t| constant_time_eq(t.trim().as_bytes(), token.as_bytes()));
            if !ok {
                let mut r = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
                r.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer"),
                );
                return r;
            }
        }
        let params = query_params(req.uri());
        match (method, path.as_str()) {
            (Method::POST, "/api/v2/alerts" | "/api/v1/alerts") => {
                self.api_post_alerts(req.body(), now).await
            }
            (Method::GET, "/api/v2/alerts") => self.api_get_alerts(&params, now).await,
            (Method::GET, "/api/v2/silences") => self.api_get_silences(&params, now).await,
            (Method::POST, "/api/v2/silences") => self.api_post_silence(req.body(), now).await,
            (Method::GET, p) if p.starts_with("/api/v2/silence/") => {
                let id = &p["/api/v2/silence/".len()..];
                match self.silence(id, now).await {
                    Ok(Some(s)) => json_resp(StatusCode::OK, &gettable(&s, now)),
                    Ok(None) => error(StatusCode::NOT_FOUND, format!("silence {id} not found")),
                    Err(e) => store_error(e),
                }
            }
            (Method::DELETE, p) if p.starts_with("/api/v2/silence/") => {
                let id = &p["/api/v2/silence/".len()..];
                match self.expire_silence(id, now).await {
                    Ok(()) => respond(StatusCode::OK, "application/json", ""),
                    Err(e) => store_error(e),
                }
            }
            (Method::GET, "/api/v2/status") => self.api_status(),
            (Method::GET, "/metrics") => respond(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics_text(),
            ),
            (Method::GET, "/api/v2/receivers") => {
                let v: Vec<Value> = self
                    .config()
                    .receivers
                    .iter()
                    .map(|r| json!({"name": r.name}))
                    .collect();
                json_resp(StatusCode::OK, &Value::Array(v))
            }
            (_, p) if p.starts_with("/api/") => {
                error(StatusCode::NOT_FOUND, format!("no such endpoint: {p}"))
            }
            _ => respond(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "404 page not found\n",
            ),
        }
    }

    /// The delivery counters of this process, in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let s = self.stats();
        let mut out = String::new();
        for (name, help, v) in [
            ("argus_notifier_notifications_total", "Notifications sent.", s.sent),
            ("argus_notifier_notifications_failed_total", "Notifications that failed after their retries.", s.failed),
            ("argus_notifier_possible_duplicates_total", "Notifications sent while an earlier attempt was unconfirmed (a crash mid-send, a timeout): the receiver may have them twice.", s.possible_duplicates),
            ("argus_notifier_claims_taken_over_total", "Claims of crashed or stopped senders taken over.", s.taken_over),
            ("argus_notifier_nflog_unreadable_total", "Notification-log entries that could not be read (corrupt or unknown record version); nothing is sent for them.", s.unreadable),
        ] {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"));
        }
        let name = "argus_notifier_rounds_total";
        out.push_str(&format!("# HELP {name} Rounds that loaded the store: every group and alert (full: ticks, periodic dispatch rounds), or only the groups ingests made due (woken).\n# TYPE {name} counter\n"));
        out.push_str(&format!(
            "{name}{{kind=\"full\"}} {}\n{name}{{kind=\"woken\"}} {}\n",
            s.rounds_full, s.rounds_woken
        ));
        let name = "argus_notifier_records_unreadable_total";
        out.push_str(&format!("# HELP {name} Stored alerts, aggregation groups and silences that could not be read (corrupt or unknown record version), each time one was met; they are reported, never replaced.\n# TYPE {name} counter\n"));
        for (kind, v) in self.unreadable_records() {
            out.push_str(&format!("{name}{{record=\"{}\"}} {v}\n", kind.as_str()));
        }
        out
    }

    async fn api_post_alerts(&self, body: &Bytes, now: Millis) -> Response<Bytes> {
        let alerts: Vec<Alert> = match serde_json::from_slice(body) {
            Ok(a) => a,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid alerts JSON: {e}")),
        };
        match self.ingest(alerts, now).await {
            Ok(r) if r.rejected.is_empty() => respond(StatusCode::OK, "application/json", ""),
            Ok(r) => {
                let msgs: Vec<String> = r.rejected.iter().map(|e| e.to_string()).collect();
                error(StatusCode::BAD_REQUEST, msgs.join("; "))
            }
            Err(e) => store_error(e),
        }
    }

    async fn api_get_alerts(&self, params: &[(String, String)], now: Millis) -> Response<Bytes> {
        let flags = (|| -> Result<_, String> {
            Ok((
                bool_param(params, "active", true)?,
                bool_param(params, "silenced", true)?,
                bool_param(params, "inhibited", true)?,
                bool_param(params, "unprocessed", true)?,
            ))
        })();
        let (active, silenced, inhibited, _unprocessed) = match flags {
            Ok(f) => f,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        };
        let filter = match filters(params) {
            Ok(f) => f,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        };
        let receiver_re = match params.iter().find(|(k, _)| k == "receiver") {
            Some((_, r)) => match regex::Regex::new(&format!("^(?:{r})$")) {
                Ok(re) => Some(re),
                Err(e) => {
                    return error(StatusCode::BAD_REQUEST, format!("parameter receiver: {e}"))
                }
            },
            None => None,
        };
        let (all, silences) = match (self.stored_alerts(now).await, self.silences(now).await) {
            (Ok(a), Ok(s)) => (a, s),
            (Err(e), _) | (_, Err(e)) => return store_error(e),
        };
        let mut out: Vec<(String, Value)> = Vec::new();
        for a in all.iter().filter(|a| !a.resolved(now)) {
            if !filter.iter().all(|m| m.matches(&a.labels)) {
                continue;
            }
            let receivers = self.receivers_of(&a.labels);
            if let Some(re) = &receiver_re {
                if !receivers.iter().any(|r| re.is_match(r)) {
                    continue;
                }
            }
            let (sil, inh) = self.mutes(a, &all, &silences, now);
            let is_active = sil.is_empty() && inh.is_empty();
            if (is_active && !active)
                || (!sil.is_empty() && !silenced)
                || (!inh.is_empty() && !inhibited)
            {
                continue;
            }
            let fp = a.labels.fingerprint_hex();
            out.push((fp.clone(), gettable_alert(a, &fp, &receivers, &sil, &inh)));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        json_resp(
            StatusCode::OK,
            &Value::Array(out.into_iter().map(|(_, v)| v).collect()),
        )
    }

    async fn api_get_silences(&self, params: &[(String, String)], now: Millis) -> Response<Bytes> {
        let filter = match filters(params) {
            Ok(f) => f,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        };
        let mut list = match self.silences(now).await {
            Ok(l) => l,
            Err(e) => return store_error(e),
        };
        list.retain(|s| {
            let ls: Labels = s
                .matchers
                .iter()
                .map(|m| (m.name.clone(), m.value.clone()))
                .collect();
            filter.iter().all(|m| m.matches(&ls))
        });
        // Alertmanager's order: active (ending first), pending (starting first), expired
        // (most recently ended first).
        list.sort_by(|a, b| {
            let rank = |s: &Silence| match s.state(now) {
                SilenceState::Active => 0,
                SilenceState::Pending => 1,
                SilenceState::Expired => 2,
            };
            rank(a).cmp(&rank(b)).then_with(|| match a.state(now) {
                SilenceState::Active => a.ends_at.cmp(&b.ends_at),
                SilenceState::Pending => a.starts_at.cmp(&b.starts_at),
                SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
            })
        });
        json_resp(
            StatusCode::OK,
            &Value::Array(list.iter().map(|s| gettable(s, now)).collect()),
        )
    }

    async fn api_post_silence(&self, body: &Bytes, now: Millis) -> Response<Bytes> {
        let p: PostableSilence = match serde_json::from_slice(body) {
            Ok(p) => p,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("invalid silence JSON: {e}"),
                )
            }
        };
        let times = parse_time("startsAt", &p.starts_at)
            .and_then(|s| parse_time("endsAt", &p.ends_at).map(|e| (s, e)));
        let (starts_at, ends_at) = match times {
            Ok(t) => t,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        };
        let s = Silence {
            id: p.id.unwrap_or_default(),
            matchers: p.matchers,
            starts_at,
            ends_at,
            updated_at: now,
            created_by: p.created_by,
            comment: p.comment,
        };
        match self.upsert_silence(s, now).await {
            Ok(id) => json_resp(StatusCode::OK, &json!({"silenceID": id})),
            Err(e) => store_error(e),
        }
    }

    fn api_status(&self) -> Response<Bytes> {
        let started =
            chrono::Utc::now() - chrono::Duration::from_std(self.uptime()).unwrap_or_default();
        json_resp(
            StatusCode::OK,
            &json!({
                "cluster": {"status": "disabled", "peers": []},
                "config": {"original": self.config().original},
                "uptime": started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "versionInfo": {
                    "branch": "argus",
                    "buildDate": "",
                    "buildUser": "argus",
                    "goVersion": "none (Rust)",
                    "revision": "",
                    "version": env!("CARGO_PKG_VERSION"),
                },
            }),
        )
    }
}

/// `gettableAlert`.
fn gettable_alert(
    a: &StoredAlert,
    fp: &str,
    receivers: &[String],
    silenced: &[String],
    inhibited: &[String],
) -> Value {
    let state = if silenced.is_empty() && inhibited.is_empty() {
        "active"
    } else {
        "suppressed"
    };
    let mut v = json!({
        "labels": a.labels,
        "annotations": a.annotations,
        "startsAt": rfc3339(a.starts_at),
        "endsAt": rfc3339(a.ends_at),
        "updatedAt": rfc3339(a.updated_at),
        "fingerprint": fp,
        "receivers": receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
        "status": {"state": state, "silencedBy": silenced, "inhibitedBy": inhibited},
    });
    if !a.generator_url.is_empty() {
        v["generatorURL"] = json!(a.generator_url);
    }
    v
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
