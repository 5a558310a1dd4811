//! The `receipt` component: read receipts.
//!
//! # Layout
//! One handler, [`receipt`], routing to `courier_messaging::receipts`.

#![allow(
    unsafe_code,
    reason = "#[http_component] expands to the export shims of the component ABI"
)]

use courier_core::Error;
use courier_messaging::receipts;
use courier_spin::env::{Ctx, context};
use courier_spin::http::{reply, serve};
use courier_spin::route::{Route, resolve};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

/// # `POST /v1/receipts`
/// `{"msg_ids": [...]}` (1–100): marks messages of the caller's stream from others read
/// → 200 `{"read": [newly marked]}`; the `read` entry is written before the answer,
/// the senders' `receipt` entries follow through the queue. Unknown id → 404.
///
/// # `GET /v1/messages/{msg_id}/receipts`
/// Sender only → 200 `{"msg_id", "read", "unread"}`; not the sender → 403.
#[http_component]
fn receipt(req: Request) -> Response {
    serve(req, handle)
}

/// What a receipt request asks for.
#[derive(Clone, Copy)]
enum Op {
    MarkRead,
    Readers,
}

const ROUTES: &[Route<Op>] = &[
    Route::new(Method::Post, "/v1/receipts", Op::MarkRead),
    Route::new(Method::Get, "/v1/messages/{msg_id}/receipts", Op::Readers),
];

fn handle(req: &Request) -> Result<Response, Error> {
    let (op, at) = match resolve(ROUTES, req.method(), req.path()) {
        Ok(found) => found,
        Err(refused) => return Ok(refused),
    };
    let Ctx {
        now,
        caller,
        config,
        db,
    } = context(req)?;
    let result = match op {
        Op::MarkRead => receipts::mark_read(&db, &config, &caller, req.body(), now),
        Op::Readers => receipts::readers(&db, &caller, at.get("msg_id")),
    }?;
    Ok(reply(result))
}
