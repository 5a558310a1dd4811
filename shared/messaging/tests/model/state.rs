//! The model: the documented behaviour of each route, over plain collections.

use super::*;

#[derive(Debug, Clone)]
pub(super) struct Msg {
    pub(super) msg_id: String,
    pub(super) sender: String,
    pub(super) cmid: String,
    pub(super) conv: String,
    /// The sent text (kept after a recall: the idempotency check still knows it).
    pub(super) text: String,
    pub(super) sent_at: i64,
    pub(super) sender_seq: i64,
    pub(super) status: &'static str,
    pub(super) recalled: bool,
    /// Written by the worker after the send failed transiently (it may arrive after
    /// later messages).
    pub(super) retried: bool,
    /// Users with a `message` entry of it.
    pub(super) holders: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub(super) enum Item {
    Message(usize),
    Read(BTreeSet<String>),
    Receipt { msg: usize, read: i64, unread: i64 },
    Recall(usize),
    Control { gid: String, version: i64 },
}

#[derive(Debug, Clone, Default)]
pub(super) struct ConvState {
    pub(super) last_seq: i64,
    pub(super) unread: i64,
    pub(super) updated_at: i64,
}

#[derive(Debug, Clone)]
pub(super) enum Work {
    Fanout {
        gid: String,
        batch: Vec<String>,
        cursor: String,
    },
    Recall {
        msg: usize,
        cursor: String,
    },
    Receipts {
        sender: String,
    },
    /// A send queued after a transient failure.
    Retry(Queued),
}

/// Where a send goes, as authorized when it was made.
#[derive(Debug, Clone)]
pub(super) enum Route {
    Direct(String),
    Group(String),
    /// Over the inline size: the sender's stream now, the members by fan-out.
    Large(String),
}

/// A validated send (queued, or being written).
#[derive(Debug, Clone)]
pub(super) struct Queued {
    pub(super) msg_id: String,
    pub(super) sender: String,
    pub(super) cmid: String,
    pub(super) conv: String,
    pub(super) text: String,
    pub(super) sent_at: i64,
    pub(super) route: Route,
}

impl Queued {
    pub(super) fn accepted(&self) -> Value {
        json!({ "msg_id": self.msg_id, "conv": self.conv, "seq": 0, "sent_at": self.sent_at, "status": "accepted" })
    }
}

#[derive(Debug, Clone)]
pub(super) struct Job {
    pub(super) run_at: i64,
    pub(super) locked_until: i64,
    /// Bumped by every enqueue of the id; a job enqueued again while it was claimed
    /// runs once more instead of being deleted.
    pub(super) generation: u64,
    pub(super) claimed_generation: u64,
    pub(super) key: Option<String>,
    pub(super) work: Work,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Model {
    pub(super) now: i64,
    pub(super) serial: u64,
    /// Members and version.
    pub(super) groups: BTreeMap<String, (BTreeSet<String>, i64)>,
    pub(super) msgs: Vec<Msg>,
    pub(super) streams: BTreeMap<String, Vec<Item>>,
    pub(super) convs: BTreeMap<(String, String), ConvState>,
    /// `(message, reader)`.
    pub(super) read_by: BTreeSet<(usize, String)>,
    /// Messages with new reads, per sender (the receipt job's input).
    pub(super) dirty: BTreeMap<String, BTreeSet<String>>,
    /// Large-group messages waiting for fan-out: `(queued_at, msg_id)`.
    pub(super) outbox: BTreeMap<String, Vec<(i64, String)>>,
    pub(super) jobs: BTreeMap<String, Job>,
    pub(super) acked: BTreeMap<String, i64>,
}

pub(super) type Outcome = Result<(u16, Value), String>;

pub(super) fn code(e: &Error) -> String {
    match e {
        Error::BadRequest(_) => "bad_request".into(),
        Error::Forbidden(_) => "forbidden".into(),
        Error::NotFound(_) => "not_found".into(),
        Error::Conflict(_) => "conflict".into(),
        Error::RecallWindowExpired => "recall_window_expired".into(),
        other => format!("unexpected: {other}"),
    }
}

pub(super) fn fail(what: &str) -> (Outcome, usize) {
    (Err(what.into()), 0)
}

/// Counts durable events in a model run; `Err` once a crash budget is spent.
pub(super) struct Budget {
    pub(super) left: Option<usize>,
    pub(super) used: usize,
}

impl Budget {
    pub(super) fn take(&mut self) -> Result<(), ()> {
        match &mut self.left {
            Some(0) => return Err(()),
            Some(left) => *left -= 1,
            None => {}
        }
        self.used += 1;
        Ok(())
    }
}

impl Model {
    pub(super) fn head(&self, uid: &str) -> i64 {
        self.streams.get(uid).map_or(0, |s| s.len() as i64)
    }

