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

/// One write, keyed and encoded by the caller: the single writer thread only checks
/// conditions and inserts (the encoding, and dropping the item, run on the callers'
/// threads, in parallel).
struct Write {
    table: Table,
    key: String,
    bytes: Vec<u8>,
    cond: Cond,
    version: u64,
}

impl Write {
    fn new(table: Table, item: &Item, cond: Cond) -> Result<Write, StoreError> {
        let key = codec::key(&item.pk, &item.sk)?;
        let version = cond.next_version(item);
        Ok(Write {
            table,
            key,
            bytes: codec::encode(item, version),
            cond,
            version,
        })
    }
}

enum Op {
    Sync(oneshot::Sender<Result<(), StoreError>>),
    Put(Write, oneshot::Sender<Result<u64, StoreError>>),
    Batch(Vec<Write>, oneshot::Sender<Result<(), StoreError>>),
    /// Conditional writes answered one by one (`Kv::put_many`); an `Err` is a write
    /// refused before the writer (a bad key), answered as it is.
    Many(
        Vec<Result<Write, StoreError>>,
        oneshot::Sender<Result<Vec<Result<u64, StoreError>>, StoreError>>,
    ),
    /// Table, composite key, condition.
    Delete(Table, String, Cond, oneshot::Sender<Result<(), StoreError>>),
}

/// The tables of one write transaction, each opened once (on first use).
struct Tables<'t> {
    txn: &'t redb::WriteTransaction,
    open: [Option<redb::Table<'t, &'static str, &'static [u8]>>; Table::ALL.len()],
}

impl<'t> Tables<'t> {
    fn new(txn: &'t redb::WriteTransaction) -> Self {
        Tables {
            txn,
            open: Default::default(),
        }
    }

    fn get(
        &mut self,
        t: Table,
    ) -> Result<&mut redb::Table<'t, &'static str, &'static [u8]>, StoreError> {
        let i = Table::ALL
            .iter()
            .position(|x| *x == t)
            .expect("every table is in Table::ALL");
        if self.open[i].is_none() {
            self.open[i] = Some(self.txn.open_table(def(t)).map_err(perm)?);
        }
        Ok(self.open[i].as_mut().expect("opened above"))
    }
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
        open_tables(&db, &path)?;
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
        let mut tables = Tables::new(&txn);
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
                Op::Put(w, reply) => {
                    let r = apply_put(&mut tables, w);
                    replies.push(Box::new(move |err: Option<&str>| {
                        let _ = reply.send(match err {
                            Some(e) => Err(StoreError::Transient(e.to_string())),
                            None => r,
                        });
                    }));
                }
                Op::Batch(writes, reply) => {
                    let r = writes
                        .into_iter()
                        .try_for_each(|w| apply_put(&mut tables, w).map(|_| ()));
                    replies.push(Box::new(move |err: Option<&str>| {
                        let _ = reply.send(match err {
                            Some(e) => Err(StoreError::Transient(e.to_string())),
                            None => r,
                        });
                    }));
                }
                Op::Many(writes, reply) => {
                    let r: Vec<Result<u64, StoreError>> = writes
                        .into_iter()
                        .map(|w| w.and_then(|w| apply_put(&mut tables, w)))
                        .collect();
                    replies.push(Box::new(move |err: Option<&str>| {
                        let _ = reply.send(match err {
                            Some(e) => Err(StoreError::Transient(e.to_string())),
                            None => Ok(r),
                        });
                    }));
                }
                Op::Delete(t, key, cond, reply) => {
                    let r = apply_delete(&mut tables, t, &key, cond);
                    replies.push(Box::new(move |err: Option<&str>| {
                        let _ = reply.send(match err {
                            Some(e) => Err(StoreError::Transient(e.to_string())),
                            None => r,
                        });
                    }));
                }
            }
        }
        drop(tables);
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

/// The store file's metadata: `value_format` → the value format of every item.
const META: TableDefinition<'static, &'static str, u64> = TableDefinition::new("argus_meta");

