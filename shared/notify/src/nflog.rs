//! The notification log (Alertmanager's `nflog`) over the `Kv` port: one entry per
//! (receiver, integration, aggregation group) recording what was last sent, what was
//! attempted but never confirmed, and the claim of a send in progress.
//!
//! A send is `claim` → send → `confirm` (or `release` when it failed). The claim
//! records *what is being sent*, so whoever takes over a dead claim (its lease is over,
//! or, when one process owns the store, its owner is a previous process) knows the
//! receiver may have it: the claim's state is folded into `unconfirmed` and the dedup
//! decision then sends whatever any possible receiver state would need
//! ([`crate::dedup::needs_update_with`]). Delivery is at least once; a resend after a
//! crash is a possible duplicate, counted by the notifier.
//!
//! Records are versioned (`{"v":1,...}`); a record that does not decode, or carries a
//! version this code does not know, is an [`NflogError`], never "never notified" (which
//! would resend everything) and never overwritten. Entries written before versioning
//! (no `v`) are read as such and rewritten as v1 on their next write.

use crate::dedup::{NflogEntry, Unconfirmed};
use argus_model::{Cond, Item, Kv, Millis, StoreError, Table, UnixSecs};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;

pub const NFLOG_PK: &str = "am#nflog";
/// The record version this code writes.
pub const RECORD_VERSION: u64 = 1;
/// How long an entry is kept after its last write (Alertmanager: 120 h).
pub const RETENTION_MS: i64 = 120 * 3600 * 1000;

#[derive(Debug, thiserror::Error)]
pub enum NflogError {
    #[error("notification log entry {key} is corrupt: {message}")]
    Corrupt { key: String, message: String },
    #[error("notification log entry {key} has record version {version}, unknown to this release (written by a newer one?)")]
    UnknownVersion { key: String, version: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl NflogError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, NflogError::Store(e) if e.is_retryable())
    }
    /// A stored entry that cannot be read (as opposed to a store failure).
    pub fn is_unreadable(&self) -> bool {
        !matches!(self, NflogError::Store(_))
    }
}

/// A send in progress: who, until when, and what it is sending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// `<instance>-<tick>` of the claiming notifier.
    pub owner: String,
    /// After this (unix ms, the `now` timeline of ticks) anyone may take it over.
    pub lease_until: Millis,
    /// The state being sent (`None` only for claims written before versioning).
    pub sending: Option<NflogEntry>,
    /// Same for every attempt at this state change (FIFO SNS deduplication id).
    pub dedup_id: String,
}

impl Claim {
    /// The notifier instance part of the owner.
    pub fn instance(&self) -> &str {
        self.owner.split('-').next().unwrap_or("")
    }
}

/// One decoded entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NflogRecord {
    pub receiver: String,
    /// `webhook[0]`, `log[1]`...
    pub integration: String,
    pub group_key: String,
    /// What the receiver was last confirmed to have.
    pub sent: Option<NflogEntry>,
    /// What failed or crashed attempts since then may have told it.
    pub unconfirmed: Option<Unconfirmed>,
    pub claim: Option<Claim>,
}

/// Whose the claim on an entry is, for a notifier deciding whether to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimState {
    Free,
    /// Someone else is sending; wait for them.
    Live {
        owner: String,
    },
    /// Its sender is gone: take it over.
    Dead,
}

impl NflogRecord {
    /// `me`: this tick's owner id; `exclusive`: this process owns the store (`argus
    /// dev`), so a claim by another instance was left by a process that is gone.
    pub fn claim_state(&self, me: &str, exclusive: bool, now: Millis) -> ClaimState {
        let Some(c) = &self.claim else {
            return ClaimState::Free;
        };
        if c.owner == me {
            return ClaimState::Free;
        }
        let my_instance = me.split('-').next().unwrap_or("");
        if c.lease_until <= now || (exclusive && c.instance() != my_instance) {
            ClaimState::Dead
        } else {
            ClaimState::Live {
                owner: c.owner.clone(),
            }
        }
    }

