//! The soak's workload: which request comes next, in fixed proportions, and what the
//! answers teach the requests after them (stream cursors, messages to mark read, own
//! messages to recall, and every accepted message for the delivery check).

use std::collections::{HashSet, VecDeque};

use serde_json::{Value, json};

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Direct,
    Group,
    Sync,
    LongPoll,
    Ack,
    Receipt,
    Recall,
}

use Kind::*;

impl Kind {
    pub const ALL: [Kind; 7] = [Direct, Group, Sync, LongPoll, Ack, Receipt, Recall];

    pub fn name(self) -> &'static str {
        match self {
            Direct => "1:1 send",
            Group => "group send",
            Sync => "sync",
            LongPoll => "long-poll",
            Ack => "ack",
            Receipt => "read receipts",
            Recall => "recall",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The request slots, repeated: per 20 requests 6 1:1 sends, 1 group send, 6 syncs,
/// 2 long-polls, 2 acks, 2 read receipts and 1 recall, interleaved.
pub const CYCLE: [Kind; 20] = [
    Direct, Sync, Direct, Ack, Sync, LongPoll, Direct, Receipt, Sync, Group, Direct, Sync, Ack,
    Direct, LongPoll, Sync, Receipt, Direct, Sync, Recall,
];

/// Messages a user keeps as "to mark read" and "to recall" (the oldest go first).
const KEPT: usize = 100;
/// Message ids in one read-receipts request.
const RECEIPT_BATCH: usize = 10;
/// `limit` of the load's syncs.
const SYNC_LIMIT: u32 = 100;

/// Where an accepted message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    User(usize),
    Group,
}

/// A message the gateway answered 201 to.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub msg_id: String,
    pub sender: usize,
    pub to: To,
}

/// One request of the load, by user index.
#[derive(Debug, Clone)]
pub struct Request {
    pub kind: Kind,
    pub user: usize,
    pub token: String,
    pub method: &'static str,
    pub path: String,
    pub body: Option<String>,
    to: Option<To>,
    recall: Option<String>,
}

impl Request {
    /// The status of success.
    pub fn expected_status(&self) -> u16 {
        if self.to.is_some() { 201 } else { 200 }
    }
}

#[derive(Debug, Default)]
struct User {
    /// `next` of the user's latest sync.
    cursor: i64,
    /// Messages from others seen in syncs, not yet marked read.
    unread: VecDeque<String>,
    /// The user's own accepted messages, not yet recalled.
    sent: VecDeque<String>,
}

/// The load's state: users, the group, what was accepted and recalled.
pub struct Mix {
    pub uids: Vec<String>,
    tokens: Vec<String>,
    /// Users `0..members` form the group.
    pub members: usize,
    pub group: String,
    long_poll_secs: u64,
    users: Vec<User>,
    rng: u64,
    sends: u64,
    pub accepted: Vec<Accepted>,
    /// Messages whose recall was answered 200.
    pub recalled: HashSet<String>,
    /// Messages whose recall got no answer: recalled or not, both are right.
    pub recall_unsure: HashSet<String>,
    /// Sends that got no answer: each may have been accepted.
    pub unanswered_sends: u64,
}

impl Mix {
    pub fn new(
        uids: Vec<String>,
        tokens: Vec<String>,
        members: usize,
        group: &str,
        long_poll_secs: u64,
        seed: u64,
    ) -> Self {
        let users = uids.iter().map(|_| User::default()).collect();
        Self {
            uids,
            tokens,
            members,
            group: group.to_string(),
            long_poll_secs,
            users,
            rng: seed,
            sends: 0,
            accepted: Vec::new(),
            recalled: HashSet::new(),
            recall_unsure: HashSet::new(),
            unanswered_sends: 0,
        }
    }

    pub fn token(&self, user: usize) -> &str {
        &self.tokens[user]
    }

