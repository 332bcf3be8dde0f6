//! Bundles: many groups stored in one item (pk `bundle`, sk = a writer's slot).
//!
//! The probe pushes one group per target per run. Stored one item per group, that is
//! one DynamoDB write (2 WRU for a blackbox result) per target per run, which alone
//! costs more than the whole bill should. A bundle holds the latest group of every
//! target a probe invocation handles, compressed together (the targets share label
//! names and HELP texts), and is rewritten once per run with a conditional write.
//!
//! Readers see bundled groups beside pushed ones ([`Gateway::load_all`]): when the same
//! grouping key is in several places (a target moved between slots, or a client pushed
//! the same key), the most recent push wins. Bundled groups always carry an expiry, so
//! a target that stops being probed (deleted, disabled, moved to another slot) leaves
//! every view once it expires, and the writer drops it from the item on its next run.
//! Bundled groups are PUTs without the cross-group type index: their families come
//! from Argus's own prober, whose names and types are fixed. The HTTP API's DELETE
//! removes pushed groups only; a bundled one leaves when it expires (or on wipe).

use crate::check::{self, apply_grouping, has_timestamps};
use crate::gateway::{keep_newer, Cached, Gateway, MAX_ATTEMPTS};
use crate::group::{self, group_id, Group, StoredFamily};
use crate::{GatewayError, WriteRequest};
use argus_model::{Cond, Item, Millis, StoreError, Table, UnixSecs};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const BUNDLE_PK: &str = "bundle";

/// DynamoDB items are at most 400 KB; keep room for keys and attributes.
pub const MAX_BUNDLE_BYTES: usize = 350_000;

/// The decoded groups of one stored bundle item, by group id.
pub(crate) struct Bundle {
    pub version: u64,
    pub groups: Vec<(String, Arc<Cached>)>,
}

impl Gateway {
    /// Stores `writes` (PUTs) in the bundle `slot`, each group expiring after its
    /// write's `ttl` (else `keep_for`) from `now`, replacing those groups' previous copies in the slot and dropping expired
    /// ones. Returns one result per write (a rejected write is not stored; the others
    /// are); `Err` when nothing could be stored.
    pub async fn push_bundle(
        &self,
        slot: &str,
        writes: Vec<WriteRequest>,
        keep_for: Duration,
        now: Millis,
    ) -> Result<Vec<Result<(), GatewayError>>, GatewayError> {
        let mut fresh: Vec<Group> = Vec::with_capacity(writes.len());
        let verdicts: Vec<Result<(), GatewayError>> = writes
            .into_iter()
            .map(|w| {
                let keep = w.ttl.unwrap_or(keep_for);
                let expires = now.saturating_add(argus_model::time::millis(keep));
                let g = self.bundled_group(w, now, expires)?;
                fresh.push(g);
                Ok(())
            })
            .collect();
        for _ in 0..MAX_ATTEMPTS {
            let (version, mut groups) = self.read_bundle(slot).await?;
            groups.retain(|_, g| g.live(now));
            for g in &fresh {
                groups.insert(group_id(&g.key), g.clone());
            }
            let data = group::encode_bundle(groups.values());
            if data.len() > MAX_BUNDLE_BYTES {
                return Err(GatewayError::TooLarge(format!(
                    "bundle {slot:?} would take {} bytes for {} groups, over the {MAX_BUNDLE_BYTES}-byte item limit: \
                     probe fewer targets per invocation (probe.max_targets_per_invocation)",
                    data.len(),
                    groups.len()
                )));
            }
            let mut item = Item::new(BUNDLE_PK, slot);
            item.data = Some(data);
            item.expires_at = groups
                .values()
                .filter_map(|g| g.expires_at_ms)
                .max()
                .map(|ms| UnixSecs(UnixSecs::floor(ms).0 + 1));
            item.version = version;
            match self
                .kv
                .put(Table::Metrics, item, Cond::Version(version))
                .await
            {
                Ok(v) => {
                    self.bundle_put(slot, v, groups);
                    return Ok(verdicts);
                }
                Err(StoreError::Conflict(_)) => continue, // another run wrote it: redo
                Err(e) => return Err(e.into()),
            }
        }
        Err(GatewayError::Contention(format!("bundle {slot}")))
    }

