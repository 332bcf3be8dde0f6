//! The flush's decisions as Alertmanager's pipeline stages (notify/notify.go), pure:
//! no store, no clock; `now` is a parameter.
//!
//! [`mute_stages`] = `MuteStage(inhibitor)` → `TimeActiveStage` → `TimeMuteStage` →
//! `MuteStage(silencer)` for one aggregation group; [`dedup_stage`] = `DedupStage` (with
//! the unconfirmed attempts of [`crate::nflog`]) and the retry stage's `send_resolved`
//! filter, for one integration. Both say what goes out and, per alert, why the rest
//! does not ([`Held`]).

use crate::alert::StoredAlert;
use crate::config::Config;
use crate::dedup::{needs_update_with, Decision, NflogEntry, Reason, Unconfirmed};
use crate::inhibit::inhibited_by;
use crate::route::Route;
use crate::silence::{silenced_by, Silence};
use crate::timeinterval::any_contains;
use argus_model::Millis;
use serde::Serialize;
use std::collections::BTreeSet;

/// Why an alert of a flushed group is not in the notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "held", rename_all = "snake_case")]
pub enum Held {
    /// Muted by firing source alerts of inhibit rules (their fingerprints).
    Inhibited { by: Vec<String> },
    /// The route has `active_time_intervals` and none contains now.
    OutsideActiveTime,
    /// One of the route's `mute_time_intervals` contains now.
    InMuteTime,
    /// Silenced (the silences' ids).
    Silenced { by: Vec<String> },
    /// Resolved, and the integration does not send resolved notifications.
    ResolvedNotSent,
    /// The dedup stage found nothing to tell the receiver.
    Unchanged { reason: Reason },
}

