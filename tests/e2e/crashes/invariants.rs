//! What must hold after the crashes, checked in the store (every user, 10,000 of
//! them) and through the API (the users with clients, and the offline ones):
//! dense streams; every accepted message exactly once in each of its streams and no
//! other; exact read receipts; recalls applied everywhere.

use std::collections::{BTreeMap, BTreeSet};

use courier_store::Sql;
use serde_json::Value;

use super::workload::{CROWD, Cast, Ledger, Sent, To};
use crate::client::{Client, Expect, user_token};
use crate::harness::Gateway;

/// Sizes of what was checked.
pub struct Figures {
    pub entries: i64,
    pub copies: usize,
    pub reads: usize,
    /// Readers of the crowd message (its receipts were written mid-fan-out).
    pub crowd_readers: usize,
}

/// The users whose stream holds `sent`: both sides of a 1:1, every member of a group.
pub fn holders(cast: &Cast, sent: &Sent) -> BTreeSet<String> {
    match &sent.to {
        To::User(peer) => [sent.sender.clone(), peer.clone()].into(),
        To::Group(gid) if gid == CROWD => cast.crowd.iter().cloned().collect(),
        To::Group(gid) => cast.groups[gid].iter().cloned().collect(),
    }
}

fn text(v: &courier_store::SqlValue) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn int(v: &courier_store::SqlValue) -> i64 {
    v.as_i64().unwrap_or(-1)
}

/// Differences between two per-user sets, the first few of them.
fn diff(
    expected: &BTreeMap<String, BTreeSet<String>>,
    actual: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let users: BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
    let none = BTreeSet::new();
    users
        .into_iter()
        .filter_map(|u| {
            let (e, a) = (
                expected.get(u).unwrap_or(&none),
                actual.get(u).unwrap_or(&none),
            );
            (e != a).then(|| {
                format!(
                    "{u}: missing {:?}, unexpected {:?}",
                    e.difference(a).collect::<Vec<_>>(),
                    a.difference(e).collect::<Vec<_>>()
                )
            })
        })
        .take(10)
        .collect()
}

pub fn check(gw: &Gateway, db: &dyn Sql, cast: &Cast, ledger: &Ledger) -> Figures {
    let by_id: BTreeMap<&str, &Sent> = ledger.sends.iter().map(|s| (s.msg_id(), s)).collect();
    assert_eq!(
        by_id.len(),
        ledger.sends.len(),
        "one msg_id per accepted send"
    );
    let entries = dense_streams(db, cast);
    let copies = messages_exactly_once(db, cast, ledger);
    let reads = receipts_exact(gw, db, cast, ledger, &by_id);
    let crowd = ledger
        .sends
        .iter()
        .find(|s| s.to == To::Group(CROWD.into()));
    let crowd_readers = ledger
        .reads
        .values()
        .filter(|ids| crowd.is_some_and(|c| ids.contains(c.msg_id())))
        .count();
    recalls_everywhere(db, cast, ledger);
    api_views(gw, cast, ledger, &by_id);
    Figures {
        entries,
        copies,
        reads,
        crowd_readers,
    }
}