    /// A PUT as a bundled group, with the same validation as a pushed one.
    fn bundled_group(
        &self,
        w: WriteRequest,
        now: Millis,
        expires: Millis,
    ) -> Result<Group, GatewayError> {
        Self::validate_key(&w.labels)?;
        let families = w
            .families
            .ok_or_else(|| GatewayError::BadRequest("a bundle holds pushes, not deletes".into()))?;
        let pushed = apply_grouping(families, &w.labels);
        if self.cfg.consistency_check && has_timestamps(&pushed) {
            return Err(GatewayError::Inconsistent(
                "pushed metrics must not have timestamps".into(),
            ));
        }
        let mut g = Group::new(w.labels);
        g.families = pushed
            .into_iter()
            .filter(|(n, _)| n != group::PUSH_TIME && n != group::PUSH_FAILURE_TIME)
            .map(|(n, family)| {
                (
                    n,
                    StoredFamily {
                        family,
                        pushed_ms: now,
                    },
                )
            })
            .collect();
        g.push_ms = Some(now);
        g.push_set_ms = now;
        g.failure_set_ms = now;
        g.expires_at_ms = Some(expires);
        let series = g.series_count();
        if series > self.cfg.max_series_per_group {
            return Err(GatewayError::TooManySeries(format!(
                "group would hold {series} series, more than the limit of {}",
                self.cfg.max_series_per_group
            )));
        }
        if self.cfg.consistency_check {
            check::check_group(&g).map_err(GatewayError::Inconsistent)?;
        }
        Ok(g)
    }

    /// The slot's stored groups by id (version 0 and none when absent). A corrupt
    /// bundle is logged and replaced: it only holds the latest probe results.
    async fn read_bundle(
        &self,
        slot: &str,
    ) -> Result<(u64, BTreeMap<String, Group>), GatewayError> {
        let Some(item) = self.kv.get(Table::Metrics, BUNDLE_PK, slot).await? else {
            return Ok((0, BTreeMap::new()));
        };
        let groups = match item.data.as_deref().map(group::decode_bundle) {
            Some(Ok(gs)) => gs.into_iter().map(|g| (group_id(&g.key), g)).collect(),
            Some(Err(e)) => {
                // Deliberate: a bundle only holds the slot's latest probe results, which
                // this write replaces in full anyway (ARCHITECTURE.md, Stored formats).
                self.note_undecodable();
                tracing::error!(slot, error = %e, "replacing an unreadable metric bundle");
                BTreeMap::new()
            }
            None => BTreeMap::new(),
        };
        Ok((item.version, groups))
    }

    fn bundle_put(&self, slot: &str, version: u64, groups: BTreeMap<String, Group>) {
        let groups = groups
            .into_iter()
            .map(|(gid, g)| (gid, Arc::new(Cached::bundled(version, g))))
            .collect();
        self.bundles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(slot.to_string(), Arc::new(Bundle { version, groups }));
    }

    /// Every stored bundle, decoded (or taken from the cache when its version did not
    /// change). Unreadable bundles are skipped with a warning.
    pub(crate) async fn load_bundles(&self) -> Result<Vec<Arc<Bundle>>, GatewayError> {
        let items = self.kv.query(Table::Metrics, BUNDLE_PK, None).await?;
        let mut out = Vec::with_capacity(items.len());
        let mut cache =
            std::mem::take(&mut *self.bundles.lock().unwrap_or_else(|e| e.into_inner()));
        let mut fresh = std::collections::HashMap::with_capacity(items.len());
        for item in items {
            let b = match cache.remove(&item.sk) {
                Some(b) if b.version == item.version => b,
                _ => match item.data.as_deref().map(group::decode_bundle) {
                    Some(Ok(gs)) => Arc::new(Bundle {
                        version: item.version,
                        groups: gs
                            .into_iter()
                            .map(|g| (group_id(&g.key), Arc::new(Cached::bundled(item.version, g))))
                            .collect(),
                    }),
                    Some(Err(e)) => {
                        self.note_undecodable();
                        tracing::error!(slot = %item.sk, error = %e, "skipping unreadable metric bundle (left as stored)");
                        continue;
                    }
                    None => continue,
                },
            };
            fresh.insert(item.sk, b.clone());
            out.push(b);
        }
        keep_newer(
            &mut self.bundles.lock().unwrap_or_else(|e| e.into_inner()),
            fresh,
            |b| b.version,
        );
        Ok(out)
    }
}
