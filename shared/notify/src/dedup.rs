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
    /// An earlier attempt that was never confirmed (a crash mid-send, a timeout, a
    /// failure after the receiver may have read it) exists: if this one is sent, the
    /// receiver may get the same state twice (a counted possible duplicate).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unconfirmed: bool,
}

fn d(send: bool, reason: Reason) -> Decision {
    Decision {
        send,
        reason,
        unconfirmed: false,
    }
}

/// What unconfirmed attempts may have told the receiver. A claim records the state it
/// is sending; when the send crashes or fails, that state is folded in here, because
/// the receiver may hold it (a timed-out POST may have been processed). Folding keeps
/// exactly what the decision needs to answer "would any of them need an update?":
/// an alert firing now that some attempt did not carry, an attempt that carried a
/// firing alert when nothing fires now, a resolved alert some attempt did not carry,
/// and the oldest attempt's time for the repeat interval.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unconfirmed {
    /// Alerts firing in at least one attempt.
    pub firing_any: BTreeSet<u64>,
    /// Alerts firing in every attempt.
    pub firing_all: BTreeSet<u64>,
    /// Alerts resolved in every attempt.
    pub resolved_all: BTreeSet<u64>,
    /// Time of the oldest attempt (unix ms).
    pub oldest: Millis,
    /// How many attempts were folded in.
    pub attempts: u32,
}

impl Unconfirmed {
    pub fn of(e: &NflogEntry) -> Unconfirmed {
        Unconfirmed {
            firing_any: e.firing.clone(),
            firing_all: e.firing.clone(),
            resolved_all: e.resolved.clone(),
            oldest: e.timestamp,
            attempts: 1,
        }
    }

    /// Folds one more attempt in.
    pub fn add(&mut self, e: &NflogEntry) {
        self.firing_any.extend(e.firing.iter().copied());
        self.firing_all.retain(|h| e.firing.contains(h));
        self.resolved_all.retain(|h| e.resolved.contains(h));
        self.oldest = self.oldest.min(e.timestamp);
        self.attempts = self.attempts.saturating_add(1);
    }

    pub fn folded(u: Option<Unconfirmed>, e: &NflogEntry) -> Unconfirmed {
        match u {
            Some(mut u) => {
                u.add(e);
                u
            }
            None => Unconfirmed::of(e),
        }
    }
}

