//! Secrets in the configuration (Alertmanager's `Secret`/`SecretURL`): the value is
//! available to the sinks, never to `Debug` output (so never to logs), and a
//! `*_file` variant is read when the configuration is loaded from a file.

use serde::{Deserialize, Deserializer};
use std::fmt;

/// A secret string. `Debug` prints `<secret>`; [`Secret::expose`] gives the value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The value, for building a request. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Reads a `*_file` secret relative to `dir`, trimmed of surrounding whitespace (as
/// Alertmanager does for keys and URLs).
pub fn read_secret_file(dir: &std::path::Path, file: &str) -> Result<Secret, String> {
    let p = dir.join(file);
    std::fs::read_to_string(&p)
        .map(|t| Secret(t.trim().to_string()))
        .map_err(|e| format!("{}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts() {
        let s: Secret = serde_json::from_str("\"hunter2\"").unwrap();
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(format!("{s:?}"), "<secret>");
        assert!(!format!("{:?}", Some(s)).contains("hunter2"));
    }
}
