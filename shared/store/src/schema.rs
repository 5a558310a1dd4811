//! The schema, as an append-only list of versioned migrations applied on first use.
//!
//! Portable SQL (SQLite and PostgreSQL): `TEXT`, `BIGINT`, `DOUBLE PRECISION`,
//! composite primary keys, `ON CONFLICT`. A migration never changes once released;
//! changes come as new versions.

use crate::sql::{Dialect, Sql, SqlError, TxLock, write_tx};

/// `(version, statements)`, in order.
pub const MIGRATIONS: &[(i64, &[&str])] = &[
    (
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
    ),
    (
        2,
        &[
            // The durable queue (outbox): written in the same transaction as the data it
            // follows. `generation` is bumped when a coalesced job is enqueued again, so
            // a worker that finishes an older generation keeps the job for another run.
            "CREATE TABLE IF NOT EXISTS jobs (
            id TEXT PRIMARY KEY,
            lane BIGINT NOT NULL,
            kind TEXT NOT NULL,
            key TEXT,
            payload TEXT NOT NULL,
            run_at BIGINT NOT NULL,
            attempts BIGINT NOT NULL DEFAULT 0,
            first_at BIGINT,
            locked_until BIGINT NOT NULL DEFAULT 0,
            lease TEXT,
            generation BIGINT NOT NULL DEFAULT 0,
            state TEXT NOT NULL DEFAULT 'ready',
            last_error TEXT,
            created_at BIGINT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, lane, run_at)",
            "CREATE INDEX IF NOT EXISTS jobs_by_key ON jobs (key, locked_until)",
            // Messages of a large group waiting for fan-out, in send order.
            "CREATE TABLE IF NOT EXISTS group_outbox (
            gid TEXT NOT NULL,
            msg_id TEXT NOT NULL,
            queued_at BIGINT NOT NULL,
            PRIMARY KEY (gid, msg_id))",
            "CREATE INDEX IF NOT EXISTS group_outbox_order ON group_outbox (gid, queued_at, msg_id)",
            // Messages whose sender is owed a new `receipt` entry; `generation` counts
            // reads since the sender's receipt job last looked.
            "CREATE TABLE IF NOT EXISTS receipt_dirty (
            sender TEXT NOT NULL,
            msg_id TEXT NOT NULL,
            generation BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (sender, msg_id))",
            "CREATE INDEX IF NOT EXISTS receipts_by_reader ON receipts (reader, msg_id)",
        ],
    ),
    (
        3,
        &[
            // Vendor push registrations, one per (user, device). `token` is the APNs/
            // FCM/HMS token or the Web Push endpoint; `keys` the Web Push keys (JSON).
            "CREATE TABLE IF NOT EXISTS push_devices (
            uid TEXT NOT NULL,
            device TEXT NOT NULL,
            vendor TEXT NOT NULL,
            token TEXT NOT NULL,
            keys TEXT,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (uid, device))",
            "CREATE INDEX IF NOT EXISTS push_devices_by_token ON push_devices (vendor, token)",
            // One row per (push job run, device): what the vendor answered, and later
            // what its delivery receipt said.
            "CREATE TABLE IF NOT EXISTS push_deliveries (
            attempt TEXT NOT NULL,
            device TEXT NOT NULL,
            uid TEXT NOT NULL,
            vendor TEXT NOT NULL,
            token TEXT NOT NULL,
            state TEXT NOT NULL,
            vendor_id TEXT,
            detail TEXT,
            unread BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            PRIMARY KEY (attempt, device))",
            "CREATE INDEX IF NOT EXISTS push_deliveries_by_vendor_id ON push_deliveries (vendor, vendor_id)",
            "CREATE INDEX IF NOT EXISTS push_deliveries_by_token ON push_deliveries (vendor, token)",
            // Nonces of authenticated vendor callbacks seen within the replay window.
            "CREATE TABLE IF NOT EXISTS push_nonces (
            vendor TEXT NOT NULL,
            nonce TEXT NOT NULL,
            seen_at BIGINT NOT NULL,
            PRIMARY KEY (vendor, nonce))",
        ],
    ),
    (
        4,
        &[
            // Retention: every entry of a stream at or below `trimmed_seq` was purged.
            "ALTER TABLE users ADD COLUMN trimmed_seq BIGINT NOT NULL DEFAULT 0",
            "CREATE INDEX IF NOT EXISTS messages_by_time ON messages (sent_at, msg_id)",
            "CREATE INDEX IF NOT EXISTS push_deliveries_by_time ON push_deliveries (updated_at)",
            // Per-org quotas: the org whose request queued a job, to count its share.
            "ALTER TABLE jobs ADD COLUMN org TEXT",
            "CREATE INDEX IF NOT EXISTS jobs_by_org ON jobs (org, state, lane)",
            // Webhooks (audit/CRM copies). `events` is the JSON list as given;
            // `webhook_events` is the same list as rows, so an event finds its
            // subscribers with one primary-key probe.
            "CREATE TABLE IF NOT EXISTS webhooks (
            id TEXT PRIMARY KEY,
            org TEXT NOT NULL,
            url TEXT NOT NULL,
            secret TEXT NOT NULL,
            events TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS webhooks_by_org ON webhooks (org, id)",
            "CREATE TABLE IF NOT EXISTS webhook_events (
            org TEXT NOT NULL,
            event TEXT NOT NULL,
            webhook TEXT NOT NULL,
            PRIMARY KEY (org, event, webhook))",
            "CREATE INDEX IF NOT EXISTS webhook_events_by_webhook ON webhook_events (webhook)",
        ],
    ),
    (
        5,
        &[
            // Wakes for long-polls parked in gateways (the gateway's `parking.rs`):
            // every statement that updates `users` rows (each appended entry moves
            // its user's `head_seq`) notifies channel `courier_wake` with their uids,
            // at most 100 per notification (ids are ≤ 64 bytes; a payload must stay
            // under 8,000), delivered when the transaction commits. SQLite needs none:
            // the one gateway on the file sees the updates through a hook.
            "-- postgres only
            CREATE OR REPLACE FUNCTION courier_wake() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              PERFORM pg_notify('courier_wake', string_agg(uid, ','))
              FROM (SELECT uid, (row_number() OVER () - 1) / 100 AS chunk FROM moved) AS m
              GROUP BY chunk;
              RETURN NULL;
            END
            $$",
            "-- postgres only
            DROP TRIGGER IF EXISTS courier_wake ON users",
            "-- postgres only
            CREATE TRIGGER courier_wake AFTER UPDATE ON users
            REFERENCING NEW TABLE AS moved
            FOR EACH STATEMENT EXECUTE FUNCTION courier_wake()",
        ],
    ),
];