    /// splitmix64: the same seed gives the same choices.
    fn random(&mut self, below: usize) -> usize {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % below.max(1) as u64) as usize
    }

    /// The first user from a random start for whom `wanted` holds.
    fn find(&mut self, wanted: impl Fn(&User) -> bool) -> Option<usize> {
        let n = self.users.len();
        let start = self.random(n);
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&u| wanted(&self.users[u]))
    }

    fn request(&self, kind: Kind, user: usize, method: &'static str, path: String) -> Request {
        Request {
            kind,
            user,
            token: self.tokens[user].clone(),
            method,
            path,
            body: None,
            to: None,
            recall: None,
        }
    }

    /// The next request of `kind`; `None` when there is nothing to do yet (no message
    /// to mark read or to recall).
    pub fn next(&mut self, kind: Kind) -> Option<Request> {
        let n = self.uids.len();
        match kind {
            Direct | Group => {
                let (sender, to, target) = if kind == Direct {
                    let a = self.random(n);
                    let b = (a + 1 + self.random(n - 1)) % n;
                    (a, To::User(b), json!({ "user": self.uids[b] }))
                } else {
                    let a = self.random(self.members);
                    (a, To::Group, json!({ "group": self.group }))
                };
                self.sends += 1;
                let body = json!({
                    "client_msg_id": format!("soak-{}", self.sends),
                    "to": target,
                    "content": { "type": "text", "text": format!("soak message {}", self.sends) },
                });
                let mut request = self.request(kind, sender, "POST", "/v1/messages".into());
                request.body = Some(body.to_string());
                request.to = Some(to);
                Some(request)
            }
            Sync | LongPoll => {
                let u = self.random(n);
                let wait = if kind == LongPoll {
                    format!("&wait={}", self.long_poll_secs)
                } else {
                    String::new()
                };
                let path = format!(
                    "/v1/sync?after={}&limit={SYNC_LIMIT}{wait}",
                    self.users[u].cursor
                );
                Some(self.request(kind, u, "GET", path))
            }
            Ack => {
                let u = self.random(n);
                let mut request = self.request(kind, u, "POST", "/v1/ack".into());
                request.body = Some(json!({ "seq": self.users[u].cursor }).to_string());
                Some(request)
            }
            Receipt => {
                let u = self.find(|user| !user.unread.is_empty())?;
                let unread = &mut self.users[u].unread;
                let ids: Vec<String> = unread.drain(..RECEIPT_BATCH.min(unread.len())).collect();
                let mut request = self.request(kind, u, "POST", "/v1/receipts".into());
                request.body = Some(json!({ "msg_ids": ids }).to_string());
                Some(request)
            }
            Recall => {
                let u = self.find(|user| !user.sent.is_empty())?;
                let msg_id = self.users[u].sent.pop_front()?;
                let path = format!("/v1/messages/{msg_id}/recall");
                let mut request = self.request(kind, u, "POST", path);
                request.recall = Some(msg_id);
                Some(request)
            }
        }
    }

    /// Learns from the answer to `request` (`None`: no answer, e.g. a timeout).
    pub fn learn(&mut self, request: &Request, answer: Option<(u16, &[u8])>) {
        let user = request.user;
        if let Some(to) = request.to {
            match answer {
                Some((201, body)) => {
                    let Some(msg_id) = serde_json::from_slice::<Value>(body)
                        .ok()
                        .and_then(|v| v["msg_id"].as_str().map(str::to_string))
                    else {
                        return;
                    };
                    keep(&mut self.users[user].sent, msg_id.clone());
                    self.accepted.push(Accepted {
                        msg_id,
                        sender: user,
                        to,
                    });
                }
                Some(_) => {}
                None => self.unanswered_sends += 1,
            }
            return;
        }
        if let Some(msg_id) = &request.recall {
            match answer {
                Some((200, _)) => {
                    self.recalled.insert(msg_id.clone());
                }
                // An error answer changed nothing (API.md).
                Some(_) => {}
                None => {
                    self.recall_unsure.insert(msg_id.clone());
                }
            }
            return;
        }
        if matches!(request.kind, Sync | LongPoll)
            && let Some((200, body)) = answer
            && let Ok(page) = serde_json::from_slice::<Value>(body)
        {
            let uid = &self.uids[user];
            let state = &mut self.users[user];
            for entry in page["entries"].as_array().into_iter().flatten() {
                let from_other = entry["from"].as_str().is_some_and(|from| from != uid);
                if entry["kind"] == "message"
                    && from_other
                    && entry["recalled"] != true
                    && let Some(msg_id) = entry["msg_id"].as_str()
                {
                    keep(&mut state.unread, msg_id.to_string());
                }
            }
            if let Some(next) = page["next"].as_i64() {
                state.cursor = state.cursor.max(next);
            }
        }
    }
}

