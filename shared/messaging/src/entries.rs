//! Stored stream rows → the API's [`Entry`] values.

use courier_core::api::{Entry, EntryBody, MessageEntry};
use courier_core::{ClientMsgId, Content, ConvId, Error, MsgId, Seq, UserId};
use courier_store::reads::StoredEntry;

fn corrupt(what: &str, seq: i64) -> Error {
    Error::Internal(format!("stored entry {seq}: bad {what}"))
}

fn parse<T>(
    value: Option<&str>,
    parse: impl Fn(&str) -> Result<T, Error>,
    what: &str,
    seq: i64,
) -> Result<T, Error> {
    value
        .ok_or_else(|| corrupt(what, seq))
        .and_then(|v| parse(v).map_err(|_| corrupt(what, seq)))
}

/// Converts one stored entry. Non-message kinds keep their fields as JSON in `data`.
pub fn to_entry(stored: StoredEntry) -> Result<Entry, Error> {
    let seq = stored.seq;
    let body = match stored.kind.as_str() {
        "message" => EntryBody::Message(MessageEntry {
            conv: parse(stored.conv.as_deref(), ConvId::read_back, "conv", seq)?,
            msg_id: parse(stored.msg_id.as_deref(), MsgId::parse, "msg_id", seq)?,
            client_msg_id: parse(
                stored.client_msg_id.as_deref(),
                ClientMsgId::parse,
                "client_msg_id",
                seq,
            )?,
            from: parse(stored.sender.as_deref(), UserId::parse, "sender", seq)?,
            sent_at: stored.sent_at.ok_or_else(|| corrupt("sent_at", seq))?,
            content: match (&stored.content, stored.recalled) {
                (Some(json), false) => Some(Content::from_stored(json)?),
                _ => None,
            },
            recalled: stored.recalled,
        }),
        kind => {
            // The other kinds carry their fields in `data`, tagged by `kind`.
            let mut data: serde_json::Map<String, serde_json::Value> = stored
                .data
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|_| corrupt("data", seq))?
                .unwrap_or_default();
            data.insert("kind".into(), kind.into());
            if let Some(conv) = &stored.conv {
                data.entry("conv").or_insert_with(|| conv.clone().into());
            }
            if let Some(msg_id) = &stored.msg_id {
                data.entry("msg_id")
                    .or_insert_with(|| msg_id.clone().into());
            }
            let body: EntryBody = serde_json::from_value(serde_json::Value::Object(data))
                .map_err(|e| corrupt(&format!("{kind} fields ({e})"), seq))?;
            body
        }
    };
    Ok(Entry {
        seq: Seq::new(seq).map_err(|_| corrupt("seq", seq))?,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(kind: &str, conv: &str, data: Option<&str>) -> StoredEntry {
        StoredEntry {
            seq: 3,
            kind: kind.into(),
            conv: Some(conv.into()),
            msg_id: Some("m1".into()),
            sender: Some("x".into()),
            data: data.map(Into::into),
            client_msg_id: Some("c1".into()),
            sent_at: Some(1),
            content: Some(r#"{"text":"hi","type":"text"}"#.into()),
            recalled: false,
        }
    }

    #[test]
    fn entries_of_conversations_whose_text_names_two_pairs_read_back() {
        // Users "x" and "x:y:z" talk in "dm:x:x:y:z", which "x:x" and "y:z" print too.
        let conv = "dm:x:x:y:z";
        let message = to_entry(stored("message", conv, None)).expect("message");
        let recall = stored(
            "recall",
            conv,
            Some(r#"{"msg_id":"m1","client_msg_id":"c1","sent_at":1}"#),
        );
        let receipt = stored(
            "receipt",
            conv,
            Some(r#"{"ref_seq":2,"read_count":1,"unread_count":0}"#),
        );
        for entry in [
            message,
            to_entry(recall).expect("recall"),
            to_entry(receipt).expect("receipt"),
        ] {
            assert_eq!(
                serde_json::to_value(&entry).expect("serializes")["conv"],
                conv
            );
        }
    }
}