/// The first line of a migration statement that runs on PostgreSQL only.
const POSTGRES_ONLY: &str = "-- postgres only";

/// The schema version the store is at (`None`: no migration applied).
pub fn version<S: Sql + ?Sized>(sql: &S) -> Result<Option<i64>, SqlError> {
    sql.query_i64("SELECT MAX(version) FROM courier_migrations", &[])
}

/// The newest schema version.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

/// Applies every migration not applied yet. Cheap when up to date (one query), safe
/// when several instances race: each version is applied in one write transaction
/// that re-checks the version first, and on PostgreSQL (where concurrent `CREATE
/// TABLE IF NOT EXISTS` can still collide) under the migration advisory lock.
pub fn migrate<S: Sql + ?Sized>(sql: &S) -> Result<(), SqlError> {
    let current = |s: &S| -> Result<i64, SqlError> {
        Ok(s.query_i64(
            "SELECT COALESCE(MAX(version), 0) FROM courier_migrations",
            &[],
        )?
        .unwrap_or(0))
    };
    // Fails only before the first migration (no such table), or if the database
    // does: either way the transactions below say what is wrong.
    if current(sql).is_ok_and(|v| v >= latest()) {
        return Ok(());
    }
    let exclusive = |s: &S| -> Result<(), SqlError> {
        match s.dialect().tx_lock(TxLock::Migrate) {
            Some(lock) => s.execute(&lock, &[]),
            None => Ok(()),
        }
    };
    write_tx(sql, |s| {
        exclusive(s)?;
        s.execute(
            "CREATE TABLE IF NOT EXISTS courier_migrations (
                version BIGINT PRIMARY KEY,
                applied_at BIGINT NOT NULL)",
            &[],
        )
    })?;
    for (version, statements) in MIGRATIONS {
        write_tx(sql, |s| {
            exclusive(s)?;
            if current(s)? >= *version {
                return Ok(());
            }
            for statement in *statements {
                if statement.starts_with(POSTGRES_ONLY) && s.dialect() != Dialect::Postgres {
                    continue;
                }
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
