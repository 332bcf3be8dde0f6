//! argus-template: Go's text/template for Prometheus rule templates and Alertmanager
//! notification templates.
//!
//! ```
//! use argus_template::{Template, Value, prometheus::{self, PromContext}};
//! let data = prometheus::alert_data(&[("instance", "a:9100")], &[], "", 0.25);
//! let mut t = Template::new("x", prometheus::funcs(PromContext::default())).missing_key_zero(true);
//! t.parse("{{ $v := .Value }}{{ .Labels.instance | stripPort }} at {{ humanizePercentage $v }}").unwrap();
//! assert_eq!(t.execute(&data).unwrap(), "a at 25%");
//! ```

pub mod alertmanager;
mod builtins;
mod exec;
pub mod gofmt;
mod parse;
pub mod prometheus;
mod value;

use std::collections::HashMap;
use std::sync::Arc;

pub use builtins::{html_escape, html_text_escape, js_escape, query_escape};
pub use exec::Overrides;
pub use value::{string_list, StrMap, Struct, Value};

/// A template error, worded as Go's (`template: NAME:LINE: ...`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Parse(String),
    #[error("{0}")]
    Exec(String),
}

/// How a template function failed: `Call` errors read `error calling NAME: MSG` (Go's
/// wrapping of a returned error), `Arg` errors are argument type/count problems.
#[derive(Debug, Clone, PartialEq)]
pub enum FuncError {
    Call(String),
    Arg(String),
}

impl From<String> for FuncError {
    fn from(s: String) -> Self {
        FuncError::Call(s)
    }
}

/// A template function.
pub type Func = Arc<dyn Fn(&[Value]) -> Result<Value, FuncError> + Send + Sync>;

/// Functions available to a template in addition to text/template's builtins.
#[derive(Clone, Default)]
pub struct FuncMap(HashMap<String, Func>);

impl FuncMap {
    pub fn new() -> Self {
        FuncMap(HashMap::new())
    }
    pub fn insert<F>(&mut self, name: &str, f: F)
    where
        F: Fn(&[Value]) -> Result<Value, FuncError> + Send + Sync + 'static,
    {
        self.0.insert(name.to_string(), Arc::new(f));
    }
    pub fn get(&self, name: &str) -> Option<&Func> {
        self.0.get(name)
    }
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
    /// Adds all of `other`'s functions, replacing same-named ones.
    pub fn extend(&mut self, other: FuncMap) {
        self.0.extend(other.0);
    }
}

impl std::fmt::Debug for FuncMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.0.keys().collect();
        names.sort();
        f.debug_tuple("FuncMap").field(&names).finish()
    }
}

#[derive(Debug)]
pub(crate) struct Tree {
    pub name: String,
    pub parse_name: String,
    pub text: Arc<str>,
    pub root: Vec<parse::Node>,
}

/// A set of named templates sharing one function map (Go's `*template.Template`).
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    pub(crate) trees: HashMap<String, Arc<Tree>>,
    pub(crate) funcs: Arc<FuncMap>,
    pub(crate) missing_zero: bool,
    /// html/template's escaping of action output in text context (see [`Template::html_text`]).
    pub(crate) html_text: bool,
}

fn is_blank(nodes: &[parse::Node]) -> bool {
    nodes
        .iter()
        .all(|n| matches!(n, parse::Node::Text(t) if t.trim().is_empty()))
}

impl Template {
    pub fn new(name: &str, funcs: FuncMap) -> Self {
        Template {
            name: name.to_string(),
            trees: HashMap::new(),
            funcs: Arc::new(funcs),
            missing_zero: false,
            html_text: false,
        }
    }

    /// Go's `Option("missingkey=zero")`: a missing key of a string map yields "" instead
    /// of `<no value>` (both Prometheus and Alertmanager set it).
    pub fn missing_key_zero(mut self, on: bool) -> Self {
        self.missing_zero = on;
        self
    }

    /// Go's html/template for templates without markup (every action in HTML text
    /// context, as Alertmanager's `TmplHTML` renders Telegram and Pushover messages):
    /// the output of every action is escaped with html/template's text-context
    /// escaper ([`html_text_escape`]); literal text is kept as written.
    pub fn html_text(mut self, on: bool) -> Self {
        self.html_text = on;
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Parses `text` as the body of this template, adding any `define`d templates.
    pub fn parse(&mut self, text: &str) -> Result<(), Error> {
        let name = self.name.clone();
        self.parse_as(&name, &name, text)
    }

    /// Parses `text` (e.g. a file, `parse_name` being its name for errors) whose body
    /// becomes template `name`; its `define`s are added or replace earlier ones.
    pub fn parse_as(&mut self, name: &str, parse_name: &str, text: &str) -> Result<(), Error> {
        let funcs = self.funcs.clone();
        let known = move |f: &str| builtins::is_builtin(f) || funcs.contains(f);
        let parsed = parse::Parser::parse(text, parse_name, &known).map_err(Error::Parse)?;
        let text: Arc<str> = Arc::from(text);
        for (n, body) in parsed.defines {
            self.trees.insert(
                n.clone(),
                Arc::new(Tree {
                    name: n,
                    parse_name: parse_name.to_string(),
                    text: text.clone(),
                    root: body,
                }),
            );
        }
        // As Go: an all-blank body does not replace an existing definition.
        if !is_blank(&parsed.root) || !self.trees.contains_key(name) {
            self.trees.insert(
                name.to_string(),
                Arc::new(Tree {
                    name: name.to_string(),
                    parse_name: parse_name.to_string(),
                    text,
                    root: parsed.root,
                }),
            );
        }
        Ok(())
    }

    /// Whether a template of that name is defined.
    pub fn has(&self, name: &str) -> bool {
        self.trees.contains_key(name)
    }

    /// Executes the main template.
    pub fn execute(&self, data: &Value) -> Result<String, Error> {
        self.execute_template(&self.name, data)
    }

    /// Executes a named template.
    pub fn execute_template(&self, name: &str, data: &Value) -> Result<String, Error> {
        self.execute_template_with(name, data, None)
    }

    /// Executes the main template; `overrides` may answer function calls first
    /// (returning `None` to fall through), e.g. a `query` that borrows the caller's
    /// storage. Functions must still be in the map at parse time.
    pub fn execute_with(
        &self,
        data: &Value,
        overrides: &exec::Overrides<'_>,
    ) -> Result<String, Error> {
        self.execute_template_with(&self.name, data, Some(overrides))
    }

    fn execute_template_with(
        &self,
        name: &str,
        data: &Value,
        overrides: Option<&exec::Overrides<'_>>,
    ) -> Result<String, Error> {
        let tree = self.trees.get(name).ok_or_else(|| {
            Error::Exec(format!(
                "template: no template {name:?} associated with template {:?}",
                self.name
            ))
        })?;
        let mut st = exec::State {
            tmpl: self,
            tree,
            vars: vec![("$".to_string(), data.clone())],
            depth: 0,
            out: String::new(),
            overrides,
        };
        st.walk(data, &tree.root)?;
        Ok(st.out)
    }
}

#[cfg(test)]
mod tests;
