//! The statements one send runs, counted on real SQLite through a counting executor:
//! on Spin each statement is a host call, and those inside the write transaction
//! hold the store's one write lock. A change that adds a statement to this path
//! fails here and must say why (docs/BENCHMARKS.md records the counts).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod support;

use std::cell::RefCell;

use courier_core::Config;
use courier_store::native::NativeSqlite;
use courier_store::sql::{Dialect, Row, Sql, SqlError, SqlValue};
use courier_store::{directory, schema};
use serde_json::json;

const T0: i64 = 1_767_225_600_000;

/// Runs every statement on `db`, keeping its text.
struct Counting<'a> {
    db: &'a NativeSqlite,
    log: RefCell<Vec<String>>,
}

impl Sql for Counting<'_> {
    fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Row>, SqlError> {
        self.log(sql);
        self.db.query(sql, params)
    }

    fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<(), SqlError> {
        self.log(sql);
        self.db.execute(sql, params)
    }
}

impl Counting<'_> {
    fn log(&self, sql: &str) {
        let text = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        self.log.borrow_mut().push(text);
    }
}

/// What one send ran: every statement, and those between `BEGIN` and `COMMIT`
/// (both included).
struct Counted {
    all: Vec<String>,
    locked: usize,
}

fn count(db: &NativeSqlite, from: &str, to: serde_json::Value, cmid: &str, now: i64) -> Counted {
    let counting = Counting {
        db,
        log: RefCell::default(),
    };
    let (status, body) = support::send_text(&counting, &Config::default(), from, to, cmid, now);
    assert_eq!(status, 201, "{body}");
    let all = counting.log.into_inner();
    let begin = all.iter().position(|s| s.starts_with("BEGIN")).unwrap();
    let commit = all.iter().position(|s| s == "COMMIT").unwrap();
    Counted {
        locked: commit - begin + 1,
        all,
    }
}

fn store() -> NativeSqlite {
    let db = NativeSqlite::memory().unwrap();
    schema::migrate(&db).unwrap();
    for uid in ["a0", "a1", "a2"] {
        directory::put_user(&db, uid, uid, "acme", 0).unwrap();
    }
    let policy = directory::ControlPolicy { max_members: 2000 };
    let members = ["a0".to_string(), "a1".into(), "a2".into()];
    directory::put_group(&db, "team", "team", "a0", &members, policy, 0).unwrap();
    db
}

#[test]
fn a_direct_send_runs_sixteen_statements_thirteen_of_them_under_the_write_lock() {
    let db = store();
    // The first send creates the rate buckets; count the one after it.
    support::send_text(
        &db,
        &Config::default(),
        "a0",
        json!({"user": "a1"}),
        "m0",
        T0,
    );
    let sent = count(&db, "a0", json!({"user": "a1"}), "m1", T0 + 1000);
    assert_eq!((sent.all.len(), sent.locked), (16, 13), "{:#?}", sent.all);
}

#[test]
fn a_send_to_a_small_group_runs_eighteen_statements_fourteen_of_them_under_the_write_lock() {
    let db = store();
    support::send_text(
        &db,
        &Config::default(),
        "a0",
        json!({"group": "team"}),
        "g0",
        T0,
    );
    let sent = count(&db, "a0", json!({"group": "team"}), "g1", T0 + 1000);
    assert_eq!((sent.all.len(), sent.locked), (18, 14), "{:#?}", sent.all);
}
