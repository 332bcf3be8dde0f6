//! `argus query`: instant or range queries through Prometheus' API, printed the way
//! `promtool query instant|range` prints them. The API is a running `argus dev`
//! (found through its link file when it holds the store), a URL (`--url`: dev or a
//! deployed query function, with `--token` or `--sigv4`), or, when nothing runs, the
//! same `QueryService` in process over the store.

use crate::stores::StoreArgs;
use anyhow::{bail, Context, Result};
use argus_model::{Clock, SystemClock};
use bytes::Bytes;
use serde_json::Value;
use std::path::Path;

pub struct QueryArgs {
    pub expr: String,
    pub time: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub step: Option<String>,
    pub url: Option<String>,
    pub token: Option<String>,
    pub sigv4: bool,
    pub region: Option<String>,
}

/// Seconds for the API: unix seconds or RFC 3339 as given, `now` when absent.
fn time_param(v: &Option<String>, now_ms: i64) -> Result<i64> {
    match v {
        None => Ok(now_ms),
        Some(s) => argus_query::parse_time(s).map_err(|e| anyhow::anyhow!("{s:?}: {e}")),
    }
}

fn secs(ms: i64) -> String {
    argus_promql::format_value_plain(ms as f64 / 1000.0)
}

/// The API path and query string of the request.
fn request_path(a: &QueryArgs, now: i64) -> Result<String> {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("query", &a.expr);
    let range = a.start.is_some() || a.end.is_some() || a.step.is_some();
    if !range {
        let t = time_param(&a.time, now).context("--time")?;
        q.append_pair("time", &secs(t));
        return Ok(format!("/api/v1/query?{}", q.finish()));
    }
    if a.time.is_some() {
        bail!("--time is for instant queries; give --start/--end/--step for a range");
    }
    // promtool's defaults: end now, start 5m before the end, step (end-start)/250.
    let end = time_param(&a.end, now).context("--end")?;
    let start = match &a.start {
        Some(_) => time_param(&a.start, now).context("--start")?,
        None => end - 5 * 60_000,
    };
    let step = match &a.step {
        Some(s) => s.clone(),
        None => {
            let s = ((end - start) / 1000 / 250).max(1);
            s.to_string()
        }
    };
    q.append_pair("start", &secs(start));
    q.append_pair("end", &secs(end));
    q.append_pair("step", &step);
    Ok(format!("/api/v1/query_range?{}", q.finish()))
}

pub async fn query(store: &StoreArgs, config: Option<&Path>, a: QueryArgs) -> Result<()> {
    let now = SystemClock.now_ms();
    let path = request_path(&a, now)?;
    let (status, body) = match &a.url {
        Some(url) => remote(url, &path, a.token.as_deref(), a.sigv4, a.region.clone()).await?,
        None => {
            if a.sigv4 {
                bail!("--sigv4 needs --url (a deployed query function URL)");
            }
            match local_or_dev(store, config, &path, now).await? {
                Ok(r) => r,
                Err(link) => remote(&link.url, &path, Some(&link.token), false, None).await?,
            }
        }
    };
    let v: Value = serde_json::from_slice(&body).with_context(|| {
        format!(
            "HTTP {status}: not a Prometheus API response: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(200)
                .collect::<String>()
        )
    })?;
    if v["status"] != "success" {
        bail!(
            "{}: {}",
            v["errorType"].as_str().unwrap_or("error"),
            v["error"].as_str().unwrap_or("")
        );
    }
    println!("{}", print_data(&v["data"]));
    Ok(())
}

/// In process over the store when it can be opened; the running dev's link when
/// dev holds it.
async fn local_or_dev(
    store: &StoreArgs,
    config: Option<&Path>,
    path: &str,
    now: i64,
) -> Result<std::result::Result<(u16, Bytes), argus_app::devlink::DevLink>> {
    let kv: std::sync::Arc<dyn argus_model::Kv> = if !store.aws && store.endpoint.is_none() {
        match argus_store::EmbeddedKv::open(store.embedded_path()) {
            Err(e) if crate::stores::is_locked(&e) => {
                if let Some(link) = store.running_dev() {
                    return Ok(Err(link));
                }
                return Err(e).context("the embedded store is held by another process");
            }
            Err(e) => return Err(e).context("opening the embedded store"),
            Ok(kv) => std::sync::Arc::new(kv),
        }
    } else {
        store.open().await?
    };
    let cfg = crate::cmds::load_config(config)?;
    let (svc, _) = argus_app::query::build_query(kv, &cfg, None)?;
    let req = http::Request::builder()
        .uri(path)
        .body(Bytes::new())
        .expect("valid request");
    let resp = svc.handle(req, now).await;
    Ok(Ok((resp.status().as_u16(), resp.into_body())))
}

async fn remote(
    base: &str,
    path: &str,
    token: Option<&str>,
    sigv4: bool,
    region: Option<String>,
) -> Result<(u16, Bytes)> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let mut req = http::Request::builder()
        .method("GET")
        .uri(&url)
        .body(Bytes::new())
        .with_context(|| format!("--url {base:?}"))?;
    if let Some(t) = token {
        req.headers_mut().insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_str(&format!("Bearer {t}")).context("--token")?,
        );
    }
    if sigv4 {
        sign(&mut req, region).await?;
    }
    let client = reqwest::Client::new();
    let mut rb = client.get(&url);
    for (k, v) in req.headers() {
        rb = rb.header(k, v);
    }
    let resp = rb.send().await.with_context(|| format!("GET {url}"))?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.context("reading the response")?;
    Ok((status, body))
}

