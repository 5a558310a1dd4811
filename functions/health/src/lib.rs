//! The `health` component.
//!
//! # Layout
//! One handler, [`health`]: it proves the store interfaces work end to end, so a
//! load balancer or orchestrator probe sees a store outage, not just a live process.

#![allow(
    unsafe_code,
    reason = "#[http_component] expands to the export shims of the component ABI"
)]

use courier_core::Error;
use courier_spin::http::{check_method, json, serve};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;

const PROBE_KEY: &str = "courier:health:probe";

/// # `GET /healthz`
/// Liveness and store readiness.
/// - Does a real store round trip (opens the store `database_url` chooses — the
///   `default` SQLite database or PostgreSQL — migrated, and reads its schema
///   version) and a key-value read on the `default` store (the probe key is written
///   only when missing, so probes do not turn into a stream of writes).
/// - → 200 `{"ok": true}`.
/// - Store failure → 503 `unavailable` with `Retry-After` (the detail is logged only).
/// - Any method but `GET` → 405 `method_not_allowed` with `Allow: GET`; `OPTIONS` is a
///   CORS preflight (204), and answers carry the CORS headers, as on every route.
#[http_component]
fn health(req: Request) -> Response {
    serve(req, handle)
}

fn handle(req: &Request) -> Result<Response, Error> {
    if let Err(refused) = check_method(req, &[Method::Get]) {
        return Ok(refused);
    }
    check_stores().map_err(|reason| {
        eprintln!("health: store check failed: {reason}");
        Error::Unavailable {
            retry_after_secs: 1,
            reason: "store check failed".into(),
        }
    })?;
    Ok(json(200, &serde_json::json!({ "ok": true })))
}

fn check_stores() -> Result<(), String> {
    let db = courier_spin::env::store().map_err(|e| format!("store open: {e}"))?;
    courier_messaging::health::store_ready(&db)?;
    let store = Store::open_default().map_err(|e| format!("key-value open: {e}"))?;
    let value = b"ok".to_vec();
    // Read first and write only when the probe key is missing: a probe every few
    // seconds from every orchestrator must not become a steady stream of writes
    // (hosted key-value stores limit writes per second).
    match store
        .get(PROBE_KEY)
        .map_err(|e| format!("key-value get: {e}"))?
    {
        Some(read) if read == value => Ok(()),
        Some(other) => Err(format!("key-value get returned {other:?}")),
        None => {
            store
                .set(PROBE_KEY, &value)
                .map_err(|e| format!("key-value set: {e}"))?;
            match store
                .get(PROBE_KEY)
                .map_err(|e| format!("key-value get: {e}"))?
            {
                Some(read) if read == value => Ok(()),
                other => Err(format!("key-value get after set returned {other:?}")),
            }
        }
    }
}