    /// Takes a claim over: what it was sending may have reached the receiver, so it
    /// joins the unconfirmed attempts. Returns whether there was a claim.
    pub fn take_over(&mut self) -> bool {
        match self.claim.take() {
            Some(c) => {
                if let Some(s) = &c.sending {
                    self.unconfirmed = Some(Unconfirmed::folded(self.unconfirmed.take(), s));
                }
                true
            }
            None => false,
        }
    }
}

// ---------------------------------------------------------------- wire format

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEntry {
    firing: Vec<String>,
    resolved: Vec<String>,
    at: Millis,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireUnconfirmed {
    firing_any: Vec<String>,
    firing_all: Vec<String>,
    resolved_all: Vec<String>,
    oldest: Millis,
    attempts: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireClaim {
    owner: String,
    lease_until: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sending: Option<WireEntry>,
    #[serde(default)]
    dedup_id: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireV1 {
    v: u64,
    receiver: String,
    integration: String,
    group_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sent: Option<WireEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unconfirmed: Option<WireUnconfirmed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claim: Option<WireClaim>,
}

/// Entries written before records were versioned.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireLegacy {
    group_key: String,
    receiver: String,
    #[serde(default)]
    firing: Vec<String>,
    #[serde(default)]
    resolved: Vec<String>,
    #[serde(default)]
    sent_at: Option<Millis>,
    #[serde(default)]
    intent: Option<LegacyIntent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyIntent {
    owner: String,
    lease_until: Millis,
}

fn hex_list(s: &BTreeSet<u64>) -> Vec<String> {
    s.iter().map(|x| format!("{x:016x}")).collect()
}

fn parse_set(v: &[String]) -> Result<BTreeSet<u64>, String> {
    v.iter()
        .map(|h| u64::from_str_radix(h, 16).map_err(|e| format!("alert hash {h:?}: {e}")))
        .collect()
}

impl WireEntry {
    fn of(e: &NflogEntry) -> WireEntry {
        WireEntry {
            firing: hex_list(&e.firing),
            resolved: hex_list(&e.resolved),
            at: e.timestamp,
        }
    }
    fn decode(&self) -> Result<NflogEntry, String> {
        Ok(NflogEntry {
            firing: parse_set(&self.firing)?,
            resolved: parse_set(&self.resolved)?,
            timestamp: self.at,
        })
    }
}

/// The integration name from an entry key `<receiver>/<kind>/<index>#<hash>`.
fn integration_of_key(key: &str) -> String {
    let head = key.rsplit_once('#').map_or(key, |(h, _)| h);
    let mut parts = head.rsplitn(3, '/');
    match (parts.next(), parts.next()) {
        (Some(i), Some(k)) => format!("{k}[{i}]"),
        _ => String::new(),
    }
}

/// Encodes a record as item attributes (`{"v":1,...}`).
pub fn encode(r: &NflogRecord) -> serde_json::Map<String, serde_json::Value> {
    let w = WireV1 {
        v: RECORD_VERSION,
        receiver: r.receiver.clone(),
        integration: r.integration.clone(),
        group_key: r.group_key.clone(),
        sent: r.sent.as_ref().map(WireEntry::of),
        unconfirmed: r.unconfirmed.as_ref().map(|u| WireUnconfirmed {
            firing_any: hex_list(&u.firing_any),
            firing_all: hex_list(&u.firing_all),
            resolved_all: hex_list(&u.resolved_all),
            oldest: u.oldest,
            attempts: u.attempts,
        }),
        claim: r.claim.as_ref().map(|c| WireClaim {
            owner: c.owner.clone(),
            lease_until: c.lease_until,
            sending: c.sending.as_ref().map(WireEntry::of),
            dedup_id: c.dedup_id.clone(),
        }),
    };
    match serde_json::to_value(w) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => unreachable!("a struct serializes to an object"),
    }
}

/// Decodes an item's attributes; `key` names it in errors.
pub fn decode(
    key: &str,
    attrs: &serde_json::Map<String, serde_json::Value>,
) -> Result<NflogRecord, NflogError> {
    let corrupt = |message: String| NflogError::Corrupt {
        key: key.to_string(),
        message,
    };
    match attrs.get("v") {
        None => {
            let l: WireLegacy =
                WireLegacy::deserialize(attrs).map_err(|e| corrupt(e.to_string()))?;
            let sent = match l.sent_at {
                Some(at) => Some(NflogEntry {
                    firing: parse_set(&l.firing).map_err(corrupt)?,
                    resolved: parse_set(&l.resolved).map_err(corrupt)?,
                    timestamp: at,
                }),
                None => None,
            };
            Ok(NflogRecord {
                receiver: l.receiver,
                integration: integration_of_key(key),
                group_key: l.group_key,
                sent,
                unconfirmed: None,
                claim: l.intent.map(|i| Claim {
                    owner: i.owner,
                    lease_until: i.lease_until,
                    sending: None,
                    dedup_id: String::new(),
                }),
            })
        }
        Some(v) if v.as_u64() == Some(RECORD_VERSION) => {
            let w = WireV1::deserialize(attrs).map_err(|e| corrupt(e.to_string()))?;
            let unconfirmed = match w.unconfirmed {
                Some(u) => Some(Unconfirmed {
                    firing_any: parse_set(&u.firing_any).map_err(corrupt)?,
                    firing_all: parse_set(&u.firing_all).map_err(corrupt)?,
                    resolved_all: parse_set(&u.resolved_all).map_err(corrupt)?,
                    oldest: u.oldest,
                    attempts: u.attempts,
                }),
                None => None,
            };
            let claim = match w.claim {
                Some(c) => Some(Claim {
                    owner: c.owner,
                    lease_until: c.lease_until,
                    sending: c.sending.map(|s| s.decode()).transpose().map_err(corrupt)?,
                    dedup_id: c.dedup_id,
                }),
                None => None,
            };
            Ok(NflogRecord {
                receiver: w.receiver,
                integration: w.integration,
                group_key: w.group_key,
                sent: w.sent.map(|s| s.decode()).transpose().map_err(corrupt)?,
                unconfirmed,
                claim,
            })
        }
        Some(v) => Err(NflogError::UnknownVersion {
            key: key.to_string(),
            version: v.to_string(),
        }),
    }
}

// ---------------------------------------------------------------- the store

/// An entry as loaded: the record (none: never written) and the version the next
/// conditional write must find.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub key: String,
    pub record: Option<NflogRecord>,
    version: u64,
}

/// A claim that was written: confirm or release it.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub key: String,
    pub record: NflogRecord,
    version: u64,
}

