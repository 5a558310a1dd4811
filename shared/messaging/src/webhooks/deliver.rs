//! Delivering webhook events (`POST /internal/webhooks/drain`).
//!
//! Each round claims due deliveries (at most [`DeliverConfig::per_webhook`] at once
//! for one endpoint), signs each body, sends them all at once through the
//! [`Transport`] (the component bounds each request with `webhook_timeout_ms`), and
//! acts on each answer: 2xx → done; anything else (an error status, a timeout, no
//! connection) → retried with exponential backoff and jitter, never sooner than a
//! 429/503's `Retry-After`, and dead-lettered when it has failed for
//! [`DeliverConfig::hold_ms`] (30 minutes). A delivery whose webhook was deleted is
//! dropped; one whose URL is no longer allowed is dead-lettered at once.
//!
//! What a subscriber receives: `POST <url>` with the event as the JSON body
//! (`{"id", "type", "org", "created_at", "data"}`) and the headers
//! - `X-Courier-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
//!   made anew for every attempt;
//! - `X-Courier-Event: <type>` and `X-Courier-Event-Id: <id>` (the same for every
//!   attempt: deduplicate on it);
//! - `X-Courier-Attempt: <n>`, counting from 1.

use courier_core::Error;
use courier_core::api::{OriginPattern, check_url};
use courier_push::callbacks::signature::{SIGNATURE_HEADER, SigningSecret, sign};
use courier_store::Sql;
use courier_store::jobs::{self, Claimed};
use courier_store::webhooks as store;
use http::{Request, Response};

use crate::errors::from_store;
pub use crate::push::deliver::Transport;
use crate::queue::{self, Drain, Failed};

/// The event type header.
pub const EVENT_HEADER: &str = "X-Courier-Event";
/// The event id header.
pub const EVENT_ID_HEADER: &str = "X-Courier-Event-Id";
/// The attempt header.
pub const ATTEMPT_HEADER: &str = "X-Courier-Attempt";

/// How a delivery drain runs.
#[derive(Debug, Clone)]
pub struct DeliverConfig {
    /// Stop claiming after this long.
    pub budget_ms: i64,
    /// A claimed delivery not finished within this comes back.
    pub lease_ms: i64,
    /// Failing deliveries are dead-lettered this long after their first attempt.
    pub hold_ms: i64,
    /// Deliveries claimed (and sent concurrently) per round.
    pub batch: usize,
    /// Deliveries in flight to one webhook at once.
    pub per_webhook: i64,
}

impl Default for DeliverConfig {
    fn default() -> Self {
        Self {
            budget_ms: 5_000,
            lease_ms: 30_000,
            hold_ms: 30 * 60 * 1000,
            batch: 32,
            per_webhook: 4,
        }
    }
}

/// What a delivery drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WebhookReport {
    /// Deliveries finished (delivered, or dropped with their webhook).
    pub done: u64,
    /// Deliveries the subscriber answered with 2xx.
    pub delivered: u64,
    /// Deliveries rescheduled after a failure.
    pub retried: u64,
    pub dead_lettered: u64,
    /// Deliveries due after this drain.
    pub remaining: u64,
}

/// A claimed delivery and its request.
struct Planned {
    job: Claimed,
    request: Request<Vec<u8>>,
}

/// The request of one delivery, or why it cannot be made.
fn request(
    job: &Claimed,
    target: &store::Target,
    origins: &[OriginPattern],
    now: i64,
) -> Result<Request<Vec<u8>>, String> {
    check_url(&target.url, origins).map_err(|e| e.public_message())?;
    let secret = SigningSecret::new(target.secret.as_bytes()).map_err(|e| e.to_string())?;
    let event: serde_json::Value =
        serde_json::from_str(&job.payload).map_err(|e| format!("event: {e}"))?;
    let field = |name: &str| event[name].as_str().unwrap_or_default().to_string();
    let body = job.payload.as_bytes().to_vec();
    Request::post(&target.url)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .header("user-agent", "courier-webhooks/1")
        .header(SIGNATURE_HEADER, sign(&secret, now.div_euclid(1000), &body))
        .header(EVENT_HEADER, field("type"))
        .header(EVENT_ID_HEADER, field("id"))
        .header(ATTEMPT_HEADER, job.attempts.to_string())
        .body(body)
        .map_err(|e| format!("request: {e}"))
}

