//! [`Entry`]: one item of a user's stream, as `sync`, `conversations` and `history`
//! return it. Each kind carries exactly its own fields, so an entry cannot be built
//! with a field its kind does not have.

use serde::{Deserialize, Serialize};

use crate::content::Content;
use crate::error::Error;
use crate::ids::{ClientMsgId, ConvId, GroupId, MsgId, Seq, UserId};

/// `{"seq": 42, "kind": "...", ...the kind's fields}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The position in the stream.
    pub seq: Seq,
    /// The kind and its fields.
    #[serde(flatten)]
    pub body: EntryBody,
}

/// The kinds of API.md, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum EntryBody {
    /// A message, in every member's stream including the sender's own.
    Message(MessageEntry),
    /// In the reader's stream: messages this user has read.
    Read {
        /// The messages newly marked read.
        msg_ids: Vec<MsgId>,
    },
    /// In the sender's stream: read counts of one message; later ones supersede.
    Receipt(ReceiptEntry),
    /// In every copy's stream: a message was recalled.
    Recall(RecallEntry),
    /// A change to a group, e.g. its members.
    Control(ControlEntry),
}

/// A `message` entry. After a recall, `content` is `null` and `recalled` is `true`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageEntry {
    /// The conversation.
    pub conv: ConvId,
    /// The server's id.
    pub msg_id: MsgId,
    /// The sender's idempotency key.
    pub client_msg_id: ClientMsgId,
    /// The sender.
    pub from: UserId,
    /// Unix ms.
    pub sent_at: i64,
    /// The body; `None` (JSON `null`) once recalled.
    pub content: Option<Content>,
    /// Present (`true`) only once recalled.
    #[serde(default, skip_serializing_if = "is_false")]
    pub recalled: bool,
}

/// A `receipt` entry: `ref_seq` is the message's seq in this (the sender's) stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptEntry {
    /// The conversation of the message (an addition to API.md's fields).
    pub conv: ConvId,
    /// The message.
    pub msg_id: MsgId,
    /// The message's seq in the sender's stream.
    pub ref_seq: Seq,
    /// Recipients who have read it.
    pub read_count: u64,
    /// Recipients who have not.
    pub unread_count: u64,
}

/// A `recall` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecallEntry {
    /// The conversation of the message (an addition to API.md's fields).
    pub conv: ConvId,
    /// The recalled message.
    pub msg_id: MsgId,
    /// Its idempotency key.
    pub client_msg_id: ClientMsgId,
    /// Its `sent_at`, Unix ms.
    pub sent_at: i64,
}

/// A `control` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlEntry {
    /// What happened.
    pub event: ControlEvent,
    /// To which group.
    pub group: GroupId,
    /// The group's version after the change.
    pub version: i64,
}

/// The events of `control` entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlEvent {
    /// Members were added or removed.
    MembersChanged,
}

/// The `kind` alone, e.g. for the `entries.kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// `message`
    Message,
    /// `read`
    Read,
    /// `receipt`
    Receipt,
    /// `recall`
    Recall,
    /// `control`
    Control,
}

impl EntryKind {
    /// Every kind, in API.md's order.
    pub const ALL: [EntryKind; 5] = [
        EntryKind::Message,
        EntryKind::Read,
        EntryKind::Receipt,
        EntryKind::Recall,
        EntryKind::Control,
    ];

    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Message => "message",
            EntryKind::Read => "read",
            EntryKind::Receipt => "receipt",
            EntryKind::Recall => "recall",
            EntryKind::Control => "control",
        }
    }

    /// Reads a stored kind; an unknown one is an internal error (the store wrote it).
    pub fn parse(s: &str) -> Result<EntryKind, Error> {
        EntryKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| Error::Internal(format!("unknown entry kind {s:?}")))
    }
}