impl Claimed {
    pub fn claim(&self) -> &Claim {
        self.record
            .claim
            .as_ref()
            .expect("a claimed record holds its claim")
    }
}

/// Typed access to the notification log; every write is conditional on the version
/// read, so two notifiers never both claim one notification.
#[derive(Clone)]
pub struct NflogStore {
    kv: Arc<dyn Kv>,
}

/// An entry as read (absent: never notified).
fn loaded(key: &str, item: Option<Item>) -> Result<Loaded, NflogError> {
    Ok(match item {
        None => Loaded {
            key: key.to_string(),
            record: None,
            version: 0,
        },
        Some(it) => Loaded {
            key: key.to_string(),
            record: Some(decode(key, &it.attrs)?),
            version: it.version,
        },
    })
}

impl NflogStore {
    pub fn new(kv: Arc<dyn Kv>) -> NflogStore {
        NflogStore { kv }
    }

    /// The entry key of one integration of a receiver for one group (`group_hash`: a
    /// hash of the group key).
    pub fn key(receiver: &str, kind: &str, index: usize, group_hash: &str) -> String {
        format!("{receiver}/{kind}/{index}#{group_hash}")
    }

    pub async fn load(&self, key: &str) -> Result<Loaded, NflogError> {
        let item = self.kv.get(Table::Nflog, NFLOG_PK, key).await?;
        loaded(key, item)
    }

