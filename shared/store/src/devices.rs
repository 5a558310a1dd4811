//! Devices: presence (`last_seen`, refreshed by sync) and per-device acks. The ack
//! rule: never past the head ([`check_within_head`], as sync's `after`), and never
//! backwards (the upsert keeps the larger seq).

use courier_core::Seq;
use courier_core::streams::check_within_head;

use crate::error::StoreError;
use crate::sql::Sql;
use crate::streams::head;

/// Marks a device online. Skips the write (and so the write lock) when the stored
/// `last_seen` is newer than `now - refresh_ms`: a busy long-poller costs one read.
pub fn touch<S: Sql + ?Sized>(
    sql: &S,
    uid: &str,
    device: &str,
    now: i64,
    refresh_ms: i64,
) -> Result<(), StoreError> {
    let seen = sql.query_i64(
        "SELECT last_seen FROM devices WHERE uid = ? AND device = ?",
        &[uid.into(), device.into()],
    )?;
    if seen.is_some_and(|seen| seen > now - refresh_ms) {
        return Ok(());
    }
    sql.execute(
        "INSERT INTO devices (uid, device, acked_seq, last_seen) VALUES (?, ?, 0, ?)
         ON CONFLICT (uid, device) DO UPDATE SET last_seen = excluded.last_seen",
        &[uid.into(), device.into(), now.into()],
    )?;
    Ok(())
}

/// Records that `device` has everything up to `seq`; a lower `seq` than before is a
/// no-op. Returns the device's acked seq afterwards. `seq` above the head is invalid.
pub fn ack<S: Sql + ?Sized>(
    sql: &S,
    uid: &str,
    device: &str,
    seq: i64,
    now: i64,
) -> Result<i64, StoreError> {
    let head = head(sql, uid)?.ok_or_else(|| StoreError::NotFound(format!("user {uid}")))?;
    let invalid = |e: courier_core::Error| StoreError::Invalid(e.public_message());
    let within = |n| Seq::new(n).map_err(invalid);
    check_within_head("seq", within(seq)?, within(head)?).map_err(invalid)?;
    sql.execute(
        "INSERT INTO devices (uid, device, acked_seq, last_seen) VALUES (?, ?, ?, ?)
         ON CONFLICT (uid, device) DO UPDATE SET
           acked_seq = CASE WHEN devices.acked_seq < excluded.acked_seq THEN excluded.acked_seq ELSE devices.acked_seq END,
           last_seen = excluded.last_seen",
        &[uid.into(), device.into(), seq.into(), now.into()],
    )?;
    Ok(sql
        .query_i64(
            "SELECT acked_seq FROM devices WHERE uid = ? AND device = ?",
            &[uid.into(), device.into()],
        )?
        .unwrap_or(seq))
}
