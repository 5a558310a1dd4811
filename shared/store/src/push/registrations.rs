//! Devices' push registrations.

use crate::error::StoreError;
use crate::sql::{Sql, SqlValue};

/// A device's push registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub device: String,
    /// `webpush`, `apns`, `fcm` or `hms`.
    pub vendor: String,
    /// The vendor token, or the Web Push endpoint URL.
    pub token: String,
    /// Web Push only: `{"p256dh": …, "auth": …}`.
    pub keys: Option<String>,
}

/// Registers (or replaces) the push registration of `uid`'s `device`. A token
/// registered before by another user or device moves here: a phone that signs in
/// as someone else must stop receiving the previous user's pushes.
pub fn register<S: Sql + ?Sized>(
    sql: &S,
    uid: &str,
    reg: &Registration,
    now: i64,
) -> Result<(), StoreError> {
    crate::sql::write_tx(sql, |sql| {
        if crate::streams::head(sql, uid)?.is_none() {
            return Err(StoreError::NotFound(format!("user {uid}")));
        }
        sql.execute(
            "DELETE FROM push_devices WHERE vendor = ? AND token = ? AND NOT (uid = ? AND device = ?)",
            &[
                reg.vendor.as_str().into(),
                reg.token.as_str().into(),
                uid.into(),
                reg.device.as_str().into(),
            ],
        )?;
        sql.execute(
            "INSERT INTO push_devices (uid, device, vendor, token, keys, updated_at) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (uid, device) DO UPDATE SET
               vendor = excluded.vendor, token = excluded.token, keys = excluded.keys,
               updated_at = excluded.updated_at",
            &[
                uid.into(),
                reg.device.as_str().into(),
                reg.vendor.as_str().into(),
                reg.token.as_str().into(),
                reg.keys.as_deref().into(),
                now.into(),
            ],
        )?;
        Ok(())
    })
}

/// Removes a device's registration. Returns whether there was one.
pub fn unregister<S: Sql + ?Sized>(sql: &S, uid: &str, device: &str) -> Result<bool, StoreError> {
    crate::sql::write_tx(sql, |sql| {
        let found = sql
            .query_row(
                "SELECT 1 FROM push_devices WHERE uid = ? AND device = ?",
                &[uid.into(), device.into()],
            )?
            .is_some();
        sql.execute(
            "DELETE FROM push_devices WHERE uid = ? AND device = ?",
            &[uid.into(), device.into()],
        )?;
        Ok(found)
    })
}

/// Inside a transaction: forgets a token the vendor reported gone. Returns how many
/// registrations held it.
pub(super) fn forget_token<S: Sql + ?Sized>(
    sql: &S,
    vendor: &str,
    token: &str,
) -> Result<i64, StoreError> {
    let held = sql
        .query_i64(
            "SELECT count(*) FROM push_devices WHERE vendor = ? AND token = ?",
            &[vendor.into(), token.into()],
        )?
        .unwrap_or(0);
    sql.execute(
        "DELETE FROM push_devices WHERE vendor = ? AND token = ?",
        &[vendor.into(), token.into()],
    )?;
    Ok(held)
}

/// The push registrations of one user, by device.
pub fn registrations<S: Sql + ?Sized>(sql: &S, uid: &str) -> Result<Vec<Registration>, StoreError> {
    Ok(sql
        .query(
            "SELECT device, vendor, token, keys FROM push_devices WHERE uid = ? ORDER BY device",
            &[uid.into()],
        )?
        .into_iter()
        .map(|row| {
            let mut cols = row.into_iter();
            let mut next = || cols.next().unwrap_or(SqlValue::Null);
            Registration {
                device: next().into_string().unwrap_or_default(),
                vendor: next().into_string().unwrap_or_default(),
                token: next().into_string().unwrap_or_default(),
                keys: next().into_string(),
            }
        })
        .collect())
}