fn keep(list: &mut VecDeque<String>, msg_id: String) {
    if list.len() == KEPT {
        list.pop_front();
    }
    list.push_back(msg_id);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix() -> Mix {
        let uids: Vec<String> = (0..5).map(|i| format!("u{i}")).collect();
        let tokens = uids.iter().map(|u| format!("token-{u}")).collect();
        Mix::new(uids, tokens, 3, "g", 2, 7)
    }

    #[test]
    fn the_cycle_holds_the_documented_proportions() {
        let count = |kind| CYCLE.iter().filter(|k| **k == kind).count();
        let counts: Vec<usize> = Kind::ALL.iter().map(|k| count(*k)).collect();
        assert_eq!(counts, [6, 1, 6, 2, 2, 2, 1]);
    }

    #[test]
    fn receipts_and_recalls_wait_for_something_to_read_or_recall() {
        let mut mix = mix();
        assert!(mix.next(Receipt).is_none());
        assert!(mix.next(Recall).is_none());
    }

    #[test]
    fn a_sync_answer_moves_the_cursor_and_feeds_the_receipts() {
        let mut mix = mix();
        let sync = loop {
            let request = mix.next(Sync).expect("sync");
            if request.user == 1 {
                break request;
            }
        };
        assert_eq!(sync.path, "/v1/sync?after=0&limit=100");
        let page = json!({"entries": [
            {"seq": 1, "kind": "message", "msg_id": "m1", "from": "u0"},
            {"seq": 2, "kind": "message", "msg_id": "m2", "from": "u1"},
            {"seq": 3, "kind": "message", "msg_id": "m3", "from": "u2", "recalled": true},
            {"seq": 4, "kind": "read", "msg_ids": ["m9"]}],
            "next": 4, "head": 4, "more": false});
        mix.learn(&sync, Some((200, page.to_string().as_bytes())));
        let receipt = mix.next(Receipt).expect("something to mark read");
        assert_eq!(receipt.user, 1);
        assert_eq!(receipt.body.as_deref(), Some(r#"{"msg_ids":["m1"]}"#));
        assert!(mix.next(Receipt).is_none(), "each id is marked read once");
        let ack = loop {
            let request = mix.next(Ack).expect("ack");
            if request.user == 1 {
                break request;
            }
        };
        assert_eq!(ack.body.as_deref(), Some(r#"{"seq":4}"#));
    }

    #[test]
    fn only_answered_sends_are_accepted_and_recalled_by_their_sender() {
        let mut mix = mix();
        let send = mix.next(Group).expect("send");
        assert!(send.user < 3, "group senders are members");
        assert_eq!(send.expected_status(), 201);
        mix.learn(&send, Some((429, b"{}".as_slice())));
        mix.learn(&send, None);
        assert!(mix.accepted.is_empty());
        assert_eq!(mix.unanswered_sends, 1);
        mix.learn(&send, Some((201, br#"{"msg_id":"m-1"}"#.as_slice())));
        assert_eq!(mix.accepted.len(), 1);
        assert_eq!(mix.accepted[0].to, To::Group);
        let recall = mix.next(Recall).expect("recall");
        assert_eq!(recall.user, send.user);
        assert_eq!(recall.path, "/v1/messages/m-1/recall");
        mix.learn(&recall, Some((200, b"{}".as_slice())));
        assert!(mix.recalled.contains("m-1"));
    }
}
