//! Bodies of the messaging routes: send, ack, read receipts.

use serde::{Deserialize, Serialize};

use super::{RequestBody, dedup_in_order};
use crate::config::Config;
use crate::content::Content;
use crate::error::Error;
use crate::ids::{ClientMsgId, ConvId, GroupId, MsgId, Seq, UserId};

/// Most ids in one `POST /v1/receipts`.
pub const MAX_RECEIPT_IDS: usize = 100;

/// `POST /v1/messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendRequest {
    /// The sender's idempotency key.
    pub client_msg_id: ClientMsgId,
    /// The recipient: a user or a group.
    pub to: Recipient,
    /// The body, validated against `max_text_bytes`.
    pub content: Content,
    /// Delivery priority; `high` when absent.
    #[serde(default)]
    pub priority: Priority,
}

impl RequestBody for SendRequest {
    fn validate(self, config: &Config) -> Result<Self, Error> {
        self.content.validate(config.max_text_bytes)?;
        Ok(self)
    }
}

/// `to`: `{"user": uid}` or `{"group": gid}`, exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RecipientWire", into = "RecipientWire")]
pub enum Recipient {
    /// A direct message.
    User(UserId),
    /// A group message.
    Group(GroupId),
}

impl Recipient {
    /// The conversation a message from `sender` to this recipient belongs to.
    pub fn conv(&self, sender: &UserId) -> ConvId {
        match self {
            Recipient::User(user) => ConvId::direct(sender, user),
            Recipient::Group(group) => ConvId::group(group),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct RecipientWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group: Option<GroupId>,
}

impl TryFrom<RecipientWire> for Recipient {
    type Error = &'static str;

    fn try_from(wire: RecipientWire) -> Result<Recipient, &'static str> {
        match (wire.user, wire.group) {
            (Some(user), None) => Ok(Recipient::User(user)),
            (None, Some(group)) => Ok(Recipient::Group(group)),
            _ => Err("`to` must hold exactly one of `user` and `group`"),
        }
    }
}

impl From<Recipient> for RecipientWire {
    fn from(recipient: Recipient) -> RecipientWire {
        match recipient {
            Recipient::User(user) => RecipientWire {
                user: Some(user),
                group: None,
            },
            Recipient::Group(group) => RecipientWire {
                user: None,
                group: Some(group),
            },
        }
    }
}

/// Delivery priority of a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// The default for messages from users.
    #[default]
    High,
    /// Bulk traffic that may wait behind `high`.
    Low,
}

impl Priority {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Low => "low",
        }
    }
}

/// `POST /v1/ack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckRequest {
    /// Everything up to this seq has reached the device.
    pub seq: Seq,
}

impl RequestBody for AckRequest {
    fn validate(self, _config: &Config) -> Result<Self, Error> {
        Ok(self)
    }
}

/// `POST /v1/receipts`: 1 to 100 ids; validation drops repeated ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptsRequest {
    /// Messages the caller has read, first occurrence order.
    pub msg_ids: Vec<MsgId>,
}

