//! Delivering push jobs (`POST /internal/push/drain`).
//!
//! Each round claims due push jobs (one per offline user), re-reads each user's state
//! (came online or acked meanwhile → nothing to push), builds one vendor request per
//! registered device, sends them all at once through the [`Transport`], and acts on
//! each answer: delivered → recorded; token gone → registration deleted; refresh auth
//! → cached token dropped and retried; 429/5xx/transport error → the job is retried
//! with backoff (at least the vendor's `Retry-After`) and dead-lettered after the hold
//! (30 minutes); any other refusal → permanent failure, logged and counted. Devices
//! already served by this run of the job are not notified again on its retry.

//!
//! # Layout
//! - `mod.rs`: the drain ([`deliver`]) and its rounds: claim, plan, send, settle.
//! - `auth.rs`: vendor access tokens for a round (APNs provider token, FCM and HMS
//!   OAuth), cached across instances.
//! - `vendor.rs`: one device's vendor request, and what the vendor's answer means.

mod auth;
mod vendor;

use courier_core::{ConvId, Error, MsgId, UserId, Vendor};
use courier_push::oauth::AccessToken;
use courier_push::{Notification, Outcome, Preview, apns};
use courier_store::jobs::Claimed;
use courier_store::push::{
    self as store, Delivery, End, Pending, Policy, Registration, Settlement,
};
use courier_store::{Sql, StoreError};
use http::{Request, Response};

use self::auth::{APNS_TOKEN_KEY, FCM_TOKEN_KEY, HMS_TOKEN_KEY, authenticate, store_cached};
use self::vendor::{classify, request};
use super::Vendors;
use crate::errors::from_store;
use crate::queue::{self, Drain};

/// Sends HTTP requests: the component's outbound HTTP, or a test's client.
pub trait Transport {
    /// Sends every request (concurrently, if it can); one result per request, in order.
    fn send_all(
        &mut self,
        requests: Vec<Request<Vec<u8>>>,
    ) -> Vec<Result<Response<Vec<u8>>, String>>;
}

/// A small string cache shared by instances (the key-value store): vendor tokens.
pub trait Cache {
    fn get(&mut self, key: &str) -> Option<String>;
    fn set(&mut self, key: &str, value: &str);
}

/// How a delivery drain runs.
#[derive(Debug, Clone)]
pub struct DeliverConfig {
    /// Stop claiming after this long.
    pub budget_ms: i64,
    /// A claimed job not finished within this comes back.
    pub lease_ms: i64,
    /// Failing pushes are dead-lettered this long after their first attempt.
    pub hold_ms: i64,
    /// Jobs claimed (and users notified concurrently) per round.
    pub batch: usize,
    pub policy: Policy,
}

impl Default for DeliverConfig {
    fn default() -> Self {
        Self {
            budget_ms: 5_000,
            lease_ms: 30_000,
            hold_ms: 30 * 60 * 1000,
            batch: 64,
            policy: Policy::default(),
        }
    }
}

/// What a delivery drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PushReport {
    /// Push jobs finished (notified, or nothing was owed).
    pub done: u64,
    /// Vendor requests answered as delivered.
    pub sent: u64,
    /// Jobs that found their user online, acked or without registrations.
    pub skipped: u64,
    /// Jobs rescheduled after a vendor or transport failure.
    pub retried: u64,
    /// Registrations deleted because the vendor said the token is gone.
    pub tokens_removed: u64,
    /// Deliveries the vendor refused for good.
    pub failed: u64,
    pub dead_lettered: u64,
    /// Push jobs due after this drain.
    pub remaining: u64,
}

/// One planned request: which job and device it serves, and the device's vendor
/// (`None`: a stored name no vendor has).
struct Planned {
    job: usize,
    reg: Registration,
    vendor: Option<Vendor>,
}

/// A claimed job with what it found.
struct Work {
    job: Claimed,
    pending: Pending,
    notification: Notification,
}

