//! argus-promql: a PromQL engine with Prometheus 2.42 semantics.
//!
//! Parsing is done by the `promql-parser` crate; [`parse`] then validates the tree so that
//! anything this engine does not evaluate is rejected up front ("function X is not
//! supported"), never turned into a silent empty result at evaluation time.
//! Evaluation ([`Engine`]) runs against any [`Queryable`]; [`MemStorage`] is the in-memory
//! implementation used by the evaluator and by the promtool test runner.
//!
//! The crate is pure: no I/O, no clock. Time is always a parameter (unix milliseconds).

mod aggregate;
mod binary;
mod engine;
mod error;
mod format;
mod functions;
mod gomath;
pub mod series_notation;
mod storage;
mod validate;

pub use engine::{Engine, Sample, Value};
pub use error::PromqlError;
pub use format::{format_value, format_value_plain};
pub use promql_parser::label::{MatchOp, Matcher};
pub use promql_parser::parser::Expr;
pub use storage::{AppendError, MemStorage, Queryable, Series, SeriesRef};
pub use validate::parse;

/// Bit pattern of Prometheus' staleness marker (a signalling NaN).
pub const STALE_NAN: u64 = 0x7ff0000000000002;

/// The staleness marker as a float.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN)
}

/// Whether `v` is the staleness marker (compares bits: every other NaN is a real value).
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN
}
