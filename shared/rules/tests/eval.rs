//! The evaluation state machine, stepped by a clock.

use argus_model::Labels;
use argus_promql::{MemStorage, Queryable};
use argus_rules::{
    eval_group, parse_rule_file, AlertState, EvalError, EvalOptions, GroupState, RuleGroup,
};

const M: i64 = 60_000;

fn group(yaml: &str) -> RuleGroup {
    parse_rule_file("t.yml", yaml)
        .expect("valid rules")
        .groups
        .remove(0)
}

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn opts() -> EvalOptions {
    EvalOptions {
        external_labels: l(&[("region", "eu")]),
        external_url: "http://argus.example".into(),
        ..EvalOptions::default()
    }
}

const SITE_DOWN: &str = r#"
groups:
  - name: g
    rules:
      - alert: SiteDown
        expr: probe_success == 0
        for: 2m
        labels: {severity: page}
        annotations:
          summary: '{{ $labels.instance }} down ({{ $value }}) in {{ $externalLabels.region }}'
"#;

#[test]
fn pending_firing_resend_resolved_retention() {
    let g = group(SITE_DOWN);
    let mut st = GroupState::default();
    let mut store = MemStorage::new();
    let series = l(&[("__name__", "probe_success"), ("instance", "a")]);
    let o = opts();
    let mut sends = Vec::new();
    // Down from t=1m to t=6m, up again from 7m.
    for step in 0..=30 {
        let ts = step * M;
        let v = if (1..=6).contains(&step) { 0.0 } else { 1.0 };
        store.append(series.clone(), ts, v).unwrap();
        let out = eval_group(&g, &mut st, ts, &mut store, &o).unwrap();
        assert!(out.rule_errors.is_empty());
        let rs = &st.rules[0];
        let a = rs.active.values().next();
        match step {
            0 => assert!(a.is_none()),
            1 | 2 => assert_eq!(a.unwrap().state, AlertState::Pending, "step {step}"),
            3..=6 => assert_eq!(a.unwrap().state, AlertState::Firing, "step {step}"),
            7..=22 => {
                let a = a.unwrap();
                assert_eq!(
                    (a.state, a.resolved_at),
                    (AlertState::Inactive, Some(7 * M)),
                    "step {step}"
                );
            }
            // Resolved more than 15 minutes ago (retention is exclusive): forgotten.
            _ => assert!(a.is_none(), "step {step}"),
        }
        for s in out.to_send {
            sends.push((step, s));
        }
    }
    let steps: Vec<i64> = sends.iter().map(|(s, _)| *s).collect();
    // Fired at 3m; resend when more than 1m passed (5m); resolved at 7m, then re-sent
    // as resolved every 2 ticks while retained.
    assert_eq!(steps, vec![3, 5, 7, 9, 11, 13, 15, 17, 19, 21]);
    let (_, first) = &sends[0];
    assert_eq!(
        first.labels,
        l(&[
            ("alertname", "SiteDown"),
            ("instance", "a"),
            ("region", "eu"),
            ("severity", "page")
        ])
    );
    assert_eq!(first.annotations.get("summary"), Some("a down (0) in eu"));
    assert_eq!(first.starts_at, Some(3 * M));
    assert_eq!(first.ends_at, Some(3 * M + 4 * M));
    assert_eq!(
        first.generator_url,
        "http://argus.example/graph?g0.expr=probe_success+%3D%3D+0&g0.tab=1"
    );
    let (_, resolved) = &sends[2];
    assert_eq!(
        (resolved.starts_at, resolved.ends_at),
        (Some(3 * M), Some(7 * M))
    );
}

