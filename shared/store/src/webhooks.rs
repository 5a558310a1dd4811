//! Webhooks: an org's subscriptions to events (audit and CRM copies), and one
//! delivery job per (event, subscribed webhook), queued in the transaction that
//! writes the event's data — the send, the recall, the read marks — so an event is
//! delivered if and only if its data was committed.
//!
//! Delivery jobs live in their own lane ([`Lane::Webhook`]), claimed only by the
//! `webhooks` component (outbound HTTP); the job's payload is the exact JSON body
//! the subscriber receives, its key the webhook (a per-endpoint concurrency cap).

use courier_core::api::WebhookEvent;
use serde::Serialize;

use crate::error::StoreError;
use crate::jobs::{self, Claimed, Lane};
use crate::sql::{Sql, SqlValue, write_tx};

/// Job kind of a webhook delivery.
pub const KIND: &str = "webhook";

/// A webhook as the admin routes show it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub org: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A webhook to store: everything validated by the caller.
#[derive(Debug, Clone)]
pub struct NewWebhook<'a> {
    pub id: &'a str,
    pub org: &'a str,
    pub url: &'a str,
    pub events: &'a [String],
    pub secret: &'a str,
}

const COLUMNS: &str = "id, org, url, events, created_at, updated_at";

fn webhook_from(row: Vec<SqlValue>) -> Webhook {
    let mut cols = row.into_iter();
    let mut next = || cols.next().unwrap_or(SqlValue::Null);
    Webhook {
        id: next().into_string().unwrap_or_default(),
        org: next().into_string().unwrap_or_default(),
        url: next().into_string().unwrap_or_default(),
        events: next()
            .into_string()
            .and_then(|e| serde_json::from_str(&e).ok())
            .unwrap_or_default(),
        created_at: next().as_i64().unwrap_or_default(),
        updated_at: next().as_i64().unwrap_or_default(),
    }
}

/// Creates or replaces a webhook, in one transaction (its subscriptions with it).
/// Returns it as stored (`created_at` kept from the first write).
pub fn put<S: Sql + ?Sized>(
    sql: &S,
    hook: &NewWebhook<'_>,
    now: i64,
) -> Result<Webhook, StoreError> {
    let events =
        serde_json::to_string(hook.events).map_err(|e| StoreError::Invalid(e.to_string()))?;
    write_tx(sql, |sql| {
        sql.execute(
            "INSERT INTO webhooks (id, org, url, secret, events, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET org = excluded.org, url = excluded.url,
               secret = excluded.secret, events = excluded.events, updated_at = excluded.updated_at",
            &[
                hook.id.into(),
                hook.org.into(),
                hook.url.into(),
                hook.secret.into(),
                events.as_str().into(),
                now.into(),
                now.into(),
            ],
        )?;
        sql.execute(
            "DELETE FROM webhook_events WHERE webhook = ?",
            &[hook.id.into()],
        )?;
        for event in hook.events {
            sql.execute(
                "INSERT INTO webhook_events (org, event, webhook) VALUES (?, ?, ?)",
                &[hook.org.into(), event.as_str().into(), hook.id.into()],
            )?;
        }
        get(sql, hook.id)?.ok_or_else(|| StoreError::NotFound(format!("webhook {}", hook.id)))
    })
}

/// One webhook, `None` if there is no such webhook.
pub fn get<S: Sql + ?Sized>(sql: &S, id: &str) -> Result<Option<Webhook>, StoreError> {
    Ok(sql
        .query_row(
            &format!("SELECT {COLUMNS} FROM webhooks WHERE id = ?"),
            &[id.into()],
        )?
        .map(webhook_from))
}

/// Webhooks in id order (of one org, if given), at most `limit`.
pub fn list<S: Sql + ?Sized>(
    sql: &S,
    org: Option<&str>,
    limit: i64,
) -> Result<Vec<Webhook>, StoreError> {
    let rows = match org {
        Some(org) => sql.query(
            &format!("SELECT {COLUMNS} FROM webhooks WHERE org = ? ORDER BY id LIMIT ?"),
            &[org.into(), limit.into()],
        )?,
        None => sql.query(
            &format!("SELECT {COLUMNS} FROM webhooks ORDER BY id LIMIT ?"),
            &[limit.into()],
        )?,
    };
    Ok(rows.into_iter().map(webhook_from).collect())
}

