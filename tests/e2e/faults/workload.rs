//! The invariant test's workload: four users, each on its own thread, sending (1:1
//! and to their group), retrying ids, marking what others sent them read and
//! recalling their own messages, with every request and its answer logged.

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::client::user_token;
use crate::harness::call;

pub(super) const USERS: [&str; 4] = ["fa", "fb", "fc", "fd"];
pub(super) const GROUP: &str = "fg";
/// Operations per user thread.
const OPS: usize = 70;

/// A tiny deterministic generator (SplitMix64) for the workload's choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One request of the workload and its answer.
#[derive(Debug, Clone)]
pub(super) enum Op {
    Send {
        sender: String,
        cmid: String,
        /// `None`: the group.
        peer: Option<String>,
        status: u16,
        msg_id: Option<String>,
        accepted: bool,
    },
    Receipt {
        reader: String,
        msg_ids: Vec<String>,
        status: u16,
        read: Vec<String>,
    },
    Recall {
        msg_id: String,
        status: u16,
    },
}

/// A message some send got a 2xx for.
#[derive(Debug, Clone)]
struct Delivered {
    msg_id: String,
    recipients: Vec<String>,
}

pub(super) fn request(
    base: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let bytes = body.map(Value::to_string);
    let reply = call(
        method,
        &format!("{base}{path}"),
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        bytes.as_deref().map(str::as_bytes),
    );
    let json = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
    (reply.status, json)
}

/// Runs every user's share at once against the gateway at `base`; returns the log.
pub(super) fn run(base: &str, seed: u64) -> Vec<Op> {
    let log = Mutex::new(Vec::new());
    let delivered = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for (i, u) in USERS.iter().enumerate() {
            let (log, delivered) = (&log, &delivered);
            s.spawn(move || {
                user_workload(base, u, seed.wrapping_mul(31) + i as u64, log, delivered)
            });
        }
    });
    log.into_inner().unwrap()
}

/// One user's share of the workload: new sends (1:1 and to the group), retries of
/// earlier ids (as a client does after an error, and sometimes after a success),
/// read receipts of what others sent them, and recalls of their own messages.
fn user_workload(
    base: &str,
    me: &str,
    seed: u64,
    log: &Mutex<Vec<Op>>,
    delivered: &Mutex<Vec<Delivered>>,
) {
    let mut rng = Rng(seed);
    let token = user_token(me);
    let others: Vec<&str> = USERS.iter().copied().filter(|u| *u != me).collect();
    // (cmid, peer) of this user's sends so far.
    let mut mine: Vec<(String, Option<String>)> = Vec::new();
    let mut my_msgs: Vec<String> = Vec::new();
    let send = |cmid: &str, peer: &Option<String>| {
        let to = match peer {
            Some(p) => json!({ "user": p }),
            None => json!({ "group": GROUP }),
        };
        let body = json!({
            "client_msg_id": cmid,
            "to": to,
            "content": { "type": "text", "text": format!("text of {cmid}") },
        });
        let (status, reply) = request(base, "POST", "/v1/messages", &token, Some(&body));
        let msg_id = reply["msg_id"].as_str().map(str::to_string);
        if (200..300).contains(&status) {
            let recipients = match peer {
                Some(p) => vec![p.clone()],
                None => others.iter().map(|u| u.to_string()).collect(),
            };
            delivered.lock().unwrap().push(Delivered {
                msg_id: msg_id.clone().expect("a 2xx send has a msg_id"),
                recipients,
            });
        }
        log.lock().unwrap().push(Op::Send {
            sender: me.to_string(),
            cmid: cmid.to_string(),
            peer: peer.clone(),
            status,
            msg_id: msg_id.clone(),
            accepted: reply["status"] == "accepted",
        });
        (status, msg_id)
    };
    for k in 0..OPS {
        match rng.below(100) {
            0..50 => {
                let cmid = format!("{me}-{k}");
                let peer = match rng.below(3) {
                    0 => None,
                    _ => Some(others[rng.below(others.len())].to_string()),
                };
                let (status, msg_id) = send(&cmid, &peer);
                // A client retries an error at once half of the time.
                if status >= 500 && rng.below(2) == 0 {
                    let (_, again) = send(&cmid, &peer);
                    my_msgs.extend(again);
                }
                my_msgs.extend(msg_id);
                mine.push((cmid, peer));
            }
            50..65 if !mine.is_empty() => {
                let (cmid, peer) = mine[rng.below(mine.len())].clone();
                let (_, msg_id) = send(&cmid, &peer);
                my_msgs.extend(msg_id);
            }
            65..88 => {
                let pool: Vec<String> = delivered
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|d| d.recipients.iter().any(|r| r == me))
                    .map(|d| d.msg_id.clone())
                    .collect();
                if pool.is_empty() {
                    continue;
                }
                let mut ids: BTreeSet<String> = BTreeSet::new();
                for _ in 0..1 + rng.below(3) {
                    ids.insert(pool[rng.below(pool.len())].clone());
                }
                let msg_ids: Vec<String> = ids.into_iter().collect();
                let (status, reply) = request(
                    base,
                    "POST",
                    "/v1/receipts",
                    &token,
                    Some(&json!({ "msg_ids": msg_ids })),
                );
                let read = reply["read"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                log.lock().unwrap().push(Op::Receipt {
                    reader: me.to_string(),
                    msg_ids,
                    status,
                    read,
                });
            }
            88..100 if !my_msgs.is_empty() => {
                let msg_id = my_msgs[rng.below(my_msgs.len())].clone();
                let (status, _) = request(
                    base,
                    "POST",
                    &format!("/v1/messages/{msg_id}/recall"),
                    &token,
                    None,
                );
                log.lock().unwrap().push(Op::Recall { msg_id, status });
            }
            _ => {}
        }
    }
}
