//! Store errors, marked retryable or not.

#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: someone else wrote first. Callers re-read and decide.
    #[error("conditional write failed: {0}")]
    Conflict(String),
    /// Throttling, timeouts, 5xx: the same call may succeed later.
    #[error("transient store error: {0}")]
    Transient(String),
    /// Validation, missing table, corrupt item: retrying will not help.
    #[error("store error: {0}")]
    Permanent(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Transient(_))
    }
}
