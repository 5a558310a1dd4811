//! The `health` component.
//!
//! # Layout
//! One handler, [`health`]: it proves the store interfaces work end to end, so a
//! load balancer or orchestrator probe sees a store outage, not just a live process.

#![allow(
    unsafe_code,
    reason = "#[http_component] expands to the export shims of the component ABI"
)]

use courier_store::Sql;
use spin_sdk::http::{IntoResponse, Method, Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;

const PROBE_KEY: &str = "courier:health:probe";

/// # `GET /healthz`
/// Liveness and store readiness.
/// - Does a real store round trip (opens the store `database_url` chooses — the
///   `default` SQLite database or PostgreSQL — migrated, and reads its schema
///   version) and a key-value set/get on the `default` store.
/// - → 200 `{"ok": true}`.
/// - Store failure → 503 `unavailable` with `Retry-After`, in the API error shape.
/// - Any method but `GET` → 405 `method_not_allowed`.
#[http_component]
fn health(req: Request) -> anyhow::Result<impl IntoResponse> {
    if *req.method() != Method::Get {
        return Ok(error(405, "method_not_allowed", "use GET /healthz"));
    }
    match check_stores() {
        Ok(()) => Ok(json(200, r#"{"ok":true}"#.to_string())),
        Err(reason) => {
            eprintln!("health: store check failed: {reason}");
            let mut response = error(503, "unavailable", &format!("store check failed: {reason}"));
            response.set_header("retry-after", "1");
            Ok(response)
        }
    }
}

fn check_stores() -> Result<(), String> {
    let db = courier_spin::env::store().map_err(|e| format!("store open: {e}"))?;
    let version = db
        .query_i64("SELECT MAX(version) FROM courier_migrations", &[])
        .map_err(|e| format!("{} query: {e}", db.dialect()))?;
    if version != Some(courier_store::schema::latest()) {
        return Err(format!("{} schema version is {version:?}", db.dialect()));
    }
    let store = Store::open_default().map_err(|e| format!("key-value open: {e}"))?;
    let value = b"ok".to_vec();
    store
        .set(PROBE_KEY, &value)
        .map_err(|e| format!("key-value set: {e}"))?;
    match store
        .get(PROBE_KEY)
        .map_err(|e| format!("key-value get: {e}"))?
    {
        Some(read) if read == value => Ok(()),
        other => Err(format!("key-value get returned {other:?}")),
    }
}

fn json(status: u16, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body)
        .build()
}

fn error(status: u16, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    json(status, body.to_string())
}
