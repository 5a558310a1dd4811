//! The `send` component: `POST /v1/messages`.
//!
//! # Layout
//! One handler, [`send`]: authenticate, then `courier_messaging::send`.

#![allow(
    unsafe_code,
    reason = "#[http_component] expands to the export shims of the component ABI"
)]

use courier_core::Error;
use courier_spin::env::{Ctx, context, random_u64};
use courier_spin::http::{check_method, reply, serve};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

/// # `POST /v1/messages`
/// Sends a message to a user (`{"to": {"user"}}`) or a group (`{"to": {"group"}}`).
/// - → 201 `{"msg_id", "conv", "seq", "sent_at", "status": "sent"}`: the message is
///   in every recipient's stream and the sender's own.
/// - The same `client_msg_id` and content again → 200 with the identical body,
///   nothing written, however often and concurrently; other content → 409.
/// - Malformed body → 400; body over 64 KiB or text over `max_text_bytes` → 413;
///   bad token → 401; no relation or not a member → 403; unknown user or group →
///   404; over `rate_per_user_per_sec`, over the org's `rate_per_org_per_sec`, or the
///   org holding more than `org_queue_share_percent` of the queue → 429 +
///   `Retry-After`; store busy → 503.
/// - Queues the `message.sent` deliveries of the sender's org's webhooks in the same
///   transaction (delivered later by the `webhooks` component, never here).
#[http_component]
fn send(req: Request) -> Response {
    serve(req, handle)
}

fn handle(req: &Request) -> Result<Response, Error> {
    if let Err(refused) = check_method(req, &[Method::Post]) {
        return Ok(refused);
    }
    let Ctx {
        now,
        caller,
        config,
        db,
    } = context(req)?;
    Ok(reply(courier_messaging::send::send(
        &db,
        &config,
        &caller,
        req.body(),
        now,
        random_u64()?,
    )?))
}
