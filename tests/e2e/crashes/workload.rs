//! The clients of the crash test: each active user's thread sends, retries, reads and
//! recalls as a real client does — a request whose answer was lost to a kill is sent
//! again, unchanged (the same `client_msg_id`), until it gets one — and the ledger
//! of every request that got a 2xx, which the invariants are checked against.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{text_to_group, text_to_user, user_token};
use crate::harness::Reply;

/// SplitMix64: small and seeded, so a run's choices follow from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64) as usize]
    }
}

/// Who takes part: the users with client threads, the offline users with a push
/// registration, the small groups (written inline) and the crowd (10,000 members,
/// fanned out by the worker).
pub struct Cast {
    pub actives: Vec<String>,
    pub offline: Vec<String>,
    /// Small groups by id, with their members.
    pub groups: BTreeMap<String, Vec<String>>,
    pub crowd: Vec<String>,
    /// Each offline user's `PUT /v1/push/devices/phone` body.
    pub registrations: BTreeMap<String, Value>,
}

/// The crowd's group id.
pub const CROWD: &str = "crowd";
/// The device the offline users registered for push.
pub const PHONE: &str = "phone";

/// Where a message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum To {
    User(String),
    Group(String),
}

/// A send that got a 2xx.
#[derive(Debug, Clone)]
pub struct Sent {
    pub sender: String,
    pub to: To,
    pub body: Value,
    /// The first 2xx answer's body.
    pub answer: Value,
}

impl Sent {
    pub fn msg_id(&self) -> &str {
        self.answer["msg_id"].as_str().unwrap_or_default()
    }
}

/// What every request that got a 2xx did, as the clients saw it.
#[derive(Default)]
pub struct Ledger {
    pub sends: Vec<Sent>,
    /// Reader → the msg_ids its 2xx receipts named.
    pub reads: BTreeMap<String, BTreeSet<String>>,
    pub recalls: BTreeSet<String>,
}

/// Request counters of a run.
#[derive(Default)]
pub struct Counts {
    /// HTTP attempts.
    pub attempts: AtomicU64,
    /// Attempts whose connection was refused (the gateway was down): never sent.
    pub unreachable: AtomicU64,
    /// Attempts sent whose answer never came (the gateway was killed meanwhile).
    pub lost: AtomicU64,
    /// Attempts answered 429 or 503 (retried after a pause).
    pub refused: AtomicU64,
    /// Requests retried after a lost answer, to a final answer.
    pub interrupted: AtomicU64,
    /// Of those, sends whose retry found the first attempt stored (200).
    pub replayed: AtomicU64,
    /// Deliberate duplicate sends (a client repeating a `client_msg_id`).
    pub duplicates: AtomicU64,
    /// Requests that got their 2xx, by kind.
    pub sends: AtomicU64,
    pub receipts: AtomicU64,
    pub recalls: AtomicU64,
    pub registrations: AtomicU64,
    pub syncs: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A request's final answer, and whether an earlier attempt of it was sent and got
/// no answer (so it may have taken effect).
pub struct Answer {
    pub reply: Reply,
    pub interrupted: bool,
}

/// How long a client keeps retrying one request (the gateway restarts meanwhile).
const REQUEST_DEADLINE: Duration = Duration::from_secs(120);

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(30))
            .build()
    })
}

/// Why an attempt got no answer.
enum NoAnswer {
    /// The connection was refused: the request never left.
    Unreachable,
    /// The request went out (maybe only in part); the answer never came.
    Lost,
}

/// One attempt.
fn attempt(url: &str, method: &str, token: &str, body: Option<&Value>) -> Result<Reply, NoAnswer> {
    let req = agent()
        .request(method, url)
        .set("authorization", &format!("Bearer {token}"))
        .set("content-type", "application/json");
    let result = match body {
        Some(body) => req.send_string(&body.to_string()),
        None => req.call(),
    };
    let response = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(t)) if t.kind() == ureq::ErrorKind::ConnectionFailed => {
            return Err(NoAnswer::Unreachable);
        }
        Err(_) => return Err(NoAnswer::Lost),
    };
    let status = response.status();
    let headers = response
        .headers_names()
        .into_iter()
        .filter_map(|n| response.header(&n).map(|v| (n.clone(), v.to_string())))
        .collect();
    // A body cut off by a kill is no answer either.
    let body = response.into_string().map_err(|_| NoAnswer::Lost)?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// The clients' shared state: the gateway's current address, the ledger, counters.
