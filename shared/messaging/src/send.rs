//! `POST /v1/messages`: authorize, then store and fan out in one transaction.

use courier_core::api::{Recipient, SendRequest, SendResponse, SendStatus, parse_request};
use courier_core::auth::Identity;
use courier_core::authz::{DirectFacts, authorize_direct, authorize_group};
use courier_core::ratelimit::{Bucket, Decision, decide};
use courier_core::{Config, ConvId, Error, MsgId, Seq};
use courier_store::Sql;
use courier_store::directory;
use courier_store::messages::{self, Limits, NewMessage, Recipients, SendOutcome, Sent};
use courier_store::quotas::QueueShare;
use sha2::{Digest, Sha256};

use crate::errors::from_store;
use crate::{Reply, body};

/// What identifies "the same request" for idempotency: the target conversation and
/// the canonical content (so a retry to another recipient is a conflict too).
fn fingerprint(conv: &ConvId, canonical_content: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(conv.as_str().as_bytes());
    hash.update([0]);
    hash.update(canonical_content.as_bytes());
    hex::encode(hash.finalize())
}

/// Checks who may receive; returns the store's recipients.
fn authorize<'a, S: Sql + ?Sized>(
    sql: &S,
    caller: &Identity,
    to: &'a Recipient,
) -> Result<Recipients<'a>, Error> {
    match to {
        Recipient::User(peer) => {
            if peer == &caller.user {
                known_caller(sql, caller)?;
            } else {
                let facts = directory::relation_facts(sql, caller.user.as_str(), peer.as_str())
                    .map_err(from_store)?
                    .ok_or_else(|| Error::NotFound(format!("user {peer}")))?;
                if let Err(refused) = authorize_direct(
                    &caller.user,
                    peer,
                    DirectFacts {
                        same_org: facts.same_org,
                        friends: facts.friend,
                        shared_group: facts.shared_group,
                    },
                ) {
                    known_caller(sql, caller)?;
                    return Err(refused);
                }
            }
            Ok(Recipients::Direct {
                peer: peer.as_str(),
            })
        }
        Recipient::Group(gid) => {
            let size = directory::group_size(sql, gid.as_str())
                .map_err(from_store)?
                .ok_or_else(|| Error::NotFound(format!("group {gid}")))?;
            if let Err(refused) = authorize_group(
                directory::is_member(sql, gid.as_str(), caller.user.as_str())
                    .map_err(from_store)?,
            ) {
                known_caller(sql, caller)?;
                return Err(refused);
            }
            // Written inline or through the queue: the send's plan decides
            // (`courier_core::plan::send`).
            Ok(Recipients::Group {
                gid: gid.as_str(),
                members: size,
            })
        }
    }
}

/// A caller the directory does not know is 404 (as sync, ack and the conversation
/// list answer), checked only on the paths that need it: a refused send (the
/// relation or membership check fails for a ghost too) and a note to self.
fn known_caller<S: Sql + ?Sized>(sql: &S, caller: &Identity) -> Result<(), Error> {
    match directory::user(sql, caller.user.as_str()).map_err(from_store)? {
        Some(_) => Ok(()),
        None => Err(Error::NotFound(format!("user {}", caller.user))),
    }
}

/// `Retry-After` of a send refused for its org's share of the queue: about how long
/// the worker takes to work a backlog down.
pub const QUEUE_SHARE_RETRY_AFTER_SECS: u64 = 5;

/// A token bucket of `rate` per second holding `burst`, at `now`.
fn limiter(
    rate: u32,
    burst: u32,
    now: i64,
) -> impl Fn(Option<(f64, i64)>) -> Result<(f64, i64), u64> {
    move |bucket| {
        let bucket = bucket.map(|(tokens, updated_ms)| Bucket { tokens, updated_ms });
        match decide(bucket, rate, burst, now) {
            Decision::Allow(b) => Ok((b.tokens, b.updated_ms)),
            Decision::Limited { retry_after_secs } => Err(retry_after_secs),
        }
    }
}

