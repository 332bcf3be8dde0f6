//! argus-remote-write: Prometheus remote-write 1.0 out of the evaluator.
//!
//! Each evaluator tick hands [`RemoteWriter::send_tick`] every sample of the tick (the
//! gateway snapshot: probe and pushed series; recorded series; `ALERTS`,
//! `ALERTS_FOR_STATE`). Per configured queue the samples get the external labels (a
//! series' own label wins, as in Prometheus) and the `write_relabel_configs`, are cut
//! into batches of `max_samples_per_send`, encoded (protobuf + snappy) and POSTed after
//! whatever the queue's backlog still holds, oldest first, so a receiver that rejects
//! out-of-order samples sees them in order.
//!
//! - 2xx: sent; a backlog batch is deleted from the store only now.
//! - 5xx, 429 with `retry_on_http_429`, connection errors, timeouts: retried with
//!   exponential backoff (`min_backoff` doubling up to `max_backoff`, or `Retry-After`)
//!   while the tick's deadline allows; then the queue stops for this tick and what is
//!   left waits in the backlog.
//! - other 4xx: dropped and counted (retrying would not help), as Prometheus does.
//!
//! The backlog lives in the store (table `results`, partition `remote_write#<name>`, one
//! item per batch holding the request body as sent, record version 1), so the next
//! Lambda invocation sends it. It is bounded by `max_backlog_samples`: beyond it the
//! oldest batches are dropped and counted. A batch leaves the backlog only after a 2xx,
//! so nothing is lost silently; a crash between the 2xx and the delete sends that batch
//! again next tick (receivers drop a sample identical to one they hold, Prometheus and
//! Mimir included), and so may two overlapping invocations.

pub mod client;
pub mod config;
pub mod proto;

pub use client::{Endpoint, SendError};
pub use config::{validate_all, RemoteWriteConfig};

use argus_model::{Cond, Item, Kv, Labels, Millis, Table};
use argus_relabel::Relabel;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Partition prefix of backlog items in [`Table::Results`].
pub const BACKLOG_PK_PREFIX: &str = "remote_write#";
/// First byte of a backlog item's payload.
pub const BACKLOG_RECORD_VERSION: u8 = 1;
/// Largest request body kept as one backlog item (DynamoDB items stay under 400 KB).
const MAX_BODY_BYTES: usize = 300 * 1024;

struct Queue {
    name: String,
    endpoint: Endpoint,
    relabel: Vec<Relabel>,
    max_per_send: usize,
    min_backoff: Duration,
    max_backoff: Duration,
    max_backlog: usize,
}

/// All configured queues, built once at cold start.
pub struct RemoteWriter {
    kv: Arc<dyn Kv>,
    external_labels: Vec<(String, String)>,
    queues: Vec<Queue>,
    /// Per queue, the series of the last tick this process handled, for staleness
    /// markers (as Prometheus writes them into its TSDB and so sends them). Memory only:
    /// a cold start sends none for series that vanished before it.
    previous: std::sync::Mutex<HashMap<String, HashSet<Labels>>>,
}

/// Prometheus's staleness marker (a signalling NaN bit pattern).
pub const STALE_NAN: u64 = 0x7ff0000000000002;

/// What one queue did in one tick.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueReport {
    pub name: String,
    /// Samples accepted by the receiver this tick (backlog included).
    pub sent: usize,
    pub requests: usize,
    pub retries: usize,
    /// Refused by the receiver with a 4xx: dropped.
    pub rejected: usize,
    /// Dropped because the backlog was full (oldest first).
    pub overflowed: usize,
    /// Removed by `write_relabel_configs`.
    pub relabel_dropped: usize,
    /// Samples waiting in the backlog after this tick.
    pub backlog: usize,
    pub errors: Vec<String>,
}

impl fmt::Display for QueueReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "remote_write {}: {} samples sent in {} requests ({} retries), {} rejected, {} dropped (backlog full), {} waiting",
            self.name, self.sent, self.requests, self.retries, self.rejected, self.overflowed, self.backlog
        )?;
        for e in &self.errors {
            write!(f, "; {e}")?;
        }
        Ok(())
    }
}

/// A batch to send: its body, its sample count, and its backlog key if stored.
struct Batch {
    sk: String,
    samples: usize,
    body: Vec<u8>,
    stored: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("remote_write[{index}]: {source}")]
    Endpoint {
        index: usize,
        source: client::BuildError,
    },
    #[error("remote_write[{index}]: {message}")]
    Config { index: usize, message: String },
}