#[test]
fn alerts_series_and_staleness() {
    let g = group(SITE_DOWN);
    let mut st = GroupState::default();
    let mut store = MemStorage::new();
    let series = l(&[("__name__", "probe_success"), ("instance", "a")]);
    let o = opts();
    for step in 0..=4 {
        store
            .append(series.clone(), step * M, if step < 4 { 0.0 } else { 1.0 })
            .unwrap();
        let out = eval_group(&g, &mut st, step * M, &mut store, &o).unwrap();
        if step == 2 {
            let alerts = l(&[
                ("__name__", "ALERTS"),
                ("alertname", "SiteDown"),
                ("alertstate", "firing"),
                ("instance", "a"),
                ("severity", "page"),
            ]);
            let for_state = l(&[
                ("__name__", "ALERTS_FOR_STATE"),
                ("alertname", "SiteDown"),
                ("instance", "a"),
                ("severity", "page"),
            ]);
            assert_eq!(out.alerts_series, vec![(alerts, 1.0), (for_state, 0.0)]);
        }
    }
    // The pending series went stale when the alert fired (2m), the firing one when it
    // resolved (4m).
    let m = argus_promql::Matcher::new(argus_promql::MatchOp::Equal, "__name__", "ALERTS");
    let sel = store.select(&[m], 0, 4 * M);
    let last: Vec<(String, i64, bool)> = sel
        .iter()
        .map(|s| {
            let (t, v) = *s.samples.last().unwrap();
            (
                s.labels.get("alertstate").unwrap().to_string(),
                t,
                argus_promql::is_stale(v),
            )
        })
        .collect();
    assert_eq!(
        last,
        vec![
            ("pending".to_string(), 2 * M, true),
            ("firing".to_string(), 4 * M, true)
        ]
    );
}

#[test]
fn keep_firing_for_holds_then_resolves() {
    let g = group(
        "groups:\n- name: g\n  rules:\n  - alert: K\n    expr: x > 0\n    keep_firing_for: 3m\n",
    );
    let mut st = GroupState::default();
    let mut store = MemStorage::new();
    let s = l(&[("__name__", "x")]);
    let o = EvalOptions::default();
    let mut states = Vec::new();
    for step in 0..8 {
        store
            .append(s.clone(), step * M, if step < 2 { 1.0 } else { 0.0 })
            .unwrap();
        eval_group(&g, &mut st, step * M, &mut store, &o).unwrap();
        states.push(st.rules[0].active.values().next().map(|a| a.state));
    }
    use AlertState::*;
    assert_eq!(
        states,
        vec![
            Some(Firing),
            Some(Firing),
            Some(Firing),
            Some(Firing),
            Some(Firing),
            Some(Inactive),
            Some(Inactive),
            Some(Inactive)
        ]
    );
}

#[test]
fn recording_rules_feed_later_rules_and_go_stale() {
    let g = group(
        "groups:\n- name: g\n  rules:\n  - record: job:x:sum\n    expr: sum by (job) (x)\n    labels: {tier: a}\n  - alert: Big\n    expr: job:x:sum > 5\n",
    );
    let mut st = GroupState::default();
    let mut store = MemStorage::new();
    let o = EvalOptions::default();
    store
        .append(l(&[("__name__", "x"), ("job", "j"), ("i", "1")]), 0, 4.0)
        .unwrap();
    store
        .append(l(&[("__name__", "x"), ("job", "j"), ("i", "2")]), 0, 3.0)
        .unwrap();
    let out = eval_group(&g, &mut st, 0, &mut store, &o).unwrap();
    assert_eq!(
        out.recorded,
        vec![(
            l(&[("__name__", "job:x:sum"), ("job", "j"), ("tier", "a")]),
            7.0
        )]
    );
    // The alert saw the recorded series at the same timestamp (for: 0 fires at once).
    assert_eq!(
        st.rules[1].active.values().next().unwrap().state,
        AlertState::Firing
    );
    assert_eq!(out.to_send.len(), 1);
    // x disappears (stale) at 1m: the recorded series is marked stale at 1m.
    store
        .append(
            l(&[("__name__", "x"), ("job", "j"), ("i", "1")]),
            M,
            argus_promql::stale_nan(),
        )
        .unwrap();
    store
        .append(
            l(&[("__name__", "x"), ("job", "j"), ("i", "2")]),
            M,
            argus_promql::stale_nan(),
        )
        .unwrap();
    let out = eval_group(&g, &mut st, M, &mut store, &o).unwrap();
    assert!(out.recorded.is_empty());
    let rec = store
        .last_sample(&l(&[
            ("__name__", "job:x:sum"),
            ("job", "j"),
            ("tier", "a"),
        ]))
        .unwrap();
    assert!(rec.0 == M && argus_promql::is_stale(rec.1));
}

