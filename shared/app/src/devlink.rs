//! The CLI's way into a running `argus dev`. redb locks its file to one process, so
//! while `argus dev` runs the CLI cannot open the store. Dev then serves the store's
//! six `Kv` operations on its query port at [`KV_PATH`] (loopback only), behind a
//! bearer token it writes with the URL to `<data_dir>/dev-api.json` (mode 0600) and
//! removes at exit. The CLI, finding the store locked, reads that file and uses
//! [`RemoteKv`], the same `Kv` port over HTTP: every command (targets, silences,
//! alerts) then runs unchanged against the live store, with the same conditional
//! semantics, and a target added is seen by the next probe run.
//!
//! One generic route instead of one per command: the commands already are thin
//! layers over `Kv`, so this adds no second implementation of any of them.

use argus_model::{Cond, Item, Kv, StoreError, Table};
use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The admin route on the query port (dev only).
pub const KV_PATH: &str = "/-/argus/kv";
/// The file `argus dev` writes in its data directory.
pub const LINK_FILE: &str = "dev-api.json";

/// What the CLI needs to reach a running dev.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DevLink {
    /// Base URL of the query API, e.g. `http://127.0.0.1:9090`.
    pub url: String,
    pub token: String,
}

impl DevLink {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(LINK_FILE)
    }

    /// A fresh random token for `url`.
    pub fn generate(url: String) -> DevLink {
        let bytes: [u8; 32] = rand::random();
        DevLink {
            url,
            token: bytes.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }

    /// Writes the file readable by its owner only.
    pub fn write(&self, data_dir: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let p = Self::path(data_dir);
        let _ = std::fs::remove_file(&p);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&p)?;
        f.write_all(serde_json::to_string(self)?.as_bytes())
    }

    pub fn read(data_dir: &Path) -> std::io::Result<DevLink> {
        let text = std::fs::read_to_string(Self::path(data_dir))?;
        serde_json::from_str(&text)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}

#[derive(Serialize, Deserialize)]
struct WireItem {
    pk: String,
    #[serde(default)]
    sk: String,
    #[serde(default)]
    attrs: serde_json::Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(default)]
    version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

impl WireItem {
    fn from_item(i: Item) -> WireItem {
        WireItem {
            pk: i.pk,
            sk: i.sk,
            attrs: i.attrs,
            data: i
                .data
                .map(|d| base64::engine::general_purpose::STANDARD.encode(d)),
            version: i.version,
            expires_at: i.expires_at.map(|t| t.0),
        }
    }
    fn into_item(self) -> Result<Item, String> {
        Ok(Item {
            pk: self.pk,
            sk: self.sk,
            attrs: self.attrs,
            data: match self.data {
                None => None,
                Some(d) => Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(d)
                        .map_err(|e| format!("item data: {e}"))?,
                ),
            },
            version: self.version,
            expires_at: self.expires_at.map(argus_model::UnixSecs),
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Get {
        table: String,
        pk: String,
        sk: String,
    },
    Put {
        table: String,
        item: WireItem,
        cond: WireCond,
    },
    PutBatch {
        table: String,
        items: Vec<WireItem>,
    },
    Delete {
        table: String,
        pk: String,
        sk: String,
        cond: WireCond,
    },
    Query {
        table: String,
        pk: String,
        sk_from: Option<String>,
    },
    Scan {
        table: String,
    },
}

#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum WireCond {
    Always,
    NotExists,
    Version(u64),
}

impl From<Cond> for WireCond {
    fn from(c: Cond) -> Self {
        match c {
            Cond::Always => WireCond::Always,
            Cond::NotExists => WireCond::NotExists,
            Cond::Version(v) => WireCond::Version(v),
        }
    }
}

impl From<WireCond> for Cond {
    fn from(c: WireCond) -> Self {
        match c {
            WireCond::Always => Cond::Always,
            WireCond::NotExists => Cond::NotExists,
            WireCond::Version(v) => Cond::Version(v),
        }
    }
}

fn table(name: &str) -> Result<Table, String> {
    Table::ALL
        .into_iter()
        .find(|t| t.name() == name)
        .ok_or_else(|| format!("unknown table {name:?}"))
}

fn respond(status: http::StatusCode, body: Value) -> http::Response<Bytes> {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(body.to_string()))
        .expect("static response parts are valid")
}

