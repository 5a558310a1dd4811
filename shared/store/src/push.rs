//! Push: device registrations, the coalesced per-user push job, delivery records.
//!
//! When a `message` entry lands in the stream of a user who has a push registration
//! and no device seen within the presence TTL, the writing transaction queues that
//! user's one push job (`push:<uid>`), set-based like the fan-out itself. A burst
//! coalesces into the pending job (its generation is bumped); a message arriving
//! while a push is in flight runs the job once more after [`Policy::interval_ms`].
//! The delivery (the `push-notify` component) re-reads the user's state first: a
//! user who came online or acked everything meanwhile gets nothing.

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::jobs::{self, Claimed, Lane};
use crate::sql::{Sql, SqlValue};
use crate::streams::UserSet;

/// Job kind of a user's pending push.
pub const KIND: &str = "push";

/// When pushes are queued and how they coalesce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// A device seen within this is online: its user gets no push.
    pub presence_ttl_ms: i64,
    /// A new push waits this long for more messages to coalesce with.
    pub delay_ms: i64,
    /// Messages arriving while a push was being delivered are pushed again this
    /// long after it, at the earliest.
    pub interval_ms: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            presence_ttl_ms: 60_000,
            delay_ms: 1_000,
            interval_ms: 10_000,
        }
    }
}

/// The message that triggered a push (the newest one, when several coalesced).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub msg_id: String,
    pub conv: String,
    pub sender: String,
}

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
fn forget_token<S: Sql + ?Sized>(sql: &S, vendor: &str, token: &str) -> Result<i64, StoreError> {
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

/// Inside a writing transaction that just appended `trigger`'s message entry to
/// every user of `candidates` (the sender already left out): queues the coalesced
/// push job of each candidate who has a registration and no device online.
pub fn queue_offline<S: Sql + ?Sized>(
    sql: &S,
    candidates: &UserSet<'_>,
    trigger: &Trigger,
    policy: &Policy,
    now: i64,
) -> Result<(), StoreError> {
    if candidates.is_empty() {
        return Ok(());
    }
    let (set_sql, set_params) = candidates.sql();
    let payload = serde_json::to_string(trigger).map_err(|e| StoreError::Invalid(e.to_string()))?;
    // The push is owed to the sender's org (its share of the queue).
    let mut params: Vec<SqlValue> = vec![
        (Lane::Push as i64).into(),
        KIND.into(),
        payload.into(),
        (now + policy.delay_ms).into(),
        now.into(),
        trigger.sender.as_str().into(),
    ];
    params.extend(set_params);
    params.push((now - policy.presence_ttl_ms).into());
    sql.execute(
        &format!(
            "INSERT INTO jobs (id, lane, kind, key, payload, run_at, created_at, org)
             SELECT 'push:' || p.uid, ?, ?, p.uid, ?, ?, ?, (SELECT org FROM users WHERE uid = ?)
             FROM (SELECT DISTINCT uid FROM push_devices WHERE uid IN ({set_sql})) p
             WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.uid = p.uid AND d.last_seen > ?)
             ON CONFLICT (id) DO UPDATE SET
               generation = jobs.generation + 1,
               payload = excluded.payload,
               state = 'ready'"
        ),
        &params,
    )?;
    Ok(())
}

/// What a push job finds when it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub trigger: Trigger,
    /// Messages from others the user has not marked read, over all conversations.
    pub unread: i64,
    /// A device was seen within the presence TTL.
    pub online: bool,
    /// Every entry is acked by some device.
    pub acked: bool,
    pub registrations: Vec<Registration>,
}

impl Pending {
    /// Whether a notification is owed at all.
    pub fn is_due(&self) -> bool {
        !self.online && !self.acked && self.unread > 0 && !self.registrations.is_empty()
    }
}

/// Reads a claimed push job's user state (outside any transaction).
pub fn pending<S: Sql + ?Sized>(
    sql: &S,
    job: &Claimed,
    policy: &Policy,
    now: i64,
) -> Result<Pending, StoreError> {
    let trigger: Trigger = serde_json::from_str(&job.payload)
        .map_err(|e| StoreError::Invalid(format!("push payload: {e}")))?;
    let uid = job.key.as_deref().unwrap_or_default();
    let row = sql
        .query_row(
            "SELECT u.head_seq,
               (SELECT COALESCE(MAX(acked_seq), 0) FROM devices WHERE uid = u.uid),
               (SELECT count(*) FROM devices WHERE uid = u.uid AND last_seen > ?),
               (SELECT CAST(COALESCE(SUM(unread), 0) AS BIGINT) FROM conversations WHERE uid = u.uid)
             FROM users u WHERE u.uid = ?",
            &[(now - policy.presence_ttl_ms).into(), uid.into()],
        )?
        .unwrap_or_default();
    let int = |i: usize| row.get(i).and_then(SqlValue::as_i64).unwrap_or(0);
    Ok(Pending {
        trigger,
        unread: int(3),
        online: int(2) > 0,
        acked: int(1) >= int(0),
        registrations: registrations(sql, uid)?,
    })
}

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

