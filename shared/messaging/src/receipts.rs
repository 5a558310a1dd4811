//! Read receipts: `POST /v1/receipts` and `GET /v1/messages/{id}/receipts`.

use std::collections::BTreeSet;

use courier_core::api::{MessageReadersResponse, ReceiptsRequest, ReceiptsResponse, parse_request};
use courier_core::auth::Identity;
use courier_core::authz::{StreamMessage, authorize_receipts_view, plan_read};
use courier_core::{Config, Error, MsgId, UserId};
use courier_store::{Sql, receipts};

use crate::errors::from_store;
use crate::{Reply, body};

/// `POST /v1/receipts` `{"msg_ids": [...]}`.
/// - Marks the caller's messages from others read → 200 `{"read": [ids newly marked]}`;
///   the caller's `read` entry is written before the answer, the senders' `receipt`
///   entries follow through the queue (merged per sender).
/// - An id not in the caller's stream → 404 and nothing is marked; the caller's own
///   messages and ones read before are skipped.
pub fn mark_read<S: Sql + ?Sized>(
    sql: &S,
    config: &Config,
    caller: &Identity,
    raw: &[u8],
    now: i64,
) -> Result<Reply, Error> {
    let req: ReceiptsRequest = parse_request(raw, config)?;
    let ids: Vec<String> = req.msg_ids.iter().map(|m| m.as_str().to_string()).collect();
    let rows = receipts::stream_messages(sql, caller.user.as_str(), &ids).map_err(from_store)?;
    let found = rows
        .iter()
        .map(|(msg_id, sender, _)| {
            Ok(StreamMessage {
                msg_id: MsgId::parse(msg_id)?,
                sender: UserId::parse(sender)?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    // Reads recorded before are filtered again inside the transaction (a concurrent
    // duplicate request marks nothing twice); this pass only applies the rules.
    let to_mark = plan_read(&caller.user, &req.msg_ids, &found, &BTreeSet::new())?;
    let messages: Vec<receipts::StreamMessage> = rows
        .into_iter()
        .filter(|(id, _, _)| to_mark.iter().any(|m| m.as_str() == id))
        .collect();
    let newly =
        receipts::mark_read(sql, caller.user.as_str(), &messages, now).map_err(from_store)?;
    let read = newly
        .iter()
        .map(|id| MsgId::parse(id))
        .collect::<Result<Vec<_>, _>>()?;
    // The senders' `receipt` entries go through the queue.
    let queued = !read.is_empty();
    Ok(Reply::ok(body(&ReceiptsResponse { read })).queued_if(queued))
}

/// `GET /v1/messages/{msg_id}/receipts`: the sender's view of who read a message.
/// - → 200 `{"msg_id", "read": [uids], "unread": [uids]}` (complete lists).
/// - Unknown message → 404; not the sender → 403.
pub fn readers<S: Sql + ?Sized>(sql: &S, caller: &Identity, msg_id: &str) -> Result<Reply, Error> {
    let msg_id = MsgId::parse(msg_id)?;
    let receipts::Readers {
        sender,
        read,
        unread,
    } = receipts::readers(sql, msg_id.as_str())
        .map_err(from_store)?
        .ok_or_else(|| Error::NotFound(format!("message {msg_id}")))?;
    authorize_receipts_view(&caller.user, &UserId::parse(&sender)?)?;
    let users = |ids: Vec<String>| {
        ids.iter()
            .map(|u| UserId::parse(u))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(Reply::ok(body(&MessageReadersResponse {
        msg_id,
        read: users(read)?,
        unread: users(unread)?,
    })))
}
