//! The `web` component: courier's browser chat client, served as static files.
//!
//! # Layout
//! - [`web`]: the handler — `GET`/`HEAD` of `/` (the page) and `/web/<asset>` (its
//!   ES modules, style sheet, icon and service worker).
//! - [`assets`]: the files, embedded at build time from `static/`, with their content
//!   types and ETags, and the conditional-request check. Pure, unit-tested.
//!
//! The client has no build step: what is in `static/` is what the browser runs. It
//! talks to the API of the same origin; tokens are pasted, or minted in the browser
//! from a development `jwt_secret` (the server never mints).

#![allow(
    unsafe_code,
    reason = "#[http_component] expands to the export shims of the component ABI"
)]

mod assets;

use courier_core::Error;
use courier_spin::http::{error, method_not_allowed, no_route};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

use crate::assets::{Asset, not_modified};

/// # `GET /` and `GET /web/<asset>`
/// The chat client: `/` is the page, `/web/...` its files.
/// - → 200 with the file's content type, `Cache-Control: no-cache` and a strong
///   `ETag`; `If-None-Match` with that tag → 304 without a body. `HEAD` → the same
///   headers without a body.
/// - The page carries a Content-Security-Policy (same-origin scripts, styles, requests
///   and workers only); the service worker may control `/` (`Service-Worker-Allowed`).
/// - An unknown file → 404 `not_found` in the API error shape.
/// - Any method but `GET` and `HEAD` → 405 `method_not_allowed` with `Allow`.
///
/// # Any other path
/// The manifest's catch-all route (`/...`) lands here too, so that a path no route
/// serves gets the API's 404 (`not_found`, JSON) on every host, whatever the method,
/// rather than the host's own empty 404.
#[http_component]
fn web(req: Request) -> Response {
    let path = req.path();
    if !is_own_path(path) {
        return error(&no_route(path));
    }
    const ALLOWED: &[Method] = &[Method::Get, Method::Head];
    if !ALLOWED.contains(req.method()) {
        return method_not_allowed(ALLOWED);
    }
    let Some(asset) = assets::find(path) else {
        return error(&Error::NotFound(format!("no file {path}")));
    };
    let if_none_match = req.header("if-none-match").and_then(|v| v.as_str());
    if not_modified(asset, if_none_match) {
        return answer(asset, 304, Vec::new());
    }
    let body = if *req.method() == Method::Head {
        Vec::new()
    } else {
        asset.body.to_vec()
    };
    answer(asset, 200, body)
}

/// The paths of the client itself: the page and everything under `/web`.
fn is_own_path(path: &str) -> bool {
    path == "/" || path == "/web" || path.starts_with("/web/")
}

/// A 200 or 304 for `asset`. A 304 repeats the validator and the caching headers
/// (RFC 9110 §15.4.5); the rest describe a body.
fn answer(asset: &Asset, status: u16, body: Vec<u8>) -> Response {
    let mut response = Response::builder();
    response
        .status(status)
        .header("etag", asset.etag())
        .header("cache-control", "no-cache");
    if status == 200 {
        response
            .header("content-type", asset.content_type)
            .header("x-content-type-options", "nosniff")
            .header("referrer-policy", "no-referrer");
        if asset.is_page() {
            response.header("content-security-policy", assets::CONTENT_SECURITY_POLICY);
        }
        if asset.is_service_worker() {
            response.header("service-worker-allowed", "/");
        }
    }
    response.body(body).build()
}