pub struct Workload<'a> {
    pub cast: &'a Cast,
    base: RwLock<String>,
    pub ledger: Mutex<Ledger>,
    pub counts: Counts,
    pub stop: AtomicBool,
}

impl<'a> Workload<'a> {
    pub fn new(cast: &'a Cast, base: &str) -> Self {
        Workload {
            cast,
            base: RwLock::new(base.to_string()),
            ledger: Mutex::default(),
            counts: Counts::default(),
            stop: AtomicBool::new(false),
        }
    }

    /// Points the clients at a restarted gateway.
    pub fn moved_to(&self, base: &str) {
        *self.base.write().unwrap_or_else(|e| e.into_inner()) = base.to_string();
    }

    pub fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a request until it gets an answer other than 429/503, as a client does:
    /// the same request again after a lost answer or a refused connection (a killed
    /// gateway), against wherever the gateway is now.
    pub fn request(&self, method: &str, path: &str, token: &str, body: Option<&Value>) -> Answer {
        let deadline = Instant::now() + REQUEST_DEADLINE;
        let mut interrupted = false;
        loop {
            assert!(
                Instant::now() < deadline,
                "{method} {path} got no answer for {REQUEST_DEADLINE:?}"
            );
            let base = self.base.read().unwrap_or_else(|e| e.into_inner()).clone();
            bump(&self.counts.attempts);
            match attempt(&format!("{base}{path}"), method, token, body) {
                Err(NoAnswer::Unreachable) => {
                    bump(&self.counts.unreachable);
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(NoAnswer::Lost) => {
                    bump(&self.counts.lost);
                    interrupted = true;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(reply) if matches!(reply.status, 429 | 503) => {
                    bump(&self.counts.refused);
                    std::thread::sleep(Duration::from_millis(200));
                }
                Ok(reply) => {
                    if interrupted {
                        bump(&self.counts.interrupted);
                    }
                    return Answer { reply, interrupted };
                }
            }
        }
    }

    /// An active user's client until told to stop: mostly sends (1:1, small groups,
    /// repeats of earlier ones), then receipts for what it received, recalls of its
    /// own messages, and re-registrations of an offline user's device.
    pub fn client(&self, me: &str, seed: u64) {
        let mut c = ClientState {
            me: me.to_string(),
            token: user_token(me),
            rng: Rng::new(seed),
            mine: Vec::new(),
            unread: Vec::new(),
            after: 0,
            n: 0,
        };
        if me == self.cast.actives[0] {
            self.send(&mut c, To::Group(CROWD.into()));
        }
        while !self.stop.load(Ordering::SeqCst) {
            match c.rng.range(0, 100) {
                0..35 => {
                    let peers: Vec<&String> = self
                        .cast
                        .actives
                        .iter()
                        .chain(&self.cast.offline)
                        .filter(|u| **u != c.me)
                        .collect();
                    let peer = (*c.rng.pick(&peers)).clone();
                    self.send(&mut c, To::User(peer));
                }
                35..60 => {
                    let mine: Vec<&String> = self
                        .cast
                        .groups
                        .iter()
                        .filter(|(_, members)| members.contains(&c.me))
                        .map(|(gid, _)| gid)
                        .collect();
                    let gid = (*c.rng.pick(&mine)).clone();
                    self.send(&mut c, To::Group(gid));
                }
                60..70 if !c.mine.is_empty() => self.repeat(&mut c),
                70..85 => self.read_some(&mut c),
                85..93 => self.recall_one(&mut c),
                93.. => self.register_again(&mut c),
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(c.rng.range(0, 15)));
        }
    }

    fn send(&self, c: &mut ClientState, to: To) {
        c.n += 1;
        let client_msg_id = format!("{}.{}", c.me, c.n);
        let text = format!("{} says {}", c.me, c.rng.next());
        let body = match &to {
            To::User(peer) => text_to_user(&client_msg_id, peer, &text),
            To::Group(gid) => text_to_group(&client_msg_id, gid, &text),
        };
        let a = self.request("POST", "/v1/messages", &c.token, Some(&body));
        let stored = match a.reply.status {
            201 => false,
            200 if a.interrupted => true,
            status => panic!(
                "{}: send {client_msg_id} answered {status} (interrupted: {}): {}",
                c.me, a.interrupted, a.reply.body
            ),
        };
        if stored {
            bump(&self.counts.replayed);
        }
        bump(&self.counts.sends);
        let answer = a.reply.json();
        let status = if to == To::Group(CROWD.into()) {
            "accepted"
        } else {
            "sent"
        };
        assert_eq!(answer["status"], status, "{}: {answer}", c.me);
        let sent = Sent {
            sender: c.me.clone(),
            to,
            body,
            answer,
        };
        self.ledger().sends.push(sent.clone());
        c.mine.push(sent);
    }

    /// Sends one of this client's earlier messages again: the stored answer, 200.
    fn repeat(&self, c: &mut ClientState) {
        let sent = c.rng.pick(&c.mine).clone();
        let a = self.request("POST", "/v1/messages", &c.token, Some(&sent.body));
        assert_eq!(
            (a.reply.status, a.reply.json()),
            (200, sent.answer.clone()),
            "{}: a repeated send gets the first answer: {}",
            c.me,
            sent.body
        );
        bump(&self.counts.duplicates);
    }

    /// Syncs, then marks a few received messages read.
    fn read_some(&self, c: &mut ClientState) {
        let path = format!("/v1/sync?after={}&limit=200", c.after);
        let a = self.request("GET", &path, &c.token, None);
        assert_eq!(a.reply.status, 200, "{}: sync: {}", c.me, a.reply.body);
        bump(&self.counts.syncs);
        let page = a.reply.json();
        for e in page["entries"].as_array().into_iter().flatten() {
            if e["kind"] == "message"
                && e["from"] != c.me.as_str()
                && let Some(id) = e["msg_id"].as_str()
            {
                c.unread.push(id.to_string());
            }
        }
        c.after = page["next"].as_i64().unwrap_or(c.after);
        if c.unread.is_empty() {
            return;
        }
        let k = c.rng.range(1, 6).min(c.unread.len() as u64) as usize;
        let mut ids = Vec::new();
        for _ in 0..k {
            let i = c.rng.range(0, c.unread.len() as u64) as usize;
            ids.push(c.unread.swap_remove(i));
        }
        let a = self.request(
            "POST",
            "/v1/receipts",
            &c.token,
            Some(&json!({ "msg_ids": ids })),
        );
        assert_eq!(a.reply.status, 200, "{}: receipts: {}", c.me, a.reply.body);
        let newly: BTreeSet<String> = a.reply.json()["read"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let asked: BTreeSet<String> = ids.into_iter().collect();
        // Nobody else marks this user's reads: all are new, unless the answer to an
        // earlier attempt was lost after it committed.
        if a.interrupted {
            assert!(newly.is_subset(&asked), "{}: {newly:?} ⊄ {asked:?}", c.me);
        } else {
            assert_eq!(newly, asked, "{}: every id newly read", c.me);
        }
        bump(&self.counts.receipts);
        self.ledger()
            .reads
            .entry(c.me.clone())
            .or_default()
            .extend(asked);
    }

    /// Recalls one of this client's messages (not the crowd's).
    fn recall_one(&self, c: &mut ClientState) {
        let candidates: Vec<usize> = (0..c.mine.len())
            .filter(|i| c.mine[*i].to != To::Group(CROWD.into()))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let i = *c.rng.pick(&candidates);
        let msg_id = c.mine[i].msg_id().to_string();
        let a = self.request(
            "POST",
            &format!("/v1/messages/{msg_id}/recall"),
            &c.token,
            None,
        );
        assert_eq!(
            (a.reply.status, a.reply.json()),
            (200, json!({ "msg_id": msg_id, "recalled": true })),
            "{}: recall",
            c.me
        );
        bump(&self.counts.recalls);
        self.ledger().recalls.insert(msg_id);
    }

    /// An offline user's phone registers again (the same body): idempotent.
    fn register_again(&self, c: &mut ClientState) {
        let uid = c.rng.pick(&self.cast.offline).clone();
        let body = &self.cast.registrations[&uid];
        let a = self.request(
            "PUT",
            &format!("/v1/push/devices/{PHONE}"),
            &user_token(&uid),
            Some(body),
        );
        assert_eq!(
            (a.reply.status, a.reply.json()),
            (200, json!({ "device": PHONE, "vendor": "webpush" })),
            "{uid}: registration"
        );
        bump(&self.counts.registrations);
    }
}

/// One client thread's own state.
struct ClientState {
    me: String,
    token: String,
    rng: Rng,
    /// This client's sends that got a 2xx.
    mine: Vec<Sent>,
    /// Messages from others seen in the stream and not marked read yet.
    unread: Vec<String>,
    /// The stream position synced up to.
    after: i64,
    /// Sends made (the `client_msg_id` counter).
    n: u64,
}
