//! argus-tsdb: the evaluator's samples, from per-tick head chunks to 2-hour blocks.
//!
//! Layout in the `samples` table (see README.md for the byte formats):
//!
//! | item | pk | sk | what |
//! | --- | --- | --- | --- |
//! | head chunk | `chunk` | `<tick ms:013>#<part:04>` | one evaluator tick, every series ([`chunk`]) |
//! | block index | `idx` | `<block start:013>` | the block's names, series and sample counts, content id |
//! | block data | `b#<metric name>` | `<block start:013>#<id>#<part:03>` | one metric name's series over the block, pco columns ([`block`]) |
//!
//! A query reads the index items of its span, then only the data items of the names its
//! selectors can match, one range query per name ([`load`]). The evaluator's ticks stay
//! head chunks until [`compact`] merges a finished 2-hour span into a block: data items
//! first, then the index item with a conditional put (the commit), then the head chunks.
//! Readers read head chunks before the index and ignore head chunks a committed block
//! covers, so a query during compaction sees every sample once.
//!
//! No I/O beyond the `Kv` port; time is a parameter.

pub mod block;
pub mod chunk;
pub mod compact;
pub mod import;
pub mod read;
#[doc(hidden)]
pub mod synth;

pub use block::{BlockIndex, NameEntry, SeriesData, BLOCK_MS};
pub use chunk::{decode, encode, read_chunks, write_chunk, Chunk, ChunkError, Window, PARTITION};
pub use compact::{compact, sweep, CompactReport, LEAD_MS, SETTLE_MS};
pub use import::{import_openmetrics, ImportReport};
pub use read::{load, load_for, plan};

use argus_model::StoreError;

/// Prometheus's default `storage.tsdb.retention.time`.
pub const DEFAULT_RETENTION_S: i64 = 15 * 86_400;

#[derive(Debug, thiserror::Error)]
pub enum TsdbError {
    /// A stored item that cannot be decoded: never skipped, never replaced silently.
    #[error("corrupt TSDB item {item}: {why}")]
    Corrupt { item: String, why: String },
    /// Prometheus's message for `query.max-samples`.
    #[error("query processing would load too many samples into memory in query execution (limit {limit})")]
    TooManySamples { limit: usize },
    /// An input line that is not valid OpenMetrics (import).
    #[error("line {line}: {why}")]
    Input { line: usize, why: String },
    /// Another writer kept committing the same block.
    #[error("block {start} changed under {attempts} attempts to commit it; try again")]
    Contended { start: i64, attempts: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TsdbError {
    pub fn is_retryable(&self) -> bool {
        match self {
            TsdbError::Store(e) => e.is_retryable(),
            TsdbError::Contended { .. } => true,
            _ => false,
        }
    }
}