/// The wait a failed delivery's subscriber asked for: a 429's or 503's `Retry-After`.
fn asked_ms(answer: Option<&Response<Vec<u8>>>, now: i64) -> Option<u64> {
    answer
        .filter(|a| matches!(a.status().as_u16(), 429 | 503))
        .and_then(|a| courier_push::outcome::retry_after_ms(a.headers(), now))
}

/// Runs due deliveries until none are due or the budget is spent.
///
/// A store error ends the drain with that error; the deliveries of its round that
/// were not settled yet are released first, so they are due again at once instead of
/// holding their webhook's `per_webhook` slots until their lease runs out.
pub fn deliver<S: Sql + ?Sized>(
    sql: &S,
    origins: &[OriginPattern],
    transport: &mut dyn Transport,
    config: &DeliverConfig,
    clock: &dyn Fn() -> i64,
    random: &mut dyn FnMut() -> u64,
) -> Result<WebhookReport, Error> {
    let drain = Drain::start('h', config.budget_ms, clock, random);
    let mut report = WebhookReport::default();
    drain.rounds(|| {
        let claimed = store::claim(
            sql,
            config.batch,
            config.per_webhook,
            drain.lease(),
            config.lease_ms,
            clock(),
        )
        .map_err(from_store)?;
        if claimed.is_empty() {
            return Ok(0);
        }
        if let Err(e) = round(
            sql,
            origins,
            transport,
            clock,
            random,
            config,
            &claimed,
            &mut report,
        ) {
            // Best effort: the store just failed, and a lease it keeps still expires.
            for job in &claimed {
                let _ = jobs::release(sql, job);
            }
            return Err(e);
        }
        Ok(claimed.len())
    })?;
    report.remaining = store::due_count(sql, clock()).map_err(from_store)? as u64;
    Ok(report)
}

/// Sends one round of claimed deliveries and settles each (done, retry, dead letter).
#[allow(clippy::too_many_arguments, reason = "one round of deliver's loop")]
fn round<S: Sql + ?Sized>(
    sql: &S,
    origins: &[OriginPattern],
    transport: &mut dyn Transport,
    clock: &dyn Fn() -> i64,
    random: &mut dyn FnMut() -> u64,
    config: &DeliverConfig,
    claimed: &[Claimed],
    report: &mut WebhookReport,
) -> Result<(), Error> {
    let now = clock();
    let mut planned = Vec::new();
    for job in claimed {
        match store::target(sql, job).map_err(from_store)? {
            None => {
                // Its webhook was deleted: nothing to deliver to.
                if store::finish(sql, job, now).map_err(from_store)? {
                    report.done += 1;
                }
            }
            Some(target) => match request(job, &target, origins, now) {
                Ok(request) => planned.push(Planned {
                    job: job.clone(),
                    request,
                }),
                Err(why) => {
                    queue::dead_letter(sql, "webhook delivery", job, &why, now)?;
                    report.dead_lettered += 1;
                }
            },
        }
    }
    let (jobs_sent, requests): (Vec<Claimed>, Vec<Request<Vec<u8>>>) =
        planned.into_iter().map(|p| (p.job, p.request)).unzip();
    let answers = transport.send_all(requests);
    let now = clock();
    for (job, answer) in jobs_sent.iter().zip(answers) {
        let failure = match &answer {
            Ok(a) if a.status().is_success() => None,
            Ok(a) => Some(format!("answered {}", a.status().as_u16())),
            Err(e) => Some(format!("unreachable: {e}")),
        };
        let Some(why) = failure else {
            if store::finish(sql, job, now).map_err(from_store)? {
                report.done += 1;
                report.delivered += 1;
            }
            continue;
        };
        let wait = queue::retry_wait(job.attempts, asked_ms(answer.as_ref().ok(), now), random);
        match queue::fail(
            sql,
            "webhook delivery",
            job,
            &why,
            wait,
            config.hold_ms,
            now,
        )? {
            Failed::DeadLettered => report.dead_lettered += 1,
            Failed::Retried => report.retried += 1,
        }
    }
    Ok(())
}
