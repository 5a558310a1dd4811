//! Parked long-polls: the gateway, the access layer, holds a waiting `GET /v1/sync`
//! itself, with no WebAssembly instance, and wakes it from the store's own writes.
//! Event streams (`GET /v1/stream`, `events.rs`) wait here between their runs too.
//!
//! # The exchange with the `sync` component
//! 1. The gateway offers to park: it adds [`PARK_HEADER`] (the app's
//!    `internal_secret`) to a `GET /v1/sync` with `wait > 0`. Whatever a client sent
//!    under that name is removed first.
//! 2. The component answers as always, after checking the token and marking the device
//!    online. When its first page is empty and the offer is genuine, it answers at once
//!    and names the caller in [`PARKED_USER_HEADER`] instead of looping.
//! 3. The gateway parks the client here, keyed by user, until the user's stream head
//!    moves past `after`, the deadline comes, or the gateway shuts down; then it runs
//!    the component once more with `wait=0` and answers with that. So the component
//!    still decides everything the client sees.
//!
//! # Wakes
//! - SQLite (one process): an update hook on the gateway's own connections sees every
//!   `UPDATE` of a `users` row (its `head_seq` moves with every appended entry); when
//!   the writing transaction ends committed, the rowids are handed to [`Parking::moved_rowids`].
//! - PostgreSQL (any number of gateways): a trigger of the schema `NOTIFY`s
//!   `courier_wake` with the uids of every statement that updates `users`, delivered at
//!   commit; each gateway `LISTEN`s on a session of its own ([`listen`]).
//!
//! A parked poll registers its waiter first and reads the head second, so a commit
//! either comes after the registration (and wakes it) or before the read (and the read
//! sees it). A lost wake (the listener reconnecting, say) only delays the answer to the
//! deadline; every parked poll is woken when the listener comes back, and the answer
//! is always read from the store.
//!
//! # Layout
//! - `mod.rs`: the parked polls ([`Parking`]): registration, waiting, waking, metrics.
//! - `source.rs`: where heads are read and wakes come from (SQLite's update hook, or
//!   PostgreSQL's `LISTEN` session, [`listen`]).
//! - `query.rs`: the sync query's `wait` and `after`, and a parked poll's deadline.

mod query;
mod source;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

pub use self::query::{after, deadline, wait_secs, without_wait};
pub use self::source::listen;
use self::source::{PgListener, Source};

use crate::host::sqlite::pool::Pool;

/// Request header of the gateway's offer to park (value: the internal secret).
pub const PARK_HEADER: &str = "courier-park";
/// Response header of a component that accepts the offer (value: the user id).
pub const PARKED_USER_HEADER: &str = "courier-parked-user";
/// The long-poll route that parks.
pub const SYNC_PATH: &str = "/v1/sync";
/// The event-stream route, held between its runs like a parked poll.
pub const STREAM_PATH: &str = "/v1/stream";
/// The PostgreSQL channel the schema's trigger notifies.
pub const CHANNEL: &str = "courier_wake";

/// How a parked poll ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// The stream moved past `after` (or may have: wakes can be spurious).
    Moved,
    Deadline,
    ShuttingDown,
    /// The wake source is down: answer now rather than wait blind.
    NoSource,
}

/// Why a poll was not parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `--max-parked` polls are parked already.
    Full,
}

struct Slot {
    notify: Arc<Notify>,
    waiters: usize,
    rowid: Option<i64>,
}

#[derive(Default)]
struct State {
    users: HashMap<String, Slot>,
    /// SQLite rowid → uid, for parked users only.
    by_rowid: HashMap<i64, String>,
    parked: usize,
}

/// The parked polls of one gateway.
pub struct Parking {
    secret: String,
    max: usize,
    source: Source,
    state: Mutex<State>,
    closing: AtomicBool,
    shutdown: Notify,
    parks: AtomicU64,
    wakes: AtomicU64,
    refused: AtomicU64,
    streams: AtomicU64,
}

impl Parking {
    /// Parking on the app's SQLite file (`pool`, the `default` database).
    pub fn sqlite(secret: String, max: usize, pool: Arc<Pool>) -> Self {
        Self::new(secret, max, Source::Sqlite(pool))
    }

    /// Parking on PostgreSQL; wakes arrive once [`listen`] has connected.
    pub fn postgres(secret: String, max: usize) -> Self {
        Self::new(secret, max, Source::Postgres(PgListener::default()))
    }