/// Creates every table, and brings the file's values to [`codec::FORMAT`]: a file
/// without a recorded format (written before the format byte) has every value
/// rewritten in one transaction; a file of a newer format is refused.
fn open_tables(db: &Database, path: &Path) -> Result<(), StoreError> {
    let w = db.begin_write().map_err(perm)?;
    for t in Table::ALL {
        w.open_table(def(t)).map_err(perm)?;
    }
    let format = w
        .open_table(META)
        .map_err(perm)?
        .get("value_format")
        .map_err(perm)?
        .map(|v| v.value());
    match format {
        Some(f) if f == codec::FORMAT as u64 => {}
        Some(f) => {
            return Err(StoreError::Permanent(format!(
                "{}: value format {f} is newer than this build's ({}); use a newer Argus or another data_dir",
                path.display(),
                codec::FORMAT
            )))
        }
        None => {
            // Format 0, or a new file: every value (none in a new file) gains its byte.
            let mut upgraded = 0usize;
            for t in Table::ALL {
                let mut table = w.open_table(def(t)).map_err(perm)?;
                let old: Vec<(String, Vec<u8>)> = table
                    .iter()
                    .map_err(perm)?
                    .map(|e| e.map(|(k, v)| (k.value().to_string(), v.value().to_vec())))
                    .collect::<Result<_, _>>()
                    .map_err(perm)?;
                for (k, v) in old {
                    table
                        .insert(k.as_str(), codec::upgrade_v0(&v).as_slice())
                        .map_err(perm)?;
                    upgraded += 1;
                }
            }
            if upgraded > 0 {
                tracing::info!(
                    path = %path.display(),
                    values = upgraded,
                    "embedded store: values rewritten from format 0 to {}",
                    codec::FORMAT
                );
            }
            let mut meta = w.open_table(META).map_err(perm)?;
            meta.insert("value_format", codec::FORMAT as u64).map_err(perm)?;
        }
    }
    w.commit().map_err(perm)?;
    Ok(())
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
    match table.get(key).map_err(perm)? {
        Some(v) => codec::version(v.value()),
        None => Ok(0),
    }
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

fn apply_put(tables: &mut Tables<'_>, w: Write) -> Result<u64, StoreError> {
    let table = tables.get(w.table)?;
    let cur = current_version(table, &w.key)?;
    check(w.cond, cur, &w.key)?;
    table
        .insert(w.key.as_str(), w.bytes.as_slice())
        .map_err(perm)?;
    Ok(w.version)
}

fn apply_delete(
    tables: &mut Tables<'_>,
    t: Table,
    key: &str,
    cond: Cond,
) -> Result<(), StoreError> {
    let table = tables.get(t)?;
    let cur = current_version(table, key)?;
    if cond != Cond::Always {
        check(cond, cur, key)?;
    }
    table.remove(key).map_err(perm)?;
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

    async fn get_many(
        &self,
        table: Table,
        pk: &str,
        sks: &[String],
    ) -> Result<Vec<Option<Item>>, StoreError> {
        self.read(
            |t| {
                sks.iter()
                    .map(|sk| {
                        let key = codec::key(pk, sk)?;
                        match t.get(key.as_str()).map_err(perm)? {
                            Some(v) => codec::decode(pk, sk, v.value()).map(Some),
                            None => Ok(None),
                        }
                    })
                    .collect()
            },
            table,
        )
    }

    async fn put(&self, table: Table, item: Item, cond: Cond) -> Result<u64, StoreError> {
        let w = Write::new(table, &item, cond)?;
        drop(item);
        let (tx, rx) = oneshot::channel();
        self.send(Op::Put(w, tx), rx).await
    }

    async fn put_batch(&self, table: Table, items: Vec<Item>) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let writes = items
            .iter()
            .map(|i| Write::new(table, i, Cond::Always))
            .collect::<Result<Vec<_>, _>>()?;
        drop(items);
        let (tx, rx) = oneshot::channel();
        self.send(Op::Batch(writes, tx), rx).await
    }

    async fn put_many(
        &self,
        writes: Vec<(Table, Item, Cond)>,
    ) -> Result<Vec<Result<u64, StoreError>>, StoreError> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let writes = writes
            .iter()
            .map(|(t, item, cond)| Write::new(*t, item, *cond))
            .collect();
        let (tx, rx) = oneshot::channel();
        self.send(Op::Many(writes, tx), rx).await
    }

    async fn delete(&self, table: Table, pk: &str, sk: &str, cond: Cond) -> Result<(), StoreError> {
        let key = codec::key(pk, sk)?;
        let (tx, rx) = oneshot::channel();
        self.send(Op::Delete(table, key, cond, tx), rx).await
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

#[cfg(test)]
mod tests {
    use super::*;

    fn item(sk: &str) -> Item {
        let mut i = Item::new("p", sk);
        i.attrs.insert("v".into(), serde_json::json!(sk));
        i.data = Some(sk.as_bytes().to_vec());
        i
    }

    /// Opens `path`, waiting for the writer thread of a dropped handle to let it go.
    fn reopen(path: &Path) -> EmbeddedKv {
        for _ in 0..200 {
            match EmbeddedKv::open(path) {
                Ok(kv) => return kv,
                Err(e) if e.to_string().contains("already open") => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("{} stayed open", path.display())
    }

    #[tokio::test]
    async fn a_format_0_file_is_upgraded_once_and_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.redb");
        {
            // A file as Argus wrote it before the format byte: no meta table.
            let db = Database::create(&path).unwrap();
            let w = db.begin_write().unwrap();
            {
                let mut t = w.open_table(def(Table::Results)).unwrap();
                for sk in ["a", "b"] {
                    let v1 = codec::encode(&item(sk), 4);
                    t.insert(codec::key("p", sk).unwrap().as_str(), &v1[1..])
                        .unwrap();
                }
            }
            w.commit().unwrap();
        }
        for _ in 0..2 {
            // The second open finds format 1 recorded and rewrites nothing.
            let kv = reopen(&path);
            let got = kv.query(Table::Results, "p", None).await.unwrap();
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].data.as_deref(), Some(&b"a"[..]));
            assert_eq!((got[1].version, got[1].attrs["v"].as_str()), (4, Some("b")));
            // Conditions see the upgraded version.
            assert!(kv
                .put(Table::Results, item("a"), Cond::Version(3))
                .await
                .is_err());
        }
        let kv = reopen(&path);
        assert_eq!(
            kv.put(Table::Results, item("a"), Cond::Version(4))
                .await
                .unwrap(),
            5
        );
    }

    #[test]
    fn a_file_of_a_newer_format_is_refused_with_its_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.redb");
        {
            let db = Database::create(&path).unwrap();
            let w = db.begin_write().unwrap();
            w.open_table(META)
                .unwrap()
                .insert("value_format", 9)
                .unwrap();
            w.commit().unwrap();
        }
        let e = EmbeddedKv::open(&path).unwrap_err().to_string();
        assert!(e.contains("value format 9 is newer"), "{e}");
    }
}
