//! The `worker` component: drains the durable queue.
//!
//! # Layout
//! One handler, [`drain`]: checks the internal secret, then
//! `courier_messaging::worker::drain` with the platform's clock and randomness; then,
//! if push jobs are due, the `push-notify` component's drain (push delivery needs
//! outbound HTTP to the vendors, which only `push-notify` is granted).

#![allow(
    unsafe_code,
    reason = "#[http_component] expands to the export shims of the component ABI"
)]

use courier_core::Error;
use courier_messaging::errors::from_store;
use courier_messaging::worker::{DrainConfig, drain as run_drain};
use courier_spin::env::{check_internal_secret, config, now_ms, random_u64, store, variable};
use courier_spin::http::{check_method, json, serve};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

/// # `POST /internal/drain`
/// Runs due queue jobs for a bounded time (`drain_budget_ms`, default 5,000) →
/// 200 `{"done", "remaining", "dead", "dead_lettered", "retried", "push"?}` — `push` is
/// the `push-notify` drain's report when push jobs were due.
/// - Needs `X-Internal-Secret: <internal_secret>`; anything else → 401.
/// - Called by the local gateway's timer, and on Spin/SpinKube by a scheduler
///   (a Kubernetes CronJob or `spin aka cron`) while `remaining` > 0.
#[http_component]
fn drain(req: Request) -> Response {
    serve(req, handle)
}

fn handle(req: &Request) -> Result<Response, Error> {
    check_internal_secret(req)?;
    if let Err(refused) = check_method(req, &[Method::Post]) {
        return Ok(refused);
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
    config.push = courier_messaging::push::policy(&self::config()?);
    let db = store()?;
    let mut random = || random_u64().unwrap_or_default();
    let mut report = run_drain(&db, &config, &now_ms, &mut random)?;
    let mut body = serde_json::to_value(&report).unwrap_or_default();
    let due = courier_store::push::due_count(&db, now_ms()).map_err(from_store)?;
    if due > 0 {
        // Push delivery failing must not fail the queue's own drain: logged, reported.
        body["push"] = drain_push(req).unwrap_or_else(|e| {
            eprintln!("courier: worker: {e}");
            serde_json::json!({"error": e.to_string()})
        });
        report.remaining =
            courier_store::jobs::due_count(&db, now_ms()).map_err(from_store)? as u64;
        body["remaining"] = report.remaining.into();
    }
    Ok(json(200, &body))
}

/// Calls `POST http://push-notify.spin.internal/internal/push/drain` (in-process on
/// Spin and the local gateway) with this request's internal secret.
fn drain_push(req: &Request) -> Result<serde_json::Value, Error> {
    let secret = req
        .header("x-internal-secret")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let call = Request::post("http://push-notify.spin.internal/internal/push/drain", ())
        .header("x-internal-secret", secret)
        .build();
    let answer: Response = spin_sdk::http::run(spin_sdk::http::send(call))
        .map_err(|e| Error::Internal(format!("push-notify drain: {e}")))?;
    if *answer.status() != 200 {
        return Err(Error::Internal(format!(
            "push-notify drain answered {}",
            answer.status()
        )));
    }
    serde_json::from_slice(answer.body())
        .map_err(|e| Error::Internal(format!("push-notify drain: {e}")))
}