/// The notification a pending push makes.
fn notification(
    sql: &(impl Sql + ?Sized),
    uid: &str,
    pending: &Pending,
    preview: bool,
) -> Result<Notification, Error> {
    let trigger = &pending.trigger;
    let preview = if preview {
        store::preview(sql, &trigger.msg_id)
            .map_err(from_store)?
            .map(|(sender, content)| {
                let content: serde_json::Value = serde_json::from_str(&content).unwrap_or_default();
                let text = match content.get("type").and_then(|t| t.as_str()) {
                    Some("text") => content
                        .get("text")
                        .and_then(|t| t.as_str())
                        .unwrap_or_default()
                        .to_string(),
                    Some("image") => "[image]".into(),
                    Some("file") => "[file]".into(),
                    _ => "[message]".into(),
                };
                Preview { sender, text }
            })
    } else {
        None
    };
    Ok(Notification {
        user: UserId::parse(uid)?,
        unread: pending.unread.max(0) as u64,
        conv: ConvId::read_back(&trigger.conv)?,
        msg_id: MsgId::parse(&trigger.msg_id)?,
        preview,
    })
}

/// Runs due push jobs until none are due or the budget is spent.
pub fn deliver<S: Sql + ?Sized>(
    sql: &S,
    vendors: &Vendors,
    transport: &mut dyn Transport,
    cache: &mut dyn Cache,
    config: &DeliverConfig,
    clock: &dyn Fn() -> i64,
    random: &mut dyn FnMut() -> u64,
) -> Result<PushReport, Error> {
    let drain = Drain::start('p', config.budget_ms, clock, random);
    let mut report = PushReport::default();
    drain.rounds(|| {
        let claimed = store::claim(sql, config.batch, drain.lease(), config.lease_ms, clock())
            .map_err(from_store)?;
        let n = claimed.len();
        if n > 0 {
            round(
                sql,
                vendors,
                transport,
                cache,
                config,
                claimed,
                &mut report,
                clock,
                random,
            )?;
        }
        Ok(n)
    })?;
    report.remaining = store::due_count(sql, clock()).map_err(from_store)? as u64;
    Ok(report)
}

