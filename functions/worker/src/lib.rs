//! The `worker` component: drains the durable queue.
//!
//! # Layout
//! One handler, [`drain`]: checks the internal secret, then
//! `courier_messaging::worker::drain` with the platform's clock and randomness.

#![allow(
    unsafe_code,
    reason = "#[http_component] expands to the export shims of the component ABI"
)]

use courier_core::Error;
use courier_messaging::worker::{DrainConfig, drain as run_drain};
use courier_spin::env::{now_ms, random_u64, store, variable};
use courier_spin::http::{json, serve};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

/// # `POST /internal/drain`
/// Runs due queue jobs for a bounded time (`drain_budget_ms`, default 5,000) →
/// 200 `{"done", "remaining", "dead", "dead_lettered", "retried"}`.
/// - Needs `X-Internal-Secret: <internal_secret>`; anything else → 401.
/// - Called by the local gateway's timer, and on Spin/SpinKube by a scheduler
///   (a Kubernetes CronJob or `spin aka cron`) while `remaining` > 0.
#[http_component]
fn drain(req: Request) -> Response {
    serve(req, handle)
}

/// Compares in time independent of where the first difference is.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn handle(req: &Request) -> Result<Response, Error> {
    let expected = variable("internal_secret").unwrap_or_default();
    let given = req
        .header("x-internal-secret")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if expected.is_empty() || !same_secret(given, expected.as_bytes()) {
        return Err(Error::Unauthorized(
            "missing or wrong X-Internal-Secret".into(),
        ));
    }
    if *req.method() != Method::Post {
        return Err(Error::MethodNotAllowed);
    }
    let mut config = DrainConfig::default();
    if let Some(budget) = variable("drain_budget_ms").and_then(|v| v.parse().ok()) {
        config.budget_ms = budget;
    }
    if let Some(cap) = variable("group_job_concurrency").and_then(|v| v.parse().ok()) {
        config.key_cap = cap;
    }
    if let Some(chunk) = variable("fanout_chunk")
        .and_then(|v| v.parse().ok())
        .filter(|c| *c > 0)
    {
        config.chunk = chunk;
    }
    let db = store()?;
    let mut random = || random_u64().unwrap_or_default();
    let report = run_drain(&db, &config, &now_ms, &mut random)?;
    Ok(json(
        200,
        &serde_json::to_value(&report).unwrap_or_default(),
    ))
}
