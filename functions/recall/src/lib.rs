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
use courier_spin::http::{reply, serve};
use courier_spin::route::{Route, resolve};
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

const ROUTES: &[Route<()>] = &[Route::new(Method::Post, "/v1/messages/{msg_id}/recall", ())];

fn handle(req: &Request) -> Result<Response, Error> {
    let ((), at) = match resolve(ROUTES, req.method(), req.path()) {
        Ok(found) => found,
        Err(refused) => return Ok(refused),
    };
    let Ctx {
        now,
        caller,
        config,
        db,
    } = context(req)?;
    let result = courier_messaging::recall::recall(&db, &config, &caller, at.get("msg_id"), now)?;
    Ok(reply(result))
}
