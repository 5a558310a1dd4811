//! After the soak: drain the queue, then read every user's stream back through
//! `GET /v1/sync` and check that each accepted message is there exactly once for
//! each of its recipients (the sender included), and that each recall reached every
//! stream holding its message exactly once, with the content erased.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;

use super::mix::{Mix, To};
use crate::client::Conn;

/// What draining the queue took.
#[derive(Debug, Default)]
pub struct Drained {
    pub calls: u64,
    pub jobs: i64,
    pub remaining: i64,
    pub took: Duration,
}

/// Calls `POST /internal/drain` until it reports nothing remaining twice in a row
/// (the gateway's own drainer works beside it), or `limit` passes.
pub async fn drain(addr: SocketAddr, secret: &str, limit: Duration) -> Result<Drained> {
    let started = Instant::now();
    let mut conn = Conn::open(addr).await?;
    let mut drained = Drained::default();
    let mut quiet = 0;
    while quiet < 2 && started.elapsed() < limit {
        let (status, body) = conn
            .call_with(
                "POST",
                courier_gateway::drainer::DRAIN_PATH,
                &[("x-internal-secret", secret)],
                None,
            )
            .await?;
        anyhow::ensure!(
            status == 200,
            "drain answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        let answer: Value = serde_json::from_slice(&body)?;
        drained.calls += 1;
        drained.jobs += answer["done"].as_i64().unwrap_or(0);
        drained.remaining = answer["remaining"].as_i64().unwrap_or(-1);
        if drained.remaining == 0 {
            quiet += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
        } else {
            quiet = 0;
        }
    }
    drained.took = started.elapsed();
    Ok(drained)
}

/// What the streams held against what was accepted.
#[derive(Debug, Default, Clone)]
pub struct Delivery {
    pub streams: usize,
    pub entries: u64,
    pub messages: usize,
    pub recalls: usize,
    /// (recipient, message) pairs that should exist.
    pub copies: u64,
    pub missing: u64,
    pub duplicates: u64,
    /// Messages in a stream that was not theirs, or that no 201 answered.
    pub unexpected: u64,
    pub recall_missing: u64,
    pub recall_duplicates: u64,
    /// Recalled messages whose copy still has content, or copies marked recalled
    /// without a recall.
    pub wrong_content: u64,
    /// The first few problems, for the report.
    pub examples: Vec<String>,
}

impl Delivery {
    pub fn problems(&self) -> u64 {
        self.missing
            + self.duplicates
            + self.recall_missing
            + self.recall_duplicates
            + self.wrong_content
    }

    fn merge(&mut self, other: Delivery) {
        self.streams += other.streams;
        self.entries += other.entries;
        self.copies += other.copies;
        self.missing += other.missing;
        self.duplicates += other.duplicates;
        self.unexpected += other.unexpected;
        self.recall_missing += other.recall_missing;
        self.recall_duplicates += other.recall_duplicates;
        self.wrong_content += other.wrong_content;
        for example in other.examples {
            if self.examples.len() < 5 {
                self.examples.push(example);
            }
        }
    }
}

/// The delivery checks: the first, and the last after draining again (at most
/// three checks, while problems remain).
#[derive(Debug, Default)]
pub struct Delivered {
    pub first: Delivery,
    pub last: Delivery,
    pub checks: u32,
}

/// What the load accepted, by user.
struct Expected {
    msg_ids: Vec<String>,
    /// Indexes into `msg_ids` of each user's messages.
    by_user: Vec<Vec<u32>>,
    recalled: HashSet<String>,
    unsure: HashSet<String>,
}

impl Expected {
    fn of(mix: &Mix) -> Self {
        let mut by_user = vec![Vec::new(); mix.uids.len()];
        for (i, message) in mix.accepted.iter().enumerate() {
            let i = i as u32;
            match message.to {
                To::User(peer) => {
                    by_user[message.sender].push(i);
                    by_user[peer].push(i);
                }
                To::Group => (0..mix.members).for_each(|member| by_user[member].push(i)),
            }
        }
        Self {
            msg_ids: mix.accepted.iter().map(|m| m.msg_id.clone()).collect(),
            by_user,
            recalled: mix.recalled.clone(),
            unsure: mix.recall_unsure.clone(),
        }
    }
}

/// One message's copies in one stream.
#[derive(Default)]
struct Seen {
    messages: u32,
    recalls: u32,
    erased: bool,
}

/// Reads a user's whole stream: msg_id → what it holds of that message.
async fn read_stream(conn: &mut Conn, token: &str) -> Result<(HashMap<String, Seen>, u64)> {
    let (mut seen, mut entries, mut after) = (HashMap::<String, Seen>::new(), 0u64, 0i64);
    loop {
        let path = format!("/v1/sync?after={after}&limit=500");
        let (status, body) = conn.call("GET", &path, Some(token), None).await?;
        anyhow::ensure!(status == 200, "sync answered {status}");
        let page: Value = serde_json::from_slice(&body)?;
        for entry in page["entries"].as_array().into_iter().flatten() {
            entries += 1;
            let Some(msg_id) = entry["msg_id"].as_str() else {
                continue;
            };
            let copy = seen.entry(msg_id.to_string()).or_default();
            match entry["kind"].as_str() {
                Some("message") => {
                    copy.messages += 1;
                    copy.erased = entry["recalled"] == true && entry["content"].is_null();
                }
                Some("recall") => copy.recalls += 1,
                _ => {}
            }
        }
        after = page["next"].as_i64().context("no next")?;
        if page["more"] != true {
            return Ok((seen, entries));
        }
    }
}

fn check_stream(
    expected: &Expected,
    user: usize,
    uid: &str,
    seen: &HashMap<String, Seen>,
    out: &mut Delivery,
) {
    let problem = |out: &mut Delivery, what: String| {
        if out.examples.len() < 5 {
            out.examples.push(format!("{uid}: {what}"));
        }
    };
    let mine: HashSet<&str> = expected.by_user[user]
        .iter()
        .map(|&i| expected.msg_ids[i as usize].as_str())
        .collect();
    for &msg_id in &mine {
        out.copies += 1;
        let copy = seen.get(msg_id);
        let messages = copy.map_or(0, |c| c.messages);
        if messages == 0 {
            out.missing += 1;
            problem(out, format!("{msg_id} missing"));
            continue;
        }
        if messages > 1 {
            out.duplicates += u64::from(messages - 1);
            problem(out, format!("{msg_id} {messages} times"));
        }
        let (recalls, erased) = copy.map_or((0, false), |c| (c.recalls, c.erased));
        if expected.unsure.contains(msg_id) {
            continue;
        }
        if expected.recalled.contains(msg_id) {
            if recalls == 0 {
                out.recall_missing += 1;
                problem(out, format!("{msg_id}: no recall entry"));
            } else if recalls > 1 {
                out.recall_duplicates += u64::from(recalls - 1);
                problem(out, format!("{msg_id}: {recalls} recall entries"));
            }
            if !erased {
                out.wrong_content += 1;
                problem(out, format!("{msg_id}: recalled but content kept"));
            }
        } else if erased || recalls > 0 {
            out.wrong_content += 1;
            problem(out, format!("{msg_id}: recalled without a recall"));
        }
    }
    for (msg_id, copy) in seen {
        if copy.messages > 0 && !mine.contains(msg_id.as_str()) {
            out.unexpected += u64::from(copy.messages);
            problem(out, format!("{msg_id} not expected here"));
        }
    }
}

/// Reads every user's stream over `connections` connections and checks it.
pub async fn check(addr: SocketAddr, mix: &Mix, connections: usize) -> Result<Delivery> {
    let expected = Arc::new(Expected::of(mix));
    let users: Vec<(usize, String, String)> = mix
        .uids
        .iter()
        .enumerate()
        .map(|(u, uid)| (u, uid.clone(), mix.token(u).to_string()))
        .collect();
    let mut handles = Vec::new();
    for part in users.chunks(users.len().div_ceil(connections.max(1))) {
        let (part, expected) = (part.to_vec(), Arc::clone(&expected));
        handles.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await?;
            let mut out = Delivery::default();
            for (user, uid, token) in part {
                let (seen, entries) = read_stream(&mut conn, &token)
                    .await
                    .with_context(|| format!("reading {uid}'s stream"))?;
                out.streams += 1;
                out.entries += entries;
                check_stream(&expected, user, &uid, &seen, &mut out);
            }
            anyhow::Ok(out)
        }));
    }
    let mut delivery = Delivery {
        messages: mix.accepted.len(),
        recalls: mix.recalled.len(),
        ..Delivery::default()
    };
    for handle in handles {
        delivery.merge(handle.await??);
    }
    Ok(delivery)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected() -> Expected {
        // m0: u0 → u1; m1: u1 → the group {u0, u1, u2}, recalled.
        Expected {
            msg_ids: vec!["m0".into(), "m1".into()],
            by_user: vec![vec![0, 1], vec![0, 1], vec![1]],
            recalled: HashSet::from(["m1".to_string()]),
            unsure: HashSet::new(),
        }
    }

    fn seen(copies: &[(&str, u32, u32, bool)]) -> HashMap<String, Seen> {
        copies
            .iter()
            .map(|&(id, messages, recalls, erased)| {
                (
                    id.to_string(),
                    Seen {
                        messages,
                        recalls,
                        erased,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_complete_stream_passes() {
        let mut out = Delivery::default();
        let stream = seen(&[("m0", 1, 0, false), ("m1", 1, 1, true)]);
        check_stream(&expected(), 0, "u0", &stream, &mut out);
        assert_eq!((out.copies, out.problems(), out.unexpected), (2, 0, 0));
    }

    #[test]
    fn losses_duplicates_strays_and_half_recalls_are_counted() {
        let mut out = Delivery::default();
        let stream = seen(&[
            ("m0", 2, 0, false),
            ("m1", 1, 0, false),
            ("m9", 1, 0, false),
        ]);
        check_stream(&expected(), 1, "u1", &stream, &mut out);
        assert_eq!(out.duplicates, 1);
        assert_eq!(out.recall_missing, 1);
        assert_eq!(out.wrong_content, 1, "recalled but content kept");
        assert_eq!(out.unexpected, 1);
        let mut out = Delivery::default();
        check_stream(&expected(), 2, "u2", &seen(&[]), &mut out);
        assert_eq!((out.copies, out.missing), (1, 1));
    }
}