    /// Several entries at once ([`Kv::get_many`]), in the order asked.
    pub async fn load_many(&self, keys: &[String]) -> Vec<Result<Loaded, NflogError>> {
        match self.kv.get_many(Table::Nflog, NFLOG_PK, keys).await {
            Ok(items) => keys
                .iter()
                .zip(items)
                .map(|(key, item)| loaded(key, item))
                .collect(),
            Err(e) => keys.iter().map(|_| Err(e.clone().into())).collect(),
        }
    }

    /// Every entry (reports, tests).
    pub async fn all(&self) -> Result<Vec<(String, Result<NflogRecord, NflogError>)>, NflogError> {
        let items = self.kv.query(Table::Nflog, NFLOG_PK, None).await?;
        Ok(items
            .into_iter()
            .map(|it| {
                let r = decode(&it.sk, &it.attrs);
                (it.sk, r)
            })
            .collect())
    }

    /// The conditional write of `rec` over the entry at `version` (0: none yet).
    fn write_of(key: &str, version: u64, rec: &NflogRecord, now: Millis) -> (Table, Item, Cond) {
        let mut it = Item::new(NFLOG_PK, key);
        it.attrs = encode(rec);
        it.expires_at = Some(UnixSecs::floor(now + RETENTION_MS));
        let cond = if version == 0 {
            Cond::NotExists
        } else {
            Cond::Version(version)
        };
        (Table::Nflog, it, cond)
    }