/// Deletes a webhook, its subscriptions and its pending deliveries (dead-lettered
/// ones stay for inspection until purged). Returns whether it existed.
pub fn delete<S: Sql + ?Sized>(sql: &S, id: &str) -> Result<bool, StoreError> {
    write_tx(sql, |sql| {
        let found = get(sql, id)?.is_some();
        sql.execute("DELETE FROM webhook_events WHERE webhook = ?", &[id.into()])?;
        sql.execute(
            "DELETE FROM jobs WHERE key = ? AND lane = ? AND state = 'ready'",
            &[id.into(), (Lane::Webhook as i64).into()],
        )?;
        sql.execute("DELETE FROM webhooks WHERE id = ?", &[id.into()])?;
        Ok(found)
    })
}

/// An event, as its subscribers receive it (the delivery body).
#[derive(Debug, Clone, Serialize)]
pub struct Event<'a> {
    /// Unique per event, the same for every webhook and every retry: receivers
    /// deduplicate on it.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// The org of the user who acted (sender, recaller, reader).
    pub org: &'a str,
    /// Unix ms.
    pub created_at: i64,
    pub data: serde_json::Value,
}

/// Whether any webhook of `org` subscribes to `kind` (one primary-key probe).
pub fn wanted<S: Sql + ?Sized>(sql: &S, org: &str, kind: &str) -> Result<bool, StoreError> {
    Ok(sql
        .query_row(
            "SELECT 1 FROM webhook_events WHERE org = ? AND event = ? LIMIT 1",
            &[org.into(), kind.into()],
        )?
        .is_some())
}

/// Inside the event's writing transaction: queues one delivery per subscribed
/// webhook of the event's org. `data` (one of [`courier_core::events`]) is built only
/// when someone subscribes. An event queued before (the same id) is not queued twice.
pub fn emit<S: Sql + ?Sized, D: Serialize>(
    sql: &S,
    org: &str,
    event: WebhookEvent,
    event_id: &str,
    now: i64,
    data: impl FnOnce() -> D,
) -> Result<(), StoreError> {
    let kind = event.as_str();
    if !wanted(sql, org, kind)? {
        return Ok(());
    }
    let event = Event {
        id: event_id.to_string(),
        kind,
        org,
        created_at: now,
        data: serde_json::to_value(data()).map_err(|e| StoreError::Invalid(e.to_string()))?,
    };
    let body = serde_json::to_string(&event).map_err(|e| StoreError::Invalid(e.to_string()))?;
    sql.execute(
        "INSERT INTO jobs (id, lane, kind, key, payload, run_at, created_at, org)
         SELECT 'webhook:' || w.webhook || ':' || ?, ?, ?, w.webhook, ?, ?, ?, ?
         FROM webhook_events w WHERE w.org = ? AND w.event = ?
         ON CONFLICT (id) DO NOTHING",
        &[
            event_id.into(),
            (Lane::Webhook as i64).into(),
            KIND.into(),
            body.into(),
            now.into(),
            now.into(),
            org.into(),
            org.into(),
            kind.into(),
        ],
    )?;
    Ok(())
}

/// Where and how a delivery goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    pub secret: String,
}

/// The endpoint of a delivery job's webhook, `None` if it was deleted.
pub fn target<S: Sql + ?Sized>(sql: &S, job: &Claimed) -> Result<Option<Target>, StoreError> {
    let id = job.key.as_deref().unwrap_or_default();
    Ok(sql
        .query_row(
            "SELECT url, secret FROM webhooks WHERE id = ?",
            &[id.into()],
        )?
        .and_then(|row| {
            let mut cols = row.into_iter().map(SqlValue::into_string);
            Some(Target {
                url: cols.next()??,
                secret: cols.next()??,
            })
        }))
}

/// Claims due deliveries (the `webhooks` component's drain), at most `per_webhook`
/// at once for one webhook.
pub fn claim<S: Sql + ?Sized>(
    sql: &S,
    limit: usize,
    per_webhook: i64,
    lease: &str,
    lease_ms: i64,
    now: i64,
) -> Result<Vec<Claimed>, StoreError> {
    jobs::claim(sql, Lane::Webhook, limit, per_webhook, lease, lease_ms, now)
}

/// Ends a delivery that succeeded (or whose webhook is gone). Returns `false` if the
/// lease was lost.
pub fn finish<S: Sql + ?Sized>(sql: &S, job: &Claimed, now: i64) -> Result<bool, StoreError> {
    write_tx(sql, |sql| {
        if !jobs::check_lease(sql, job)? {
            return Ok(false);
        }
        jobs::complete(sql, job, now)?;
        Ok(true)
    })
}

/// Deliveries due now (the worker asks before calling the `webhooks` component).
pub fn due_count<S: Sql + ?Sized>(sql: &S, now: i64) -> Result<i64, StoreError> {
    jobs::due_in_lane(sql, Lane::Webhook, now)
}
