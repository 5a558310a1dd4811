//! The invariant test's checks, on the store and streams after the restart: every
//! request answered 2xx took effect exactly once, every one answered with an error
//! changed nothing, every stream is dense, and the webhook events say the same.

use std::collections::{BTreeMap, BTreeSet};

use courier_store::sql::{Sql, SqlValue};
use serde_json::Value;

use super::workload::{Op, USERS, request};
use crate::client::user_token;

/// What the checks counted.
pub(super) struct Summary {
    /// Distinct `(sender, client_msg_id)`s sent.
    pub(super) ids: usize,
    /// Of them, stored (answered 2xx at least once).
    pub(super) stored: usize,
    /// Distinct webhook events received.
    pub(super) events: usize,
}

/// A user's whole stream through `GET /v1/sync`, checked dense: seqs 1..=head.
fn dense_stream(base: &str, uid: &str) -> Vec<Value> {
    let token = user_token(uid);
    let (mut after, mut entries) = (0, Vec::new());
    let head = loop {
        let (status, page) = request(
            base,
            "GET",
            &format!("/v1/sync?after={after}&limit=500"),
            &token,
            None,
        );
        assert_eq!(status, 200, "{page}");
        entries.extend(page["entries"].as_array().unwrap().iter().cloned());
        after = page["next"].as_i64().unwrap();
        if page["more"] != true {
            break page["head"].as_i64().unwrap();
        }
    };
    let seqs: Vec<i64> = entries.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=head).collect::<Vec<_>>(),
        "{uid}'s stream is not dense"
    );
    entries
}

/// The integer a counting query answers (0 for no row).
pub(super) fn count(db: &dyn Sql, sql: &str, params: &[SqlValue]) -> i64 {
    db.query_i64(sql, params).unwrap().unwrap_or(0)
}

