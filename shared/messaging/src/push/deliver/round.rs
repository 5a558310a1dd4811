//! One round of a push drain: plan (what each claimed job owes), send (every request
//! at once), judge (what each answer means), settle (the whole round in one
//! transaction). Only `plan`, `send` and the settling touch the store or the network;
//! `judge` and `settlements` decide.

use courier_core::{Error, Vendor};
use courier_push::oauth::AccessToken;
use courier_push::{Notification, Outcome, apns};
use courier_store::jobs::Claimed;
use courier_store::push::{self as store, Delivery, End, Pending, Registration, Settlement};
use courier_store::{Sql, StoreError};

use super::auth::{APNS_TOKEN_KEY, Auth, FCM_TOKEN_KEY, HMS_TOKEN_KEY, authenticate, store_cached};
use super::vendor::{classify, request};
use super::{Cache, DeliverConfig, Io, PushReport, Vendors, notification};
use crate::errors::from_store;
use crate::queue;

/// A claimed job that owes a push: what it found, and its devices not served yet by
/// this run of the job.
struct Work {
    job: Claimed,
    pending: Pending,
    notification: Notification,
    devices: Vec<Device>,
    /// Some device must be tried again (set when the answers are judged).
    must_retry: bool,
    /// The longest wait any of its devices' vendors asked for.
    asked_ms: Option<u64>,
}

/// One device of a job: its registration, its parsed vendor (`None`: a stored name no
/// vendor has), the vendor's answer, and what it means for the delivery record.
struct Device {
    reg: Registration,
    vendor: Option<Vendor>,
    answer: Option<(Outcome, Option<String>)>,
    record: Record,
}

/// A delivery's record: its state, the vendor's id for the notification, a detail.
#[derive(Default)]
struct Record {
    state: &'static str,
    vendor_id: Option<String>,
    detail: Option<String>,
}

