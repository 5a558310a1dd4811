//! The `data` of each webhook event ([`crate::api::WebhookEvent`]), as the
//! subscriber receives it inside the event envelope. The store builds them in the
//! transaction that writes the event's data, and only when someone subscribes.

use serde::Serialize;

/// Whom a sent message went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SentTo<'a> {
    User(&'a str),
    Group(&'a str),
}

/// `message.sent` (the sender's org).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageSent<'a> {
    pub msg_id: &'a str,
    pub client_msg_id: &'a str,
    pub conv: &'a str,
    pub from: &'a str,
    pub to: SentTo<'a>,
    /// The sender's seq.
    pub seq: i64,
    pub sent_at: i64,
    pub content: serde_json::Value,
}

/// `message.recalled` (the sender's org).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageRecalled<'a> {
    pub msg_id: &'a str,
    pub client_msg_id: &'a str,
    pub conv: &'a str,
    pub from: &'a str,
    pub sent_at: i64,
    pub recalled_at: i64,
}

/// `message.read` (the reader's org): the messages this request newly marked read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageRead<'a> {
    pub reader: &'a str,
    pub msg_ids: &'a [String],
    pub read_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sent_event_names_its_recipient_by_kind() {
        let event = MessageSent {
            msg_id: "m",
            client_msg_id: "c",
            conv: "g:team",
            from: "alice",
            to: SentTo::Group("team"),
            seq: 3,
            sent_at: 10,
            content: serde_json::json!({ "type": "text", "text": "hi" }),
        };
        let value = serde_json::to_value(&event).expect("serializes");
        assert_eq!(value["to"], serde_json::json!({ "group": "team" }));
        assert_eq!(
            serde_json::to_value(SentTo::User("bob")).expect("serializes"),
            serde_json::json!({ "user": "bob" })
        );
        assert_eq!(value["content"]["text"], "hi");
    }
}
