//! Embedded SQLite files in the data directory, with a small pool of open connections
//! per file so a guest's `open` does not pay for opening a file and setting pragmas.
//!
//! Every checked-out connection is exclusively the guest's until it is dropped, so
//! `BEGIN … COMMIT` across several `execute` calls works. A connection returned with a
//! transaction still open is rolled back before it is pooled again.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::Connection;

use crate::idle::Idle;

/// How long a writer waits for another writer's lock before `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept per file.
const MAX_IDLE: usize = 64;
/// Idle connections kept per file however long they sit unused.
const MIN_IDLE: usize = 4;

/// One SQLite file and its idle connections.
#[derive(Debug)]
pub struct Pool {
    path: PathBuf,
    idle: Idle<Conn>,
    open: Arc<Open>,
    /// Serializes this gateway's writers in FIFO order. SQLite admits one writer at a
    /// time and makes the others poll with growing sleeps (its busy handler), which
    /// under load turns into latency spikes of hundreds of ms; waiting here instead
    /// wakes the next writer the moment the lock is free. Other processes on the same
    /// file are still arbitrated by SQLite's busy timeout.
    pub writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Pool {
    /// Opens (creating if needed) the file and checks it is usable, so a bad data
    /// directory fails at start-up.
    pub fn open(path: PathBuf) -> Result<Self> {
        let pool = Self {
            path,
            idle: Idle::new(MAX_IDLE, MIN_IDLE),
            open: Default::default(),
            writer: Default::default(),
        };
        let conn = pool.connect()?;
        pool.checkin(conn);
        Ok(pool)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&self) -> Result<Conn> {
        let conn = Connection::open(&self.path)
            .with_context(|| format!("cannot open SQLite file {}", self.path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL lets readers run beside the writer; NORMAL sync keeps every committed
        // transaction across a process crash (only an OS crash can lose the last ones).
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.set_prepared_statement_cache_capacity(128);
        // What parked long-polls wake on (see `parking/`): the `users` rows a
        // statement updated (each user's `head_seq`), and whether it rolled back. The
        // hooks run on the thread that runs the statement; `observed` collects.
        conn.update_hook(Some(
            |action: rusqlite::hooks::Action, _db: &str, table: &str, rowid: i64| {
                if action == rusqlite::hooks::Action::SQLITE_UPDATE && table == "users" {
                    OBSERVED.with(|o| o.borrow_mut().moved.push(rowid));
                }
            },
        ));
        conn.rollback_hook(Some(|| {
            OBSERVED.with(|o| o.borrow_mut().rolled_back = true);
        }));
        self.open.count.fetch_add(1, Ordering::Relaxed);
        Ok(Conn {
            conn,
            _open: Opened(Arc::clone(&self.open)),
        })
    }

    /// An exclusive connection: an idle one if there is one, else a new one.
    pub fn checkout(&self) -> Result<Conn> {
        match self.idle.pop() {
            Some(conn) => Ok(conn),
            None => self.connect(),
        }
    }

    /// Returns a connection to the pool, rolling back anything the guest left open.
    pub fn checkin(&self, conn: Conn) {
        if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
            return;
        }
        self.idle.push(conn);
    }

    /// Closes the connections idle for longer than `ttl` (a few stay open); returns
    /// how many it closed.
    ///
    /// SQLite cannot give a closed connection's descriptor back to the system while
    /// another connection of the process holds a lock on the file (closing it would
    /// drop their POSIX locks), and in WAL mode every open connection holds one. It
    /// keeps such descriptors for reuse until the file's last connection closes. So
    /// after a burst (1,000 polls abandoned at once left ~1,000 descriptors open), the
    /// pool closes all its idle connections at a moment when no other is open, once
    /// one has closed beside others; the next checkout opens a fresh one.
    pub fn shrink(&self, ttl: Duration) -> usize {
        let mut closed = self.idle.shrink(ttl);
        if self.open.stranded.load(Ordering::Relaxed)
            && self.open.count.load(Ordering::Relaxed) == self.idle.len()
        {
            let all = self.idle.take_all();
            closed += all.len();
            drop(all);
            if self.open.count.load(Ordering::Relaxed) == 0 {
                self.open.stranded.store(false, Ordering::Relaxed);
            }
        }
        closed
    }
}

/// A connection of a [`Pool`], counted while open.
#[derive(Debug)]
pub struct Conn {
    conn: Connection,
    // Declared after `conn`, so it is dropped after the connection is closed.
    _open: Opened,
}

impl std::ops::Deref for Conn {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

/// The open connections of one file, and whether one closed while others were open
/// (its descriptor is then held by SQLite until none is; see [`Pool::shrink`]).
#[derive(Debug, Default)]
struct Open {
    count: AtomicUsize,
    stranded: AtomicBool,
}

#[derive(Debug)]
struct Opened(Arc<Open>);

impl Drop for Opened {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::Relaxed) > 1 {
            self.0.stranded.store(true, Ordering::Relaxed);
        }
    }
}

/// What the hooks of this crate's connections saw during one statement.
#[derive(Debug, Default)]
pub struct Observed {
    /// Rowids of the `users` rows it updated.
    pub moved: Vec<i64>,
    /// The transaction (or the statement's own) was rolled back.
    pub rolled_back: bool,
}

thread_local! {
    static OBSERVED: RefCell<Observed> = RefCell::default();
}

/// Runs `f` (one statement on a pooled connection, on this thread) and returns what
/// the connection's hooks saw while it ran.
pub fn observed<T>(f: impl FnOnce() -> T) -> (T, Observed) {
    OBSERVED.with(|o| *o.borrow_mut() = Observed::default());
    let value = f();
    (
        value,
        OBSERVED.with(|o| std::mem::take(&mut *o.borrow_mut())),
    )
}

/// The SQLite databases of the app, by label (`default` → `sqlite_db.db`, as Spin names it).
#[derive(Debug, Default)]
pub struct Databases {
    pools: HashMap<String, Arc<Pool>>,
}

impl Databases {
    /// Opens one file per label under `dir`.
    pub fn open<'a>(dir: &Path, labels: impl IntoIterator<Item = &'a String>) -> Result<Self> {
        let mut pools = HashMap::new();
        for label in labels {
            if pools.contains_key(label) {
                continue;
            }
            let file = if label == "default" {
                "sqlite_db.db".to_string()
            } else {
                format!("sqlite_db.{label}.db")
            };
            pools.insert(label.clone(), Arc::new(Pool::open(dir.join(file))?));
        }
        Ok(Self { pools })
    }