fn store_error_json(e: &StoreError) -> Value {
    let kind = match e {
        StoreError::Conflict(_) => "conflict",
        StoreError::Transient(_) => "transient",
        StoreError::Permanent(_) => "permanent",
    };
    let msg = match e {
        StoreError::Conflict(m) | StoreError::Transient(m) | StoreError::Permanent(m) => m,
    };
    json!({"error": kind, "message": msg})
}

/// Serves one [`KV_PATH`] request against `kv` (POST, bearer `token`).
pub async fn handle_kv(
    kv: &dyn Kv,
    token: &str,
    req: http::Request<Bytes>,
) -> http::Response<Bytes> {
    let got = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    use subtle::ConstantTimeEq;
    if got.len() != token.len() || !bool::from(got.as_bytes().ct_eq(token.as_bytes())) {
        return respond(
            http::StatusCode::UNAUTHORIZED,
            json!({"error": "unauthorized", "message": "missing or wrong bearer token"}),
        );
    }
    if req.method() != http::Method::POST {
        return respond(
            http::StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "bad_request", "message": "POST only"}),
        );
    }
    let parsed: Request = match serde_json::from_slice(req.body()) {
        Ok(r) => r,
        Err(e) => {
            return respond(
                http::StatusCode::BAD_REQUEST,
                json!({"error": "bad_request", "message": e.to_string()}),
            )
        }
    };
    let bad = |m: String| {
        respond(
            http::StatusCode::BAD_REQUEST,
            json!({"error": "bad_request", "message": m}),
        )
    };
    let result: Result<Value, StoreError> = match parsed {
        Request::Get { table: t, pk, sk } => match table(&t) {
            Err(m) => return bad(m),
            Ok(t) => kv
                .get(t, &pk, &sk)
                .await
                .map(|i| json!({"item": i.map(WireItem::from_item)})),
        },
        Request::Put { table: t, item, cond } => {
            let (t, item) = match (table(&t), item.into_item()) {
                (Ok(t), Ok(i)) => (t, i),
                (Err(m), _) | (_, Err(m)) => return bad(m),
            };
            kv.put(t, item, cond.into())
                .await
                .map(|v| json!({"version": v}))
        }
        Request::PutBatch { table: t, items } => {
            let t = match table(&t) {
                Ok(t) => t,
                Err(m) => return bad(m),
            };
            let items: Result<Vec<Item>, String> =
                items.into_iter().map(WireItem::into_item).collect();
            match items {
                Err(m) => return bad(m),
                Ok(items) => kv.put_batch(t, items).await.map(|_| json!({})),
            }
        }
        Request::Delete {
            table: t,
            pk,
            sk,
            cond,
        } => match table(&t) {
            Err(m) => return bad(m),
            Ok(t) => kv.delete(t, &pk, &sk, cond.into()).await.map(|_| json!({})),
        },
        Request::Query {
            table: t,
            pk,
            sk_from,
        } => match table(&t) {
            Err(m) => return bad(m),
            Ok(t) => kv.query(t, &pk, sk_from.as_deref()).await.map(|items| {
                json!({"items": items.into_iter().map(WireItem::from_item).collect::<Vec<_>>()})
            }),
        },
        Request::Scan { table: t } => match table(&t) {
            Err(m) => return bad(m),
            Ok(t) => kv.scan(t).await.map(|items| {
                json!({"items": items.into_iter().map(WireItem::from_item).collect::<Vec<_>>()})
            }),
        },
    };
    match result {
        Ok(v) => respond(http::StatusCode::OK, v),
        Err(e) => respond(http::StatusCode::CONFLICT, store_error_json(&e)),
    }
}

/// The `Kv` port of a running `argus dev`, over HTTP.
pub struct RemoteKv {
    link: DevLink,
    http: reqwest::Client,
}

