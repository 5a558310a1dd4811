//! The `webhooks` component: webhook subscriptions (admin token) and the signed
//! delivery of message events to them.
//!
//! # Layout
//! One handler, [`webhooks`], routing to `courier_messaging::webhooks`; deliveries go
//! out through `courier_spin::outbound::Outbound`, each request bounded by
//! `webhook_timeout_ms`.

#![allow(
    unsafe_code,
    reason = "#[http_component] expands to the export shims of the component ABI"
)]

use courier_core::Error;
use courier_core::api::OriginPattern;
use courier_messaging::webhooks::deliver::{DeliverConfig, deliver};
use courier_messaging::webhooks::{self as service};
use courier_spin::env::{
    Ctx, check_internal_secret, context, now_ms, random_u64, setting, store, variable,
};
use courier_spin::http::{json, method_not_allowed, reply, serve};
use courier_spin::outbound::Outbound;
use courier_spin::route::{Route, resolve};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

/// Default of `webhook_timeout_ms`: how long one delivery may take, connect to body.
const DEFAULT_TIMEOUT_MS: u64 = 5_000;

/// # `PUT /v1/webhooks/{id}`
/// Creates or replaces a webhook: `{"org", "url", "events", "secret"}` → 200 the
/// webhook without its secret. `events` ⊂ {`message.sent`, `message.recalled`,
/// `message.read`}, at least one; `secret` 16–256 bytes; `url` absolute, matching
/// `webhook_allowed_origins`, not `*.spin.internal` → else 400, nothing stored.
/// # `GET /v1/webhooks/{id}` → 200 the webhook, 404 if none.
/// # `GET /v1/webhooks?org=<org>` → 200 `{"webhooks": [...]}` (one org's, or all).
/// # `DELETE /v1/webhooks/{id}` → 204; its pending deliveries are dropped.
///
/// All four: admin token (401 without a valid one, 403 for a user's); wrong method
/// → 405.
///
/// # `POST /internal/webhooks/drain`
/// Delivers due events (`X-Internal-Secret`, else 401) → 200 `{"done",
/// "delivered", "retried", "dead_lettered", "remaining"}`. Called by the `worker`
/// when deliveries are due. A subscriber gets at most `webhook_timeout_ms` (default
/// 5,000) per request; slower is a failure, retried with backoff.
#[http_component]
fn webhooks(req: Request) -> Response {
    serve(req, handle)
}

fn origins() -> Result<Vec<OriginPattern>, Error> {
    OriginPattern::parse_list(&variable("webhook_allowed_origins").unwrap_or_default())
}

fn handle(req: &Request) -> Result<Response, Error> {
    let path = req.path();
    if path == "/internal/webhooks/drain" {
        check_internal_secret(req)?;
        if *req.method() != Method::Post {
            return Ok(method_not_allowed(&[Method::Post]));
        }
        return drain();
    }
    let (op, at) = match resolve(ROUTES, req.method(), path) {
        Ok(found) => found,
        Err(refused) => return Ok(refused),
    };
    let Ctx {
        now,
        caller,
        config,
        db,
    } = context(req)?;
    let id = at.get("id");
    let result = match op {
        Op::List => service::list(&db, &caller, req.query()),
        Op::Get => service::get(&db, &caller, id),
        Op::Put => service::put(&db, &config, &origins()?, &caller, id, req.body(), now),
        Op::Delete => service::delete(&db, &caller, id),
    }?;
    Ok(reply(result))
}

/// What a webhook request asks for. (The internal drain is answered before the
/// table: its secret is checked before its method.)
#[derive(Clone, Copy)]
enum Op {
    List,
    Get,
    Put,
    Delete,
}

const ROUTES: &[Route<Op>] = &[
    Route::new(Method::Get, "/v1/webhooks", Op::List),
    Route::new(Method::Get, "/v1/webhooks/{id}", Op::Get),
    Route::new(Method::Put, "/v1/webhooks/{id}", Op::Put),
    Route::new(Method::Delete, "/v1/webhooks/{id}", Op::Delete),
];

fn drain() -> Result<Response, Error> {
    let timeout_ms: u64 = setting("webhook_timeout_ms", DEFAULT_TIMEOUT_MS, 1)?;
    let settings = DeliverConfig {
        // A lease outlives a round's slowest request by far.
        lease_ms: (timeout_ms as i64).saturating_mul(2).max(30_000),
        ..DeliverConfig::default()
    };
    let db = store()?;
    let mut random = || random_u64().unwrap_or_default();
    let report = deliver(
        &db,
        &origins()?,
        &mut Outbound {
            timeout_ms: Some(timeout_ms),
        },
        &settings,
        &now_ms,
        &mut random,
    )?;
    Ok(json(
        200,
        &serde_json::to_value(&report).unwrap_or_default(),
    ))
}
