//! What this process's ingests and flushes wrote, so that `dispatch` can flush the
//! groups that come due without reloading every group and alert (a "woken round"), at
//! the time each is due (its `group_wait` or `group_interval` is up), as Alertmanager's
//! aggregation groups' timers fire.
//!
//! Kept only when the process owns its store (`exclusive_store`: `argus dev`, whose
//! redb file is locked to it), so that every alert write goes through this notifier's
//! ingest. Each full round (a tick, a periodic round of `dispatch`) rebuilds the member
//! index from what it loaded; entries added by ingests that committed after that load
//! began are kept. An alert that expired or was deleted stays listed until the next
//! full round and is skipped when read (it is not live, or gone). Until the first full
//! round, or while a stored alert cannot be read, the index is not complete and
//! every round is a full one.

use argus_model::Millis;
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
pub(super) struct Recent {
    /// A full round built `members` from every stored alert (all readable).
    complete: bool,
    /// Counts what is recorded here (ingests' writes, timers scheduled): orders them
    /// against a full round's load.
    seq: u64,
    /// Group item sort key → its members' fingerprints → the `seq` that added each.
    members: HashMap<String, HashMap<String, u64>>,
    /// Group sort key → when it is due (as its state was last written here), and the
    /// `seq` of that write.
    scheduled: HashMap<String, (Millis, u64)>,
    /// The same, in the order they come due.
    queue: BTreeSet<(Millis, String)>,
}

impl Recent {
    /// An ingest's committed writes: each alert (by fingerprint) with the group sort
    /// keys it belongs to, and the groups it wrote with when they are due. `true` when
    /// a group now comes due earlier than any before ([`Recent::next_at`] moved).
    pub(super) fn ingested<'a>(
        &mut self,
        alerts: impl IntoIterator<Item = (String, &'a [String])>,
        groups: impl IntoIterator<Item = (String, Millis)>,
    ) -> bool {
        let before = self.next_at();
        self.seq += 1;
        let seq = self.seq;
        for (fp, groups) in alerts {
            for g in groups {
                self.members
                    .entry(g.clone())
                    .or_default()
                    .insert(fp.clone(), seq);
            }
        }
        for (g, at) in groups {
            self.schedule(g, at);
        }
        self.next_at() != before && self.next_at().is_some()
    }

    /// A group's state written (by an ingest, or a flush that ended it): due at `at`.
    pub(super) fn schedule(&mut self, group: String, at: Millis) {
        self.seq += 1;
        if let Some((old, _)) = self.scheduled.insert(group.clone(), (at, self.seq)) {
            self.queue.remove(&(old, group.clone()));
        }
        self.queue.insert((at, group));
    }

    /// When the next scheduled group comes due.
    pub(super) fn next_at(&self) -> Option<Millis> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// A full round that began loading at `mark` saw every group due at `now` that
    /// was written before: their timers are spent (those written since are kept).
    pub(super) fn spent(&mut self, mark: u64, now: Millis) {
        let spent: Vec<(Millis, String)> = self
            .queue
            .iter()
            .take_while(|(at, _)| *at <= now)
            .filter(|(_, g)| self.scheduled.get(g).is_some_and(|&(_, seq)| seq <= mark))
            .cloned()
            .collect();
        for (at, g) in spent {
            self.queue.remove(&(at, g.clone()));
            self.scheduled.remove(&g);
        }
    }

    /// Where a full round's load begins (before it reads the alerts).
    pub(super) fn load_mark(&self) -> u64 {
        self.seq
    }

    /// A full round loaded `members` (group sort key → fingerprints), the alerts as
    /// stored after `mark`; `complete`: every stored alert was readable. Entries
    /// written by ingests after the mark are kept (the load may not have seen them).
    pub(super) fn loaded(
        &mut self,
        mark: u64,
        members: HashMap<String, Vec<String>>,
        complete: bool,
    ) {
        let mut fresh: HashMap<String, HashMap<String, u64>> = members
            .into_iter()
            .map(|(g, fps)| (g, fps.into_iter().map(|fp| (fp, 0)).collect()))
            .collect();
        for (g, fps) in self.members.drain() {
            for (fp, seq) in fps {
                if seq > mark {
                    fresh.entry(g.clone()).or_default().insert(fp, seq);
                }
            }
        }
        self.members = fresh;
        self.complete = complete;
    }