impl RemoteWriter {
    /// Builds every queue (validated config assumed; validation errors are reported again
    /// here rather than trusted).
    pub async fn build(
        kv: Arc<dyn Kv>,
        cfgs: &[RemoteWriteConfig],
        external_labels: &[(String, String)],
        base_dir: &Path,
        sdk: Option<&aws_config::SdkConfig>,
    ) -> Result<RemoteWriter, BuildError> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| BuildError::Config {
                index: 0,
                message: format!("http client: {e}"),
            })?;
        let mut queues = Vec::new();
        for (index, c) in cfgs.iter().enumerate() {
            c.validate(&format!("remote_write[{index}]"))
                .map_err(|e| BuildError::Config {
                    index,
                    message: e.to_string(),
                })?;
            let relabel =
                argus_relabel::compile_all("write_relabel_configs", &c.write_relabel_configs)
                    .map_err(|e| BuildError::Config {
                        index,
                        message: e.0,
                    })?;
            let endpoint = Endpoint::build(c, base_dir, sdk, http.clone())
                .await
                .map_err(|source| BuildError::Endpoint { index, source })?;
            queues.push(Queue {
                name: c.queue_name(),
                endpoint,
                relabel,
                max_per_send: c.queue_config.max_samples_per_send,
                min_backoff: c.queue_config.min_backoff,
                max_backoff: c.queue_config.max_backoff,
                max_backlog: c.queue_config.max_backlog_samples,
            });
        }
        Ok(RemoteWriter {
            kv,
            external_labels: external_labels.to_vec(),
            queues,
            previous: Default::default(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    pub fn queue_names(&self) -> impl Iterator<Item = &str> {
        self.queues.iter().map(|q| q.name.as_str())
    }

    /// Sends the tick's samples (all at `now`) to every queue concurrently, each after its
    /// backlog; gives up at `deadline`, keeping what is left for the next tick.
    pub async fn send_tick<'a>(
        &self,
        now: Millis,
        samples: impl IntoIterator<Item = &'a (Labels, f64)>,
        deadline: Instant,
    ) -> Vec<QueueReport> {
        let with_external: Vec<(Labels, f64)> = samples
            .into_iter()
            .map(|(l, v)| {
                let mut l = l.clone();
                for (k, ev) in &self.external_labels {
                    if l.get(k).is_none() {
                        l.set(k, ev);
                    }
                }
                (l, *v)
            })
            .collect();
        let runs = self
            .queues
            .iter()
            .map(|q| self.run_queue(q, now, &with_external, deadline));
        futures::future::join_all(runs).await
    }

    async fn run_queue(
        &self,
        q: &Queue,
        now: Millis,
        samples: &[(Labels, f64)],
        deadline: Instant,
    ) -> QueueReport {
        let mut rep = QueueReport {
            name: q.name.clone(),
            ..Default::default()
        };
        let pk = format!("{BACKLOG_PK_PREFIX}{}", q.name);
        // This tick's series after relabeling, in batches.
        let mut series = Vec::with_capacity(samples.len());
        let mut current = HashSet::with_capacity(samples.len());
        for (l, v) in samples {
            match argus_relabel::process(l, &q.relabel) {
                Some(l) if !l.is_empty() => {
                    series.push(proto::TimeSeries::new(&l, now, *v));
                    current.insert(l);
                }
                _ => rep.relabel_dropped += 1,
            }
        }
        {
            let mut prev = self.previous.lock().unwrap_or_else(|p| p.into_inner());
            let before = prev.insert(q.name.clone(), current).unwrap_or_default();
            let now_set = &prev[&q.name];
            let mut gone: Vec<&Labels> = before.iter().filter(|l| !now_set.contains(*l)).collect();
            gone.sort();
            for l in gone {
                series.push(proto::TimeSeries::new(l, now, f64::from_bits(STALE_NAN)));
            }
        }
        let mut fresh = Vec::new();
        for chunk in series.chunks(q.max_per_send) {
            encode_batches(chunk, &mut fresh);
        }
        let mut queue: Vec<Batch> = match load_backlog(self.kv.as_ref(), &pk).await {
            Ok((b, errs)) => {
                rep.errors.extend(errs);
                b
            }
            Err(e) => {
                rep.errors.push(format!("reading the backlog: {e}"));
                Vec::new()
            }
        };
        for (i, mut b) in fresh.into_iter().enumerate() {
            b.sk = format!("{now:013}#{i:05}");
            queue.push(b);
        }

        // Send in order until done, or until the receiver stays unreachable.
        let mut left: Vec<Batch> = Vec::new();
        let mut it = queue.into_iter();
        for b in it.by_ref() {
            match send_with_retry(q, &b.body, deadline, &mut rep).await {
                Ok(()) => {
                    rep.sent += b.samples;
                    if b.stored {
                        if let Err(e) = self
                            .kv
                            .delete(Table::Results, &pk, &b.sk, Cond::Always)
                            .await
                        {
                            rep.errors.push(format!(
                                "sent batch {} stays in the backlog (will be sent again): {e}",
                                b.sk
                            ));
                        }
                    }
                }
                Err(SendError::Rejected { message, .. }) => {
                    rep.rejected += b.samples;
                    rep.errors
                        .push(format!("{} samples dropped: {message}", b.samples));
                    if b.stored {
                        if let Err(e) = self
                            .kv
                            .delete(Table::Results, &pk, &b.sk, Cond::Always)
                            .await
                        {
                            rep.errors
                                .push(format!("deleting rejected batch {}: {e}", b.sk));
                        }
                    }
                }
                Err(e @ SendError::Recoverable { .. }) => {
                    rep.errors
                        .push(format!("{e}; keeping the rest for the next tick"));
                    left.push(b);
                    break;
                }
            }
        }
        left.extend(it);

        // Bound the backlog: drop the oldest beyond max_backlog_samples.
        let mut total: usize = left.iter().map(|b| b.samples).sum();
        let mut keep_from = 0;
        while total > q.max_backlog && keep_from < left.len() {
            let b = &left[keep_from];
            total -= b.samples;
            rep.overflowed += b.samples;
            if b.stored {
                if let Err(e) = self
                    .kv
                    .delete(Table::Results, &pk, &b.sk, Cond::Always)
                    .await
                {
                    rep.errors
                        .push(format!("dropping backlog batch {}: {e}", b.sk));
                }
            }
            keep_from += 1;
        }
        let to_store: Vec<Item> = left[keep_from..]
            .iter()
            .filter(|b| !b.stored)
            .map(|b| {
                let mut data = Vec::with_capacity(b.body.len() + 1);
                data.push(BACKLOG_RECORD_VERSION);
                data.extend_from_slice(&b.body);
                let mut item = Item::new(&pk, &b.sk).with_attr("samples", b.samples as u64);
                item.data = Some(data);
                item
            })
            .collect();
        if !to_store.is_empty() {
            let n: usize = left[keep_from..]
                .iter()
                .filter(|b| !b.stored)
                .map(|b| b.samples)
                .sum();
            if let Err(e) = self.kv.put_batch(Table::Results, to_store).await {
                rep.errors
                    .push(format!("{n} samples lost: storing the backlog: {e}"));
                total -= n;
            }
        }
        rep.backlog = total;
        rep
    }
}

/// Encodes a run of series; a body too large for one store item is split in halves.
fn encode_batches(series: &[proto::TimeSeries], out: &mut Vec<Batch>) {
    if series.is_empty() {
        return;
    }
    let req = proto::WriteRequest {
        timeseries: series.to_vec(),
    };
    let body = proto::encode(&req);
    if body.len() > MAX_BODY_BYTES && series.len() > 1 {
        let (a, b) = series.split_at(series.len() / 2);
        encode_batches(a, out);
        encode_batches(b, out);
        return;
    }
    out.push(Batch {
        sk: String::new(),
        samples: proto::sample_count(&req),
        body,
        stored: false,
    });
}

async fn send_with_retry(
    q: &Queue,
    body: &[u8],
    deadline: Instant,
    rep: &mut QueueReport,
) -> Result<(), SendError> {
    let mut backoff = q.min_backoff;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(SendError::Recoverable {
                message: "the tick's send deadline passed".into(),
                retry_after: None,
            });
        }
        rep.requests += 1;
        match q.endpoint.send(body, left).await {
            Ok(()) => return Ok(()),
            Err(e @ SendError::Rejected { .. }) => return Err(e),
            Err(SendError::Recoverable {
                message,
                retry_after,
            }) => {
                let wait = retry_after.unwrap_or(backoff);
                if Instant::now() + wait >= deadline {
                    return Err(SendError::Recoverable {
                        message,
                        retry_after,
                    });
                }
                tokio::time::sleep(wait).await;
                rep.retries += 1;
                backoff = (backoff * 2).min(q.max_backoff);
            }
        }
    }
}

/// The queue's stored batches, oldest first, and the records it could not read (left
/// in place and reported, never replaced).
async fn load_backlog(
    kv: &dyn Kv,
    pk: &str,
) -> Result<(Vec<Batch>, Vec<String>), argus_model::StoreError> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for item in kv.query(Table::Results, pk, None).await? {
        let data = item.data.as_deref().unwrap_or_default();
        let samples = item.attrs.get("samples").and_then(|v| v.as_u64());
        match (data.first(), samples) {
            (Some(&BACKLOG_RECORD_VERSION), Some(n)) => out.push(Batch {
                sk: item.sk.clone(),
                samples: n as usize,
                body: data[1..].to_vec(),
                stored: true,
            }),
            (v, _) => errs.push(format!(
                "backlog record {pk}/{} unreadable (record version {:?}, expected {BACKLOG_RECORD_VERSION}); left in place",
                item.sk,
                v
            )),
        }
    }
    Ok((out, errs))
}

#[cfg(test)]
mod tests;
