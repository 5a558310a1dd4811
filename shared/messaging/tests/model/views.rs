//! What a client sees: stream entries as values, and the checks that every view
//! of every user equals the model's.

use super::*;

impl Model {
    /// The API view of `uid`'s entry at `seq`.
    pub(super) fn seen(&self, uid: &str, seq: i64) -> Seen {
        let item = &self.streams[uid][seq as usize - 1];
        match item {
            Item::Message(i) => {
                let m = &self.msgs[*i];
                Seen::Message {
                    seq,
                    conv: m.conv.clone(),
                    msg_id: m.msg_id.clone(),
                    cmid: m.cmid.clone(),
                    from: m.sender.clone(),
                    sent_at: m.sent_at,
                    text: (!m.recalled).then(|| m.text.clone()),
                    recalled: m.recalled,
                }
            }
            Item::Read(ids) => Seen::Read {
                seq,
                msg_ids: ids.clone(),
            },
            Item::Receipt { msg, read, unread } => {
                let m = &self.msgs[*msg];
                Seen::Receipt {
                    seq,
                    conv: m.conv.clone(),
                    msg_id: m.msg_id.clone(),
                    ref_seq: m.sender_seq,
                    read: *read,
                    unread: *unread,
                }
            }
            Item::Recall(i) => {
                let m = &self.msgs[*i];
                Seen::Recall {
                    seq,
                    conv: m.conv.clone(),
                    msg_id: m.msg_id.clone(),
                    cmid: m.cmid.clone(),
                    sent_at: m.sent_at,
                }
            }
            Item::Control { gid, version } => Seen::Control {
                seq,
                event: "members_changed".into(),
                group: gid.clone(),
                version: *version,
            },
        }
    }
}

/// A stream entry as a client sees it, from the API's JSON or from the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seen {
    Message {
        seq: i64,
        conv: String,
        msg_id: String,
        cmid: String,
        from: String,
        sent_at: i64,
        text: Option<String>,
        recalled: bool,
    },
    Read {
        seq: i64,
        msg_ids: BTreeSet<String>,
    },
    Receipt {
        seq: i64,
        conv: String,
        msg_id: String,
        ref_seq: i64,
        read: i64,
        unread: i64,
    },
    Recall {
        seq: i64,
        conv: String,
        msg_id: String,
        cmid: String,
        sent_at: i64,
    },
    Control {
        seq: i64,
        event: String,
        group: String,
        version: i64,
    },
    Other(Value),
}

impl Seen {
    pub(super) fn from_api(entry: impl serde::Serialize) -> Seen {
        let v = serde_json::to_value(entry).unwrap();
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        let n = |k: &str| v[k].as_i64().unwrap_or(-1);
        let seq = n("seq");
        match v["kind"].as_str() {
            Some("message") => Seen::Message {
                seq,
                conv: s("conv"),
                msg_id: s("msg_id"),
                cmid: s("client_msg_id"),
                from: s("from"),
                sent_at: n("sent_at"),
                text: v["content"]["text"].as_str().map(String::from),
                recalled: v["recalled"].as_bool().unwrap_or(false),
            },
            Some("read") => Seen::Read {
                seq,
                msg_ids: v["msg_ids"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m.as_str().map(String::from))
                    .collect(),
            },
            Some("receipt") => Seen::Receipt {
                seq,
                conv: s("conv"),
                msg_id: s("msg_id"),
                ref_seq: n("ref_seq"),
                read: n("read_count"),
                unread: n("unread_count"),
            },
            Some("recall") => Seen::Recall {
                seq,
                conv: s("conv"),
                msg_id: s("msg_id"),
                cmid: s("client_msg_id"),
                sent_at: n("sent_at"),
            },
            Some("control") => Seen::Control {
                seq,
                event: s("event"),
                group: s("group"),
                version: n("version"),
            },
            _ => Seen::Other(v),
        }
    }

    pub(super) fn seq(&self) -> i64 {
        match self {
            Seen::Message { seq, .. }
            | Seen::Read { seq, .. }
            | Seen::Receipt { seq, .. }
            | Seen::Recall { seq, .. }
            | Seen::Control { seq, .. } => *seq,
            Seen::Other(_) => -1,
        }
    }
}

pub(super) fn heads_agree(db: &dyn Sql, model: &Model, ctx: &str) {
    for uid in USERS {
        let head = streams::head(db, uid).unwrap().unwrap();
        assert_eq!(head, model.head(uid), "{ctx}: head of {uid}");
    }
}

