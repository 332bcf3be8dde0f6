//! The routing tree (dispatch/route.go): matching with `continue`, group labels and the
//! aggregation-group key exactly as Alertmanager prints it.

use crate::matcher::{labels_string, Matchers};
use argus_model::Labels;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Route {
    /// Alertmanager's `Route.Key()`: `{}` for the root, `{}/{severity="page"}` below.
    pub key: String,
    /// Position in the file, for messages: `route.routes[1].routes[0]`.
    pub path: String,
    /// Position in the tree (`0`, `0.1`, `0.1.0`): unique even when two siblings have
    /// the same matchers (and so the same key).
    pub id: String,
    pub matchers: Matchers,
    pub receiver: String,
    pub group_by: Vec<String>,
    pub group_by_all: bool,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub continue_: bool,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
    pub routes: Vec<Route>,
}

impl Route {
    /// The routes an alert with these labels goes to (`Route.Match`).
    pub fn matching(&self, labels: &Labels) -> Vec<&Route> {
        if !self.matchers.matches(labels) {
            return Vec::new();
        }
        let mut all = Vec::new();
        for child in &self.routes {
            let m = child.matching(labels);
            let matched = !m.is_empty();
            all.extend(m);
            if matched && !child.continue_ {
                break;
            }
        }
        if all.is_empty() {
            all.push(self);
        }
        all
    }

    /// The labels an alert is grouped by on this route.
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        if self.group_by_all {
            return labels.clone();
        }
        labels.keep(&self.group_by)
    }

    /// Aggregation-group key: `{route key}:{group labels}`.
    pub fn group_key(&self, group_labels: &Labels) -> String {
        format!("{}:{}", self.key, labels_string(group_labels))
    }

    /// Finds a route by its tree id.
    pub fn by_id(&self, id: &str) -> Option<&Route> {
        if self.id == id {
            return Some(self);
        }
        self.routes.iter().find_map(|r| {
            if id == r.id || id.starts_with(&format!("{}.", r.id)) {
                r.by_id(id)
            } else {
                None
            }
        })
    }

    /// Every route, depth first.
    pub fn walk(&self) -> Vec<&Route> {
        let mut v = vec![self];
        for r in &self.routes {
            v.extend(r.walk());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load_config;
    use argus_model::Labels;

    #[test]
    fn continue_and_fallback() {
        let c = load_config(
            r#"
route:
  receiver: a
  group_by: [alertname]
  routes:
    - matchers: [team="x"]
      receiver: b
      continue: true
    - matchers: [severity="page"]
      receiver: c
    - matchers: [severity=~"page|warn"]
      receiver: d
receivers: [{name: a}, {name: b}, {name: c}, {name: d}]
"#,
        )
        .unwrap();
        let names = |l: &Labels| {
            c.route
                .matching(l)
                .iter()
                .map(|r| r.receiver.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&Labels::from_pairs([("team", "x"), ("severity", "page")])),
            ["b", "c"]
        );
        assert_eq!(names(&Labels::from_pairs([("severity", "warn")])), ["d"]);
        assert_eq!(names(&Labels::from_pairs([("team", "y")])), ["a"]);
        assert_eq!(names(&Labels::from_pairs([("team", "x")])), ["b"]);
        let l = Labels::from_pairs([("alertname", "SiteDown"), ("instance", "x")]);
        let r = &c.route;
        assert_eq!(
            r.group_key(&r.group_labels(&l)),
            r#"{}:{alertname="SiteDown"}"#
        );
        let p = &c.route.routes[1];
        let l = l.with("severity", "page");
        assert_eq!(
            p.group_key(&p.group_labels(&l)),
            r#"{}/{severity="page"}:{alertname="SiteDown"}"#
        );
        assert_eq!(c.route.by_id("0.2").unwrap().receiver, "d");
    }
}