#[allow(clippy::too_many_arguments, reason = "one round's whole context")]
fn round<S: Sql + ?Sized>(
    sql: &S,
    vendors: &Vendors,
    transport: &mut dyn Transport,
    cache: &mut dyn Cache,
    config: &DeliverConfig,
    claimed: Vec<Claimed>,
    report: &mut PushReport,
    clock: &dyn Fn() -> i64,
    random: &mut dyn FnMut() -> u64,
) -> Result<(), Error> {
    let now = clock();
    let mut work: Vec<Work> = Vec::new();
    let mut plan: Vec<Planned> = Vec::new();
    let mut skipped: Vec<Claimed> = Vec::new();
    for job in claimed {
        let uid = job.key.clone().unwrap_or_default();
        let pending = match store::pending(sql, &job, &config.policy, now) {
            Ok(p) => p,
            Err(StoreError::Invalid(why)) => {
                // A payload no run can read: never retried, kept dead for inspection.
                queue::dead_letter(sql, "push job", &job, &why, now)?;
                report.dead_lettered += 1;
                continue;
            }
            Err(e) => return Err(from_store(e)),
        };
        if !pending.is_due() {
            skipped.push(job);
            continue;
        }
        let notification = notification(sql, &uid, &pending, vendors.preview)?;
        let attempt = store::attempt_id(&job);
        let served = store::served_devices(sql, &attempt).map_err(from_store)?;
        for reg in &pending.registrations {
            if !served.contains(&reg.device) {
                plan.push(Planned {
                    job: work.len(),
                    reg: reg.clone(),
                    vendor: Vendor::parse(&reg.vendor),
                });
            }
        }
        work.push(Work {
            job,
            pending,
            notification,
        });
    }
    let needed: Vec<Vendor> = plan.iter().filter_map(|p| p.vendor).collect();
    let mut auth = authenticate(vendors, transport, cache, &needed, now);
    let mut outcomes: Vec<Option<(Outcome, Option<String>)>> = Vec::with_capacity(plan.len());
    let mut requests = Vec::new();
    let mut sent_index = Vec::new();
    for (i, p) in plan.iter().enumerate() {
        let n = &work[p.job].notification;
        match request(vendors, &mut auth, p.vendor, &p.reg, n, now, random) {
            Ok((vendor, req)) => {
                requests.push(req);
                sent_index.push((i, vendor));
                outcomes.push(None);
            }
            Err(outcome) => outcomes.push(Some((outcome, None))),
        }
    }
    if let Some(token) = auth.apns.current() {
        store_cached(cache, APNS_TOKEN_KEY, Some(token));
    }
    let answers = transport.send_all(requests);
    let now = clock();
    for ((i, vendor), answer) in sent_index.into_iter().zip(answers) {
        outcomes[i] = Some(match answer {
            Ok(answer) => classify(vendor, &answer, now),
            Err(e) => {
                eprintln!("courier: push: {vendor} unreachable: {e}");
                (Outcome::Retry { after_ms: None }, None)
            }
        });
    }
    // Per job: the longest wait any of its devices asks for, if any must retry.
    let mut retry: Vec<Option<u64>> = vec![None; work.len()];
    let mut must_retry = vec![false; work.len()];
    let mut results: Vec<(usize, &'static str, Option<String>, Option<String>)> = Vec::new();
    for (i, (p, outcome)) in plan.iter().zip(outcomes).enumerate() {
        let (outcome, vendor_id) = outcome.unwrap_or((Outcome::Retry { after_ms: None }, None));
        let (state, detail) = match &outcome {
            Outcome::Delivered => {
                report.sent += 1;
                ("sent", None)
            }
            Outcome::TokenGone { reason } => ("token_gone", Some(reason.clone())),
            Outcome::RefreshAuth => {
                match p.vendor {
                    Some(Vendor::Apns) => {
                        auth.apns.invalidate();
                        store_cached::<apns::ProviderToken>(cache, APNS_TOKEN_KEY, None);
                    }
                    Some(Vendor::Fcm) => {
                        auth.fcm.invalidate();
                        store_cached::<AccessToken>(cache, FCM_TOKEN_KEY, None);
                    }
                    Some(Vendor::Hms) => {
                        auth.hms.invalidate();
                        store_cached::<AccessToken>(cache, HMS_TOKEN_KEY, None);
                    }
                    // VAPID keys are the app's own: nothing to refresh (and Web Push
                    // answers never ask for it).
                    Some(Vendor::WebPush) | None => {}
                }
                must_retry[p.job] = true;
                (
                    "retrying",
                    Some("vendor asked for new credentials".to_string()),
                )
            }
            Outcome::Retry { after_ms } => {
                must_retry[p.job] = true;
                if let Some(after) = after_ms {
                    retry[p.job] = Some(retry[p.job].map_or(*after, |r| r.max(*after)));
                }
                ("retrying", None)
            }
            Outcome::Permanent { status, reason } => {
                eprintln!(
                    "courier: push to {}/{} ({}) refused for good: {status} {reason}",
                    work[p.job].job.key.as_deref().unwrap_or_default(),
                    p.reg.device,
                    p.reg.vendor
                );
                report.failed += 1;
                ("failed", Some(format!("{status} {reason}")))
            }
        };
        results.push((i, state, vendor_id, detail));
    }
    // The whole round's results and job ends in one transaction.
    let mut settlements: Vec<Settlement<'_>> = work
        .iter()
        .enumerate()
        .map(|(i, w)| Settlement {
            job: &w.job,
            deliveries: Vec::new(),
            end: if must_retry[i] {
                let wait = queue::retry_wait(w.job.attempts, retry[i], random);
                End::Retry {
                    at: now.saturating_add(wait),
                    hold_ms: config.hold_ms,
                }
            } else {
                End::Finish
            },
        })
        .collect();
    for (i, state, vendor_id, detail) in &results {
        let p = &plan[*i];
        let w = &work[p.job];
        settlements[p.job].deliveries.push(Delivery {
            uid: w.job.key.as_deref().unwrap_or_default(),
            device: &p.reg.device,
            vendor: &p.reg.vendor,
            token: &p.reg.token,
            state,
            vendor_id: vendor_id.as_deref(),
            detail: detail.as_deref(),
            unread: w.pending.unread,
        });
    }
    settlements.extend(skipped.iter().map(|job| Settlement {
        job,
        deliveries: Vec::new(),
        end: End::Finish,
    }));
    let settled = store::settle(sql, &settlements, &config.policy, now).map_err(from_store)?;
    report.tokens_removed += settled.tokens_removed.max(0) as u64;
    report.dead_lettered += settled.dead.len() as u64;
    for id in &settled.dead {
        eprintln!("courier: push job {id} dead-lettered after 30 minutes of failures");
    }
    for (i, w) in work.iter().enumerate() {
        if must_retry[i] {
            if !settled.dead.contains(&w.job.id) {
                report.retried += 1;
            }
        } else {
            report.done += 1;
        }
    }
    report.skipped += skipped.len() as u64;
    report.done += skipped.len() as u64;
    Ok(())
}
