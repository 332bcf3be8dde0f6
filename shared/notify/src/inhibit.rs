//! Inhibition (inhibit/inhibit.go): a firing source alert mutes target alerts that agree
//! with it on the `equal` labels.

use crate::alert::StoredAlert;
use crate::config::InhibitRule;
use argus_model::{Labels, Millis};

/// Fingerprints (hex) of the alerts inhibiting `target` at `now`; empty when not inhibited.
pub fn inhibited_by(
    rules: &[InhibitRule],
    all: &[StoredAlert],
    target: &Labels,
    now: Millis,
) -> Vec<String> {
    let tfp = target.fingerprint();
    let mut out = Vec::new();
    for r in rules {
        if !r.target.matches(target) {
            continue;
        }
        // An alert matching both sides cannot inhibit another that matches both sides.
        let target_is_source = r.source.matches(target);
        for s in all {
            if s.resolved(now) || !r.source.matches(&s.labels) {
                continue;
            }
            let sfp = s.fingerprint();
            if sfp == tfp {
                continue;
            }
            if target_is_source && r.target.matches(&s.labels) {
                continue;
            }
            if r.equal.iter().all(|n| s.labels.get(n) == target.get(n)) {
                let hex = format!("{sfp:016x}");
                if !out.contains(&hex) {
                    out.push(hex);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::{parse_matchers, Matchers};

    fn alert(pairs: &[(&str, &str)], ends: Millis) -> StoredAlert {
        StoredAlert {
            labels: Labels::from_pairs(pairs.iter().copied()),
            annotations: Labels::new(),
            starts_at: 0,
            ends_at: ends,
            generator_url: String::new(),
            updated_at: 0,
            timeout: false,
        }
    }

    #[test]
    fn source_must_fire_and_agree() {
        let rule = InhibitRule {
            source: Matchers(parse_matchers("severity=page").unwrap()),
            target: Matchers(parse_matchers("severity=warn").unwrap()),
            equal: vec!["instance".into()],
        };
        let src = alert(&[("severity", "page"), ("instance", "a")], 1000);
        let other = alert(&[("severity", "page"), ("instance", "b")], 1000);
        let all = vec![src.clone(), other];
        let t = Labels::from_pairs([("severity", "warn"), ("instance", "a")]);
        assert_eq!(
            inhibited_by(std::slice::from_ref(&rule), &all, &t, 500),
            vec![format!("{:016x}", src.fingerprint())]
        );
        assert!(
            inhibited_by(std::slice::from_ref(&rule), &all, &t, 1000).is_empty(),
            "resolved source"
        );
        let t2 = Labels::from_pairs([("severity", "warn"), ("instance", "c")]);
        assert!(inhibited_by(std::slice::from_ref(&rule), &all, &t2, 500).is_empty());
        // Missing label on both sides counts as equal.
        let t3 = Labels::from_pairs([("severity", "warn")]);
        let src3 = alert(&[("severity", "page")], 1000);
        assert_eq!(inhibited_by(&[rule], &[src3], &t3, 0).len(), 1);
    }
}
