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
use courier_spin::http::{check_method, decoded, no_route, reply, segments, serve};
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

fn handle(req: &Request) -> Result<Response, Error> {
    let path = req.path();
    if path == "/v1/receipts" {
        if let Err(refused) = check_method(req, &[Method::Post]) {
            return Ok(refused);
        }
        let Ctx {
            now,
            caller,
            config,
            db,
        } = context(req)?;
        return Ok(reply(receipts::mark_read(
            &db,
            &config,
            &caller,
            req.body(),
            now,
        )?));
    }
    match segments(path, "/v1/messages").as_deref() {
        Some([msg_id, "receipts"]) => {
            if let Err(refused) = check_method(req, &[Method::Get]) {
                return Ok(refused);
            }
            let Ctx { caller, db, .. } = context(req)?;
            Ok(reply(receipts::readers(&db, &caller, &decoded(msg_id))?))
        }
        _ => Err(no_route(path)),
    }
}
