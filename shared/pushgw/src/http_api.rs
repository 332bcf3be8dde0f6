//! The HTTP API, framework-neutral: `http::Request<Bytes>` in, `http::Response<Bytes>` out.

use crate::group::GroupingKey;
use crate::{Gateway, GatewayError, WriteRequest};
use argus_model::Millis;
use base64::Engine;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use std::io::Read;

pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const TTL_HEADER: &str = "x-argus-ttl";

fn text(status: StatusCode, body: impl Into<String>) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("x-content-type-options", "nosniff")
        .body(Bytes::from(body.into()))
        .expect("static response parts are valid")
}

/// Go's `http.Error`: the message plus a newline.
fn error(status: StatusCode, msg: &str) -> Response<Bytes> {
    text(status, format!("{msg}\n"))
}

fn empty(status: StatusCode) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .body(Bytes::new())
        .expect("static response parts are valid")
}

fn json(body: &serde_json::Value) -> Response<Bytes> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(
            serde_json::to_vec(body).expect("JSON values serialize"),
        ))
        .expect("static response parts are valid")
}

fn method_not_allowed() -> Response<Bytes> {
    error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

fn not_found() -> Response<Bytes> {
    error(StatusCode::NOT_FOUND, "404 page not found")
}

/// Go's base64 error text for `RawURLEncoding.DecodeString`.
fn decode_base64(s: &str) -> Result<String, String> {
    let trimmed = s.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .map_err(|e| match e {
            base64::DecodeError::InvalidByte(i, _)
            | base64::DecodeError::InvalidLastSymbol(i, _) => {
                format!("illegal base64 data at input byte {i}")
            }
            _ => format!(
                "illegal base64 data at input byte {}",
                trimmed.len().saturating_sub(1)
            ),
        })?;
    String::from_utf8(bytes).map_err(|_| "decoded value is not valid UTF-8".to_string())
}

/// The original's `splitLabels` (`labels` starts with `/` or is empty).
fn split_labels(labels: &str) -> Result<GroupingKey, String> {
    let mut out = GroupingKey::new();
    if labels.len() <= 1 {
        return Ok(out);
    }
    let parts: Vec<&str> = labels.split('/').collect();
    if parts.len().is_multiple_of(2) {
        return Err(format!(
            "odd number of components in label string {labels:?}"
        ));
    }
    for pair in parts[1..].chunks(2) {
        let (name, value) = (pair[0], pair[1]);
        let trimmed = name.strip_suffix("@base64").unwrap_or(name);
        if !argus_expfmt::is_valid_label_name(trimmed) || trimmed.starts_with("__") {
            return Err(format!("improper label name {trimmed:?}"));
        }
        if trimmed.len() == name.len() {
            out.insert(name.to_string(), value.to_string());
        } else {
            let v = decode_base64(value).map_err(|e| {
                format!("invalid base64 encoding for label {trimmed}={value:?}: {e}")
            })?;
            out.insert(trimmed.to_string(), v);
        }
    }
    Ok(out)
}

fn is_delimited_protobuf(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let mut parts = ct.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    if media != "application/vnd.google.protobuf" {
        return false;
    }
    let (mut enc, mut proto) = (false, false);
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            let v = v.trim().trim_matches('"');
            match k.trim().to_ascii_lowercase().as_str() {
                "encoding" => enc = v == "delimited",
                "proto" => proto = v == "io.prometheus.client.MetricFamily",
                _ => {}
            }
        }
    }
    enc && proto
}

impl Gateway {
    fn authorized(&self, req: &Request<Bytes>) -> bool {
        let Some(token) = &self.cfg.auth_token else {
            return true;
        };
        let Some(given) = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        use subtle::ConstantTimeEq;
        given.as_bytes().ct_eq(token.as_bytes()).into()
    }