    /// The scheduled groups due at `now`, with their members' fingerprints (`None`
    /// when the index is not complete: a full round is needed).
    pub(super) fn take_due(&mut self, now: Millis) -> Option<Vec<(String, Vec<String>)>> {
        if !self.complete {
            return None;
        }
        let mut due = Vec::new();
        while let Some((at, _)) = self.queue.first() {
            if *at > now {
                break;
            }
            let (_, g) = self.queue.pop_first()?;
            self.scheduled.remove(&g);
            due.push(g);
        }
        Some(
            due.into_iter()
                .map(|g| {
                    let fps = self
                        .members
                        .get(&g)
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default();
                    (g, fps)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_000;

    fn members(r: &mut Recent) -> Vec<(String, Vec<String>)> {
        let mut v: Vec<_> = r
            .take_due(NOW)
            .unwrap()
            .into_iter()
            .map(|(g, mut fps)| {
                fps.sort();
                (g, fps)
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn nothing_is_targeted_before_a_complete_full_load() {
        let mut r = Recent::default();
        r.ingested(
            [("a".to_string(), &["g1".to_string()][..])],
            [("g1".into(), NOW)],
        );
        assert!(r.take_due(NOW).is_none(), "no full load yet");
        let mark = r.load_mark();
        r.loaded(mark, HashMap::new(), false);
        assert!(
            r.take_due(NOW).is_none(),
            "an unreadable alert: not complete"
        );
        r.loaded(mark, HashMap::new(), true);
        assert_eq!(members(&mut r), vec![("g1".into(), vec![])]);
    }

    #[test]
    fn a_full_load_keeps_what_ingests_wrote_after_its_mark_only() {
        let mut r = Recent::default();
        let g = ["g".to_string()];
        r.ingested([("old".to_string(), &g[..])], []);
        r.ingested([("expired".to_string(), &g[..])], []);
        let mark = r.load_mark();
        // Committed while the load ran: the load may not have seen it.
        r.ingested([("new".to_string(), &g[..])], [("g".into(), NOW)]);
        let loaded = HashMap::from([("g".to_string(), vec!["old".to_string()])]);
        r.loaded(mark, loaded, true);
        assert_eq!(
            members(&mut r),
            vec![("g".into(), vec!["new".into(), "old".into()])],
            "the expired alert the load did not see is gone; the new one stays"
        );
        assert_eq!(members(&mut r), vec![], "due groups are taken once");
    }

    #[test]
    fn an_alert_in_several_groups_is_a_member_of_each() {
        let mut r = Recent::default();
        r.loaded(0, HashMap::new(), true);
        let gs = ["g1".to_string(), "g2".to_string()];
        r.ingested(
            [("a".to_string(), &gs[..]), ("b".to_string(), &gs[..1])],
            [("g1".into(), NOW), ("g2".into(), NOW - 1)],
        );
        assert_eq!(
            members(&mut r),
            vec![
                ("g1".into(), vec!["a".into(), "b".into()]),
                ("g2".into(), vec!["a".into()])
            ]
        );
    }

    #[test]
    fn groups_come_due_in_time_order_and_a_rewrite_moves_them() {
        let mut r = Recent::default();
        r.loaded(0, HashMap::new(), true);
        assert!(
            r.ingested([], [("late".into(), NOW + 500)]),
            "the first timer"
        );
        assert!(
            r.ingested([], [("soon".into(), NOW + 100)]),
            "an earlier one"
        );
        assert!(
            !r.ingested([], [("later".into(), NOW + 900)]),
            "not earlier"
        );
        assert_eq!(r.next_at(), Some(NOW + 100));
        assert_eq!(members(&mut r), vec![], "nothing due yet");
        // A flush ended "soon": its next flush is a group_interval later.
        r.schedule("soon".into(), NOW + 2_000);
        assert_eq!(r.next_at(), Some(NOW + 500));
        let due: Vec<String> = r
            .take_due(NOW + 900)
            .unwrap()
            .into_iter()
            .map(|(g, _)| g)
            .collect();
        assert_eq!(due, ["late", "later"]);
        assert_eq!(r.next_at(), Some(NOW + 2_000));
        // A full round saw it due: no longer scheduled. One written after the round's
        // load began stays, as does one not due yet.
        let mark = r.load_mark();
        r.schedule("written during the load".into(), NOW + 1_000);
        r.schedule("other".into(), NOW + 3_000);
        r.spent(mark, NOW + 2_000);
        assert_eq!(r.next_at(), Some(NOW + 1_000));
        r.spent(r.load_mark(), NOW + 2_000);
        assert_eq!(r.next_at(), Some(NOW + 3_000));
    }
}
