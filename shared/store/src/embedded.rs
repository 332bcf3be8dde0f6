//! The embedded backend: one redb file, one redb table per Argus table.
//!
//! Reads use redb's MVCC read transactions directly. Writes are sent to a single writer
//! thread which drains every queued write into one transaction: each write's condition is
//! checked in order inside that transaction (so conditional semantics are exactly
//! sequential), then one commit answers them all. Under concurrent load this amortises
//! the fsync; alone, a write costs one commit as usual.
//!
//! [`Durability`] chooses when commits reach the disk: every commit (the default), or
//! at most every interval (`dev.sync_interval` for `argus dev`): writes are then answered once
//! committed in memory (visible to every reader, conditions exact) and made durable
//! by a synced commit once the interval is up (even if no write follows), on
//! [`EmbeddedKv::sync`] and when the last handle drops. A crash loses at most the
//! interval's writes, as the real Pushgateway loses what it has not persisted yet.

use crate::codec;
use argus_model::{Cond, Item, Kv, StoreError, Table};
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use tokio::sync::oneshot;

type Def = TableDefinition<'static, &'static str, &'static [u8]>;
/// Answers a queued write once its batch committed (with the commit error, if any).
type Reply = Box<dyn FnOnce(Option<&str>)>;

fn def(t: Table) -> Def {
    TableDefinition::new(t.name())
}

fn perm<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Permanent(format!("embedded store: {e}"))
}

/// When the embedded store's commits are made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync on every commit: an answered write survives a crash.
    #[default]
    EveryCommit,
    /// fsync at most this often (also when no write follows the last commit).
    Interval(std::time::Duration),
}

enum Op {
    Sync(oneshot::Sender<Result<(), StoreError>>),
    Put(Table, Item, Cond, oneshot::Sender<Result<u64, StoreError>>),
    Batch(Table, Vec<Item>, oneshot::Sender<Result<(), StoreError>>),
    /// Conditional writes answered one by one (`Kv::put_many`).
    Many(
        Vec<(Table, Item, Cond)>,
        oneshot::Sender<Result<Vec<Result<u64, StoreError>>, StoreError>>,
    ),
    Delete(
        Table,
        String,
        String,
        Cond,
        oneshot::Sender<Result<(), StoreError>>,
    ),
}

/// Embedded store in a redb file. Cheap to clone (shared handle).
#[derive(Clone)]
pub struct EmbeddedKv {
    db: Arc<Database>,
    durability: Durability,
    tx: mpsc::Sender<Op>,
    path: PathBuf,
    _tmp: Option<Arc<tempfile::TempDir>>,
}

impl std::fmt::Debug for EmbeddedKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EmbeddedKv({})", self.path.display())
    }
}