    fn new(secret: String, max: usize, source: Source) -> Self {
        Self {
            secret,
            max,
            source,
            state: Mutex::default(),
            closing: AtomicBool::new(false),
            shutdown: Notify::new(),
            parks: AtomicU64::new(0),
            wakes: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            streams: AtomicU64::new(0),
        }
    }

    /// The value of [`PARK_HEADER`].
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Whether to offer parking now (not shutting down, the wake source is up).
    pub fn open(&self) -> bool {
        if self.closing.load(Ordering::Acquire) || self.max == 0 {
            return false;
        }
        match &self.source {
            Source::Sqlite(_) => true,
            Source::Postgres(listener) => listener
                .client
                .try_read()
                .map(|c| c.is_some())
                .unwrap_or(true),
        }
    }

    /// Parks a poll of `uid` waiting for `seq > after` until `deadline`.
    pub async fn park(&self, uid: &str, after: i64, deadline: Instant) -> Result<Woken, Refused> {
        let shutdown = self.shutdown.notified();
        tokio::pin!(shutdown);
        shutdown.as_mut().enable();
        if self.closing.load(Ordering::Acquire) {
            return Ok(Woken::ShuttingDown);
        }
        let slot = self.register(uid)?;
        self.parks.fetch_add(1, Ordering::Relaxed);
        let moved = slot.notify.clone();
        let moved = moved.notified();
        tokio::pin!(moved);
        moved.as_mut().enable();
        let head = match self.head(uid).await {
            Ok(Some((head, rowid))) => {
                if let Some(rowid) = rowid {
                    self.map_rowid(uid, rowid);
                }
                head
            }
            // The user is gone, or the store failed: the component's answer says why.
            Ok(None) | Err(_) => return Ok(Woken::NoSource),
        };
        if head > after {
            return Ok(self.woke(Woken::Moved));
        }
        let woken = tokio::select! {
            () = &mut moved => Woken::Moved,
            () = tokio::time::sleep_until(deadline.into()) => Woken::Deadline,
            () = &mut shutdown => Woken::ShuttingDown,
        };
        drop(slot);
        Ok(self.woke(woken))
    }

    fn woke(&self, woken: Woken) -> Woken {
        if woken == Woken::Moved {
            self.wakes.fetch_add(1, Ordering::Relaxed);
        }
        woken
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts the waiter in, or refuses it over `max`.
    fn register(&self, uid: &str) -> Result<Registration<'_>, Refused> {
        let mut state = self.lock();
        if state.parked >= self.max {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::Full);
        }
        state.parked += 1;
        let slot = state.users.entry(uid.to_string()).or_insert_with(|| Slot {
            notify: Arc::new(Notify::new()),
            waiters: 0,
            rowid: None,
        });
        slot.waiters += 1;
        let registration = Registration {
            parking: self,
            uid: uid.to_string(),
            notify: Arc::clone(&slot.notify),
        };
        Ok(registration)
    }

    fn map_rowid(&self, uid: &str, rowid: i64) {
        let mut state = self.lock();
        if let Some(slot) = state.users.get_mut(uid)
            && slot.rowid.is_none()
        {
            slot.rowid = Some(rowid);
            state.by_rowid.insert(rowid, uid.to_string());
        }
    }
    /// Wakes the parked polls of these SQLite `users` rows (committed updates).
    pub fn moved_rowids(&self, rowids: &[i64]) {
        let state = self.lock();
        if state.by_rowid.is_empty() {
            return;
        }
        for rowid in rowids {
            if let Some(slot) = state.by_rowid.get(rowid).and_then(|u| state.users.get(u)) {
                slot.notify.notify_waiters();
            }
        }
    }

    /// Wakes the parked polls of these users.
    pub fn moved_uids<'a>(&self, uids: impl IntoIterator<Item = &'a str>) {
        let state = self.lock();
        if state.users.is_empty() {
            return;
        }
        for uid in uids {
            if let Some(slot) = state.users.get(uid) {
                slot.notify.notify_waiters();
            }
        }
    }

    /// Wakes every parked poll (wakes may have been lost).
    fn wake_all(&self) {
        for slot in self.lock().users.values() {
            slot.notify.notify_waiters();
        }
    }

    /// Stops parking and answers every parked poll now (SIGTERM).
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.shutdown.notify_waiters();
    }

    /// Polls parked right now.
    pub fn parked(&self) -> usize {
        self.lock().parked
    }

    /// Whether `--max-parked` waiters are parked already.
    pub fn full(&self) -> bool {
        self.parked() >= self.max
    }

    /// Counts an event stream held by the gateway, until the guard drops.
    pub fn stream_opened(&self) -> StreamOpen<'_> {
        self.streams.fetch_add(1, Ordering::Relaxed);
        StreamOpen(self)
    }

    /// The `/metrics` lines.
    pub fn render_metrics(&self, page: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            page,
            "# HELP courier_parked_polls Long-polls parked in the gateway (no instance held).\n\
             # TYPE courier_parked_polls gauge\n\
             courier_parked_polls {}\n\
             # HELP courier_parked_polls_total Long-polls parked since start.\n\
             # TYPE courier_parked_polls_total counter\n\
             courier_parked_polls_total {}\n\
             # HELP courier_parked_wakes_total Parked long-polls woken by a write.\n\
             # TYPE courier_parked_wakes_total counter\n\
             courier_parked_wakes_total {}\n\
             # HELP courier_parked_refused_total Long-polls refused over --max-parked (503).\n\
             # TYPE courier_parked_refused_total counter\n\
             courier_parked_refused_total {}\n\
             # HELP courier_streams_open Event streams (GET /v1/stream) the gateway holds; \
             each counts in courier_parked_polls while it waits.\n\
             # TYPE courier_streams_open gauge\n\
             courier_streams_open {}\n",
            self.parked(),
            self.parks.load(Ordering::Relaxed),
            self.wakes.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
            self.streams.load(Ordering::Relaxed),
        );
    }
}