/// Signs the request for a Lambda function URL with `AuthType: AWS_IAM` (service
/// `lambda`), with the usual AWS credential chain.
async fn sign(req: &mut http::Request<Bytes>, region: Option<String>) -> Result<()> {
    use aws_credential_types::provider::ProvideCredentials;
    let sdk = argus_store::aws_sdk_config().await;
    let region = region
        .or_else(|| sdk.region().map(|r| r.to_string()))
        .context("--sigv4: no region (give --region or set AWS_REGION)")?;
    let creds = sdk
        .credentials_provider()
        .context("--sigv4: no AWS credentials configured")?
        .provide_credentials()
        .await
        .context("--sigv4: loading AWS credentials")?;
    sign_with(req, &region, creds, std::time::SystemTime::now())
}

/// SigV4 for service `lambda` (what a function URL with `AWS_IAM` checks).
fn sign_with(
    req: &mut http::Request<Bytes>,
    region: &str,
    creds: aws_credential_types::Credentials,
    at: std::time::SystemTime,
) -> Result<()> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let identity = creds.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("lambda")
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .context("--sigv4: signing parameters")?
        .into();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let uri = req.uri().to_string();
    let signable = SignableRequest::new(
        req.method().as_str(),
        &uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&[]),
    )
    .context("--sigv4: request")?;
    let (instructions, _) = sign(signable, &params)
        .context("--sigv4: signing")?
        .into_parts();
    instructions.apply_to_request_http1x(req);
    Ok(())
}

/// promtool's output: `model.Value.String()` of the result.
pub fn print_data(data: &Value) -> String {
    let result = &data["result"];
    match data["resultType"].as_str() {
        Some("vector") => result
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| format!("{} => {}", metric(&s["metric"]), pair(&s["value"])))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default(),
        Some("matrix") => result
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| {
                        let vals: Vec<String> = s["values"]
                            .as_array()
                            .map(|v| v.iter().map(pair).collect())
                            .unwrap_or_default();
                        format!("{} =>\n{}", metric(&s["metric"]), vals.join("\n"))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default(),
        Some("scalar") => format!("scalar: {}", pair(result)),
        Some("string") => format!("{} @[{}]", result[1].as_str().unwrap_or(""), ts(&result[0])),
        _ => data.to_string(),
    }
}

fn ts(v: &Value) -> String {
    v.as_f64()
        .map(argus_promql::format_value_plain)
        .unwrap_or_default()
}

fn pair(p: &Value) -> String {
    let v = p[1]
        .as_str()
        .map(|s| match s {
            "NaN" => "NaN".to_string(),
            "+Inf" => "+Inf".to_string(),
            "-Inf" => "-Inf".to_string(),
            s => s
                .parse::<f64>()
                .map(argus_promql::format_value_plain)
                .unwrap_or_else(|_| s.to_string()),
        })
        .unwrap_or_default();
    format!("{v} @[{}]", ts(&p[0]))
}

/// `model.Metric.String()`: `name{a="x", b="y"}`, `{}` without labels.
fn metric(m: &Value) -> String {
    let Some(obj) = m.as_object() else {
        return "{}".into();
    };
    let name = obj.get("__name__").and_then(Value::as_str);
    let mut labels: Vec<String> = obj
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| {
            format!(
                "{k}={}",
                argus_template::gofmt::go_quote(v.as_str().unwrap_or(""))
            )
        })
        .collect();
    labels.sort();
    match (name, labels.is_empty()) {
        (Some(n), true) => n.to_string(),
        (None, true) => "{}".into(),
        (n, false) => format!("{}{{{}}}", n.unwrap_or(""), labels.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sigv4_signs_for_lambda_in_the_region() {
        let mut req = http::Request::builder()
            .uri("https://abc.lambda-url.eu-west-1.on.aws/api/v1/query?query=up")
            .body(Bytes::new())
            .unwrap();
        let creds =
            aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        sign_with(&mut req, "eu-west-1", creds, at).unwrap();
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/eu-west-1/lambda/aws4_request, SignedHeaders="),
            "{auth}"
        );
        assert_eq!(req.headers()["x-amz-date"], "20231114T221320Z");
        // Deterministic: the same request signs the same.
        let mut again = http::Request::builder()
            .uri("https://abc.lambda-url.eu-west-1.on.aws/api/v1/query?query=up")
            .body(Bytes::new())
            .unwrap();
        let creds =
            aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        sign_with(&mut again, "eu-west-1", creds, at).unwrap();
        assert_eq!(
            again.headers()["authorization"],
            req.headers()["authorization"]
        );
    }

    #[test]
    fn prints_like_promtool() {
        let v = json!({"resultType": "vector", "result": [
            {"metric": {"__name__": "up", "job": "a\"b", "instance": "x"}, "value": [1435781451.781, "1e+21"]},
            {"metric": {}, "value": [1435781451, "NaN"]}]});
        assert_eq!(
            print_data(&v),
            "up{instance=\"x\", job=\"a\\\"b\"} => 1000000000000000000000 @[1435781451.781]\n{} => NaN @[1435781451]"
        );
        let m = json!({"resultType": "matrix", "result": [
            {"metric": {"__name__": "up"}, "values": [[1, "1"], [2, "0.5"]]}]});
        assert_eq!(print_data(&m), "up =>\n1 @[1]\n0.5 @[2]");
        let s = json!({"resultType": "scalar", "result": [10, "2"]});
        assert_eq!(print_data(&s), "scalar: 2 @[10]");
    }
}