/// The id of one run of a push job, so a coalesced re-run is a new delivery and a
/// retry of the same generation is not: the job id, when this instance of the job was
/// first claimed, and its generation. The claim time matters because a finished job
/// is deleted and the user's next push is a new row that starts again at generation
/// 0: by id and generation alone it would find the earlier push's devices "served"
/// and notify none of them. `first_at` is kept across retries and lease expiries and
/// reset when a newer generation re-runs the job.
pub fn attempt_id(job: &Claimed) -> String {
    format!("{}@{}.{}", job.id, job.first_at, job.generation)
}

/// Ends a push job: deletes it, or — when messages arrived during the delivery
/// (a newer generation) — keeps it for one more push after the interval. Returns
/// `false` if the lease was lost.
pub fn finish<S: Sql + ?Sized>(
    sql: &S,
    job: &Claimed,
    policy: &Policy,
    now: i64,
) -> Result<bool, StoreError> {
    crate::sql::write_tx(sql, |sql| finish_in(sql, job, policy, now))
}

fn finish_in<S: Sql + ?Sized>(
    sql: &S,
    job: &Claimed,
    policy: &Policy,
    now: i64,
) -> Result<bool, StoreError> {
    if !jobs::check_lease(sql, job)? {
        return Ok(false);
    }
    jobs::complete(sql, job, now)?;
    sql.execute(
        "UPDATE jobs SET run_at = ? WHERE id = ? AND lease IS NULL AND state = 'ready'",
        &[(now + policy.interval_ms).into(), job.id.as_str().into()],
    )?;
    Ok(true)
}

/// How a push job run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Every device was served (or nothing was owed): [`finish`].
    Finish,
    /// Some device must be tried again at `at`, unless the job has been failing for
    /// `hold_ms` already (then it is dead-lettered).
    Retry { at: i64, hold_ms: i64 },
}

/// One job run's results: its deliveries and how it ends.
#[derive(Debug, Clone)]
pub struct Settlement<'a> {
    pub job: &'a Claimed,
    pub deliveries: Vec<Delivery<'a>>,
    pub end: End,
}

/// What [`settle`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    /// Registrations deleted because their token is gone.
    pub tokens_removed: i64,
    /// Jobs dead-lettered.
    pub dead: Vec<String>,
    /// Jobs whose lease was lost meanwhile (nothing of theirs was recorded).
    pub lease_lost: i64,
}

/// Records a whole round of push deliveries in one write transaction: each job's
/// device results (dropping registrations whose token is gone) and its end. A job
/// whose lease was lost records nothing.
pub fn settle<S: Sql + ?Sized>(
    sql: &S,
    settlements: &[Settlement<'_>],
    policy: &Policy,
    now: i64,
) -> Result<Settled, StoreError> {
    crate::sql::write_tx(sql, |sql| {
        let mut settled = Settled::default();
        for s in settlements {
            if !jobs::check_lease(sql, s.job)? {
                settled.lease_lost += 1;
                continue;
            }
            let attempt = attempt_id(s.job);
            for d in &s.deliveries {
                if d.state == "token_gone" {
                    settled.tokens_removed += forget_token(sql, d.vendor, d.token)?;
                }
                record(sql, &attempt, d, now)?;
            }
            match s.end {
                End::Finish => {
                    finish_in(sql, s.job, policy, now)?;
                }
                End::Retry { at, hold_ms } => {
                    if jobs::fail(sql, s.job, "push delivery failed", at, hold_ms, now)? {
                        settled.dead.push(s.job.id.clone());
                    }
                }
            }
        }
        Ok(settled)
    })
}

/// Claims due push jobs (the `push-notify` component's drain).
pub fn claim<S: Sql + ?Sized>(
    sql: &S,
    limit: usize,
    lease: &str,
    lease_ms: i64,
    now: i64,
) -> Result<Vec<Claimed>, StoreError> {
    jobs::claim(sql, Lane::Push, limit, 1, lease, lease_ms, now)
}

/// Push jobs due now (the worker asks before calling `push-notify`).
pub fn due_count<S: Sql + ?Sized>(sql: &S, now: i64) -> Result<i64, StoreError> {
    jobs::due_in_lane(sql, Lane::Push, now)
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

/// The sender's display name and the content JSON of a message still there (not
/// recalled), for notification previews.
pub fn preview<S: Sql + ?Sized>(
    sql: &S,
    msg_id: &str,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(sql
        .query_row(
            "SELECT u.name, m.content FROM messages m JOIN users u ON u.uid = m.sender
             WHERE m.msg_id = ? AND m.recalled = 0",
            &[msg_id.into()],
        )?
        .and_then(|row| {
            let mut cols = row.into_iter().map(SqlValue::into_string);
            Some((cols.next()??, cols.next()??))
        }))
}