#[test]
fn duplicate_labelsets_and_limits_are_rule_errors() {
    let g = group("groups:\n- name: g\n  limit: 1\n  rules:\n  - alert: D\n    expr: up == 0\n    labels: {instance: same}\n  - alert: L\n    expr: up == 0\n");
    let mut st = GroupState::default();
    let mut store = MemStorage::new();
    store
        .append(l(&[("__name__", "up"), ("instance", "a")]), 0, 0.0)
        .unwrap();
    store
        .append(l(&[("__name__", "up"), ("instance", "b")]), 0, 0.0)
        .unwrap();
    let out = eval_group(&g, &mut st, 0, &mut store, &EvalOptions::default()).unwrap();
    let errs: Vec<(&str, &str)> = out
        .rule_errors
        .iter()
        .map(|e| (e.rule.as_str(), e.error.as_str()))
        .collect();
    assert_eq!(
        errs,
        vec![
            (
                "D",
                "vector contains metrics with the same labelset after applying alert labels"
            ),
            ("L", "exceeded limit of 1 with 2 alerts"),
        ]
    );
    assert!(st.rules[1].active.is_empty());
    assert!(out.to_send.is_empty());
}

#[test]
fn templates_can_query_and_errors_are_inlined() {
    let g = group(concat!(
        "groups:\n- name: g\n  rules:\n  - alert: Q\n    expr: up == 0\n    annotations:\n",
        "      total: '{{ query \"count(up)\" | first | value }} targets'\n",
        "      broken: '{{ query \"nothing\" | first | value }}'\n",
        "      url: '{{ externalURL }}'\n"
    ));
    let mut st = GroupState::default();
    let mut store = MemStorage::new();
    store
        .append(l(&[("__name__", "up"), ("instance", "a")]), 0, 0.0)
        .unwrap();
    store
        .append(l(&[("__name__", "up"), ("instance", "b")]), 0, 1.0)
        .unwrap();
    eval_group(&g, &mut st, 0, &mut store, &opts()).unwrap();
    let a = st.rules[0].active.values().next().unwrap();
    let ann: std::collections::BTreeMap<_, _> = a.annotations.iter().cloned().collect();
    assert_eq!(ann["total"], "2 targets");
    assert_eq!(ann["url"], "http://argus.example");
    assert!(
        ann["broken"].starts_with(
            "<error expanding template: error executing template __alert_Q: template: __alert_Q:1:"
        ),
        "{}",
        ann["broken"]
    );
    assert!(
        ann["broken"].ends_with("error calling first: first() called on vector with no elements>"),
        "{}",
        ann["broken"]
    );
}

#[test]
fn state_round_trips_through_json_and_refuses_old_ticks() {
    let g = group(SITE_DOWN);
    let s = l(&[("__name__", "probe_success"), ("instance", "a")]);
    let mut store = MemStorage::new();
    let mut st = GroupState::default();
    for step in 0..4 {
        store.append(s.clone(), step * M, 0.0).unwrap();
        eval_group(&g, &mut st, step * M, &mut store, &opts()).unwrap();
    }
    let json = serde_json::to_string(&st).unwrap();
    let back: GroupState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, st);
    // Continuing from the persisted state behaves as if never interrupted.
    let mut resumed = back;
    store.append(s.clone(), 4 * M, 1.0).unwrap();
    let mut store2 = store.clone();
    let a = eval_group(&g, &mut st, 4 * M, &mut store, &opts()).unwrap();
    let b = eval_group(&g, &mut resumed, 4 * M, &mut store2, &opts()).unwrap();
    assert_eq!(a.to_send, b.to_send);
    assert_eq!(st, resumed);
    // The same tick twice is refused (an overlapping invocation must not double-advance).
    let err = eval_group(&g, &mut st, 4 * M, &mut store, &opts()).unwrap_err();
    assert!(matches!(err, EvalError::NotNewer { last, ts, .. } if last == 4 * M && ts == 4 * M));
}