/// One round: read what each claimed job owes, send every request at once, judge the
/// answers, and record the whole round in one transaction.
pub(super) fn round<S: Sql + ?Sized>(
    sql: &S,
    io: &mut Io<'_>,
    config: &DeliverConfig,
    claimed: Vec<Claimed>,
    report: &mut PushReport,
) -> Result<(), Error> {
    let now = (io.clock)();
    let (mut work, skipped) = plan(sql, io.vendors, config, claimed, report, now)?;
    let (mut auth, now) = send(io, &mut work, now);
    judge(io.cache, &mut auth, &mut work, report);
    let settlements = settlements(&work, &skipped, config, io.random, now);
    let settled = store::settle(sql, &settlements, &config.policy, now).map_err(from_store)?;
    report.tokens_removed += settled.tokens_removed.max(0) as u64;
    report.dead_lettered += settled.dead.len() as u64;
    for id in &settled.dead {
        eprintln!("courier: push job {id} dead-lettered after 30 minutes of failures");
    }
    for w in &work {
        if w.must_retry {
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

/// Reads each claimed job's state: a job whose user no longer owes a push (online,
/// acked) is skipped; one whose payload no run can read is dead-lettered; the rest
/// become [`Work`] with their devices not yet served by this run of the job.
fn plan<S: Sql + ?Sized>(
    sql: &S,
    vendors: &Vendors,
    config: &DeliverConfig,
    claimed: Vec<Claimed>,
    report: &mut PushReport,
    now: i64,
) -> Result<(Vec<Work>, Vec<Claimed>), Error> {
    let mut work = Vec::new();
    let mut skipped = Vec::new();
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
        let served = store::served_devices(sql, &store::attempt_id(&job)).map_err(from_store)?;
        let devices = pending
            .registrations
            .iter()
            .filter(|reg| !served.contains(&reg.device))
            .map(|reg| Device {
                reg: reg.clone(),
                vendor: Vendor::parse(&reg.vendor),
                answer: None,
                record: Record::default(),
            })
            .collect();
        work.push(Work {
            job,
            pending,
            notification,
            devices,
            must_retry: false,
            asked_ms: None,
        });
    }
    Ok((work, skipped))
}

/// Builds every device's request (after fetching the vendor tokens they need), sends
/// them all at once, and keeps each answer's meaning on its device. A request that
/// cannot be built is its device's answer. Returns the round's tokens and the time
/// the answers came.
fn send(io: &mut Io<'_>, work: &mut [Work], now: i64) -> (Auth, i64) {
    let needed: Vec<Vendor> = work
        .iter()
        .flat_map(|w| &w.devices)
        .filter_map(|d| d.vendor)
        .collect();
    let mut auth = authenticate(io.vendors, io.transport, io.cache, &needed, now);
    let mut requests = Vec::new();
    let mut sent = Vec::new();
    for (wi, w) in work.iter_mut().enumerate() {
        for (di, d) in w.devices.iter_mut().enumerate() {
            let built = request(
                io.vendors,
                &mut auth,
                d.vendor,
                &d.reg,
                &w.notification,
                now,
                io.random,
            );
            match built {
                Ok((vendor, req)) => {
                    requests.push(req);
                    sent.push((wi, di, vendor));
                }
                Err(outcome) => d.answer = Some((outcome, None)),
            }
        }
    }
    if let Some(token) = auth.apns.current() {
        store_cached(io.cache, APNS_TOKEN_KEY, Some(token));
    }
    let answers = io.transport.send_all(requests);
    let now = (io.clock)();
    for ((wi, di, vendor), answer) in sent.into_iter().zip(answers) {
        work[wi].devices[di].answer = Some(match answer {
            Ok(answer) => classify(vendor, &answer, now),
            Err(e) => {
                eprintln!("courier: push: {vendor} unreachable: {e}");
                (Outcome::Retry { after_ms: None }, None)
            }
        });
    }
    (auth, now)
}

/// What each answer means: the device's record, and whether (and after how long at
/// least) its job must retry. A vendor that asks for new credentials has its token
/// dropped, here and in the cache. A device left without an answer retries.
fn judge(cache: &mut dyn Cache, auth: &mut Auth, work: &mut [Work], report: &mut PushReport) {
    for w in work {
        let uid = w.job.key.as_deref().unwrap_or_default();
        for d in &mut w.devices {
            let (outcome, vendor_id) = d
                .answer
                .take()
                .unwrap_or((Outcome::Retry { after_ms: None }, None));
            let (state, detail) = match outcome {
                Outcome::Delivered => {
                    report.sent += 1;
                    ("sent", None)
                }
                Outcome::TokenGone { reason } => ("token_gone", Some(reason)),
                Outcome::RefreshAuth => {
                    match d.vendor {
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
                    w.must_retry = true;
                    (
                        "retrying",
                        Some("vendor asked for new credentials".to_string()),
                    )
                }
                Outcome::Retry { after_ms } => {
                    w.must_retry = true;
                    if let Some(after) = after_ms {
                        w.asked_ms = Some(w.asked_ms.map_or(after, |r| r.max(after)));
                    }
                    ("retrying", None)
                }
                Outcome::Permanent { status, reason } => {
                    eprintln!(
                        "courier: push to {uid}/{} ({}) refused for good: {status} {reason}",
                        d.reg.device, d.reg.vendor
                    );
                    report.failed += 1;
                    ("failed", Some(format!("{status} {reason}")))
                }
            };
            d.record = Record {
                state,
                vendor_id,
                detail,
            };
        }
    }
}

/// The round's settlements: each job's delivery records and its end (retried after
/// the backoff or the longest wait a vendor asked for, else finished); skipped jobs
/// finish with no records.
fn settlements<'w>(
    work: &'w [Work],
    skipped: &'w [Claimed],
    config: &DeliverConfig,
    random: &mut dyn FnMut() -> u64,
    now: i64,
) -> Vec<Settlement<'w>> {
    let mut settlements: Vec<Settlement<'w>> = work
        .iter()
        .map(|w| {
            let uid = w.job.key.as_deref().unwrap_or_default();
            Settlement {
                job: &w.job,
                deliveries: w
                    .devices
                    .iter()
                    .map(|d| Delivery {
                        uid,
                        device: &d.reg.device,
                        vendor: &d.reg.vendor,
                        token: &d.reg.token,
                        state: d.record.state,
                        vendor_id: d.record.vendor_id.as_deref(),
                        detail: d.record.detail.as_deref(),
                        unread: w.pending.unread,
                    })
                    .collect(),
                end: if w.must_retry {
                    End::Retry {
                        at: now.saturating_add(queue::retry_wait(
                            w.job.attempts,
                            w.asked_ms,
                            random,
                        )),
                        hold_ms: config.hold_ms,
                    }
                } else {
                    End::Finish
                },
            }
        })
        .collect();
    settlements.extend(skipped.iter().map(|job| Settlement {
        job,
        deliveries: Vec::new(),
        end: End::Finish,
    }));
    settlements
}