/// Checks the effects of the `log`ged requests on the gateway at `base` (after its
/// queue is drained), its store `db`, and the webhook events `deliveries` received.
pub(super) fn effects(base: &str, db: &dyn Sql, log: &[Op], deliveries: &[Value]) -> Summary {
    let streams: BTreeMap<&str, Vec<Value>> =
        USERS.iter().map(|u| (*u, dense_stream(base, u))).collect();
    for u in USERS {
        let head = count(db, "SELECT head_seq FROM users WHERE uid = ?", &[u.into()]);
        assert_eq!(head, streams[u].len() as i64, "{u}: head_seq");
    }
    let entries_of = |kind: &str, pred: &dyn Fn(&Value) -> bool| -> BTreeMap<&str, usize> {
        streams
            .iter()
            .map(|(u, entries)| {
                (
                    *u,
                    entries
                        .iter()
                        .filter(|e| e["kind"] == kind && pred(e))
                        .count(),
                )
            })
            .collect()
    };

    // Sends: a 2xx for an id means exactly once in the sender's and every recipient's
    // stream, under the one msg_id every 2xx named; errors only means nowhere.
    let mut sends: BTreeMap<(String, String), Vec<&Op>> = BTreeMap::new();
    for op in log {
        if let Op::Send { sender, cmid, .. } = op {
            sends
                .entry((sender.clone(), cmid.clone()))
                .or_default()
                .push(op);
        }
    }
    let mut msg_ids_of: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for ((sender, cmid), ops) in &sends {
        let ok: BTreeSet<&String> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Send { status, msg_id, .. } if (200..300).contains(status) => msg_id.as_ref(),
                _ => None,
            })
            .collect();
        let peer = match ops[0] {
            Op::Send { peer, .. } => peer.clone(),
            _ => unreachable!(),
        };
        let holders: Vec<String> = match &peer {
            Some(p) => vec![sender.clone(), p.clone()],
            None => USERS.iter().map(|u| u.to_string()).collect(),
        };
        let seen = entries_of("message", &|e| {
            e["from"] == sender.as_str() && e["client_msg_id"] == cmid.as_str()
        });
        let rows = count(
            db,
            "SELECT count(*) FROM messages WHERE sender = ? AND client_msg_id = ?",
            &[sender.into(), cmid.into()],
        );
        match ok.len() {
            0 => {
                assert_eq!(
                    rows, 0,
                    "{sender}/{cmid} only failed ({ops:?}) but is stored"
                );
                assert!(
                    seen.values().all(|n| *n == 0),
                    "{sender}/{cmid} only failed ({ops:?}) but is in streams {seen:?}"
                );
            }
            1 => {
                let msg_id = ok.into_iter().next().unwrap().clone();
                assert_eq!(rows, 1, "{sender}/{cmid}");
                for u in USERS {
                    let want = usize::from(holders.iter().any(|h| h == u));
                    assert_eq!(
                        seen[u], want,
                        "{sender}/{cmid} ({msg_id}) in {u}'s stream: {ops:?}"
                    );
                }
                for e in streams[sender.as_str()]
                    .iter()
                    .filter(|e| e["kind"] == "message" && e["client_msg_id"] == cmid.as_str())
                {
                    assert_eq!(e["msg_id"], msg_id.as_str(), "{sender}/{cmid}");
                }
                let recipients = holders.iter().filter(|h| *h != sender).cloned().collect();
                msg_ids_of.insert(msg_id, (sender.clone(), recipients));
            }
            _ => panic!("{sender}/{cmid} got different msg_ids: {ops:?}"),
        }
    }

    // Recalls: a 200 means the message is recalled everywhere it is, with one
    // `recall` entry per stream; errors only leave it as it was.
    let mut recalls: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
    for op in log {
        if let Op::Recall { msg_id, status, .. } = op {
            recalls.entry(msg_id).or_default().push(*status);
        }
    }
    for (msg_id, statuses) in &recalls {
        let ok = statuses.contains(&200);
        let recalled = count(
            db,
            "SELECT count(*) FROM messages WHERE msg_id = ? AND recalled <> 0",
            &[(*msg_id).into()],
        );
        let recall_entries = entries_of("recall", &|e| e["msg_id"] == *msg_id);
        let copies = entries_of("message", &|e| e["msg_id"] == *msg_id);
        for u in USERS {
            let want = if ok { copies[u] } else { 0 };
            assert_eq!(
                recall_entries[u], want,
                "recall of {msg_id} ({statuses:?}) in {u}'s stream"
            );
            for e in streams[u]
                .iter()
                .filter(|e| e["kind"] == "message" && e["msg_id"] == *msg_id)
            {
                assert_eq!(
                    e["recalled"] == true,
                    ok,
                    "{msg_id} ({statuses:?}) in {u}'s stream: {e}"
                );
            }
        }
        assert_eq!(recalled, i64::from(ok), "{msg_id}: recalls {statuses:?}");
    }

    // Receipts: a reader has a read row and one `read` entry for a message exactly when
    // a 200 named it newly read; the sender's last receipt counts every reader.
    let mut newly: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut attempted: BTreeSet<(String, String)> = BTreeSet::new();
    for op in log {
        if let Op::Receipt {
            reader,
            msg_ids,
            status,
            read,
        } = op
        {
            for m in msg_ids {
                attempted.insert((reader.clone(), m.clone()));
            }
            if *status == 200 {
                for m in read {
                    *newly.entry((reader.clone(), m.clone())).or_default() += 1;
                }
            }
        }
    }
    for (reader, msg_id) in &attempted {
        let marked = newly
            .get(&(reader.clone(), msg_id.clone()))
            .copied()
            .unwrap_or(0);
        assert!(marked <= 1, "{reader} newly read {msg_id} {marked} times");
        let rows = count(
            db,
            "SELECT count(*) FROM receipts WHERE msg_id = ? AND reader = ?",
            &[msg_id.into(), reader.into()],
        );
        let read_entries = streams[reader.as_str()]
            .iter()
            .filter(|e| {
                e["kind"] == "read"
                    && e["msg_ids"]
                        .as_array()
                        .is_some_and(|ids| ids.iter().any(|id| id == msg_id.as_str()))
            })
            .count();
        assert_eq!(
            (rows, read_entries),
            (marked as i64, marked),
            "{reader} reading {msg_id}"
        );
    }
    for msg_id in newly.keys().map(|(_, m)| m).collect::<BTreeSet<_>>() {
        let (sender, recipients) = &msg_ids_of[msg_id];
        let readers = count(
            db,
            "SELECT count(*) FROM receipts WHERE msg_id = ?",
            &[msg_id.into()],
        );
        let last = streams[sender.as_str()]
            .iter()
            .rfind(|e| e["kind"] == "receipt" && e["msg_id"] == msg_id.as_str())
            .unwrap_or_else(|| panic!("no receipt entry for {msg_id} in {sender}'s stream"));
        assert_eq!(
            (last["read_count"].as_i64(), last["unread_count"].as_i64()),
            (Some(readers), Some(recipients.len() as i64 - readers)),
            "{msg_id}: {last}"
        );
    }

    // Webhooks: one event (at least one delivery) for each send, recall and read mark
    // answered 2xx, none for the others.
    let mut events: BTreeMap<String, Value> = BTreeMap::new();
    for event in deliveries {
        events.insert(event["id"].as_str().unwrap().to_string(), event.clone());
    }
    let of_type = |t: &str| -> BTreeSet<String> {
        events
            .iter()
            .filter(|(_, e)| e["type"] == t)
            .map(|(id, _)| id.clone())
            .collect()
    };
    let want_sent: BTreeSet<String> = msg_ids_of.keys().map(|m| format!("msg:{m}:sent")).collect();
    assert_eq!(of_type("message.sent"), want_sent, "message.sent events");
    let want_recalled: BTreeSet<String> = recalls
        .iter()
        .filter(|(_, statuses)| statuses.contains(&200))
        .map(|(m, _)| format!("msg:{m}:recalled"))
        .collect();
    assert_eq!(
        of_type("message.recalled"),
        want_recalled,
        "message.recalled events"
    );
    let sorted = |ids: &[Value]| -> Vec<String> {
        let mut ids: Vec<String> = ids
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let mut read_events: Vec<(String, Vec<String>)> = events
        .values()
        .filter(|e| e["type"] == "message.read")
        .map(|e| {
            (
                e["data"]["reader"].as_str().unwrap().to_string(),
                sorted(e["data"]["msg_ids"].as_array().unwrap()),
            )
        })
        .collect();
    let mut want_reads: Vec<(String, Vec<String>)> = log
        .iter()
        .filter_map(|op| match op {
            Op::Receipt {
                reader,
                status: 200,
                read,
                ..
            } if !read.is_empty() => {
                let mut read = read.clone();
                read.sort();
                Some((reader.clone(), read))
            }
            _ => None,
        })
        .collect();
    read_events.sort();
    want_reads.sort();
    assert_eq!(read_events, want_reads, "message.read events");
    Summary {
        ids: sends.len(),
        stored: msg_ids_of.len(),
        events: events.len(),
    }
}
