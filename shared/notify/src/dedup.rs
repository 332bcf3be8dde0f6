//! The dedup decision (notify/notify.go `DedupStage.needsUpdate`), pure and explained.

use argus_model::Millis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

/// What was last notified for one (receiver integration, group key).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NflogEntry {
    pub firing: BTreeSet<u64>,
    pub resolved: BTreeSet<u64>,
    /// When it was sent (unix ms).
    pub timestamp: Millis,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Never notified and something fires.
    NewFiring,
    /// Never notified and only resolved alerts: nothing to say.
    NothingFiring,
    /// An alert fires that the last notification did not contain.
    NewlyFiring,
    /// Everything resolved since the last notification (sent even without
    /// send_resolved, to clear the log; the sink then skips it).
    AllResolved,
    /// Fired and resolved between two notifications: the receiver never knew.
    ResolvedUnseen,
    /// send_resolved and an alert resolved since the last notification.
    NewResolved,
    /// Nothing changed, but repeat_interval has passed.
    RepeatInterval,
    NothingChanged,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub send: bool,
    pub reason: Reason,
}

fn d(send: bool, reason: Reason) -> Decision {
    Decision { send, reason }
}

/// Whether a notification is due for the group's current `firing`/`resolved` alert hashes,
/// given the last log entry.
pub fn needs_update(
    entry: Option<&NflogEntry>,
    firing: &BTreeSet<u64>,
    resolved: &BTreeSet<u64>,
    send_resolved: bool,
    repeat: Duration,
    now: Millis,
) -> Decision {
    let Some(e) = entry else {
        return if firing.is_empty() {
            d(false, Reason::NothingFiring)
        } else {
            d(true, Reason::NewFiring)
        };
    };
    if !firing.is_subset(&e.firing) {
        return d(true, Reason::NewlyFiring);
    }
    if firing.is_empty() {
        return if e.firing.is_empty() {
            d(false, Reason::ResolvedUnseen)
        } else {
            d(true, Reason::AllResolved)
        };
    }
    if send_resolved && !resolved.is_subset(&e.resolved) {
        return d(true, Reason::NewResolved);
    }
    if e.timestamp < now - repeat.as_millis() as i64 {
        return d(true, Reason::RepeatInterval);
    }
    d(false, Reason::NothingChanged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[u64]) -> BTreeSet<u64> {
        v.iter().copied().collect()
    }
    const H: Duration = Duration::from_secs(3600);

    #[test]
    fn stepping_a_clock() {
        let none = set(&[]);
        assert_eq!(
            needs_update(None, &none, &set(&[1]), true, H, 0).reason,
            Reason::NothingFiring
        );
        let dec = needs_update(None, &set(&[1]), &none, true, H, 0);
        assert!(dec.send && dec.reason == Reason::NewFiring);
        let mut e = NflogEntry {
            firing: set(&[1]),
            resolved: none.clone(),
            timestamp: 0,
        };
        // Same alert a minute later: nothing changed.
        assert_eq!(
            needs_update(Some(&e), &set(&[1]), &none, true, H, 60_000),
            d(false, Reason::NothingChanged)
        );
        // A second alert fires.
        assert_eq!(
            needs_update(Some(&e), &set(&[1, 2]), &none, true, H, 60_000),
            d(true, Reason::NewlyFiring)
        );
        e.firing = set(&[1, 2]);
        // One resolves: only with send_resolved.
        assert_eq!(
            needs_update(Some(&e), &set(&[1]), &set(&[2]), true, H, 120_000),
            d(true, Reason::NewResolved)
        );
        assert_eq!(
            needs_update(Some(&e), &set(&[1]), &set(&[2]), false, H, 120_000),
            d(false, Reason::NothingChanged)
        );
        // Repeat interval strictly passed.
        assert_eq!(
            needs_update(Some(&e), &set(&[1, 2]), &none, false, H, 3_600_000),
            d(false, Reason::NothingChanged)
        );
        assert_eq!(
            needs_update(Some(&e), &set(&[1, 2]), &none, false, H, 3_600_001),
            d(true, Reason::RepeatInterval)
        );
        // All resolved: always, to clear the log.
        assert_eq!(
            needs_update(Some(&e), &none, &set(&[1, 2]), false, H, 10),
            d(true, Reason::AllResolved)
        );
        let cleared = NflogEntry {
            firing: none.clone(),
            resolved: set(&[1, 2]),
            timestamp: 10,
        };
        assert_eq!(
            needs_update(Some(&cleared), &none, &set(&[3]), true, H, 20),
            d(false, Reason::ResolvedUnseen)
        );
    }
}
