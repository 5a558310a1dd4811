//! Webhooks: the admin routes that manage an org's subscriptions, and the delivery
//! of their events ([`deliver`]).
//!
//! - `PUT /v1/webhooks/{id}` → [`put`]; `GET /v1/webhooks/{id}` → [`get`];
//!   `GET /v1/webhooks?org=` → [`list`]; `DELETE /v1/webhooks/{id}` → [`delete`].
//! - `POST /internal/webhooks/drain` → [`deliver::deliver`].
//!
//! Events are queued by the store in the transaction of their data (see
//! `courier_store::webhooks`), never delivered inside a request.

pub mod deliver;

use courier_core::api::{
    OriginPattern, PutWebhook, WebhookEvent, WebhookResponse, WebhooksQuery, WebhooksResponse,
    check_url, parse_request,
};
use courier_core::auth::Identity;
use courier_core::{Config, Error, OrgId, WebhookId};
use courier_store::Sql;
use courier_store::webhooks::{self as store, NewWebhook, Webhook};

use crate::errors::from_store;
use crate::{Reply, body};

/// Webhooks listed at most.
pub const MAX_LISTED: i64 = 1000;

fn response(hook: Webhook) -> Result<WebhookResponse, Error> {
    let corrupt = || Error::Internal(format!("stored webhook {}: bad data", hook.id));
    let events = hook
        .events
        .iter()
        .map(|e| serde_json::from_value(serde_json::Value::from(e.as_str())))
        .collect::<Result<Vec<WebhookEvent>, _>>()
        .map_err(|_| corrupt())?;
    Ok(WebhookResponse {
        id: WebhookId::parse(&hook.id).map_err(|_| corrupt())?,
        org: OrgId::parse(&hook.org).map_err(|_| corrupt())?,
        url: hook.url,
        events,
        created_at: hook.created_at,
        updated_at: hook.updated_at,
    })
}

/// `PUT /v1/webhooks/{id}`: creates or replaces a webhook → 200 with it (without
/// its secret). Its URL must be allowed by `origins` (`webhook_allowed_origins`).
pub fn put<S: Sql + ?Sized>(
    sql: &S,
    config: &Config,
    origins: &[OriginPattern],
    caller: &Identity,
    id: &str,
    raw: &[u8],
    now: i64,
) -> Result<Reply, Error> {
    caller.require_admin()?;
    let id = WebhookId::parse(id)?;
    let req: PutWebhook = parse_request(raw, config)?;
    check_url(&req.url, origins)?;
    let events: Vec<String> = req.events.iter().map(|e| e.as_str().to_string()).collect();
    let stored = store::put(
        sql,
        &NewWebhook {
            id: id.as_str(),
            org: req.org.as_str(),
            url: &req.url,
            events: &events,
            secret: &req.secret,
        },
        now,
    )
    .map_err(from_store)?;
    Ok(Reply::ok(body(&response(stored)?)))
}

/// `GET /v1/webhooks/{id}` → 200 the webhook, 404 if there is none.
pub fn get<S: Sql + ?Sized>(sql: &S, caller: &Identity, id: &str) -> Result<Reply, Error> {
    caller.require_admin()?;
    let id = WebhookId::parse(id)?;
    let hook = store::get(sql, id.as_str())
        .map_err(from_store)?
        .ok_or_else(|| Error::NotFound(format!("webhook {id}")))?;
    Ok(Reply::ok(body(&response(hook)?)))
}

/// `GET /v1/webhooks?org=<org>` → 200 `{"webhooks": [...]}` in id order (of one org
/// if given), at most [`MAX_LISTED`].
pub fn list<S: Sql + ?Sized>(sql: &S, caller: &Identity, query: &str) -> Result<Reply, Error> {
    caller.require_admin()?;
    let query = WebhooksQuery::parse(query)?;
    let hooks =
        store::list(sql, query.org.as_ref().map(OrgId::as_str), MAX_LISTED).map_err(from_store)?;
    let webhooks = hooks
        .into_iter()
        .map(response)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Reply::ok(body(&WebhooksResponse { webhooks })))
}

/// `DELETE /v1/webhooks/{id}` → 204, whether or not it existed; its pending
/// deliveries are dropped with it.
pub fn delete<S: Sql + ?Sized>(sql: &S, caller: &Identity, id: &str) -> Result<Reply, Error> {
    caller.require_admin()?;
    let id = WebhookId::parse(id)?;
    store::delete(sql, id.as_str()).map_err(from_store)?;
    Ok(Reply::no_content())
}