fn response(sent: Sent) -> Result<SendResponse, Error> {
    Ok(SendResponse {
        msg_id: MsgId::parse(&sent.msg_id)?,
        conv: ConvId::read_back(&sent.conv)?,
        seq: Seq::new(sent.seq)?,
        sent_at: sent.sent_at,
        status: sent.status,
    })
}

/// `POST /v1/messages`.
/// - 201 with the new message's ids and the sender's seq; `status` `sent`, or
///   `accepted` for groups over `inline_fanout_max` (members get it through the queue).
/// - A repeated `client_msg_id` with the same content → 200 with the identical body,
///   nothing written, even if the sender may no longer message the recipient; with
///   other content (or another recipient) → 409.
/// - No relation / not a member → 403; unknown recipient → 404; over the sender's
///   rate, its org's rate, or its org's share of the queue → 429 + `Retry-After`
///   (other orgs are unaffected).
pub fn send<S: Sql + ?Sized>(
    sql: &S,
    config: &Config,
    caller: &Identity,
    raw: &[u8],
    now: i64,
    random: u64,
) -> Result<Reply, Error> {
    let req: SendRequest = parse_request(raw, config)?;
    let conv = req.to.conv(&caller.user);
    let content = req.content.canonical_json();
    let fingerprint = fingerprint(&conv, &content);
    // A retry gets the stored answer before the checks, which may say otherwise by now
    // (the relation or membership ended). The transaction looks again, for retries
    // that race the first send.
    let (sender, client_msg_id) = (caller.user.as_str(), req.client_msg_id.as_str());
    if let Some(sent) =
        messages::find_sent(sql, sender, client_msg_id, &fingerprint).map_err(from_store)?
    {
        return reply(200, sent);
    }
    let recipients = authorize(sql, caller, &req.to)?;
    let msg_id = MsgId::generate(now, random);
    let user_bucket = limiter(config.rate_per_user_per_sec, config.rate_burst, now);
    let org_rate = config.rate_per_org_per_sec;
    let org_bucket = limiter(org_rate, org_rate.saturating_mul(2), now);
    let limits = Limits {
        user: &user_bucket,
        org: Some(&org_bucket),
        queue_share: Some(QueueShare {
            percent: i64::from(config.org_queue_share_percent),
            floor: i64::from(config.org_queue_floor),
            retry_after_secs: QUEUE_SHARE_RETRY_AFTER_SECS,
        }),
    };
    let msg = NewMessage {
        msg_id: msg_id.as_str(),
        sender: caller.user.as_str(),
        client_msg_id: req.client_msg_id.as_str(),
        conv: conv.as_str(),
        content: &content,
        fingerprint: &fingerprint,
        to: recipients,
        sent_at: now,
        from_queue: false,
        accepted_for_fanout: false,
        inline_fanout_max: config.inline_fanout_max,
        push: crate::push::policy(config),
    };
    let outcome = match messages::send_with(sql, &msg, &limits) {
        Ok(outcome) => outcome,
        // The overload path: valid, authorized, but the store is busy. Make it
        // durable as a queue job and answer `accepted`; if even that fails, 503.
        Err(courier_store::StoreError::Sql(courier_store::SqlError::Transient(detail))) => {
            eprintln!("courier: send queued after a transient store error: {detail}");
            messages::queue_retry(sql, &msg, now).map_err(from_store)?
        }
        Err(e) => return Err(from_store(e)),
    };
    match outcome {
        SendOutcome::Created(sent) => reply(201, sent),
        SendOutcome::Duplicate(sent) => reply(200, sent),
    }
}

/// The answer about `sent`: an `accepted` message has its fan-out queued.
fn reply(status: u16, sent: Sent) -> Result<Reply, Error> {
    let response = response(sent)?;
    let queued = response.status == SendStatus::Accepted;
    Ok(Reply::with_status(status, body(&response)).queued_if(queued))
}
