//! What this process's ingests wrote, so that `dispatch` can flush the groups an ingest
//! made due without reloading every group and alert (a "woken round").
//!
//! Kept only when the process owns its store (`exclusive_store`: `argus dev`, whose
//! redb file is locked to it), so that every alert write goes through this notifier's
//! ingest. Each full round (a tick, a periodic round of `dispatch`) rebuilds the member
//! index from what it loaded; entries added by ingests that committed after that load
//! began are kept. An alert that expired or was deleted stays listed until the next
//! full round and is skipped when read (it is not live, or gone). Until the first full
//! round, or while a stored alert cannot be read, the index is not complete and
//! every round is a full one.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
pub(super) struct Recent {
    /// A full round built `members` from every stored alert (all readable).
    complete: bool,
    /// Counts ingest writes: orders them against a full round's load.
    seq: u64,
    /// Group item sort key → its members' fingerprints → the `seq` that added each.
    members: HashMap<String, HashMap<String, u64>>,
    /// Groups ingests made due now, not yet taken by a woken round.
    due: BTreeSet<String>,
}

impl Recent {
    /// An ingest's committed writes: each alert (by fingerprint) with the group sort
    /// keys it belongs to, and the groups it made due now.
    pub(super) fn ingested<'a>(
        &mut self,
        alerts: impl IntoIterator<Item = (String, &'a [String])>,
        due: impl IntoIterator<Item = String>,
    ) {
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
        self.due.extend(due);
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

    /// Due groups a woken round could not flush yet (still flushing from an earlier
    /// round): the next woken round looks at them again.
    pub(super) fn requeue(&mut self, groups: impl IntoIterator<Item = String>) {
        self.due.extend(groups);
    }

    /// The groups made due since the last call, with their members' fingerprints
    /// (`None` when the index is not complete: a full round is needed).
    pub(super) fn take_due(&mut self) -> Option<Vec<(String, Vec<String>)>> {
        if !self.complete {
            return None;
        }
        let due = std::mem::take(&mut self.due);
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

    fn members(r: &mut Recent) -> Vec<(String, Vec<String>)> {
        let mut v: Vec<_> = r
            .take_due()
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
        r.ingested([("a".to_string(), &["g1".to_string()][..])], ["g1".into()]);
        assert!(r.take_due().is_none(), "no full load yet");
        let mark = r.load_mark();
        r.loaded(mark, HashMap::new(), false);
        assert!(r.take_due().is_none(), "an unreadable alert: not complete");
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
        r.ingested([("new".to_string(), &g[..])], ["g".into()]);
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
            ["g1".into(), "g2".into()],
        );
        assert_eq!(
            members(&mut r),
            vec![
                ("g1".into(), vec!["a".into(), "b".into()]),
                ("g2".into(), vec!["a".into()])
            ]
        );
    }
}
