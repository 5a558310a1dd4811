//! The schema, as an append-only list of versioned migrations applied on first use.
//!
//! Portable SQL (SQLite and PostgreSQL): `TEXT`, `BIGINT`, `DOUBLE PRECISION`,
//! composite primary keys, `ON CONFLICT`. A migration never changes once released;
//! changes come as new versions.

use crate::sql::{Sql, SqlError, write_tx};

/// `(version, statements)`, in order.
pub const MIGRATIONS: &[(i64, &[&str])] = &[(
    1,
    &[
        // Users and their stream head: seqs are allocated by incrementing head_seq
        // inside the writing transaction, so they are dense and never go back.
        "CREATE TABLE IF NOT EXISTS users (
            uid TEXT PRIMARY KEY,
            org TEXT NOT NULL,
            name TEXT NOT NULL,
            head_seq BIGINT NOT NULL DEFAULT 0,
            created_at BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS groups (
            gid TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            owner TEXT NOT NULL,
            version BIGINT NOT NULL,
            member_count BIGINT NOT NULL DEFAULT 0)",
        "CREATE TABLE IF NOT EXISTS members (
            gid TEXT NOT NULL,
            uid TEXT NOT NULL,
            PRIMARY KEY (gid, uid))",
        "CREATE INDEX IF NOT EXISTS members_by_uid ON members (uid, gid)",
        // Stored in both directions, so a lookup is one primary-key probe.
        "CREATE TABLE IF NOT EXISTS relations (
            a TEXT NOT NULL,
            b TEXT NOT NULL,
            kind TEXT NOT NULL,
            PRIMARY KEY (a, b))",
        // One copy of each body; (sender, client_msg_id) is the idempotency key.
        "CREATE TABLE IF NOT EXISTS messages (
            msg_id TEXT PRIMARY KEY,
            sender TEXT NOT NULL,
            client_msg_id TEXT NOT NULL,
            conv TEXT NOT NULL,
            content TEXT,
            fingerprint TEXT NOT NULL,
            sent_at BIGINT NOT NULL,
            sender_seq BIGINT NOT NULL,
            status TEXT NOT NULL,
            recalled BIGINT NOT NULL DEFAULT 0,
            UNIQUE (sender, client_msg_id))",
        // The per-user streams: small index rows; sync is one range scan.
        "CREATE TABLE IF NOT EXISTS entries (
            uid TEXT NOT NULL,
            seq BIGINT NOT NULL,
            kind TEXT NOT NULL,
            conv TEXT,
            msg_id TEXT,
            sender TEXT,
            data TEXT,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (uid, seq))",
        "CREATE INDEX IF NOT EXISTS entries_by_conv ON entries (uid, conv, seq)",
        "CREATE INDEX IF NOT EXISTS entries_by_msg ON entries (msg_id)",
        // Offline counters per (user, conversation), kept in the writing transaction.
        "CREATE TABLE IF NOT EXISTS conversations (
            uid TEXT NOT NULL,
            conv TEXT NOT NULL,
            last_seq BIGINT NOT NULL,
            unread BIGINT NOT NULL DEFAULT 0,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (uid, conv))",
        "CREATE INDEX IF NOT EXISTS conversations_by_time ON conversations (uid, updated_at)",
        "CREATE TABLE IF NOT EXISTS devices (
            uid TEXT NOT NULL,
            device TEXT NOT NULL,
            acked_seq BIGINT NOT NULL DEFAULT 0,
            last_seen BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (uid, device))",
        "CREATE TABLE IF NOT EXISTS receipts (
            msg_id TEXT NOT NULL,
            reader TEXT NOT NULL,
            read_at BIGINT NOT NULL,
            PRIMARY KEY (msg_id, reader))",
        // Token buckets of the rate limiter, by key (`user:<uid>`, `org:<org>`).
        "CREATE TABLE IF NOT EXISTS rate_buckets (
            key TEXT PRIMARY KEY,
            tokens DOUBLE PRECISION NOT NULL,
            updated_ms BIGINT NOT NULL)",
    ],
)];

/// The newest schema version.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

/// Applies every migration not applied yet. Cheap when up to date (one query), safe
/// when several instances race (each version is applied in one write transaction
/// that re-checks the version first).
pub fn migrate<S: Sql + ?Sized>(sql: &S) -> Result<(), SqlError> {
    sql.execute(
        "CREATE TABLE IF NOT EXISTS courier_migrations (
            version BIGINT PRIMARY KEY,
            applied_at BIGINT NOT NULL)",
        &[],
    )?;
    let current = |s: &S| -> Result<i64, SqlError> {
        Ok(s.query_i64(
            "SELECT COALESCE(MAX(version), 0) FROM courier_migrations",
            &[],
        )?
        .unwrap_or(0))
    };
    if current(sql)? >= latest() {
        return Ok(());
    }
    for (version, statements) in MIGRATIONS {
        write_tx(sql, |s| {
            if current(s)? >= *version {
                return Ok(());
            }
            for statement in *statements {
                s.execute(statement, &[])?;
            }
            s.execute(
                "INSERT INTO courier_migrations (version, applied_at) VALUES (?, 0)",
                &[(*version).into()],
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::NativeSqlite;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let db = NativeSqlite::memory().unwrap();
        migrate(&db).unwrap();
        migrate(&db).unwrap();
        let versions = db
            .query("SELECT version FROM courier_migrations", &[])
            .unwrap();
        assert_eq!(versions.len(), MIGRATIONS.len());
        assert_eq!(
            db.query_i64("SELECT count(*) FROM users", &[]).unwrap(),
            Some(0)
        );
    }
}