/// Every user's stream is 1..head with no gap (the primary key forbids a repeat).
fn dense_streams(db: &dyn Sql, cast: &Cast) -> i64 {
    let rows = db
        .query(
            "SELECT u.uid, u.head_seq, count(e.seq), COALESCE(min(e.seq), 0), COALESCE(max(e.seq), 0)
             FROM users u LEFT JOIN entries e ON e.uid = u.uid GROUP BY u.uid, u.head_seq",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), cast.crowd.len(), "every user of the run");
    let mut total = 0;
    for r in &rows {
        let (uid, head, count, min, max) =
            (text(&r[0]), int(&r[1]), int(&r[2]), int(&r[3]), int(&r[4]));
        assert!(count > 0, "{uid} has an empty stream");
        assert_eq!(
            (min, max, head),
            (1, count, count),
            "{uid}: a stream of {count} entries must be 1..{count} with head {count}"
        );
        total += count;
    }
    total
}

/// Every accepted message is in each of its holders' streams exactly once, and no
/// stream holds anything else; the stored messages are exactly the accepted ones,
/// each at the seq its answer gave the sender.
fn messages_exactly_once(db: &dyn Sql, cast: &Cast, ledger: &Ledger) -> usize {
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for sent in &ledger.sends {
        for uid in holders(cast, sent) {
            expected
                .entry(uid)
                .or_default()
                .insert(sent.msg_id().to_string());
        }
    }
    let rows = db
        .query(
            "SELECT uid, msg_id, count(*) FROM entries WHERE kind = 'message' GROUP BY uid, msg_id",
            &[],
        )
        .unwrap();
    let repeated: Vec<String> = rows
        .iter()
        .filter(|r| int(&r[2]) != 1)
        .map(|r| format!("{} holds {} {} times", text(&r[0]), text(&r[1]), int(&r[2])))
        .take(10)
        .collect();
    assert!(
        repeated.is_empty(),
        "a message repeated in a stream: {repeated:?}"
    );
    let mut actual: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &rows {
        actual.entry(text(&r[0])).or_default().insert(text(&r[1]));
    }
    let wrong = diff(&expected, &actual);
    assert!(
        wrong.is_empty(),
        "streams differ from the accepted sends: {wrong:#?}"
    );
    let crowd: Vec<&Sent> = ledger
        .sends
        .iter()
        .filter(|s| s.to == To::Group(CROWD.into()))
        .collect();
    assert_eq!(crowd.len(), 1, "one crowd message");
    let reached = actual
        .values()
        .filter(|ids| ids.contains(crowd[0].msg_id()))
        .count();
    assert_eq!(
        reached,
        cast.crowd.len(),
        "the fan-out reached every member"
    );

    let stored: BTreeSet<(String, String, String, i64)> = db
        .query(
            "SELECT m.msg_id, m.sender, m.client_msg_id, e.seq FROM messages m
             LEFT JOIN entries e ON e.uid = m.sender AND e.msg_id = m.msg_id AND e.kind = 'message'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (text(&r[0]), text(&r[1]), text(&r[2]), int(&r[3])))
        .collect();
    let accepted: BTreeSet<(String, String, String, i64)> = ledger
        .sends
        .iter()
        .map(|s| {
            (
                s.msg_id().to_string(),
                s.sender.clone(),
                s.body["client_msg_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                s.answer["seq"].as_i64().unwrap_or(-2),
            )
        })
        .collect();
    assert_eq!(
        stored, accepted,
        "stored messages = accepted sends, at their answers' seqs"
    );
    rows.len()
}

/// Reads: the `receipts` rows and each reader's `read` entries name exactly what its
/// 2xx receipts named, each once; the sender's newest `receipt` entry and the
/// readers view count exactly those readers (and, but for the crowd message, the
/// unread ones).
fn receipts_exact(
    gw: &Gateway,
    db: &dyn Sql,
    cast: &Cast,
    ledger: &Ledger,
    by_id: &BTreeMap<&str, &Sent>,
) -> usize {
    let mut readers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (reader, ids) in &ledger.reads {
        for id in ids {
            readers
                .entry(id.clone())
                .or_default()
                .insert(reader.clone());
        }
    }
    let mut stored: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in db
        .query("SELECT msg_id, reader FROM receipts", &[])
        .unwrap()
    {
        stored.entry(text(&r[0])).or_default().insert(text(&r[1]));
    }
    let wrong = diff(&readers, &stored);
    assert!(
        wrong.is_empty(),
        "receipts rows differ from the 2xx receipts: {wrong:#?}"
    );

    let mut entered: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in db
        .query("SELECT uid, data FROM entries WHERE kind = 'read'", &[])
        .unwrap()
    {
        let data: Value = serde_json::from_str(&text(&r[1])).unwrap();
        for id in data["msg_ids"].as_array().into_iter().flatten() {
            let id = id.as_str().unwrap_or_default().to_string();
            assert!(
                entered.entry(text(&r[0])).or_default().insert(id.clone()),
                "{} has {id} in two read entries",
                text(&r[0])
            );
        }
    }
    let wrong = diff(&ledger.reads, &entered);
    assert!(
        wrong.is_empty(),
        "read entries differ from the 2xx receipts: {wrong:#?}"
    );

    // The newest receipt entry of each (sender, message).
    let mut newest: BTreeMap<String, (String, Value)> = BTreeMap::new();
    for r in db
        .query(
            "SELECT uid, msg_id, data FROM entries WHERE kind = 'receipt' ORDER BY seq",
            &[],
        )
        .unwrap()
    {
        let data: Value = serde_json::from_str(&text(&r[2])).unwrap();
        newest.insert(text(&r[1]), (text(&r[0]), data));
    }
    let unreceipted: Vec<&String> = newest
        .keys()
        .filter(|id| !readers.contains_key(*id))
        .collect();
    assert!(
        unreceipted.is_empty(),
        "receipt entries for unread messages: {unreceipted:?}"
    );
    let client = Client::of(gw);
    for (id, who) in &readers {
        let sent = by_id[id.as_str()];
        let recipients: BTreeSet<String> = holders(cast, sent)
            .into_iter()
            .filter(|u| *u != sent.sender)
            .collect();
        let unread: Vec<&String> = recipients.difference(who).collect();
        let (uid, receipt) = newest
            .get(id)
            .unwrap_or_else(|| panic!("no receipt entry for {id}"));
        assert_eq!(
            uid, &sent.sender,
            "{id}: the receipt is in the sender's stream"
        );
        assert_eq!(receipt["read_count"], who.len(), "{id}: {receipt}");
        assert_eq!(receipt["ref_seq"], sent.answer["seq"], "{id}: {receipt}");
        // The crowd message's receipts are written mid-fan-out: its recipients are
        // then the group's members (but the sender), not the streams reached so far.
        assert_eq!(receipt["unread_count"], unread.len(), "{id}: {receipt}");
        let view = client
            .call(
                "GET",
                &format!("/v1/messages/{id}/receipts"),
                Some(&user_token(&sent.sender)),
                None,
            )
            .expect_json(200);
        let list = |k: &str| -> Vec<String> {
            view[k]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        assert_eq!(
            list("read"),
            who.iter().cloned().collect::<Vec<_>>(),
            "{id}: readers"
        );
        assert_eq!(
            list("unread"),
            unread.into_iter().cloned().collect::<Vec<_>>(),
            "{id}: unread"
        );
    }
    readers.values().map(BTreeSet::len).sum()
}

/// Recalled messages (exactly those whose recall got a 2xx) have no content and a
/// `recall` entry in each holder's stream, once; no other message has one.
fn recalls_everywhere(db: &dyn Sql, cast: &Cast, ledger: &Ledger) {
    let flagged: BTreeSet<String> = db
        .query(
            "SELECT msg_id, recalled, CASE WHEN content IS NULL THEN 1 ELSE 0 END FROM messages",
            &[],
        )
        .unwrap()
        .iter()
        .filter(|r| {
            let (recalled, erased) = (int(&r[1]) != 0, int(&r[2]) != 0);
            assert_eq!(
                recalled,
                erased,
                "{}: recalled iff its content is erased",
                text(&r[0])
            );
            recalled
        })
        .map(|r| text(&r[0]))
        .collect();
    assert_eq!(
        flagged, ledger.recalls,
        "recalled messages = the 2xx recalls"
    );
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for sent in ledger
        .sends
        .iter()
        .filter(|s| ledger.recalls.contains(s.msg_id()))
    {
        for uid in holders(cast, sent) {
            expected
                .entry(uid)
                .or_default()
                .insert(sent.msg_id().to_string());
        }
    }
    let mut actual: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in db
        .query(
            "SELECT uid, msg_id, count(*) FROM entries WHERE kind = 'recall' GROUP BY uid, msg_id",
            &[],
        )
        .unwrap()
    {
        assert_eq!(
            int(&r[2]),
            1,
            "{} has {} recall entries for {}",
            text(&r[0]),
            int(&r[2]),
            text(&r[1])
        );
        actual.entry(text(&r[0])).or_default().insert(text(&r[1]));
    }
    let wrong = diff(&expected, &actual);
    assert!(
        wrong.is_empty(),
        "recall entries differ from the 2xx recalls: {wrong:#?}"
    );
}

/// What the users with clients and the offline users sync: dense seqs from 1, each
/// of their messages once, recalled ones without content, others as sent.
fn api_views(gw: &Gateway, cast: &Cast, ledger: &Ledger, by_id: &BTreeMap<&str, &Sent>) {
    let client = Client::of(gw);
    for uid in cast.actives.iter().chain(&cast.offline) {
        let stream = client.stream(uid);
        let seqs: Vec<i64> = stream
            .entries
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(
            seqs,
            (1..=stream.head).collect::<Vec<_>>(),
            "{uid}: synced seqs"
        );
        let mut seen = BTreeSet::new();
        for e in stream.messages() {
            let id = e["msg_id"].as_str().unwrap();
            assert!(seen.insert(id), "{uid}: {id} twice");
            let sent = by_id
                .get(id)
                .unwrap_or_else(|| panic!("{uid}: unknown message {e}"));
            if ledger.recalls.contains(id) {
                assert_eq!(
                    (&e["content"], &e["recalled"]),
                    (&Value::Null, &Value::Bool(true)),
                    "{uid}: {e}"
                );
            } else {
                assert_eq!(e["content"], sent.body["content"], "{uid}: {e}");
            }
        }
        let expected = ledger
            .sends
            .iter()
            .filter(|s| holders(cast, s).contains(uid))
            .count();
        assert_eq!(seen.len(), expected, "{uid}: its messages");
    }
}
