//! The `worker` component: drains the durable queue.
//!
//! # Layout
//! One handler, [`drain`]: checks the internal secret, then
//! `courier_messaging::worker::drain` with the platform's clock and randomness (and
//! the retention policy: `retention_days`, `dead_letter_days`,
//! `retention_interval_secs`); then, if push jobs are due, the `push-notify`
//! component's drain, and if webhook deliveries are due, the `webhooks` component's
//! (each needs outbound HTTP that only that component is granted).

#![allow(
    unsafe_code,
    reason = "#[http_component] expands to the export shims of the component ABI"
)]

use courier_core::Error;
use courier_messaging::worker::{
    DeliveryLane, DrainConfig, RetentionPolicy, drain as run_drain, due_jobs,
};
use courier_spin::env::{check_internal_secret, config, now_ms, random_u64, setting, store};
use courier_spin::http::{check_method, json, serve};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

/// # `POST /internal/drain`
/// Runs due queue jobs for a bounded time (`drain_budget_ms`, default 5,000) →
/// 200 `{"done", "remaining", "dead", "dead_lettered", "retried", "push"?,
/// "webhooks"?}` — `push` and `webhooks` are the reports of the `push-notify` and
/// `webhooks` drains, when push jobs or webhook deliveries were due.
/// - Keeps the retention job scheduled: history older than `retention_days` (180)
///   and dead letters older than `dead_letter_days` (7) are purged, a pass at most
///   every `retention_interval_secs` (600), in batches of 1,000 rows.
/// - A store error in the queue's own drain is the answer (500/503), after the push
///   and webhook lanes have been drained anyway.
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
    let defaults = DrainConfig::default();
    let messaging = self::config()?;
    let config = DrainConfig {
        budget_ms: setting("drain_budget_ms", defaults.budget_ms, 0)?,
        key_cap: setting("group_job_concurrency", defaults.key_cap, 1)?,
        chunk: setting("fanout_chunk", defaults.chunk, 1)?,
        inline_fanout_max: messaging.inline_fanout_max,
        push: courier_messaging::push::policy(&messaging),
        retention: Some(retention_policy()?),
        ..defaults
    };
    let db = store()?;
    let mut random = || random_u64().unwrap_or_default();
    // A queue drain that fails (a store error) must not starve the push and webhook
    // lanes: they are still drained, and the queue's error is the answer after them.
    let queue = run_drain(&db, &config, &now_ms, &mut random);
    let mut body = match &queue {
        Ok(report) => serde_json::to_value(report).unwrap_or_default(),
        Err(e) => {
            eprintln!("courier: worker: queue drain failed: {e}");
            serde_json::json!({})
        }
    };
    for lane in DeliveryLane::ALL {
        if lane.has_due(&db, now_ms()) {
            // A delivery drain failing must not fail the queue's own: logged, reported.
            body[lane.name()] = drain_component(req, drain_url(lane)).unwrap_or_else(|e| {
                eprintln!("courier: worker: {e}");
                serde_json::json!({"error": e.to_string()})
            });
            if let Ok(remaining) = due_jobs(&db, now_ms()) {
                body["remaining"] = (remaining as u64).into();
            }
        }
    }
    queue?;
    Ok(json(200, &body))
}

/// The drain route of the component that delivers `lane`.
fn drain_url(lane: DeliveryLane) -> &'static str {
    match lane {
        DeliveryLane::Push => "http://push-notify.spin.internal/internal/push/drain",
        DeliveryLane::Webhooks => "http://webhooks.spin.internal/internal/webhooks/drain",
    }
}

/// The retention policy from the variables (defaults where unset).
fn retention_policy() -> Result<RetentionPolicy, Error> {
    const DAY_MS: i64 = 86_400_000;
    let defaults = RetentionPolicy::default();
    let days = |name, default_ms: i64| {
        setting::<i64>(name, default_ms / DAY_MS, 1).map(|d| d.saturating_mul(DAY_MS))
    };
    Ok(RetentionPolicy {
        keep_ms: days("retention_days", defaults.keep_ms)?,
        dead_keep_ms: days("dead_letter_days", defaults.dead_keep_ms)?,
        every_ms: setting::<i64>("retention_interval_secs", defaults.every_ms / 1000, 1)?
            .saturating_mul(1000),
        ..defaults
    })
}

/// Calls another component's drain route (`POST http://<component>.spin.internal/…`,
/// in-process on Spin and the local gateway) with this request's internal secret.
fn drain_component(req: &Request, url: &str) -> Result<serde_json::Value, Error> {
    let secret = req
        .header("x-internal-secret")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let call = Request::post(url, ())
        .header("x-internal-secret", secret)
        .build();
    let answer: Response = spin_sdk::http::run(spin_sdk::http::send(call))
        .map_err(|e| Error::Internal(format!("{url}: {e}")))?;
    if *answer.status() != 200 {
        return Err(Error::Internal(format!(
            "{url} answered {}",
            answer.status()
        )));
    }
    serde_json::from_slice(answer.body()).map_err(|e| Error::Internal(format!("{url}: {e}")))
}