impl EmbeddedKv {
    /// Opens (or creates) the store file; creates every table.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::EveryCommit)
    }

    /// Opens the store with a chosen durability.
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(perm)?;
            }
        }
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Permanent(format!(
                "{} is already open in another process (is another `argus dev` running?)",
                path.display()
            )),
            e => perm(e),
        })?;
        let w = db.begin_write().map_err(perm)?;
        for t in Table::ALL {
            w.open_table(def(t)).map_err(perm)?;
        }
        w.commit().map_err(perm)?;
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel::<Op>();
        let wdb = db.clone();
        std::thread::Builder::new()
            .name("argus-redb-writer".into())
            .spawn(move || writer(wdb, rx, durability))
            .map_err(perm)?;
        Ok(EmbeddedKv {
            db,
            durability,
            tx,
            path,
            _tmp: None,
        })
    }

    /// A store in a fresh temporary directory, removed when the last handle drops.
    pub fn open_temp() -> Result<Self, StoreError> {
        let dir = tempfile::tempdir().map_err(perm)?;
        let mut kv = Self::open(dir.path().join("argus.redb"))?;
        kv._tmp = Some(Arc::new(dir));
        Ok(kv)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every answered write durable now (a no-op when each commit already is).
    pub async fn sync(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(Op::Sync(tx), rx).await
    }

    async fn send<T>(
        &self,
        op: Op,
        rx: oneshot::Receiver<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.tx
            .send(op)
            .map_err(|_| StoreError::Permanent("embedded store writer stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Permanent("embedded store writer stopped".into()))?
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&redb::ReadOnlyTable<&'static str, &'static [u8]>) -> Result<T, StoreError>,
        t: Table,
    ) -> Result<T, StoreError> {
        let r = self.db.begin_read().map_err(perm)?;
        let table = r.open_table(def(t)).map_err(perm)?;
        f(&table)
    }
}

fn writer(db: Arc<Database>, rx: mpsc::Receiver<Op>, durability: Durability) {
    let interval = match durability {
        Durability::EveryCommit => None,
        Durability::Interval(d) => Some(d),
    };
    // Commits not yet made durable, and when the last durable one was.
    let mut unsynced = false;
    let mut last_sync = std::time::Instant::now();
    loop {
        let first = if unsynced {
            let wait = interval
                .unwrap_or_default()
                .saturating_sub(last_sync.elapsed());
            match rx.recv_timeout(wait) {
                Ok(op) => op,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if sync_now(&db).is_ok() {
                        unsynced = false;
                        last_sync = std::time::Instant::now();
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = sync_now(&db);
                    return;
                }
            }
        } else {
            match rx.recv() {
                Ok(op) => op,
                Err(_) => return,
            }
        };
        let mut ops = vec![first];
        while ops.len() < 512 {
            match rx.try_recv() {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        // Durable when every commit is, when asked, or when the interval is up.
        let durable = match interval {
            None => true,
            Some(d) => ops.iter().any(|o| matches!(o, Op::Sync(_))) || last_sync.elapsed() >= d,
        };
        let mut txn = match db.begin_write() {
            Ok(t) => t,
            Err(e) => {
                fail_all(ops, &e.to_string());
                continue;
            }
        };
        if !durable {
            if let Err(e) = txn.set_durability(redb::Durability::None) {
                fail_all(ops, &e.to_string());
                continue;
            }
        }
        let mut replies: Vec<Reply> = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                Op::Sync(reply) => {
                    replies.push(Box::new(move |err: Option<&str>| {
                        let _ = reply.send(match err {
                            Some(e) => Err(StoreError::Transient(e.to_string())),
                            None => Ok(()),
                        });
                    }));
                }
                Op::Put(t, item, cond, reply) => {
                    let r = apply_put(&txn, t, &item, cond);
                    replies.push(Box::new(move |err: Option<&str>| {
                        let _ = reply.send(match err {
                            Some(e) => Err(StoreError::Transient(e.to_string())),
                            None => r,
                        });
                    }));
                }
                Op::Batch(t, items, reply) => {
                    let r = items
                        .iter()
                        .try_for_each(|i| apply_put(&txn, t, i, Cond::Always).map(|_| ()));
                    replies.push(Box::new(move |err: Option<&str>| {
                        let _ = reply.send(match err {
                            Some(e) => Err(StoreError::Transient(e.to_string())),
                            None => r,
                        });
                    }));
                }
                Op::Many(writes, reply) => {
                    let r: Vec<Result<u64, StoreError>> = writes
                        .iter()
                        .map(|(t, item, cond)| apply_put(&txn, *t, item, *cond))
                        .collect();
                    replies.push(Box::new(move |err: Option<&str>| {
                        let _ = reply.send(match err {
                            Some(e) => Err(StoreError::Transient(e.to_string())),
                            None => Ok(r),
                        });
                    }));
                }
                Op::Delete(t, pk, sk, cond, reply) => {
                    let r = apply_delete(&txn, t, &pk, &sk, cond);
                    replies.push(Box::new(move |err: Option<&str>| {
                        let _ = reply.send(match err {
                            Some(e) => Err(StoreError::Transient(e.to_string())),
                            None => r,
                        });
                    }));
                }
            }
        }
        let commit = txn.commit().map_err(|e| e.to_string());
        if commit.is_ok() {
            if durable {
                unsynced = false;
                last_sync = std::time::Instant::now();
            } else {
                unsynced = true;
            }
        }
        for reply in replies {
            reply(commit.as_ref().err().map(String::as_str));
        }
    }
}

/// An empty durable commit: makes every earlier non-durable commit durable.
fn sync_now(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    txn.commit()?;
    Ok(())
}

fn fail_all(ops: Vec<Op>, e: &str) {
    for op in ops {
        let err = || StoreError::Transient(format!("embedded store: {e}"));
        match op {
            Op::Sync(r) => drop(r.send(Err(err()))),
            Op::Put(.., r) => drop(r.send(Err(err()))),
            Op::Batch(.., r) => drop(r.send(Err(err()))),
            Op::Many(_, r) => drop(r.send(Err(err()))),
            Op::Delete(.., r) => drop(r.send(Err(err()))),
        }
    }
}

fn current_version(
    table: &redb::Table<&'static str, &'static [u8]>,
    key: &str,
) -> Result<u64, StoreError> {
    Ok(match table.get(key).map_err(perm)? {
        Some(v) => {
            let b = v.value();
            if b.len() >= 8 {
                u64::from_le_bytes(b[0..8].try_into().unwrap())
            } else {
                0
            }
        }
        None => 0,
    })
}

fn check(cond: Cond, current: u64, key: &str) -> Result<(), StoreError> {
    let ok = match cond {
        Cond::Always => true,
        Cond::NotExists => current == 0,
        Cond::Version(v) => current == v,
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!(
            "{:?}: expected {cond:?}, found version {current}",
            key.replace('\0', "/")
        )))
    }
}

