//! The `openapi` component: `GET /openapi.json`.
//!
//! # Layout
//! One handler, [`openapi`], that serves `openapi.json` (next to this crate's
//! `Cargo.toml`, embedded at build time): the OpenAPI 3.1 description of every route.
//! The contract test (`tests/contract/run.sh`) checks the running app against it.

#![allow(
    unsafe_code,
    reason = "#[http_component] expands to the export shims of the component ABI"
)]

use courier_spin::http::{check_method, serve};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

/// The document, as written in the repository.
const DOCUMENT: &str = include_str!("../openapi.json");

/// # `GET /openapi.json`
/// The OpenAPI 3.1 description of the HTTP API → 200, `application/json`.
/// - No token needed.
/// - Any other method → 405 `method_not_allowed` with `Allow: GET`; `OPTIONS` is a
///   CORS preflight (204), and answers carry the CORS headers, as on every route.
#[http_component]
fn openapi(req: Request) -> Response {
    serve(req, |req| {
        if let Err(refused) = check_method(req, &[Method::Get]) {
            return Ok(refused);
        }
        Ok(Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(DOCUMENT)
            .build())
    })
}
