//! `POST /v1/messages/{msg_id}/recall`.

use courier_core::api::RecallResponse;
use courier_core::auth::Identity;
use courier_core::authz::{RecallDecision, RecallFacts, authorize_recall};
use courier_core::{Config, Error, MsgId, UserId};
use courier_store::{Sql, recall};

use crate::errors::from_store;
use crate::{Reply, body};

/// `POST /v1/messages/{msg_id}/recall`.
/// - Sender only (403), within `recall_window_secs` of `sent_at` (409
///   `recall_window_expired`) → 200 `{"msg_id", "recalled": true}`.
/// - The content is erased at once; every stream holding the message gets a `recall`
///   entry (inline, or through the queue for large audiences). Idempotent.
pub fn recall<S: Sql + ?Sized>(
    sql: &S,
    config: &Config,
    caller: &Identity,
    msg_id: &str,
    now: i64,
) -> Result<Reply, Error> {
    let msg_id = MsgId::parse(msg_id)?;
    let facts = recall::facts(sql, msg_id.as_str())
        .map_err(from_store)?
        .ok_or_else(|| Error::NotFound(format!("message {msg_id}")))?;
    let sender = UserId::parse(&facts.sender)?;
    let decision = authorize_recall(
        &caller.user,
        RecallFacts {
            sender: &sender,
            sent_at_ms: facts.sent_at,
            already_recalled: facts.recalled,
        },
        now,
        config.recall_window_secs,
    )?;
    if decision == RecallDecision::Recall {
        recall::recall(sql, msg_id.as_str(), config.inline_fanout_max, now).map_err(from_store)?;
    }
    // A recall past `inline_fanout_max` fans out through the queue; the answer is
    // marked queued whatever the audience (a drain with nothing to do is cheap).
    Ok(Reply::ok(body(&RecallResponse {
        msg_id,
        recalled: true,
    }))
    .queued_if(true))
}
