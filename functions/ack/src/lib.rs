//! The `ack` component: `POST /v1/ack`.
//!
//! # Layout
//! One handler, [`ack`]: authenticate, then `courier_messaging::ack`.

#![allow(
    unsafe_code,
    reason = "#[http_component] expands to the export shims of the component ABI"
)]

use courier_core::Error;
use courier_spin::env::{Ctx, context};
use courier_spin::http::{check_method, reply, serve};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

/// # `POST /v1/ack`
/// `{"seq": n}`: the calling device (token `dev`) has everything up to `n`.
/// - → 200 `{"acked": n}`; a lower `n` than before is a no-op.
/// - `n` above the stream head or malformed body → 400; bad token → 401.
#[http_component]
fn ack(req: Request) -> Response {
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
    Ok(reply(courier_messaging::ack::ack(
        &db,
        &config,
        &caller,
        req.body(),
        now,
    )?))
}
