//! The `recall` component: `POST /v1/messages/{msg_id}/recall`.
//!
//! # Layout
//! One handler, [`recall`]: authenticate, then `courier_messaging::recall`.

#![allow(
    unsafe_code,
    reason = "#[http_component] expands to the export shims of the component ABI"
)]

use courier_core::Error;
use courier_spin::env::{Ctx, context};
use courier_spin::http::{check_method, decoded, no_route, reply, segments, serve};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

/// # `POST /v1/messages/{msg_id}/recall`
/// Sender only (403), within `recall_window_secs` (else 409 `recall_window_expired`)
/// → 200 `{"msg_id", "recalled": true}`; idempotent. The content is erased at once and
/// every stream holding the message gets a `recall` entry. Unknown message → 404.
#[http_component]
fn recall(req: Request) -> Response {
    serve(req, handle)
}

fn handle(req: &Request) -> Result<Response, Error> {
    let path = req.path();
    let segments = segments(path, "/v1/messages");
    let Some([msg_id, "recall"]) = segments.as_deref() else {
        return Err(no_route(path));
    };
    if let Err(refused) = check_method(req, &[Method::Post]) {
        return Ok(refused);
    }
    let Ctx {
        now,
        caller,
        config,
        db,
    } = context(req)?;
    let result = courier_messaging::recall::recall(&db, &config, &caller, &decoded(msg_id), now)?;
    Ok(reply(result))
}
