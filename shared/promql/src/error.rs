use thiserror::Error;

/// Errors from parsing, validating or evaluating an expression.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PromqlError {
    /// The expression does not parse (message from the parser, with the input).
    #[error("parse error in {expr:?}: {msg}")]
    Parse { expr: String, msg: String },
    /// The expression parses but uses a feature this engine does not evaluate.
    #[error("{0}")]
    Unsupported(String),
    /// Evaluation failed (same wording as Prometheus where it has one).
    #[error("{0}")]
    Eval(String),
    /// A series-notation (promtool `input_series`) or metric string is malformed.
    #[error("invalid series notation {input:?}: {msg}")]
    SeriesNotation { input: String, msg: String },
}

pub(crate) fn eval_err<T>(msg: impl Into<String>) -> Result<T, PromqlError> {
    Err(PromqlError::Eval(msg.into()))
}
