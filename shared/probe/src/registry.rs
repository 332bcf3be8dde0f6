//! A per-probe registry with client_golang's gather semantics: families sorted by name,
//! samples sorted by label values; a plain gauge exists (value 0) once registered, a gauge
//! vector only once a child exists. Plus the probe log (logfmt lines, like `?debug=true`).

use argus_model::Millis;
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Untyped,
}

#[derive(Clone, Debug)]
pub struct Family {
    pub help: &'static str,
    pub kind: Kind,
    pub samples: BTreeMap<Vec<(&'static str, String)>, f64>,
}

#[derive(Clone, Debug, Default)]
pub struct Registry {
    pub families: BTreeMap<&'static str, Family>,
}

impl Registry {
    /// Registers a plain gauge (value 0) if absent.
    pub fn gauge(&mut self, name: &'static str, help: &'static str) {
        self.families.entry(name).or_insert_with(|| {
            let mut samples = BTreeMap::new();
            samples.insert(Vec::new(), 0.0);
            Family {
                help,
                kind: Kind::Gauge,
                samples,
            }
        });
    }
    /// Registers a gauge vector (no samples until a child is set).
    pub fn vec(&mut self, name: &'static str, help: &'static str) {
        self.families.entry(name).or_insert_with(|| Family {
            help,
            kind: Kind::Gauge,
            samples: BTreeMap::new(),
        });
    }
    pub fn set(&mut self, name: &'static str, v: f64) {
        if let Some(f) = self.families.get_mut(name) {
            f.samples.insert(Vec::new(), v);
        }
    }
    pub fn add(&mut self, name: &'static str, v: f64) {
        if let Some(f) = self.families.get_mut(name) {
            *f.samples.entry(Vec::new()).or_insert(0.0) += v;
        }
    }
    pub fn set_l(&mut self, name: &'static str, labels: &[(&'static str, &str)], v: f64) {
        if let Some(f) = self.families.get_mut(name) {
            f.samples
                .insert(labels.iter().map(|(k, v)| (*k, v.to_string())).collect(), v);
        }
    }
    pub fn add_l(&mut self, name: &'static str, labels: &[(&'static str, &str)], v: f64) {
        if let Some(f) = self.families.get_mut(name) {
            *f.samples
                .entry(labels.iter().map(|(k, v)| (*k, v.to_string())).collect())
                .or_insert(0.0) += v;
        }
    }
    pub fn get(&self, name: &str) -> Option<f64> {
        self.families
            .get(name)
            .and_then(|f| f.samples.get(&Vec::new()).copied())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Per-probe state: metrics, log and the clock reference.
pub struct Ctx {
    pub reg: Registry,
    pub log: Vec<String>,
    pub last_error: Option<String>,
    pub started: Instant,
    pub now: Millis,
    pub allow_link_local: bool,
    pub status_code: Option<u16>,
    module: String,
    target: String,
}

impl Ctx {
    pub fn new(now: Millis, module: &str, target: &str, allow_link_local: bool) -> Ctx {
        Ctx {
            reg: Registry::default(),
            log: Vec::new(),
            last_error: None,
            started: Instant::now(),
            now,
            allow_link_local,
            status_code: None,
            module: module.to_string(),
            target: target.to_string(),
        }
    }

    /// Appends a logfmt line (`ts=.. module=.. target=.. level=.. msg=".." k=v`).
    pub fn log(&mut self, level: Level, msg: &str, kvs: &[(&str, &dyn std::fmt::Display)]) {
        let ts = self.now + self.started.elapsed().as_millis() as i64;
        let mut line = format!(
            "ts={} module={} target={} level={} msg={}",
            argus_model::time::rfc3339(ts),
            logfmt_value(&self.module),
            logfmt_value(&self.target),
            level.as_str(),
            logfmt_value(msg)
        );
        for (k, v) in kvs {
            line.push(' ');
            line.push_str(k);
            line.push('=');
            line.push_str(&logfmt_value(&v.to_string()));
        }
        self.log.push(line);
        if level == Level::Error {
            let mut e = msg.to_string();
            if let Some((_, v)) = kvs.iter().find(|(k, _)| *k == "err") {
                e.push_str(": ");
                e.push_str(&v.to_string());
            }
            self.last_error = Some(e);
        }
    }
    /// Records why the probe failed when the log line itself is not at error level
    /// (blackbox logs some failures at info).
    pub fn reason(&mut self, why: String) {
        self.last_error = Some(why);
    }
    pub fn info(&mut self, msg: &str, kvs: &[(&str, &dyn std::fmt::Display)]) {
        self.log(Level::Info, msg, kvs)
    }
    pub fn error(&mut self, msg: &str, kvs: &[(&str, &dyn std::fmt::Display)]) {
        self.log(Level::Error, msg, kvs)
    }
    pub fn debug(&mut self, msg: &str, kvs: &[(&str, &dyn std::fmt::Display)]) {
        self.log(Level::Debug, msg, kvs)
    }
}

fn logfmt_value(s: &str) -> String {
    if !s.is_empty() && !s.contains(|c: char| c == ' ' || c == '"' || c == '=' || c.is_control()) {
        return s.to_string();
    }
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_semantics() {
        let mut r = Registry::default();
        r.gauge("b", "h");
        r.vec("a", "h");
        r.vec("c", "h");
        r.add_l("a", &[("phase", "x")], 1.0);
        r.add_l("a", &[("phase", "x")], 2.0);
        r.set("b", 5.0);
        let names: Vec<_> = r
            .families
            .iter()
            .filter(|(_, f)| !f.samples.is_empty())
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(r.families["a"].samples.values().next(), Some(&3.0));
        assert_eq!(r.get("b"), Some(5.0));
    }

    #[test]
    fn log_lines_are_logfmt() {
        let mut c = Ctx::new(0, "http_2xx", "x", false);
        c.error("Error for HTTP request", &[("err", &"boom now")]);
        assert!(
            c.log[0].contains("level=error msg=\"Error for HTTP request\" err=\"boom now\""),
            "{}",
            c.log[0]
        );
        assert_eq!(
            c.last_error.as_deref(),
            Some("Error for HTTP request: boom now")
        );
    }
}
