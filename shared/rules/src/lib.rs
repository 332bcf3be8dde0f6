//! argus-rules: Prometheus rule files, their evaluation, and promtool's rule tests.
//!
//! * [`load_rule_file`] / [`parse_rule_file`]: the rule file format with
//!   `promtool check rules` validation.
//! * [`eval_group`]: one evaluation of a rule group at a given time against a
//!   [`SeriesStore`], advancing a serializable [`GroupState`] (pure; no I/O).
//! * [`unittest`]: the `promtool test rules` runner and checker.

pub mod eval;
pub mod file;
pub mod format;
pub mod record;
pub mod unittest;
pub mod window;

pub use eval::{
    eval_group, table_link, ActiveAlert, AlertState, EvalError, EvalOptions, EvalOutcome,
    GroupState, RuleEvalError, RuleState, SeriesStore, RESOLVED_RETENTION_MS,
};
pub use file::{
    load_rule_file, parse_rule_file, Rule, RuleError, RuleFile, RuleGroup, RuleKind, TemplatedPair,
};
pub use record::{decode_state, encode_state, RecordError, STATE_FORMAT};
pub use unittest::{check_files, run_file, run_files, FileReport};
pub use window::history_needed_ms;
