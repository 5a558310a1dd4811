//! Delivery records, and the vendors' delivery receipts (callbacks) applied to them.

use super::registrations::forget_token;
use crate::error::StoreError;
use crate::sql::{Sql, SqlValue};

/// How one device's delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery<'a> {
    pub uid: &'a str,
    pub device: &'a str,
    pub vendor: &'a str,
    pub token: &'a str,
    /// `sent`, `retrying`, `token_gone` or `failed`.
    pub state: &'a str,
    /// The vendor's id of the notification, for its delivery receipts.
    pub vendor_id: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub unread: i64,
}

/// Records (or updates) the delivery of one job run (`attempt`, see [`attempt_id`])
/// to one device.
pub fn record<S: Sql + ?Sized>(
    sql: &S,
    attempt: &str,
    d: &Delivery<'_>,
    now: i64,
) -> Result<(), StoreError> {
    sql.execute(
        "INSERT INTO push_deliveries (attempt, device, uid, vendor, token, state, vendor_id, detail, unread, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (attempt, device) DO UPDATE SET state = excluded.state, vendor_id = excluded.vendor_id,
           detail = excluded.detail, updated_at = excluded.updated_at",
        &[
            attempt.into(),
            d.device.into(),
            d.uid.into(),
            d.vendor.into(),
            d.token.into(),
            d.state.into(),
            d.vendor_id.into(),
            d.detail.into(),
            d.unread.into(),
            now.into(),
            now.into(),
        ],
    )?;
    Ok(())
}

/// The devices of this job generation already served (sent, or given up on), so a
/// retry after another device's vendor failed does not notify them twice.
pub fn served_devices<S: Sql + ?Sized>(sql: &S, attempt: &str) -> Result<Vec<String>, StoreError> {
    Ok(sql
        .query(
            "SELECT device FROM push_deliveries WHERE attempt = ? AND state <> 'retrying'",
            &[attempt.into()],
        )?
        .into_iter()
        .filter_map(|r| r.into_iter().next().and_then(SqlValue::into_string))
        .collect())
}

/// A delivery receipt from a vendor callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt<'a> {
    pub vendor: &'a str,
    /// The vendor's id of the notification (`requestId`, message id), if given.
    pub vendor_id: Option<&'a str>,
    pub token: Option<&'a str>,
    /// `delivered`, `token_gone` or `failed`.
    pub state: &'a str,
    pub detail: Option<&'a str>,
}

/// Applies one delivery receipt (inside a transaction): updates the matching
/// deliveries and, when the vendor says the token is gone, drops its registrations —
/// the token the receipt names, or that of the deliveries its vendor id matches.
/// Returns how many deliveries matched.
fn apply_receipt<S: Sql + ?Sized>(sql: &S, r: &Receipt<'_>, now: i64) -> Result<i64, StoreError> {
    {
        let (filter, mut params): (&str, Vec<SqlValue>) = match (r.vendor_id, r.token) {
            (Some(id), Some(token)) => (
                "vendor = ? AND vendor_id = ? AND token = ?",
                vec![r.vendor.into(), id.into(), token.into()],
            ),
            (Some(id), None) => (
                "vendor = ? AND vendor_id = ?",
                vec![r.vendor.into(), id.into()],
            ),
            (None, Some(token)) => (
                "vendor = ? AND token = ? AND state = 'sent'",
                vec![r.vendor.into(), token.into()],
            ),
            (None, None) => return Ok(0),
        };
        let matched = sql
            .query_i64(
                &format!("SELECT count(*) FROM push_deliveries WHERE {filter}"),
                &params,
            )?
            .unwrap_or(0);
        if r.state == "token_gone" {
            // A receipt naming only the vendor's id of a notification still means the
            // token it went to is dead: drop the registrations of the matched
            // deliveries' tokens (before their state changes, which the filter reads).
            let mut gone: Vec<SqlValue> = vec![r.vendor.into()];
            gone.extend(params.iter().cloned());
            sql.execute(
                &format!(
                    "DELETE FROM push_devices WHERE vendor = ?
                     AND token IN (SELECT token FROM push_deliveries WHERE {filter})"
                ),
                &gone,
            )?;
        }
        let mut update: Vec<SqlValue> = vec![r.state.into(), r.detail.into(), now.into()];
        update.append(&mut params);
        sql.execute(
            &format!(
                "UPDATE push_deliveries SET state = ?, detail = ?, updated_at = ? WHERE {filter}"
            ),
            &update,
        )?;
        if r.state == "token_gone"
            && let Some(token) = r.token
        {
            forget_token(sql, r.vendor, token)?;
        }
        Ok(matched)
    }
}

/// Applies an authenticated callback's receipts in one transaction, with its nonce:
/// `None` (and nothing changed) if the nonce was seen within `window_ms` — a replay.
/// Otherwise how many deliveries matched. Nonces older than the window are forgotten.
pub fn apply_callback<S: Sql + ?Sized>(
    sql: &S,
    vendor: &str,
    nonce: &str,
    window_ms: i64,
    receipts: &[Receipt<'_>],
    now: i64,
) -> Result<Option<i64>, StoreError> {
    crate::sql::write_tx(sql, |sql| {
        sql.execute(
            "DELETE FROM push_nonces WHERE seen_at < ?",
            &[(now - window_ms).into()],
        )?;
        let seen = sql
            .query_row(
                "SELECT 1 FROM push_nonces WHERE vendor = ? AND nonce = ?",
                &[vendor.into(), nonce.into()],
            )?
            .is_some();
        if seen {
            return Ok(None);
        }
        sql.execute(
            "INSERT INTO push_nonces (vendor, nonce, seen_at) VALUES (?, ?, ?)",
            &[vendor.into(), nonce.into(), now.into()],
        )?;
        let mut matched = 0;
        for receipt in receipts {
            matched += apply_receipt(sql, receipt, now)?;
        }
        Ok(Some(matched))
    })
}
