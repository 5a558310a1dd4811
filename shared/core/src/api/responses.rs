//! Response bodies of API.md, one type per route. Serialize-only in spirit; they also
//! deserialize so tests and clients can read them back.

use serde::{Deserialize, Serialize};

use super::Entry;
use crate::ids::{ConvId, GroupId, MsgId, Seq, UserId};

/// `POST /v1/messages` → 201 (first time) or 200 (an idempotent repeat, same body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResponse {
    /// The server's id of the message.
    pub msg_id: MsgId,
    /// Its conversation.
    pub conv: ConvId,
    /// Its position in the sender's own stream.
    pub seq: Seq,
    /// Unix ms.
    pub sent_at: i64,
    /// `sent` or `accepted`.
    pub status: SendStatus,
}

/// How far a send got before the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SendStatus {
    /// Every recipient stream already holds it.
    Sent,
    /// Durably queued; it will reach every recipient.
    Accepted,
}

impl SendStatus {
    /// The status on the wire and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            SendStatus::Sent => "sent",
            SendStatus::Accepted => "accepted",
        }
    }

    /// The status a store row names (`sent` for anything else).
    pub fn from_stored(name: &str) -> SendStatus {
        match name {
            "accepted" => SendStatus::Accepted,
            _ => SendStatus::Sent,
        }
    }
}

/// `GET /v1/sync`; build it with [`crate::streams::sync_page`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncResponse {
    /// Entries with `seq > after`, ascending.
    pub entries: Vec<Entry>,
    /// The next `after`.
    pub next: Seq,
    /// The stream's largest seq.
    pub head: Seq,
    /// Whether entries beyond `next` exist.
    pub more: bool,
    /// Present when `after` points into purged history (retention): every entry at
    /// or below this seq is gone, and `entries` start above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trimmed_before: Option<Seq>,
}

/// `POST /v1/ack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckResponse {
    /// The seq of the request.
    pub acked: Seq,
}

/// `GET /v1/conversations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationsResponse {
    /// Most recent first.
    pub conversations: Vec<ConversationSummary>,
}

/// One conversation's offline counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationSummary {
    /// The conversation.
    pub conv: ConvId,
    /// Messages from others the caller has not marked read.
    pub unread: u64,
    /// The latest entry of the conversation.
    pub last: Entry,
    /// Unix ms of the latest entry.
    pub updated_at: i64,
}

/// `GET /v1/conversations/{conv}/messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryResponse {
    /// `message` entries, newest first.
    pub entries: Vec<Entry>,
    /// Whether older entries exist.
    pub more: bool,
}

/// `POST /v1/receipts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptsResponse {
    /// The ids newly marked read by this request.
    pub read: Vec<MsgId>,
}

/// `GET /v1/messages/{msg_id}/receipts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageReadersResponse {
    /// The message.
    pub msg_id: MsgId,
    /// Recipients who have read it.
    pub read: Vec<UserId>,
    /// Recipients who have not.
    pub unread: Vec<UserId>,
}

/// `POST /v1/messages/{msg_id}/recall`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecallResponse {
    /// The message.
    pub msg_id: MsgId,
    /// Always `true`.
    pub recalled: bool,
}

/// `PUT /v1/users/{uid}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutUserResponse {
    /// The user.
    pub uid: UserId,
}

/// `PUT /v1/groups/{gid}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutGroupResponse {
    /// The group.
    pub gid: GroupId,
    /// Its version after the write.
    pub version: i64,
    /// Its member count.
    pub members: u64,
}

/// `POST /v1/groups/{gid}/members`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersChangeResponse {
    /// The group's version after the change.
    pub version: i64,
    /// Its member count.
    pub members: u64,
}

/// `POST /internal/drain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainResponse {
    /// Jobs run.
    pub done: u64,
    /// Jobs still due.
    pub remaining: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn send_response_has_the_api_fields() {
        let response = SendResponse {
            msg_id: MsgId::parse("m1").expect("valid"),
            conv: ConvId::parse("dm:u1:u2").expect("valid"),
            seq: Seq::new(17).expect("valid"),
            sent_at: 1_764_000_000_000,
            status: SendStatus::Sent,
        };
        assert_eq!(
            serde_json::to_value(&response).expect("serializes"),
            json!({"msg_id": "m1", "conv": "dm:u1:u2", "seq": 17,
                   "sent_at": 1_764_000_000_000_i64, "status": "sent"})
        );
    }

    #[test]
    fn accepted_status_is_lowercase() {
        assert_eq!(
            serde_json::to_string(&SendStatus::Accepted).expect("serializes"),
            r#""accepted""#
        );
        for status in [SendStatus::Sent, SendStatus::Accepted] {
            let wire = serde_json::to_string(&status).expect("serializes");
            assert_eq!(wire, format!("\"{}\"", status.as_str()));
            assert_eq!(SendStatus::from_stored(status.as_str()), status);
        }
    }

    #[test]
    fn group_responses_have_the_api_fields() {
        let put = PutGroupResponse {
            gid: GroupId::parse("g1").expect("valid"),
            version: 2,
            members: 3,
        };
        assert_eq!(
            serde_json::to_value(&put).expect("serializes"),
            json!({"gid": "g1", "version": 2, "members": 3})
        );
        let change = MembersChangeResponse {
            version: 3,
            members: 4,
        };
        assert_eq!(
            serde_json::to_value(change).expect("serializes"),
            json!({"version": 3, "members": 4})
        );
    }
}