fn apply_put(
    txn: &redb::WriteTransaction,
    t: Table,
    item: &Item,
    cond: Cond,
) -> Result<u64, StoreError> {
    let key = codec::key(&item.pk, &item.sk)?;
    let mut table = txn.open_table(def(t)).map_err(perm)?;
    let cur = current_version(&table, &key)?;
    check(cond, cur, &key)?;
    let version = cond.next_version(item);
    let bytes = codec::encode(item, version);
    table.insert(key.as_str(), bytes.as_slice()).map_err(perm)?;
    Ok(version)
}

fn apply_delete(
    txn: &redb::WriteTransaction,
    t: Table,
    pk: &str,
    sk: &str,
    cond: Cond,
) -> Result<(), StoreError> {
    let key = codec::key(pk, sk)?;
    let mut table = txn.open_table(def(t)).map_err(perm)?;
    let cur = current_version(&table, &key)?;
    if cond != Cond::Always {
        check(cond, cur, &key)?;
    }
    table.remove(key.as_str()).map_err(perm)?;
    Ok(())
}

#[async_trait]
impl Kv for EmbeddedKv {
    async fn sync(&self) -> Result<(), StoreError> {
        match self.durability {
            Durability::EveryCommit => Ok(()),
            Durability::Interval(_) => EmbeddedKv::sync(self).await,
        }
    }

    async fn get(&self, table: Table, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let key = codec::key(pk, sk)?;
        self.read(
            |t| match t.get(key.as_str()).map_err(perm)? {
                Some(v) => codec::decode(pk, sk, v.value()).map(Some),
                None => Ok(None),
            },
            table,
        )
    }

    async fn put(&self, table: Table, item: Item, cond: Cond) -> Result<u64, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(Op::Put(table, item, cond, tx), rx).await
    }

    async fn put_batch(&self, table: Table, items: Vec<Item>) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        self.send(Op::Batch(table, items, tx), rx).await
    }

    async fn put_many(
        &self,
        writes: Vec<(Table, Item, Cond)>,
    ) -> Result<Vec<Result<u64, StoreError>>, StoreError> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let (tx, rx) = oneshot::channel();
        self.send(Op::Many(writes, tx), rx).await
    }

    async fn delete(&self, table: Table, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.send(
            Op::Delete(table, pk.to_string(), sk.to_string(), cond, tx),
            rx,
        )
        .await
    }

    async fn query(
        &self,
        table: Table,
        pk: &str,
        sk_from: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let from = codec::key(pk, sk_from.unwrap_or(""))?;
        let end = format!("{pk}\u{1}");
        self.read(
            |t| {
                let mut out = Vec::new();
                for entry in t.range(from.as_str()..end.as_str()).map_err(perm)? {
                    let (k, v) = entry.map_err(perm)?;
                    let (p, s) = codec::split_key(k.value());
                    out.push(codec::decode(p, s, v.value())?);
                }
                Ok(out)
            },
            table,
        )
    }

    async fn query_between(
        &self,
        table: Table,
        pk: &str,
        sk_from: &str,
        sk_to: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let from = codec::key(pk, sk_from)?;
        let end = codec::key(pk, sk_to)?;
        if end <= from {
            return Ok(Vec::new());
        }
        self.read(
            |t| {
                let mut out = Vec::new();
                for entry in t.range(from.as_str()..end.as_str()).map_err(perm)? {
                    let (k, v) = entry.map_err(perm)?;
                    let (p, s) = codec::split_key(k.value());
                    out.push(codec::decode(p, s, v.value())?);
                }
                Ok(out)
            },
            table,
        )
    }

    async fn scan(&self, table: Table) -> Result<Vec<Item>, StoreError> {
        self.read(
            |t| {
                let mut out = Vec::new();
                for entry in t.iter().map_err(perm)? {
                    let (k, v) = entry.map_err(perm)?;
                    let (p, s) = codec::split_key(k.value());
                    out.push(codec::decode(p, s, v.value())?);
                }
                Ok(out)
            },
            table,
        )
    }
}
