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

use courier_core::{ConvId, Error, MsgId, UserId, Vendor};
use courier_push::oauth::{AccessToken, TokenCache, parse_token_answer};
use courier_push::token::RegistrationToken;
use courier_push::webpush::{self, RANDOM_BYTES, Subscription};
use courier_push::{Notification, Outcome, Preview, apns, fcm, hms};
use courier_store::jobs::{self, Claimed};
use courier_store::push::{
    self as store, Delivery, End, Pending, Policy, Registration, Settlement,
};
use courier_store::{Sql, StoreError};
use http::{Request, Response};

use super::Vendors;
use crate::errors::from_store;

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

const APNS_TOKEN_KEY: &str = "push:apns:provider-token";
const FCM_TOKEN_KEY: &str = "push:fcm:access-token";
const HMS_TOKEN_KEY: &str = "push:hms:access-token";

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

/// Vendor access tokens for one round, read from and written back to the cache.
struct Auth {
    apns: apns::ProviderTokenCache,
    fcm: TokenCache,
    hms: TokenCache,
    /// Outcomes for vendors whose token could not be had this round.
    fcm_refused: Option<Outcome>,
    hms_refused: Option<Outcome>,
}

fn cached<T: serde::de::DeserializeOwned>(cache: &mut dyn Cache, key: &str) -> Option<T> {
    cache.get(key).and_then(|v| serde_json::from_str(&v).ok())
}

fn store_cached<T: serde::Serialize>(cache: &mut dyn Cache, key: &str, value: Option<&T>) {
    let text = value
        .and_then(|v| serde_json::to_string(v).ok())
        .unwrap_or_default();
    cache.set(key, &text);
}

/// Makes sure the OAuth vendors in `needed` have access tokens, fetching missing
/// ones (all at once).
fn authenticate(
    vendors: &Vendors,
    transport: &mut dyn Transport,
    cache: &mut dyn Cache,
    needed: &[Vendor],
    now: i64,
) -> Auth {
    let mut auth = Auth {
        apns: apns::ProviderTokenCache::with(cached(cache, APNS_TOKEN_KEY)),
        fcm: TokenCache::with(cached::<AccessToken>(cache, FCM_TOKEN_KEY)),
        hms: TokenCache::with(cached::<AccessToken>(cache, HMS_TOKEN_KEY)),
        fcm_refused: None,
        hms_refused: None,
    };
    let mut fetch: Vec<(Vendor, Request<Vec<u8>>)> = Vec::new();
    if needed.contains(&Vendor::Fcm)
        && auth.fcm.get(now).is_none()
        && let Some(fcm) = &vendors.fcm
    {
        match fcm.account.token_request(now) {
            Ok(req) => fetch.push((Vendor::Fcm, req)),
            Err(e) => auth.fcm_refused = Some(permanent(e)),
        }
    }
    if needed.contains(&Vendor::Hms)
        && auth.hms.get(now).is_none()
        && let Some(hms) = &vendors.hms
    {
        match hms.credentials.token_request(&hms.oauth_base) {
            Ok(req) => fetch.push((Vendor::Hms, req)),
            Err(e) => auth.hms_refused = Some(permanent(e)),
        }
    }
    if fetch.is_empty() {
        return auth;
    }
    let (names, requests): (Vec<Vendor>, Vec<Request<Vec<u8>>>) = fetch.into_iter().unzip();
    for (name, answer) in names.into_iter().zip(transport.send_all(requests)) {
        let token = match answer {
            Ok(answer) => parse_token_answer(&answer, now),
            Err(e) => Err(Outcome::Retry { after_ms: None }).inspect_err(|_| {
                eprintln!("courier: push: {name} token endpoint unreachable: {e}");
            }),
        };
        // Only the OAuth vendors fetch tokens.
        let (slot, refused, key) = if name == Vendor::Fcm {
            (&mut auth.fcm, &mut auth.fcm_refused, FCM_TOKEN_KEY)
        } else {
            (&mut auth.hms, &mut auth.hms_refused, HMS_TOKEN_KEY)
        };
        match token {
            Ok(token) => {
                slot.store(token);
                store_cached(cache, key, slot.current());
            }
            Err(outcome) => *refused = Some(outcome),
        }
    }
    auth
}

fn permanent(e: courier_push::Error) -> Outcome {
    Outcome::Permanent {
        status: 0,
        reason: e.to_string(),
    }
}

