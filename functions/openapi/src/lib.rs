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

use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

/// The document, as written in the repository.
const DOCUMENT: &str = include_str!("../openapi.json");

/// The 405 answer, in the API error shape.
const METHOD_NOT_ALLOWED: &str =
    r#"{"error":{"code":"method_not_allowed","message":"use GET /openapi.json"}}"#;

/// # `GET /openapi.json`
/// The OpenAPI 3.1 description of the HTTP API → 200, `application/json`.
/// - No token needed.
/// - Any other method → 405 `method_not_allowed` with `Allow: GET`.
#[http_component]
fn openapi(req: Request) -> Response {
    if *req.method() == Method::Get {
        return json(200, DOCUMENT);
    }
    let mut response = json(405, METHOD_NOT_ALLOWED);
    response.set_header("allow", "GET");
    response
}

fn json(status: u16, body: &'static str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body)
        .build()
}