impl RemoteKv {
    pub fn new(link: DevLink) -> Arc<RemoteKv> {
        Arc::new(RemoteKv {
            link,
            http: reqwest::Client::new(),
        })
    }

    async fn call(&self, req: Request) -> Result<Value, StoreError> {
        let url = format!("{}{KV_PATH}", self.link.url.trim_end_matches('/'));
        let resp = self
            .http
            .post(&url)
            .bearer_auth(&self.link.token)
            .json(&req)
            .send()
            .await
            .map_err(|e| StoreError::Transient(format!("the running `argus dev` at {url}: {e}")))?;
        let status = resp.status();
        let body: Value = resp
            .json()
            .await
            .map_err(|e| StoreError::Transient(format!("the running `argus dev`: {e}")))?;
        if status.is_success() {
            return Ok(body);
        }
        let msg = body["message"].as_str().unwrap_or("").to_string();
        Err(match body["error"].as_str() {
            Some("conflict") => StoreError::Conflict(msg),
            Some("transient") => StoreError::Transient(msg),
            _ => StoreError::Permanent(format!("the running `argus dev` ({status}): {msg}")),
        })
    }

    fn items(v: Value) -> Result<Vec<Item>, StoreError> {
        let wire: Vec<WireItem> = serde_json::from_value(v["items"].clone())
            .map_err(|e| StoreError::Permanent(format!("the running `argus dev`: {e}")))?;
        wire.into_iter()
            .map(|w| w.into_item().map_err(StoreError::Permanent))
            .collect()
    }
}

#[async_trait]
impl Kv for RemoteKv {
    async fn get(&self, t: Table, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let v = self
            .call(Request::Get {
                table: t.name().into(),
                pk: pk.into(),
                sk: sk.into(),
            })
            .await?;
        let w: Option<WireItem> = serde_json::from_value(v["item"].clone())
            .map_err(|e| StoreError::Permanent(format!("the running `argus dev`: {e}")))?;
        w.map(|w| w.into_item().map_err(StoreError::Permanent))
            .transpose()
    }

    async fn put(&self, t: Table, item: Item, cond: Cond) -> Result<u64, StoreError> {
        let v = self
            .call(Request::Put {
                table: t.name().into(),
                item: WireItem::from_item(item),
                cond: cond.into(),
            })
            .await?;
        Ok(v["version"].as_u64().unwrap_or(0))
    }

    async fn put_batch(&self, t: Table, items: Vec<Item>) -> Result<(), StoreError> {
        self.call(Request::PutBatch {
            table: t.name().into(),
            items: items.into_iter().map(WireItem::from_item).collect(),
        })
        .await
        .map(|_| ())
    }

    async fn delete(&self, t: Table, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        self.call(Request::Delete {
            table: t.name().into(),
            pk: pk.into(),
            sk: sk.into(),
            cond: cond.into(),
        })
        .await
        .map(|_| ())
    }

    async fn query(
        &self,
        t: Table,
        pk: &str,
        sk_from: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let v = self
            .call(Request::Query {
                table: t.name().into(),
                pk: pk.into(),
                sk_from: sk_from.map(str::to_string),
            })
            .await?;
        Self::items(v)
    }

    async fn scan(&self, t: Table) -> Result<Vec<Item>, StoreError> {
        let v = self
            .call(Request::Scan {
                table: t.name().into(),
            })
            .await?;
        Self::items(v)
    }
}

/// The query service's fallback in `argus dev`: [`KV_PATH`] against `kv`, then `next`
/// (the status page, when mounted), else 404.
pub fn fallback(
    kv: Arc<dyn Kv>,
    token: String,
    next: Option<argus_query::Fallback>,
) -> argus_query::Fallback {
    let token = Arc::new(token);
    Arc::new(move |req: http::Request<Bytes>, now| {
        let kv = kv.clone();
        let token = token.clone();
        let next = next.clone();
        Box::pin(async move {
            if req.uri().path() == KV_PATH {
                return handle_kv(kv.as_ref(), &token, req).await;
            }
            match next {
                Some(f) => f(req, now).await,
                None => argus_query::not_found(),
            }
        })
    })
}