impl RequestBody for ReceiptsRequest {
    fn validate(self, _config: &Config) -> Result<Self, Error> {
        if self.msg_ids.is_empty() || self.msg_ids.len() > MAX_RECEIPT_IDS {
            return Err(Error::BadRequest(format!(
                "msg_ids must hold 1 to {MAX_RECEIPT_IDS} ids"
            )));
        }
        Ok(ReceiptsRequest {
            msg_ids: dedup_in_order(self.msg_ids),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::parse_request;

    fn send(body: &str) -> Result<SendRequest, Error> {
        parse_request(body.as_bytes(), &Config::default())
    }

    fn uid(s: &str) -> UserId {
        UserId::parse(s).expect("valid")
    }

    #[test]
    fn send_request_parses_the_api_example() {
        let request = send(
            r#"{"client_msg_id": "c-5f2e", "to": {"user": "u2"}, "content": {"type": "text", "text": "hi"}}"#,
        )
        .expect("valid");
        assert_eq!(request.client_msg_id.as_str(), "c-5f2e");
        assert_eq!(request.to, Recipient::User(uid("u2")));
        assert_eq!(request.content, Content::Text { text: "hi".into() });
        assert_eq!(request.priority, Priority::High);
    }

    #[test]
    fn send_to_a_group_with_low_priority() {
        let request = send(
            r#"{"client_msg_id": "c1", "to": {"group": "g1"}, "content": {"type": "text", "text": "hi"}, "priority": "low"}"#,
        )
        .expect("valid");
        assert_eq!(
            request.to,
            Recipient::Group(GroupId::parse("g1").expect("valid"))
        );
        assert_eq!(request.priority, Priority::Low);
    }

    #[test]
    fn to_with_both_or_neither_target_is_a_bad_request() {
        for to in [
            r#"{"user": "u2", "group": "g1"}"#,
            "{}",
            r#"{"user": null}"#,
            r#""u2""#,
        ] {
            let body = format!(
                r#"{{"client_msg_id": "c1", "to": {to}, "content": {{"type": "text", "text": "hi"}}}}"#
            );
            assert_eq!(
                send(&body).map_err(|e| e.code()),
                Err("bad_request"),
                "{to}"
            );
        }
    }

    #[test]
    fn send_rejects_missing_fields_invalid_ids_and_unknown_priority() {
        let bodies = [
            r#"{"to": {"user": "u2"}, "content": {"type": "text", "text": "hi"}}"#,
            r#"{"client_msg_id": "c1", "content": {"type": "text", "text": "hi"}}"#,
            r#"{"client_msg_id": "c1", "to": {"user": "u2"}}"#,
            r#"{"client_msg_id": "c 1", "to": {"user": "u2"}, "content": {"type": "text", "text": "hi"}}"#,
            r#"{"client_msg_id": "c1", "to": {"user": "u/2"}, "content": {"type": "text", "text": "hi"}}"#,
            r#"{"client_msg_id": "c1", "to": {"user": "u2"}, "content": {"type": "text", "text": "hi"}, "priority": "urgent"}"#,
        ];
        for body in bodies {
            assert_eq!(
                send(body).map_err(|e| e.code()),
                Err("bad_request"),
                "{body}"
            );
        }
    }

    #[test]
    fn send_with_oversize_text_is_too_large() {
        let text = "a".repeat(4097);
        let body = format!(
            r#"{{"client_msg_id": "c1", "to": {{"user": "u2"}}, "content": {{"type": "text", "text": "{text}"}}}}"#
        );
        assert_eq!(send(&body).map_err(|e| e.code()), Err("too_large"));
    }

    #[test]
    fn recipient_names_the_conversation() {
        let me = uid("u9");
        assert_eq!(Recipient::User(uid("u1")).conv(&me).as_str(), "dm:u1:u9");
        assert_eq!(Recipient::User(me.clone()).conv(&me).as_str(), "dm:u9:u9");
        let group = Recipient::Group(GroupId::parse("g1").expect("valid"));
        assert_eq!(group.conv(&me).as_str(), "g:g1");
    }

    #[test]
    fn send_request_serializes_back_to_the_wire_shape() {
        let request = send(
            r#"{"client_msg_id": "c1", "to": {"group": "g1"}, "content": {"type": "text", "text": "hi"}}"#,
        )
        .expect("valid");
        let value = serde_json::to_value(&request).expect("serializes");
        assert_eq!(value["to"], serde_json::json!({"group": "g1"}));
        assert_eq!(value["priority"], "high");
    }

    #[test]
    fn ack_rejects_negative_and_fractional_seqs() {
        let config = Config::default();
        assert!(parse_request::<AckRequest>(br#"{"seq": 0}"#, &config).is_ok());
        assert!(parse_request::<AckRequest>(br#"{"seq": -1}"#, &config).is_err());
        assert!(parse_request::<AckRequest>(br#"{"seq": 1.5}"#, &config).is_err());
    }

    #[test]
    fn receipts_need_one_to_a_hundred_ids_and_drop_repeats() {
        let config = Config::default();
        let parse = |ids: Vec<String>| {
            let body = serde_json::json!({ "msg_ids": ids }).to_string();
            parse_request::<ReceiptsRequest>(body.as_bytes(), &config)
        };
        assert_eq!(parse(vec![]).map_err(|e| e.code()), Err("bad_request"));
        let hundred: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
        assert_eq!(parse(hundred.clone()).map(|r| r.msg_ids.len()), Ok(100));
        let mut over = hundred;
        over.push("m100".into());
        assert_eq!(parse(over).map_err(|e| e.code()), Err("bad_request"));
        let repeated = parse(vec!["m2".into(), "m1".into(), "m2".into()]).expect("valid");
        let ids: Vec<&str> = repeated.msg_ids.iter().map(MsgId::as_str).collect();
        assert_eq!(ids, ["m2", "m1"]);
    }
}