impl Held {
    /// A short name (`inhibited`, `silenced`...).
    pub fn name(&self) -> &'static str {
        match self {
            Held::Inhibited { .. } => "inhibited",
            Held::OutsideActiveTime => "outside active_time_intervals",
            Held::InMuteTime => "in mute_time_intervals",
            Held::Silenced { .. } => "silenced",
            Held::ResolvedNotSent => "resolved, send_resolved off",
            Held::Unchanged { .. } => "unchanged",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeldAlert {
    /// The alert's fingerprint (hex).
    pub fingerprint: String,
    #[serde(flatten)]
    pub why: Held,
}

fn held(a: &StoredAlert, why: Held) -> HeldAlert {
    HeldAlert {
        fingerprint: a.labels.fingerprint_hex(),
        why,
    }
}

/// What passed the mute stages of one group.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// In notification order.
    pub alerts: Vec<StoredAlert>,
    pub held: Vec<HeldAlert>,
    /// Hashes of the passed alerts firing / resolved at `now` (the nflog's sets).
    pub firing: BTreeSet<u64>,
    pub resolved: BTreeSet<u64>,
}

impl Selection {
    /// The distinct mute reasons, joined (`inhibited, silenced`).
    pub fn muted_why(&self) -> String {
        let names: BTreeSet<&str> = self.held.iter().map(|h| h.why.name()).collect();
        names.into_iter().collect::<Vec<_>>().join(", ")
    }
}

/// Inhibit → active time → mute time → silences, for a group's members (in
/// notification order). `all`: every stored alert (inhibition sources).
pub fn mute_stages(
    members: &[&StoredAlert],
    config: &Config,
    route: &Route,
    all: &[StoredAlert],
    silences: &[Silence],
    now: Millis,
) -> Selection {
    let mut sel = Selection::default();
    let mut list: Vec<StoredAlert> = Vec::with_capacity(members.len());
    for a in members {
        let by = inhibited_by(&config.inhibit_rules, all, &a.labels, now);
        if by.is_empty() {
            list.push((*a).clone());
        } else {
            sel.held.push(held(a, Held::Inhibited { by }));
        }
    }
    let in_any = |names: &[String]| {
        names.iter().any(|n| {
            config
                .time_intervals
                .get(n)
                .is_some_and(|t| any_contains(t, now))
        })
    };
    if !route.active_time_intervals.is_empty() && !in_any(&route.active_time_intervals) {
        sel.held
            .extend(list.drain(..).map(|a| held(&a, Held::OutsideActiveTime)));
    }
    if !route.mute_time_intervals.is_empty() && in_any(&route.mute_time_intervals) {
        sel.held
            .extend(list.drain(..).map(|a| held(&a, Held::InMuteTime)));
    }
    for a in list {
        let by = silenced_by(silences, &a.labels, now);
        if by.is_empty() {
            if a.resolved(now) {
                sel.resolved.insert(a.fingerprint());
            } else {
                sel.firing.insert(a.fingerprint());
            }
            sel.alerts.push(a);
        } else {
            sel.held.push(held(&a, Held::Silenced { by }));
        }
    }
    sel
}

/// What one integration sends for a group.
#[derive(Clone, Debug)]
pub struct Plan {
    pub decision: Decision,
    /// What goes out (empty when nothing is sent, or when only resolved alerts are due
    /// and the integration does not send them: the log is updated, nothing sent).
    pub send: Vec<StoredAlert>,
    /// The selection's alerts that do not go out, and why.
    pub held: Vec<HeldAlert>,
    /// The state the notification log records once this is sent (or logged).
    pub entry: NflogEntry,
}

/// The dedup decision against the last confirmed notification and the unconfirmed
/// attempts since, then the retry stage's filter (without `send_resolved` only firing
/// alerts go out).
pub fn dedup_stage(
    sel: &Selection,
    sent: Option<&NflogEntry>,
    unconfirmed: Option<&Unconfirmed>,
    send_resolved: bool,
    route: &Route,
    now: Millis,
) -> Plan {
    let decision = needs_update_with(
        sent,
        unconfirmed,
        &sel.firing,
        &sel.resolved,
        send_resolved,
        route.repeat_interval,
        now,
    );
    let entry = NflogEntry {
        firing: sel.firing.clone(),
        resolved: sel.resolved.clone(),
        timestamp: now,
    };
    if !decision.send {
        return Plan {
            decision,
            send: Vec::new(),
            held: sel
                .alerts
                .iter()
                .map(|a| {
                    held(
                        a,
                        Held::Unchanged {
                            reason: decision.reason,
                        },
                    )
                })
                .collect(),
            entry,
        };
    }
    let (send, not): (Vec<StoredAlert>, Vec<StoredAlert>) = sel
        .alerts
        .iter()
        .cloned()
        .partition(|a| send_resolved || !a.resolved(now));
    Plan {
        decision,
        send,
        held: not.iter().map(|a| held(a, Held::ResolvedNotSent)).collect(),
        entry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_config;
    use crate::silence::ApiMatcher;
    use argus_model::Labels;

    /// 2026-11-23T10:00:00Z, a Monday.
    const T0: Millis = 1_795_428_000_000;
    const S: Millis = 1000;

    fn alert(pairs: &[(&str, &str)], ends: Millis) -> StoredAlert {
        StoredAlert {
            labels: Labels::from_pairs(pairs.iter().copied()),
            annotations: Labels::default(),
            starts_at: T0,
            ends_at: ends,
            generator_url: String::new(),
            updated_at: T0,
            timeout: false,
        }
    }

    const CONFIG: &str = r#"
time_intervals:
  - name: morning
    time_intervals: [{times: [{start_time: "09:00", end_time: "11:00"}]}]
route:
  receiver: r
  group_by: [alertname]
  repeat_interval: 1h
  routes:
    - matchers: [team="db"]
      mute_time_intervals: [morning]
    - matchers: [team="web"]
      active_time_intervals: [morning]
inhibit_rules:
  - source_matchers: [severity="page"]
    target_matchers: [severity="warn"]
    equal: [instance]
receivers: [{name: r}]
"#;

    fn silence(name: &str, value: &str, until: Millis) -> Silence {
        Silence {
            id: format!("s-{value}"),
            matchers: vec![ApiMatcher {
                name: name.into(),
                value: value.into(),
                is_regex: false,
                is_equal: true,
            }],
            starts_at: T0,
            ends_at: until,
            updated_at: T0,
            created_by: "t".into(),
            comment: "c".into(),
        }
    }

    #[test]
    fn each_stage_says_why_it_holds_an_alert() {
        let cfg = load_config(CONFIG).unwrap();
        let root = &cfg.route;
        let far = T0 + 24 * 3600 * S;
        let page = alert(
            &[
                ("alertname", "Down"),
                ("severity", "page"),
                ("instance", "a"),
            ],
            far,
        );
        let warn = alert(
            &[
                ("alertname", "Slow"),
                ("severity", "warn"),
                ("instance", "a"),
            ],
            far,
        );
        let other = alert(
            &[
                ("alertname", "Slow"),
                ("severity", "warn"),
                ("instance", "b"),
            ],
            far,
        );
        let quiet = alert(&[("alertname", "Slow"), ("instance", "c")], far);
        let all = vec![page.clone(), warn.clone(), other.clone(), quiet.clone()];
        let silences = vec![silence("instance", "c", T0 + 60 * S)];
        let members = [&warn, &other, &quiet];
        let sel = mute_stages(&members, &cfg, root, &all, &silences, T0);
        assert_eq!(sel.alerts, vec![other.clone()]);
        assert_eq!(
            sel.held,
            vec![
                held(
                    &warn,
                    Held::Inhibited {
                        by: vec![page.labels.fingerprint_hex()]
                    }
                ),
                held(
                    &quiet,
                    Held::Silenced {
                        by: vec!["s-c".into()]
                    }
                ),
            ]
        );
        assert_eq!(sel.muted_why(), "inhibited, silenced");
        // A minute later the silence is over; the page resolves: nothing inhibits.
        let mut all2 = all.clone();
        all2[0].ends_at = T0 + 30 * S;
        let sel = mute_stages(&members, &cfg, root, &all2, &silences, T0 + 60 * S);
        assert_eq!(sel.alerts.len(), 3);
        assert!(sel.held.is_empty());
        assert_eq!(sel.firing.len(), 3);

        // Time intervals: T0 is 10:00 UTC, inside `morning`.
        let db_route = &root.routes[0];
        let web_route = &root.routes[1];
        let db = alert(&[("alertname", "Db"), ("team", "db")], far);
        let web = alert(&[("alertname", "Web"), ("team", "web")], far);
        let sel = mute_stages(&[&db], &cfg, db_route, &[], &[], T0);
        assert_eq!(sel.held, vec![held(&db, Held::InMuteTime)]);
        let sel = mute_stages(&[&db], &cfg, db_route, &[], &[], T0 + 3600 * S);
        assert_eq!(sel.alerts.len(), 1);
        let sel = mute_stages(&[&web], &cfg, web_route, &[], &[], T0);
        assert_eq!(sel.alerts.len(), 1);
        let sel = mute_stages(&[&web], &cfg, web_route, &[], &[], T0 + 3600 * S);
        assert_eq!(sel.held, vec![held(&web, Held::OutsideActiveTime)]);
        assert_eq!(sel.muted_why(), "outside active_time_intervals");
    }

    #[test]
    fn dedup_stage_on_a_stepped_clock() {
        let cfg = load_config(CONFIG).unwrap();
        let route = &cfg.route;
        let a = alert(&[("alertname", "A"), ("i", "1")], T0 + 600 * S);
        let b = alert(&[("alertname", "A"), ("i", "2")], T0 + 24 * 3600 * S);
        let sel = mute_stages(&[&a, &b], &cfg, route, &[], &[], T0);
        // Never notified: both go out.
        let plan = dedup_stage(&sel, None, None, true, route, T0);
        assert!(plan.decision.send && plan.decision.reason == Reason::NewFiring);
        assert_eq!(plan.send.len(), 2);
        let sent = plan.entry.clone();
        // Nothing changed a minute later: both held, with the reason.
        let plan = dedup_stage(&sel, Some(&sent), None, true, route, T0 + 60 * S);
        assert!(!plan.decision.send && plan.send.is_empty());
        assert_eq!(plan.held.len(), 2);
        assert!(plan.held.iter().all(|h| h.why
            == Held::Unchanged {
                reason: Reason::NothingChanged
            }));
        // `a` resolves at +600 s: with send_resolved both go out, without only `b`.
        let sel = mute_stages(&[&a, &b], &cfg, route, &[], &[], T0 + 700 * S);
        let plan = dedup_stage(&sel, Some(&sent), None, true, route, T0 + 700 * S);
        assert!(plan.decision.send && plan.decision.reason == Reason::NewResolved);
        assert_eq!(plan.send.len(), 2);
        let plan = dedup_stage(&sel, Some(&sent), None, false, route, T0 + 700 * S);
        assert!(!plan.decision.send, "{plan:?}");
        // After the repeat interval, without send_resolved: `b` only, `a` held.
        let plan = dedup_stage(&sel, Some(&sent), None, false, route, T0 + 3601 * S);
        assert!(plan.decision.send && plan.decision.reason == Reason::RepeatInterval);
        assert_eq!(plan.send, vec![b.clone()]);
        assert_eq!(plan.held, vec![held(&a, Held::ResolvedNotSent)]);
        assert_eq!(plan.entry.resolved, [a.fingerprint()].into_iter().collect());
    }

    #[test]
    fn an_unconfirmed_attempt_keeps_the_resolved_due() {
        let cfg = load_config(CONFIG).unwrap();
        let route = &cfg.route;
        let a = alert(&[("alertname", "A")], T0 + 10 * S);
        // The firing was claimed at T0 and the sender died; nothing was confirmed.
        let attempt = NflogEntry {
            firing: [a.fingerprint()].into_iter().collect(),
            resolved: BTreeSet::new(),
            timestamp: T0,
        };
        let u = Unconfirmed::of(&attempt);
        let sel = mute_stages(&[&a], &cfg, route, &[], &[], T0 + 20 * S);
        assert!(sel.firing.is_empty() && sel.resolved.len() == 1);
        let plain = dedup_stage(&sel, None, None, true, route, T0 + 20 * S);
        assert!(
            !plain.decision.send,
            "never notified + resolved: nothing to say"
        );
        let plan = dedup_stage(&sel, None, Some(&u), true, route, T0 + 20 * S);
        assert!(plan.decision.send && plan.decision.unconfirmed);
        assert_eq!(plan.decision.reason, Reason::AllResolved);
        assert_eq!(plan.send, vec![a.clone()]);
    }
}