/// [`needs_update`] when unconfirmed attempts exist: the receiver holds the last
/// confirmed state or any unconfirmed one, so a notification is due when any of them
/// would need an update (at least once: a state change is never lost to a crash, at
/// the price of a possible duplicate, flagged in [`Decision::unconfirmed`]).
pub fn needs_update_with(
    confirmed: Option<&NflogEntry>,
    unconfirmed: Option<&Unconfirmed>,
    firing: &BTreeSet<u64>,
    resolved: &BTreeSet<u64>,
    send_resolved: bool,
    repeat: Duration,
    now: Millis,
) -> Decision {
    let base = needs_update(confirmed, firing, resolved, send_resolved, repeat, now);
    let Some(u) = unconfirmed else {
        return base;
    };
    let flag = |mut x: Decision| {
        x.unconfirmed = x.send;
        x
    };
    if base.send {
        return flag(base);
    }
    if !firing.is_subset(&u.firing_all) {
        return flag(d(true, Reason::NewlyFiring));
    }
    if firing.is_empty() {
        return if u.firing_any.is_empty() {
            base
        } else {
            flag(d(true, Reason::AllResolved))
        };
    }
    if send_resolved && !resolved.is_subset(&u.resolved_all) {
        return flag(d(true, Reason::NewResolved));
    }
    if u.oldest < now - repeat.as_millis() as i64 {
        return flag(d(true, Reason::RepeatInterval));
    }
    base
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

    fn entry(f: &[u64], r: &[u64], t: Millis) -> NflogEntry {
        NflogEntry {
            firing: set(f),
            resolved: set(r),
            timestamp: t,
        }
    }

    /// The issue-11 case: the firing was claimed and (maybe) delivered, the process
    /// died, the alert resolved. The confirmed log says "never notified": without the
    /// unconfirmed attempt the resolved is never sent.
    #[test]
    fn an_unconfirmed_firing_makes_the_resolved_due() {
        let none = set(&[]);
        let attempt = Unconfirmed::of(&entry(&[1], &[], 10));
        assert_eq!(
            needs_update(None, &none, &set(&[1]), true, H, 20),
            d(false, Reason::NothingFiring)
        );
        let dec = needs_update_with(None, Some(&attempt), &none, &set(&[1]), true, H, 20);
        assert!(dec.send && dec.unconfirmed && dec.reason == Reason::AllResolved);
        // Even without send_resolved (the log is cleared; the sink skips it).
        let dec = needs_update_with(None, Some(&attempt), &none, &set(&[1]), false, H, 20);
        assert!(dec.send && dec.reason == Reason::AllResolved);
        // Still firing: resent (the receiver may not have it), flagged.
        let dec = needs_update_with(None, Some(&attempt), &set(&[1]), &none, true, H, 20);
        assert!(dec.send && dec.unconfirmed && dec.reason == Reason::NewFiring);
        // Nothing unconfirmed: the plain decision, unflagged.
        let sent = entry(&[1], &[], 10);
        assert_eq!(
            needs_update_with(Some(&sent), None, &set(&[1]), &none, true, H, 20),
            d(false, Reason::NothingChanged)
        );
    }

    /// Folding several attempts answers "would any of them need an update" exactly.
    #[test]
    fn folded_attempts_keep_every_possibility() {
        let none = set(&[]);
        // Confirmed: nothing. Attempt 1 carried firing {1} (timed out, maybe read);
        // attempt 2 carried "all resolved" {1} (crashed before reaching the receiver).
        let mut u = Unconfirmed::of(&entry(&[1], &[], 10));
        u.add(&entry(&[], &[1], 20));
        assert_eq!(u.firing_any, set(&[1]));
        assert!(u.firing_all.is_empty() && u.resolved_all.is_empty());
        assert_eq!((u.oldest, u.attempts), (10, 2));
        // Against attempt 2 alone nothing would be due; attempt 1 makes it due.
        assert!(!needs_update(Some(&entry(&[], &[1], 20)), &none, &set(&[1]), true, H, 30).send);
        let dec = needs_update_with(None, Some(&u), &none, &set(&[1]), true, H, 30);
        assert!(dec.send && dec.reason == Reason::AllResolved);
        // Confirmed {1,2} firing, an unconfirmed attempt with {1}: 2 still fires and
        // the receiver may only know {1}: due.
        let sent = entry(&[1, 2], &[], 0);
        let u = Unconfirmed::of(&entry(&[1], &[2], 5));
        let dec = needs_update_with(Some(&sent), Some(&u), &set(&[1, 2]), &none, true, H, 30);
        assert!(dec.send && dec.reason == Reason::NewlyFiring, "{dec:?}");
        // A resolved alert an attempt did not carry (send_resolved only).
        let u = Unconfirmed::of(&entry(&[1, 2], &[], 5));
        let sent = entry(&[1, 2], &[3], 5);
        let dec = needs_update_with(Some(&sent), Some(&u), &set(&[1]), &set(&[3]), true, H, 30);
        assert!(dec.send && dec.reason == Reason::NewResolved, "{dec:?}");
        let dec = needs_update_with(Some(&sent), Some(&u), &set(&[1]), &set(&[3]), false, H, 30);
        assert!(!dec.send, "{dec:?}");
        // The repeat interval counts from the oldest attempt.
        let sent = entry(&[1], &[], 3_600_000);
        let u = Unconfirmed::of(&entry(&[1], &[], 0));
        assert!(!needs_update(Some(&sent), &set(&[1]), &none, true, H, 3_600_001).send);
        let dec = needs_update_with(Some(&sent), Some(&u), &set(&[1]), &none, true, H, 3_600_001);
        assert!(dec.send && dec.reason == Reason::RepeatInterval);
    }

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