    pub(super) fn append(&mut self, uid: &str, item: Item) -> i64 {
        if let Item::Message(m) = &item {
            self.msgs[*m].holders.insert(uid.to_string());
        }
        let stream = self.streams.get_mut(uid).expect("a user");
        stream.push(item);
        stream.len() as i64
    }

    /// A message entry landed in `uid`'s stream: the conversation moves up.
    pub(super) fn bump(&mut self, uid: &str, conv: &str, unread: i64, at: i64) {
        let last_seq = self.head(uid);
        let state = self
            .convs
            .entry((uid.to_string(), conv.to_string()))
            .or_default();
        state.last_seq = last_seq;
        state.unread += unread;
        state.updated_at = at;
    }

    pub(super) fn enqueue(&mut self, id: String, key: Option<String>, work: Work, run_at: i64) {
        self.jobs
            .entry(id)
            .and_modify(|job| {
                job.run_at = job.run_at.min(run_at);
                job.generation += 1;
            })
            .or_insert(Job {
                run_at,
                generation: 0,
                claimed_generation: 0,
                locked_until: 0,
                key,
                work,
            });
    }

    pub(super) fn msg_index(&self, msg_id: &str) -> Option<usize> {
        self.msgs.iter().position(|m| m.msg_id == msg_id)
    }

    pub(super) fn related(&self, a: &str, b: &str) -> bool {
        let org = |u: &str| USERS.iter().position(|x| *x == u).map(|i| ORGS[i]);
        org(a) == org(b)
            || self
                .groups
                .values()
                .any(|(members, _)| members.contains(a) && members.contains(b))
    }

    pub(super) fn sent_reply(m: &Msg) -> Value {
        json!({ "msg_id": m.msg_id, "conv": m.conv, "seq": m.sender_seq, "sent_at": m.sent_at, "status": m.status })
    }

    pub(super) fn setup(&mut self) {
        for uid in USERS {
            self.streams.insert(uid.to_string(), Vec::new());
        }
        for (gid, members) in GROUPS {
            let members: BTreeSet<String> = members.iter().map(|&i| USERS[i].into()).collect();
            if members.len() <= CONTROL_MAX {
                for uid in &members {
                    let item = Item::Control {
                        gid: gid.into(),
                        version: 1,
                    };
                    self.append(uid, item);
                }
            }
            self.groups.insert(gid.into(), (members, 1));
        }
    }