/// One parked waiter; dropping it (the poll answered, or its client gone) frees the
/// slot at once.
struct Registration<'a> {
    parking: &'a Parking,
    uid: String,
    notify: Arc<Notify>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut state = self.parking.lock();
        state.parked -= 1;
        let gone = match state.users.get_mut(&self.uid) {
            Some(slot) => {
                slot.waiters -= 1;
                (slot.waiters == 0).then_some(slot.rowid)
            }
            None => None,
        };
        if let Some(rowid) = gone {
            state.users.remove(&self.uid);
            if let Some(rowid) = rowid {
                state.by_rowid.remove(&rowid);
            }
        }
    }
}

/// One event stream held open (see [`Parking::stream_opened`]).
pub struct StreamOpen<'a>(&'a Parking);

impl Drop for StreamOpen<'_> {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_parked_poll_wakes_on_its_user_and_frees_its_slot() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Arc::new(Pool::open(dir.path().join("t.db")).unwrap());
        let conn = pool.checkout().unwrap();
        conn.execute_batch(
            "CREATE TABLE users (uid TEXT PRIMARY KEY, head_seq BIGINT NOT NULL);
             INSERT INTO users VALUES ('a', 0), ('b', 0);",
        )
        .unwrap();
        pool.checkin(conn);
        let parking = Arc::new(Parking::sqlite("s".into(), 1, Arc::clone(&pool)));
        let deadline = Instant::now() + Duration::from_secs(10);
        let waiter = {
            let parking = Arc::clone(&parking);
            tokio::spawn(async move { parking.park("a", 0, deadline).await })
        };
        while parking.parked() == 0 || parking.lock().by_rowid.is_empty() {
            tokio::task::yield_now().await;
        }
        // Full: a second poll is refused.
        assert_eq!(parking.park("b", 0, deadline).await, Err(Refused::Full));
        parking.moved_rowids(&[2]); // b's row: not a's
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        parking.moved_rowids(&[1]);
        assert_eq!(waiter.await.unwrap(), Ok(Woken::Moved));
        assert_eq!(parking.parked(), 0);
        assert!(parking.lock().by_rowid.is_empty() && parking.lock().users.is_empty());
        // A head already past `after` answers at once; the deadline answers too.
        assert_eq!(parking.park("a", -1, deadline).await, Ok(Woken::Moved));
        let soon = Instant::now() + Duration::from_millis(30);
        assert_eq!(parking.park("a", 0, soon).await, Ok(Woken::Deadline));
        assert_eq!(parking.park("nobody", 0, soon).await, Ok(Woken::NoSource));
        parking.close();
        assert_eq!(
            parking.park("a", 0, deadline).await,
            Ok(Woken::ShuttingDown)
        );
        assert!(!parking.open());
    }
}