    /// Serves one request of the Pushgateway HTTP API at time `now`.
    pub async fn handle(&self, req: Request<Bytes>, now: Millis) -> Response<Bytes> {
        {
            let mut s = self.started_ms.lock().unwrap_or_else(|e| e.into_inner());
            s.get_or_insert(now);
        }
        let raw_path = req.uri().path().to_string();
        let path = percent_encoding::percent_decode_str(&raw_path)
            .decode_utf8_lossy()
            .into_owned();
        let method = req.method().clone();
        if path == "/-/healthy" || path == "/-/ready" {
            return match method {
                Method::GET | Method::HEAD => text(StatusCode::OK, "OK"),
                _ => method_not_allowed(),
            };
        }
        if !self.authorized(&req) {
            let mut r = error(StatusCode::UNAUTHORIZED, "Unauthorized");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
        let result = match path.as_str() {
            "/metrics" => match method {
                Method::GET | Method::HEAD => self.metrics_text(now).await.map(|body| {
                    Response::builder()
                        .status(StatusCode::OK)
                        .header(header::CONTENT_TYPE, TEXT_FORMAT)
                        .body(Bytes::from(body))
                        .expect("static response parts are valid")
                }),
                _ => Ok(method_not_allowed()),
            },
            "/api/v1/metrics" => match method {
                Method::GET => self.metrics_json(now).await.map(|v| json(&v)),
                _ => Ok(method_not_allowed()),
            },
            "/api/v1/status" => match method {
                Method::GET => Ok(json(&self.status_json())),
                _ => Ok(method_not_allowed()),
            },
            "/api/v1/admin/wipe" if self.cfg.enable_admin_api => match method {
                Method::PUT => self.wipe().await.map(|_| empty(StatusCode::ACCEPTED)),
                _ => Ok(method_not_allowed()),
            },
            p if p.starts_with("/metrics/job/") || p.starts_with("/metrics/job@base64/") => {
                self.handle_push(&req, p, now).await
            }
            _ => Ok(not_found()),
        };
        match result {
            Ok(r) => r,
            Err(e) => {
                if e.status().is_server_error() {
                    tracing::error!(error = %e, path = %raw_path, "pushgateway request failed");
                }
                error(e.status(), &e.to_string())
            }
        }
    }

    async fn handle_push(
        &self,
        req: &Request<Bytes>,
        path: &str,
        now: Millis,
    ) -> Result<Response<Bytes>, GatewayError> {
        let (b64, rest) = match path.strip_prefix("/metrics/job@base64/") {
            Some(r) => (true, r),
            None => (false, &path["/metrics/job/".len()..]),
        };
        let (job_raw, labels_str) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let replace = match *req.method() {
            Method::PUT => true,
            Method::POST => false,
            Method::DELETE => false,
            _ => return Ok(method_not_allowed()),
        };
        let job = if b64 {
            decode_base64(job_raw).map_err(|e| {
                GatewayError::BadRequest(format!(
                    "invalid base64 encoding in job name {:?}: {e}",
                    ""
                ))
            })?
        } else {
            job_raw.to_string()
        };
        if job.is_empty() {
            return Err(GatewayError::BadRequest("job name is required".into()));
        }
        let mut labels = split_labels(labels_str).map_err(GatewayError::BadRequest)?;
        labels.insert("job".into(), job);
        let ttl = match req.headers().get(TTL_HEADER) {
            None => None,
            Some(v) => {
                let s = v.to_str().unwrap_or("");
                Some(argus_model::time::parse_duration(s).map_err(|e| {
                    GatewayError::BadRequest(format!("invalid X-Argus-TTL header {s:?}: {e}"))
                })?)
            }
        };
        if *req.method() == Method::DELETE {
            self.push(
                WriteRequest {
                    labels,
                    families: None,
                    replace: true,
                    ttl,
                },
                now,
            )
            .await?;
            return Ok(empty(StatusCode::ACCEPTED));
        }
        let families = self.parse_body(req)?;
        self.push(
            WriteRequest {
                labels,
                families: Some(families),
                replace,
                ttl,
            },
            now,
        )
        .await?;
        Ok(empty(if self.cfg.consistency_check {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        }))
    }

    fn parse_body(
        &self,
        req: &Request<Bytes>,
    ) -> Result<Vec<argus_expfmt::MetricFamily>, GatewayError> {
        let limit = self.cfg.body_limit_bytes;
        let too_large =
            || GatewayError::TooLarge(format!("request body exceeds the limit of {limit} bytes"));
        let body = req.body();
        if body.len() > limit {
            return Err(too_large());
        }
        let gz = req
            .headers()
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
        let decompressed;
        let bytes: &[u8] = if gz {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    GatewayError::BadRequest(match e.kind() {
                        std::io::ErrorKind::UnexpectedEof => "unexpected EOF".to_string(),
                        _ => format!("gzip: {e}"),
                    })
                })?;
            if out.len() > limit {
                return Err(too_large());
            }
            decompressed = out;
            &decompressed
        } else {
            body
        };
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if is_delimited_protobuf(ct) {
            argus_expfmt::decode_delimited(bytes)
                .map_err(|e| GatewayError::BadRequest(e.to_string()))
        } else {
            argus_expfmt::parse_text_bytes(bytes)
                .map_err(|e| GatewayError::BadRequest(e.to_string()))
        }
    }

    fn status_json(&self) -> serde_json::Value {
        let started = self
            .started_ms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or(0);
        serde_json::json!({
            "status": "success",
            "data": {
                "build_information": {
                    "version": env!("CARGO_PKG_VERSION"),
                    "branch": "",
                    "revision": "",
                    "buildUser": "",
                    "buildDate": "",
                    "goVersion": "",
                    "implementation": "argus-pushgw",
                },
                "flags": {
                    "push.disable-consistency-check": (!self.cfg.consistency_check).to_string(),
                    "web.enable-admin-api": self.cfg.enable_admin_api.to_string(),
                    "argus.auth": if self.cfg.auth_token.is_some() { "bearer" } else { "none" },
                    "argus.body-limit-bytes": self.cfg.body_limit_bytes.to_string(),
                    "argus.max-series-per-group": self.cfg.max_series_per_group.to_string(),
                },
                "start_time": crate::gateway::rfc3339_nano(started),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_labels_like_the_original() {
        assert!(split_labels("").unwrap().is_empty());
        assert!(split_labels("/").unwrap().is_empty());
        assert_eq!(
            split_labels("/a").unwrap_err(),
            "odd number of components in label string \"/a\""
        );
        let k = split_labels("/a/").unwrap();
        assert_eq!(k.get("a").map(String::as_str), Some(""));
        let k = split_labels("/path@base64/L3Zhci90bXA=/instance@base64/=").unwrap();
        assert_eq!(k.get("path").map(String::as_str), Some("/var/tmp"));
        assert_eq!(k.get("instance").map(String::as_str), Some(""));
        assert_eq!(
            split_labels("/__a/b").unwrap_err(),
            "improper label name \"__a\""
        );
        assert!(split_labels("/a@base64/!!")
            .unwrap_err()
            .starts_with("invalid base64 encoding for label a=\"!!\""));
    }

    #[test]
    fn content_type_detection() {
        assert!(is_delimited_protobuf(Some(
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
        )));
        assert!(!is_delimited_protobuf(Some(
            "application/vnd.google.protobuf; encoding=delimited"
        )));
        assert!(!is_delimited_protobuf(Some("text/plain")));
        assert!(!is_delimited_protobuf(None));
    }
}