    /// `POST /v1/messages`: the answer and the durable writes it makes (0 or 1).
    /// `POST /v1/messages`. `busy`: the send's transaction fails transiently, so the
    /// validated request is queued for the worker and answered `accepted`.
    pub(super) fn send(
        &mut self,
        from: &str,
        to: Result<&str, &str>,
        cmid: &str,
        text: &str,
        busy: bool,
    ) -> (Outcome, usize) {
        let conv = match to {
            Ok(peer) => dm(from, peer),
            Err(gid) => format!("g:{gid}"),
        };
        if let Some(m) = self
            .msgs
            .iter()
            .find(|m| m.sender == from && m.cmid == cmid)
        {
            return if m.conv == conv && m.text == text {
                (Ok((200, Self::sent_reply(m))), 0)
            } else {
                fail("conflict")
            };
        }
        let route = match to {
            Ok(peer) => {
                if !USERS.contains(&peer) {
                    return fail("not_found");
                }
                if peer != from && !self.related(from, peer) {
                    return fail("forbidden");
                }
                Route::Direct(peer.into())
            }
            Err(gid) => {
                let Some((members, _)) = self.groups.get(gid) else {
                    return fail("not_found");
                };
                if !members.contains(from) {
                    return fail("forbidden");
                }
                if members.len() > INLINE_MAX {
                    Route::Large(gid.into())
                } else {
                    Route::Group(gid.into())
                }
            }
        };
        let job_id = format!("send:{from}:{cmid}");
        if let Some(Job {
            work: Work::Retry(q),
            ..
        }) = self.jobs.get(&job_id)
        {
            // A retry of a send still queued: its `accepted` answer.
            return if q.conv == conv && q.text == text {
                (Ok((200, q.accepted())), 1)
            } else {
                fail("conflict")
            };
        }
        let q = Queued {
            msg_id: format!("m{:013}{:016x}", self.now, self.serial),
            sender: from.into(),
            cmid: cmid.into(),
            conv,
            text: text.into(),
            sent_at: self.now,
            route,
        };
        if busy {
            let reply = q.accepted();
            self.enqueue(job_id, Some(from.into()), Work::Retry(q), self.now);
            return (Ok((201, reply)), 1);
        }
        let idx = self.create(&q, false);
        (Ok((201, Self::sent_reply(&self.msgs[idx]))), 1)
    }

    /// Stores a message and writes it to its streams (the send's transaction).
    pub(super) fn create(&mut self, q: &Queued, retried: bool) -> usize {
        let (inline, large_group): (Vec<String>, Option<String>) = match &q.route {
            Route::Direct(peer) => {
                let set: BTreeSet<String> = [q.sender.clone(), peer.clone()].into();
                (set.into_iter().collect(), None)
            }
            Route::Group(gid) | Route::Large(gid) => {
                let waiting = self.outbox.get(gid).is_some_and(|o| !o.is_empty());
                if matches!(q.route, Route::Large(_)) || waiting {
                    (vec![q.sender.clone()], Some(gid.clone()))
                } else {
                    // The sender always has its own message, even if it left the
                    // group while its send waited in the queue.
                    let mut set = self.groups[gid].0.clone();
                    set.insert(q.sender.clone());
                    (set.into_iter().collect(), None)
                }
            }
        };
        let idx = self.msgs.len();
        self.msgs.push(Msg {
            msg_id: q.msg_id.clone(),
            sender: q.sender.clone(),
            cmid: q.cmid.clone(),
            conv: q.conv.clone(),
            text: q.text.clone(),
            sent_at: q.sent_at,
            sender_seq: 0,
            status: if large_group.is_some() {
                "accepted"
            } else {
                "sent"
            },
            recalled: false,
            retried,
            holders: BTreeSet::new(),
        });
        for uid in &inline {
            self.append(uid, Item::Message(idx));
            self.bump(uid, &q.conv, i64::from(*uid != q.sender), q.sent_at);
        }
        if let Some(gid) = large_group {
            self.outbox
                .entry(gid.clone())
                .or_default()
                .push((q.sent_at, q.msg_id.clone()));
            self.enqueue(
                format!("fanout:{gid}"),
                Some(gid.clone()),
                Work::Fanout {
                    gid,
                    batch: Vec::new(),
                    cursor: String::new(),
                },
                q.sent_at,
            );
        }
        self.msgs[idx].sender_seq = self.head(&q.sender);
        idx
    }