/// One planned request: which job and device it serves.
struct Planned {
    job: usize,
    reg: Registration,
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

/// The vendor request for one device, with the vendor it goes to.
fn request(
    vendors: &Vendors,
    auth: &mut Auth,
    reg: &Registration,
    n: &Notification,
    now: i64,
    random: &mut dyn FnMut() -> u64,
) -> Result<(Vendor, Request<Vec<u8>>), Outcome> {
    let unconfigured = || Outcome::Permanent {
        status: 0,
        reason: format!("push vendor {} is no longer configured", reg.vendor),
    };
    let Some(vendor) = Vendor::parse(&reg.vendor) else {
        return Err(permanent(courier_push::Error::Config(format!(
            "vendor {}",
            reg.vendor
        ))));
    };
    let result = match vendor {
        Vendor::WebPush => {
            let sender = vendors.webpush.as_ref().ok_or_else(unconfigured)?;
            let keys: serde_json::Value =
                serde_json::from_str(reg.keys.as_deref().unwrap_or("{}")).unwrap_or_default();
            let key = |name: &str| keys.get(name).and_then(|v| v.as_str()).unwrap_or_default();
            let sub = if vendors.allow_http {
                Subscription::parse_allowing_http(&reg.token, key("p256dh"), key("auth"))
            } else {
                Subscription::parse(&reg.token, key("p256dh"), key("auth"))
            };
            let mut bytes = [0u8; RANDOM_BYTES];
            for chunk in bytes.chunks_mut(8) {
                let word = random().to_le_bytes();
                chunk.copy_from_slice(&word[..chunk.len()]);
            }
            sub.and_then(|sub| sender.request(&sub, n, now, &bytes))
        }
        Vendor::Apns => {
            let apns = vendors.apns.as_ref().ok_or_else(unconfigured)?;
            let (token, _) = auth.apns.token(&apns.key, now);
            apns::DeviceToken::parse(&reg.token).and_then(|device| {
                apns.client
                    .request(token, &device, n, apns::PushType::Alert, now)
            })
        }
        Vendor::Fcm => {
            let fcm = vendors.fcm.as_ref().ok_or_else(unconfigured)?;
            if let Some(refused) = &auth.fcm_refused {
                return Err(refused.clone());
            }
            let access = auth.fcm.get(now).ok_or(Outcome::RefreshAuth)?;
            RegistrationToken::parse(&reg.token)
                .and_then(|token| fcm.client.request(access, &token, n))
        }
        Vendor::Hms => {
            let hms = vendors.hms.as_ref().ok_or_else(unconfigured)?;
            if let Some(refused) = &auth.hms_refused {
                return Err(refused.clone());
            }
            let access = auth.hms.get(now).ok_or(Outcome::RefreshAuth)?;
            RegistrationToken::parse(&reg.token)
                .and_then(|token| hms.client.request(access, &[token], n))
        }
    };
    result.map(|req| (vendor, req)).map_err(permanent)
}

/// What the vendor answer means, and the vendor's id of the notification.
fn classify(vendor: Vendor, answer: &Response<Vec<u8>>, now: i64) -> (Outcome, Option<String>) {
    let header = |name: &str| {
        answer
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let field = |name: &str| {
        serde_json::from_slice::<serde_json::Value>(answer.body())
            .ok()
            .and_then(|j| j.get(name).and_then(|v| v.as_str()).map(str::to_string))
    };
    match vendor {
        Vendor::WebPush => (webpush::classify(answer, now), header("location")),
        Vendor::Apns => (apns::classify(answer, now), header("apns-id")),
        Vendor::Fcm => (fcm::classify(answer, now), field("name")),
        Vendor::Hms => (hms::classify(answer, now), field("requestId")),
    }
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
    let started = clock();
    let lease = format!("p{:016x}", random());
    let mut report = PushReport::default();
    while clock() - started < config.budget_ms {
        let now = clock();
        let claimed =
            store::claim(sql, config.batch, &lease, config.lease_ms, now).map_err(from_store)?;
        if claimed.is_empty() {
            break;
        }
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
                eprintln!("courier: push job {} unreadable: {why}", job.id);
                jobs::fail(sql, &job, &why, now, 0, now).map_err(from_store)?;
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
                });
            }
        }
        work.push(Work {
            job,
            pending,
            notification,
        });
    }
    let needed: Vec<Vendor> = plan
        .iter()
        .filter_map(|p| Vendor::parse(&p.reg.vendor))
        .collect();
    let mut auth = authenticate(vendors, transport, cache, &needed, now);
    let mut outcomes: Vec<Option<(Outcome, Option<String>)>> = Vec::with_capacity(plan.len());
    let mut requests = Vec::new();
    let mut sent_index = Vec::new();
    for (i, p) in plan.iter().enumerate() {
        let n = &work[p.job].notification;
        match request(vendors, &mut auth, &p.reg, n, now, random) {
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
                match Vendor::parse(&p.reg.vendor) {
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
                let jitter = (random() % 1000) as f64 / 1000.0;
                let backoff = jobs::backoff_ms(w.job.attempts, jitter);
                let wait = backoff.max(retry[i].map_or(0, |r| r.min(i64::MAX as u64) as i64));
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