/// Every view of every user equals the model's.
pub(super) fn views_agree(db: &dyn Sql, model: &Model, limit: u32, ctx: &str) {
    let retried: BTreeSet<&str> = model
        .msgs
        .iter()
        .filter(|m| m.retried)
        .map(|m| m.msg_id.as_str())
        .collect();
    for uid in USERS {
        let caller = who(uid);
        // The whole stream through sync, `limit` entries a page.
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let page = reads::sync_once(
                db,
                &caller,
                &SyncQuery {
                    after: Seq::new(after).unwrap(),
                    limit,
                    wait_secs: 0,
                },
            )
            .unwrap();
            assert_eq!(page.head.get(), model.head(uid), "{ctx}: {uid} head");
            assert!(page.entries.len() <= limit as usize, "{ctx}: page size");
            let got: Vec<Seen> = page.entries.iter().map(Seen::from_api).collect();
            let last = got.last().map_or(after, Seen::seq);
            assert_eq!(page.next.get(), last, "{ctx}: {uid} next");
            assert_eq!(page.more, last < model.head(uid), "{ctx}: {uid} more");
            seen.extend(got);
            if !page.more {
                break;
            }
            assert!(last > after, "{ctx}: {uid}: sync made no progress");
            after = last;
        }
        let seqs: Vec<i64> = seen.iter().map(Seen::seq).collect();
        assert_eq!(
            seqs,
            (1..=model.head(uid)).collect::<Vec<_>>(),
            "{ctx}: {uid}'s stream is dense"
        );
        let expected: Vec<Seen> = (1..=model.head(uid)).map(|s| model.seen(uid, s)).collect();
        assert_eq!(seen, expected, "{ctx}: {uid}'s stream");
        STATS.with(|s| s.borrow_mut().entries += seen.len() as u64);
        in_send_order(uid, &seen, &retried, ctx);

        // The conversation list: counters, last entries, order.
        let list = reads::conversations(db, &caller).unwrap();
        let got: Vec<(String, i64, i64, Seen)> = list
            .conversations
            .iter()
            .map(|c| {
                let v = serde_json::to_value(c).unwrap();
                (
                    v["conv"].as_str().unwrap().to_string(),
                    v["unread"].as_i64().unwrap(),
                    v["updated_at"].as_i64().unwrap(),
                    Seen::from_api(&c.last),
                )
            })
            .collect();
        let mut expected: Vec<(String, i64, i64, Seen)> = model
            .convs
            .iter()
            .filter(|((u, _), _)| u == uid)
            .map(|((_, conv), c)| {
                (
                    conv.clone(),
                    c.unread,
                    c.updated_at,
                    model.seen(uid, c.last_seq),
                )
            })
            .collect();
        expected.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        assert_eq!(got, expected, "{ctx}: {uid}'s conversations");

        // History of each conversation, newest first, `limit` a page.
        for conv in expected.iter().map(|c| &c.0) {
            let mut got = Vec::new();
            let mut before = None;
            loop {
                let page = reads::history(
                    db,
                    &caller,
                    conv,
                    &HistoryQuery {
                        before,
                        limit: limit.min(HistoryQuery::MAX_LIMIT),
                    },
                )
                .unwrap();
                let entries: Vec<Seen> = page.entries.iter().map(Seen::from_api).collect();
                before = entries.last().map(|e| Seq::new(e.seq()).unwrap());
                got.extend(entries);
                if !page.more {
                    break;
                }
            }
            let expected: Vec<Seen> = seen
                .iter()
                .rev()
                .filter(|e| matches!(e, Seen::Message { conv: c, .. } if c == conv))
                .cloned()
                .collect();
            assert_eq!(got, expected, "{ctx}: {uid}'s history of {conv}");
        }

        let acked = db
            .query_i64(
                "SELECT acked_seq FROM devices WHERE uid = ? AND device = 'default'",
                &[uid.into()],
            )
            .unwrap();
        assert_eq!(acked, model.acked.get(uid).copied(), "{ctx}: {uid}'s ack");
    }
    // Who read what, as each sender sees it.
    for (i, m) in model.msgs.iter().enumerate() {
        let Reply { status, body, .. } = receipts::readers(db, &who(&m.sender), &m.msg_id).unwrap();
        let read: Vec<&String> = m
            .holders
            .iter()
            .filter(|u| model.read_by.contains(&(i, (*u).clone())))
            .collect();
        let unread: Vec<&String> = m
            .holders
            .iter()
            .filter(|u| **u != m.sender && !model.read_by.contains(&(i, (*u).clone())))
            .collect();
        assert_eq!(
            (status, body),
            (
                200,
                json!({ "msg_id": m.msg_id, "read": read, "unread": unread })
            ),
            "{ctx}: readers of {}",
            m.msg_id
        );
    }
}

/// A conversation's messages from others arrive in send order (a sender has its own
/// message at once, before earlier ones still in the queue). Sends the store took
/// through the overload path (`retried`) are written when the worker gets to them.
pub(super) fn in_send_order(uid: &str, stream: &[Seen], retried: &BTreeSet<&str>, ctx: &str) {
    let mut last: BTreeMap<&str, (i64, &str)> = BTreeMap::new();
    for entry in stream {
        if let Seen::Message {
            conv,
            msg_id,
            from,
            sent_at,
            ..
        } = entry
            && from != uid
            && !retried.contains(msg_id.as_str())
        {
            let key = (*sent_at, msg_id.as_str());
            if let Some(prev) = last.insert(conv, key) {
                assert!(
                    prev < key,
                    "{ctx}: {uid} got {msg_id} after the later {} in {conv}",
                    prev.1
                );
            }
        }
    }
}