    /// `POST /v1/receipts`.
    pub(super) fn read(&mut self, reader: &str, ids: &[String]) -> (Outcome, usize) {
        let mut requested: Vec<&String> = Vec::new();
        for id in ids {
            if !requested.contains(&id) {
                requested.push(id);
            }
        }
        let mut found = Vec::new();
        for id in requested {
            match self.msg_index(id) {
                Some(i) if self.msgs[i].holders.contains(reader) => found.push(i),
                _ => return fail("not_found"),
            }
        }
        let to_mark: Vec<usize> = found
            .into_iter()
            .filter(|&i| self.msgs[i].sender != reader)
            .collect();
        if to_mark.is_empty() {
            return (Ok((200, json!({ "read": [] }))), 0);
        }
        let newly: Vec<usize> = to_mark
            .into_iter()
            .filter(|&i| !self.read_by.contains(&(i, reader.to_string())))
            .collect();
        let ids: BTreeSet<String> = newly.iter().map(|&i| self.msgs[i].msg_id.clone()).collect();
        if !newly.is_empty() {
            self.append(reader, Item::Read(ids.clone()));
            for &i in &newly {
                self.read_by.insert((i, reader.to_string()));
                let (sender, conv, msg_id) = {
                    let m = &self.msgs[i];
                    (m.sender.clone(), m.conv.clone(), m.msg_id.clone())
                };
                if let Some(state) = self.convs.get_mut(&(reader.to_string(), conv)) {
                    state.unread = (state.unread - 1).max(0);
                }
                self.dirty.entry(sender.clone()).or_default().insert(msg_id);
                self.enqueue(
                    format!("receipts:{sender}"),
                    Some(sender.clone()),
                    Work::Receipts { sender },
                    self.now,
                );
            }
        }
        (Ok((200, json!({ "read": ids }))), 1)
    }

    /// `POST /v1/ack`.
    pub(super) fn ack(&mut self, uid: &str, seq: i64) -> (Outcome, usize) {
        if seq > self.head(uid) {
            return fail("bad_request");
        }
        let acked = self.acked.entry(uid.to_string()).or_default();
        *acked = (*acked).max(seq);
        (Ok((200, json!({ "acked": *acked }))), 1)
    }

    /// `POST /v1/messages/{msg_id}/recall`.
    pub(super) fn recall(&mut self, caller: &str, msg_id: &str) -> (Outcome, usize) {
        let Some(i) = self.msg_index(msg_id) else {
            return fail("not_found");
        };
        let reply = Ok((200, json!({ "msg_id": msg_id, "recalled": true })));
        if self.msgs[i].sender != caller {
            return fail("forbidden");
        }
        if self.msgs[i].recalled {
            return (reply, 0);
        }
        if self.now - self.msgs[i].sent_at > WINDOW_MS {
            return fail("recall_window_expired");
        }
        self.msgs[i].recalled = true;
        for queued in self.outbox.values_mut() {
            queued.retain(|(_, m)| m != msg_id);
        }
        let m = self.msgs[i].clone();
        self.append(&m.sender, Item::Recall(i));
        if m.holders.len() <= INLINE_MAX {
            for uid in m.holders.iter().filter(|u| **u != m.sender) {
                self.append(uid, Item::Recall(i));
            }
        } else {
            self.enqueue(
                format!("recall:{msg_id}"),
                m.conv.strip_prefix("g:").map(String::from),
                Work::Recall {
                    msg: i,
                    cursor: String::new(),
                },
                self.now,
            );
        }
        (reply, 1)
    }

    /// `POST /v1/groups/{gid}/members`.
    pub(super) fn members(&mut self, gid: &str, add: &[&str], remove: &[&str]) -> (Outcome, usize) {
        if add.is_empty() && remove.is_empty() || add.iter().any(|u| remove.contains(u)) {
            return fail("bad_request");
        }
        let Some((members, version)) = self.groups.get(gid).cloned() else {
            return fail("not_found");
        };
        if add.iter().any(|u| !USERS.contains(u)) {
            return fail("not_found");
        }
        let removed: Vec<String> = remove
            .iter()
            .filter(|u| members.contains(**u))
            .map(|u| u.to_string())
            .collect();
        let mut now_members = members.clone();
        for uid in &removed {
            now_members.remove(uid);
        }
        let before = now_members.len();
        now_members.extend(add.iter().map(|u| u.to_string()));
        let changed = now_members.len() != before || !removed.is_empty();
        let version = version + i64::from(changed);
        let count = now_members.len();
        self.groups
            .insert(gid.into(), (now_members.clone(), version));
        if changed && count <= CONTROL_MAX {
            for uid in now_members.iter().chain(&removed) {
                let item = Item::Control {
                    gid: gid.into(),
                    version,
                };
                self.append(uid, item);
            }
        }
        (
            Ok((200, json!({ "version": version, "members": count }))),
            1,
        )
    }
}