    async fn put(
        &self,
        key: &str,
        version: u64,
        rec: &NflogRecord,
        now: Millis,
    ) -> Result<Option<u64>, NflogError> {
        let (table, it, cond) = Self::write_of(key, version, rec, now);
        match self.kv.put(table, it, cond).await {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `record` with `claim` if the entry is still as loaded, and makes it
    /// durable before answering (a crash after this leaves the claim for a taker).
    /// `record` is the loaded one with any dead claim already taken over. `None`: the
    /// entry changed meanwhile (another notifier); load again.
    pub async fn claim(
        &self,
        loaded: &Loaded,
        mut record: NflogRecord,
        claim: Claim,
        now: Millis,
    ) -> Result<Option<Claimed>, NflogError> {
        record.claim = Some(claim);
        let Some(version) = self.put(&loaded.key, loaded.version, &record, now).await? else {
            return Ok(None);
        };
        let claimed = Claimed {
            key: loaded.key.clone(),
            record,
            version,
        };
        if let Err(e) = self.kv.sync().await {
            // Not durable: do not send on it.
            let _ = self.release_as_unsent(claimed, now).await;
            return Err(e.into());
        }
        Ok(Some(claimed))
    }

    /// [`NflogStore::claim`] as a write to make with others ([`Kv::put_many`]: a tick
    /// claims every due notification in one commit, then calls [`Kv::sync`] once before
    /// any send). Returns the write and the record it holds; an answered version makes
    /// it a [`Claimed`] ([`NflogStore::claimed`]); a conflict means the entry changed.
    pub fn claim_write(
        loaded: &Loaded,
        mut record: NflogRecord,
        claim: Claim,
        now: Millis,
    ) -> ((Table, Item, Cond), NflogRecord) {
        record.claim = Some(claim);
        (
            Self::write_of(&loaded.key, loaded.version, &record, now),
            record,
        )
    }

    /// The claim a [`NflogStore::claim_write`] made, answered with `version`.
    pub fn claimed(key: String, record: NflogRecord, version: u64) -> Claimed {
        Claimed {
            key,
            record,
            version,
        }
    }

    /// [`NflogStore::write`] as a write to make with others.
    pub fn record_write(loaded: &Loaded, record: &NflogRecord, now: Millis) -> (Table, Item, Cond) {
        Self::write_of(&loaded.key, loaded.version, record, now)
    }

    /// Withdraws a claim nothing was sent on (its write was not made durable), as a
    /// write to make with others.
    pub fn unsent_write(c: Claimed, now: Millis) -> (Table, Item, Cond) {
        let mut rec = c.record;
        rec.claim = None;
        Self::write_of(&c.key, c.version, &rec, now)
    }

    /// The send succeeded: the claim's state becomes the last sent one, and every
    /// unconfirmed attempt is superseded. `false`: the claim was taken over meanwhile
    /// (the taker resends: a counted duplicate).
    pub async fn confirm(&self, c: Claimed, now: Millis) -> Result<bool, NflogError> {
        self.apply(Self::confirm_write(c, now)).await
    }

    /// The send failed: the claim ends, and what it sent joins the unconfirmed attempts
    /// (the receiver may have read it before failing or timing out).
    pub async fn release(&self, c: Claimed, now: Millis) -> Result<bool, NflogError> {
        self.apply(Self::release_write(c, now)).await
    }

    /// [`NflogStore::confirm`] as a write to make with others ([`Kv::put_many`]: the
    /// notifier commits a group's confirmations with its timer in one transaction). A
    /// conflict answering it means the claim was taken over meanwhile.
    pub fn confirm_write(c: Claimed, now: Millis) -> (Table, Item, Cond) {
        let mut rec = c.record;
        let claim = rec.claim.take();
        rec.sent = claim.and_then(|c| c.sending);
        rec.unconfirmed = None;
        Self::write_of(&c.key, c.version, &rec, now)
    }

    /// [`NflogStore::release`] as a write to make with others.
    pub fn release_write(c: Claimed, now: Millis) -> (Table, Item, Cond) {
        let mut rec = c.record;
        rec.take_over();
        Self::write_of(&c.key, c.version, &rec, now)
    }

    async fn apply(&self, (table, it, cond): (Table, Item, Cond)) -> Result<bool, NflogError> {
        match self.kv.put(table, it, cond).await {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn release_as_unsent(&self, c: Claimed, now: Millis) -> Result<bool, NflogError> {
        let mut rec = c.record;
        rec.claim = None;
        Ok(self.put(&c.key, c.version, &rec, now).await?.is_some())
    }

    /// Writes a record without a send (a state logged but not sent, a dead claim taken
    /// over with nothing due). `false`: the entry changed meanwhile.
    pub async fn write(
        &self,
        loaded: &Loaded,
        record: &NflogRecord,
        now: Millis,
    ) -> Result<bool, NflogError> {
        Ok(self
            .put(&loaded.key, loaded.version, record, now)
            .await?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(f: &[u64], r: &[u64], t: Millis) -> NflogEntry {
        NflogEntry {
            firing: f.iter().copied().collect(),
            resolved: r.iter().copied().collect(),
            timestamp: t,
        }
    }

    #[test]
    fn records_round_trip_with_their_version() {
        let rec = NflogRecord {
            receiver: "team".into(),
            integration: "webhook[0]".into(),
            group_key: "{}:{alertname=\"A\"}".into(),
            sent: Some(e(&[1, u64::MAX], &[2], 5)),
            unconfirmed: Some(Unconfirmed::of(&e(&[3], &[], 7))),
            claim: Some(Claim {
                owner: "0badcafe-3".into(),
                lease_until: 99,
                sending: Some(e(&[], &[1], 8)),
                dedup_id: "d".into(),
            }),
        };
        let attrs = encode(&rec);
        assert_eq!(attrs["v"], 1);
        assert_eq!(attrs["sent"]["firing"][1], "ffffffffffffffff");
        assert_eq!(decode("k", &attrs).unwrap(), rec);
        let bare = NflogRecord::default();
        assert_eq!(decode("k", &encode(&bare)).unwrap(), bare);
    }

    #[test]
    fn unknown_versions_and_corrupt_entries_are_errors() {
        let mut attrs = encode(&NflogRecord::default());
        attrs.insert("v".into(), 2.into());
        let err = decode("team/webhook/0#ab", &attrs).unwrap_err();
        assert!(matches!(err, NflogError::UnknownVersion { .. }), "{err}");
        assert!(err.to_string().contains("team/webhook/0#ab"), "{err}");
        attrs.insert("v".into(), "1".into());
        assert!(matches!(
            decode("k", &attrs),
            Err(NflogError::UnknownVersion { .. })
        ));
        // A hash that is not hex, a missing field, an unknown field.
        let mut bad = encode(&NflogRecord {
            sent: Some(e(&[1], &[], 1)),
            ..Default::default()
        });
        bad["sent"]["firing"][0] = "zz".into();
        let err = decode("k", &bad).unwrap_err();
        assert!(matches!(err, NflogError::Corrupt { .. }) && err.is_unreadable());
        let mut bad = encode(&NflogRecord::default());
        bad.remove("receiver");
        assert!(matches!(decode("k", &bad), Err(NflogError::Corrupt { .. })));
        let mut bad = encode(&NflogRecord::default());
        bad.insert("firng".into(), serde_json::json!([]));
        assert!(matches!(decode("k", &bad), Err(NflogError::Corrupt { .. })));
        // No version at all and not the pre-versioning shape either.
        let junk = serde_json::json!({"hello": 1});
        assert!(matches!(
            decode("k", junk.as_object().unwrap()),
            Err(NflogError::Corrupt { .. })
        ));
    }

    #[test]
    fn entries_from_before_versioning_are_read() {
        let old = serde_json::json!({
            "group_key": "{}:{}", "receiver": "hook",
            "firing": ["0000000000000001"], "resolved": [], "sent_at": 42,
            "intent": {"owner": "x-1", "lease_until": 7}
        });
        let rec = decode("hook/webhook/0#ab", old.as_object().unwrap()).unwrap();
        assert_eq!(rec.integration, "webhook[0]");
        assert_eq!(rec.sent, Some(e(&[1], &[], 42)));
        assert_eq!(rec.claim.as_ref().unwrap().lease_until, 7);
        let never =
            serde_json::json!({"group_key": "g", "receiver": "r", "sent_at": null, "intent": null});
        assert_eq!(decode("k", never.as_object().unwrap()).unwrap().sent, None);
    }

    #[test]
    fn claims_die_by_lease_or_by_a_new_owner_of_the_store() {
        let mut rec = NflogRecord {
            claim: Some(Claim {
                owner: "aaaa-1".into(),
                lease_until: 100,
                sending: Some(e(&[1], &[], 40)),
                dedup_id: String::new(),
            }),
            ..Default::default()
        };
        let live = ClaimState::Live {
            owner: "aaaa-1".into(),
        };
        // Another notifier of a shared store (Lambda): wait for the lease.
        assert_eq!(rec.claim_state("bbbb-1", false, 99), live);
        assert_eq!(rec.claim_state("bbbb-1", false, 100), ClaimState::Dead);
        // The sole owner of the store restarted: the old process's claims are dead now.
        assert_eq!(rec.claim_state("bbbb-1", true, 50), ClaimState::Dead);
        // Its own earlier tick still sending: live; the same tick: its own.
        assert_eq!(rec.claim_state("aaaa-2", true, 50), live);
        assert_eq!(rec.claim_state("aaaa-1", true, 50), ClaimState::Free);
        assert!(rec.take_over());
        assert!(rec.claim.is_none());
        assert_eq!(rec.unconfirmed, Some(Unconfirmed::of(&e(&[1], &[], 40))));
        assert!(!rec.take_over());
    }
}