    pub fn get(&self, label: &str) -> Option<&Arc<Pool>> {
        self.pools.get(label)
    }

    /// Every file's pool.
    pub fn pools(&self) -> impl Iterator<Item = &Arc<Pool>> {
        self.pools.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_connection_left_in_a_transaction_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Pool::open(dir.path().join("t.db")).unwrap();
        let conn = pool.checkout().unwrap();
        conn.execute_batch("CREATE TABLE t(x); BEGIN; INSERT INTO t VALUES (1);")
            .unwrap();
        pool.checkin(conn);
        let conn = pool.checkout().unwrap();
        assert!(conn.is_autocommit());
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }

    /// Open descriptors of this process on `path`.
    fn descriptors_on(path: &Path) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|target| target == path)
            .count()
    }

    #[test]
    fn a_burst_of_connections_gives_its_descriptors_back_once_idle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let pool = Pool::open(path.clone()).unwrap();
        let path = path.canonicalize().unwrap();
        // A WAL connection holds a shared lock on the file from its first read on.
        let read = |conn: &Conn| {
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap()
        };
        let kept = pool.checkout().unwrap();
        read(&kept);
        let burst: Vec<Conn> = (0..100).map(|_| pool.checkout().unwrap()).collect();
        burst.iter().for_each(|c| {
            read(c);
        });
        assert!(descriptors_on(&path) >= 101);
        // Closed outside the pool (as an aborted request's are), beside another.
        drop(burst);
        assert!(
            descriptors_on(&path) >= 100,
            "SQLite holds the closed ones' descriptors while one is open"
        );
        pool.checkin(kept);
        std::thread::sleep(Duration::from_millis(5));
        pool.shrink(Duration::from_millis(1));
        assert_eq!(descriptors_on(&path), 0, "all closed while none was in use");
        let conn = pool.checkout().unwrap();
        assert_eq!(descriptors_on(&path), 1, "a fresh one opens on demand");
        pool.checkin(conn);
        pool.shrink(Duration::from_millis(1));
        assert_eq!(pool.idle.len(), 1, "nothing stranded: the kept one stays");
    }

    #[test]
    fn files_are_named_like_spin_and_use_wal() {
        let dir = tempfile::tempdir().unwrap();
        let labels = ["default".to_string(), "audit".to_string()];
        let dbs = Databases::open(dir.path(), &labels).unwrap();
        assert!(dbs.get("default").unwrap().path().ends_with("sqlite_db.db"));
        assert!(
            dbs.get("audit")
                .unwrap()
                .path()
                .ends_with("sqlite_db.audit.db")
        );
        assert!(dbs.get("other").is_none());
        let conn = dbs.get("default").unwrap().checkout().unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
}