#[test]
fn nan_values_survive_persistence() {
    let g = group("groups:\n- name: g\n  rules:\n  - alert: N\n    expr: x\n");
    let mut st = GroupState::default();
    let mut store = MemStorage::new();
    store.append(l(&[("__name__", "x")]), 0, f64::NAN).unwrap();
    eval_group(&g, &mut st, 0, &mut store, &EvalOptions::default()).unwrap();
    let json = serde_json::to_string(&st).unwrap();
    let back: GroupState = serde_json::from_str(&json).unwrap();
    assert!(back.rules[0].active.values().next().unwrap().value.is_nan());
}

#[test]
fn state_follows_rules_across_reloads() {
    let g1 = group("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x > 0\n    for: 5m\n");
    let g2 = group("groups:\n- name: g\n  rules:\n  - alert: B\n    expr: x > 0\n  - alert: A\n    expr: x > 0\n    for: 5m\n");
    let mut st = GroupState::default();
    let mut store = MemStorage::new();
    store.append(l(&[("__name__", "x")]), 0, 1.0).unwrap();
    eval_group(&g1, &mut st, 0, &mut store, &EvalOptions::default()).unwrap();
    store.append(l(&[("__name__", "x")]), M, 1.0).unwrap();
    eval_group(&g2, &mut st, M, &mut store, &EvalOptions::default()).unwrap();
    assert_eq!(st.rules[1].name, "A");
    assert_eq!(
        st.rules[1].active.values().next().unwrap().active_at,
        0,
        "A kept its pending state"
    );
    assert_eq!(
        st.rules[0].active.values().next().unwrap().state,
        AlertState::Firing
    );
}

mod model {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// With `for: k` minutes and 1m ticks, an alert fires at t exactly when the
        /// condition held at every tick of [t-k, t]; firing alerts are sent, pending never.
        #[test]
        fn fires_iff_condition_held_for_k_ticks(cond in proptest::collection::vec(any::<bool>(), 1..40), k in 0i64..5) {
            let g = group(&format!("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: c > 0\n    for: {k}m\n"));
            let mut st = GroupState::default();
            let mut store = MemStorage::new();
            let s = l(&[("__name__", "c")]);
            let mut last_sent: Option<i64> = None;
            for (t, &c) in cond.iter().enumerate() {
                let t = t as i64;
                store.append(s.clone(), t * M, if c { 1.0 } else { 0.0 }).unwrap();
                let out = eval_group(&g, &mut st, t * M, &mut store, &EvalOptions::default()).unwrap();
                let firing = st.rules[0].active_alerts().any(|a| a.state == AlertState::Firing);
                let expect = t >= k && (t - k..=t).all(|i| cond[i as usize]);
                prop_assert_eq!(firing, expect, "t={} cond={:?}", t, cond);
                for a in &out.to_send {
                    // Only firing or resolved alerts are sent; never more often than the resend delay when firing.
                    let resolved = a.ends_at.is_some_and(|e| e <= t * M);
                    prop_assert!(resolved || firing);
                    if !resolved {
                        if let Some(p) = last_sent {
                            prop_assert!(t * M - p > 60_000);
                        }
                        last_sent = Some(t * M);
                    }
                }
                let pending = st.rules[0].active_alerts().any(|a| a.state == AlertState::Pending);
                prop_assert!(!(pending && firing));
                prop_assert_eq!(pending, c && !firing);
            }
        }
    }
}