impl EntryBody {
    /// This body's kind.
    pub fn kind(&self) -> EntryKind {
        match self {
            EntryBody::Message(_) => EntryKind::Message,
            EntryBody::Read { .. } => EntryKind::Read,
            EntryBody::Receipt(_) => EntryKind::Receipt,
            EntryBody::Recall(_) => EntryKind::Recall,
            EntryBody::Control(_) => EntryKind::Control,
        }
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(content: Option<Content>, recalled: bool) -> Entry {
        Entry {
            seq: Seq::new(42).expect("valid"),
            body: EntryBody::Message(MessageEntry {
                conv: ConvId::parse("g:g1").expect("valid"),
                msg_id: MsgId::parse("m1").expect("valid"),
                client_msg_id: ClientMsgId::parse("c1").expect("valid"),
                from: UserId::parse("u1").expect("valid"),
                sent_at: 1_764_000_000_000,
                content,
                recalled,
            }),
        }
    }

    #[test]
    fn message_entry_serializes_as_in_the_api_example() {
        let entry = message(Some(Content::Text { text: "hi".into() }), false);
        assert_eq!(
            serde_json::to_value(&entry).expect("serializes"),
            json!({"seq": 42, "kind": "message", "conv": "g:g1", "msg_id": "m1",
                   "client_msg_id": "c1", "from": "u1", "sent_at": 1_764_000_000_000_i64,
                   "content": {"type": "text", "text": "hi"}})
        );
    }

    #[test]
    fn recalled_message_shows_null_content_and_recalled_true() {
        let value = serde_json::to_value(message(None, true)).expect("serializes");
        assert_eq!(value["content"], serde_json::Value::Null);
        assert_eq!(value["recalled"], true);
        assert!(value.as_object().is_some_and(|o| o.contains_key("content")));
    }

    #[test]
    fn other_kinds_carry_only_their_fields() {
        let seq = Seq::new(3).expect("valid");
        let read = Entry {
            seq,
            body: EntryBody::Read {
                msg_ids: vec![MsgId::parse("m1").expect("valid")],
            },
        };
        assert_eq!(
            serde_json::to_value(&read).expect("serializes"),
            json!({"seq": 3, "kind": "read", "msg_ids": ["m1"]})
        );
        let control = Entry {
            seq,
            body: EntryBody::Control(ControlEntry {
                event: ControlEvent::MembersChanged,
                group: GroupId::parse("g1").expect("valid"),
                version: 4,
            }),
        };
        assert_eq!(
            serde_json::to_value(&control).expect("serializes"),
            json!({"seq": 3, "kind": "control", "event": "members_changed", "group": "g1", "version": 4})
        );
        let receipt = Entry {
            seq,
            body: EntryBody::Receipt(ReceiptEntry {
                conv: ConvId::parse("dm:u1:u2").expect("valid"),
                msg_id: MsgId::parse("m1").expect("valid"),
                ref_seq: Seq::new(1).expect("valid"),
                read_count: 1,
                unread_count: 0,
            }),
        };
        assert_eq!(
            serde_json::to_value(&receipt).expect("serializes"),
            json!({"seq": 3, "kind": "receipt", "conv": "dm:u1:u2", "msg_id": "m1",
                   "ref_seq": 1, "read_count": 1, "unread_count": 0})
        );
    }

    #[test]
    fn entries_round_trip_through_json() {
        let entry = message(Some(Content::Text { text: "hi".into() }), false);
        let text = serde_json::to_string(&entry).expect("serializes");
        assert_eq!(serde_json::from_str::<Entry>(&text).expect("parses"), entry);
        let recalled = message(None, true);
        let text = serde_json::to_string(&recalled).expect("serializes");
        assert_eq!(
            serde_json::from_str::<Entry>(&text).expect("parses"),
            recalled
        );
    }

    #[test]
    fn entry_kind_names_round_trip_and_unknown_is_internal() {
        for kind in EntryKind::ALL {
            assert_eq!(EntryKind::parse(kind.as_str()), Ok(kind));
        }
        assert_eq!(
            EntryKind::parse("poke").map_err(|e| e.code()),
            Err("internal")
        );
        let body = EntryBody::Read { msg_ids: vec![] };
        assert_eq!(body.kind().as_str(), "read");
    }
}
