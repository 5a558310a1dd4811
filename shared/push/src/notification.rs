//! [`Notification`]: what one (coalesced) push says, whatever the vendor, and the two
//! shapes vendors carry it in: typed JSON ([`Notification::json`]: Web Push, APNs
//! custom keys, HMS data) and a string map ([`Notification::data_strings`]: FCM `data`,
//! whose values must be strings).
//!
//! With preview off the sender's name and the text are not in the push at all, so they
//! never reach a vendor.

use std::collections::BTreeMap;

use courier_core::{ConvId, MsgId, UserId};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::b64;

/// The longest preview text sent, in characters; longer text is cut and ends in `…`.
pub const MAX_PREVIEW_TEXT_CHARS: usize = 140;
/// The longest sender name sent, in characters.
pub const MAX_SENDER_CHARS: usize = 64;
/// The length of a [`topic_for`] value: RFC 8030 §5.4 allows at most 32 base64url
/// characters, and APNs collapse ids at most 64 bytes.
pub const TOPIC_CHARS: usize = 32;

/// One push to one user: the newest message and how many are unread in total (a burst
/// of messages gives one notification carrying the total).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The user the push is for.
    pub user: UserId,
    /// Messages the user has not acked, across all conversations (the badge).
    pub unread: u64,
    /// The conversation of the newest message.
    pub conv: ConvId,
    /// The newest message.
    pub msg_id: MsgId,
    /// Sender and text, or `None` when the user turned previews off.
    pub preview: Option<Preview>,
}

/// What a notification shows when previews are on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// The sender's display name.
    pub sender: String,
    /// The message text (cut to [`MAX_PREVIEW_TEXT_CHARS`] when sent).
    pub text: String,
}

/// The push topic / collapse id of a conversation: base64url of the first 24 bytes of
/// SHA-256("courier-conv:" + conv id), exactly [`TOPIC_CHARS`] characters. A hash, so
/// the vendor learns nothing of the ids; a newer push of the same conversation replaces
/// an undelivered older one.
pub fn topic_for(conv: &ConvId) -> String {
    let digest = Sha256::new()
        .chain_update(b"courier-conv:")
        .chain_update(conv.as_str().as_bytes())
        .finalize();
    b64::url_encode(&digest[..24])
}

/// `text` cut to `max` characters, with `…` when cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

impl Notification {
    /// [`topic_for`] of this notification's conversation.
    pub fn topic(&self) -> String {
        topic_for(&self.conv)
    }

    /// The preview as sent: `(sender, text)`, each cut to its limit.
    pub fn clipped_preview(&self) -> Option<(String, String)> {
        self.preview.as_ref().map(|p| {
            (
                clip(&p.sender, MAX_SENDER_CHARS),
                clip(&p.text, MAX_PREVIEW_TEXT_CHARS),
            )
        })
    }

    /// The notification as typed JSON:
    /// `{"type":"message","uid":…,"conv":…,"msg_id":…,"unread":n}` plus
    /// `"sender"` and `"text"` when previews are on.
    pub fn json(&self) -> Value {
        let mut value = json!({
            "type": "message",
            "uid": self.user.as_str(),
            "conv": self.conv.as_str(),
            "msg_id": self.msg_id.as_str(),
            "unread": self.unread,
        });
        if let (Some((sender, text)), Some(map)) = (self.clipped_preview(), value.as_object_mut()) {
            map.insert("sender".into(), Value::String(sender));
            map.insert("text".into(), Value::String(text));
        }
        value
    }

    /// The same fields as [`Notification::json`], every value a string.
    pub fn data_strings(&self) -> BTreeMap<String, String> {
        let mut data = BTreeMap::from([
            ("type".to_string(), "message".to_string()),
            ("uid".to_string(), self.user.to_string()),
            ("conv".to_string(), self.conv.to_string()),
            ("msg_id".to_string(), self.msg_id.to_string()),
            ("unread".to_string(), self.unread.to_string()),
        ]);
        if let Some((sender, text)) = self.clipped_preview() {
            data.insert("sender".into(), sender);
            data.insert("text".into(), text);
        }
        data
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A notification for tests: `u2` has 3 unread, newest in `dm:u1:u2`.
    pub(crate) fn sample(preview: bool) -> Notification {
        Notification {
            user: UserId::parse("u2").expect("valid id"),
            unread: 3,
            conv: ConvId::parse("dm:u1:u2").expect("valid conv"),
            msg_id: MsgId::parse("m-42").expect("valid id"),
            preview: preview.then(|| Preview {
                sender: "Ann".into(),
                text: "lunch?".into(),
            }),
        }
    }

    #[test]
    fn topic_is_32_base64url_characters_and_differs_per_conversation() {
        let a = topic_for(&ConvId::parse("dm:u1:u2").expect("valid"));
        let b = topic_for(&ConvId::parse("g:team").expect("valid"));
        assert_eq!(a.len(), TOPIC_CHARS);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a, b);
        assert_eq!(a, sample(false).topic(), "stable for one conversation");
    }

    #[test]
    fn preview_off_leaves_sender_and_text_out() {
        let json = sample(false).json();
        assert!(json.get("sender").is_none() && json.get("text").is_none());
        assert_eq!(json["unread"], 3);
        let data = sample(false).data_strings();
        assert!(!data.contains_key("sender") && !data.contains_key("text"));
        assert_eq!(data["unread"], "3");
    }

    #[test]
    fn preview_on_carries_sender_and_text() {
        let json = sample(true).json();
        assert_eq!(json["sender"], "Ann");
        assert_eq!(json["text"], "lunch?");
        assert_eq!(json["conv"], "dm:u1:u2");
        assert_eq!(json["msg_id"], "m-42");
        assert_eq!(sample(true).data_strings()["text"], "lunch?");
    }

    #[test]
    fn long_previews_are_cut() {
        let mut n = sample(true);
        n.preview = Some(Preview {
            sender: "s".repeat(100),
            text: "ü".repeat(500),
        });
        let (sender, text) = n.clipped_preview().expect("preview on");
        assert_eq!(sender.chars().count(), MAX_SENDER_CHARS + 1);
        assert_eq!(text.chars().count(), MAX_PREVIEW_TEXT_CHARS + 1);
        assert!(text.ends_with('…'));
    }
}
