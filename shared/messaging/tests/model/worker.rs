//! The model of `worker::drain`: claims, fan-out, recall and receipt jobs, queued
//! sends — transaction by transaction, so a crash can stop it anywhere.

use super::*;

impl Model {
    /// The jobs a claim of `limit` takes now, in order; they are leased.
    pub(super) fn claim(&mut self, limit: usize) -> Vec<String> {
        const KEY_CAP: i64 = 5;
        let now = self.now;
        let held = |jobs: &BTreeMap<String, Job>, key: &str| {
            jobs.values()
                .filter(|j| j.key.as_deref() == Some(key) && j.locked_until > now)
                .count() as i64
        };
        let mut due: Vec<(i64, String)> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.run_at <= now && j.locked_until <= now)
            .filter(|(_, j)| {
                j.key
                    .as_deref()
                    .is_none_or(|k| held(&self.jobs, k) < KEY_CAP)
            })
            .map(|(id, j)| (j.run_at, id.clone()))
            .collect();
        due.sort();
        due.truncate(limit * 4);
        let mut chosen = Vec::new();
        let mut taken: BTreeMap<String, i64> = BTreeMap::new();
        for (_, id) in due {
            if chosen.len() >= limit {
                break;
            }
            if let Some(key) = self.jobs[&id].key.clone() {
                let busy = held(&self.jobs, &key);
                let count = taken.entry(key).or_insert(busy);
                if *count >= KEY_CAP {
                    continue;
                }
                *count += 1;
            }
            chosen.push(id);
        }
        for id in &chosen {
            let job = self.jobs.get_mut(id).expect("chosen");
            job.locked_until = now + LEASE_MS;
            job.claimed_generation = job.generation;
        }
        chosen
    }

    /// `worker::drain`, transaction by transaction; `Err` where a crash stopped it.
    pub(super) fn drain(&mut self, spec: DrainSpec, budget: &mut Budget) -> Result<u64, ()> {
        let mut done = 0;
        loop {
            budget.take()?;
            let claimed = self.claim(spec.jobs);
            for id in &claimed {
                if self.run_job(id, spec, budget)? {
                    done += 1;
                }
            }
            // The medium and low lanes: claims that find nothing, still transactions.
            budget.take()?;
            budget.take()?;
            if claimed.is_empty() || !spec.all {
                return Ok(done);
            }
        }
    }

    /// `jobs::complete`: deleted, unless enqueued again since it was claimed.
    pub(super) fn complete(&mut self, id: &str) {
        let now = self.now;
        let job = self.jobs.get_mut(id).expect("a claimed job");
        if job.generation == job.claimed_generation {
            self.jobs.remove(id);
        } else {
            job.run_at = now;
            job.locked_until = 0;
        }
    }

    pub(super) fn remaining(&self) -> u64 {
        self.jobs
            .values()
            .filter(|j| j.run_at <= self.now && j.locked_until <= self.now)
            .count() as u64
    }

    /// Runs a claimed job; whether it finished (else it yielded).
    pub(super) fn run_job(
        &mut self,
        id: &str,
        spec: DrainSpec,
        budget: &mut Budget,
    ) -> Result<bool, ()> {
        loop {
            budget.take()?;
            let finished = match self.jobs[id].work.clone() {
                Work::Fanout { gid, batch, cursor } => {
                    self.fanout_step(id, &gid, batch, cursor, spec.chunk)
                }
                Work::Recall { msg, cursor } => self.recall_step(id, msg, cursor, spec.chunk),
                Work::Receipts { sender } => {
                    self.receipts_run(&sender);
                    self.complete(id);
                    true
                }
                Work::Retry(q) => {
                    // The send's transaction (a no-op if it is stored already), then
                    // the job's completion in its own.
                    if !self
                        .msgs
                        .iter()
                        .any(|m| m.sender == q.sender && m.cmid == q.cmid)
                    {
                        self.create(&q, true);
                    }
                    budget.take()?;
                    self.complete(id);
                    true
                }
            };
            if finished {
                return Ok(true);
            }
            if spec.step {
                budget.take()?;
                let now = self.now;
                let job = self.jobs.get_mut(id).expect("yielding");
                job.run_at = now;
                job.locked_until = 0;
                return Ok(false);
            }
        }
    }

    pub(super) fn fanout_step(
        &mut self,
        id: &str,
        gid: &str,
        mut batch: Vec<String>,
        mut cursor: String,
        chunk: i64,
    ) -> bool {
        if batch.is_empty() {
            let mut queued = self.outbox.get(gid).cloned().unwrap_or_default();
            queued.sort();
            batch = queued.into_iter().take(MAX_BATCH).map(|(_, m)| m).collect();
            cursor.clear();
            if batch.is_empty() {
                self.complete(id);
                return true;
            }
        }
        let next: Vec<String> = self.groups[gid]
            .0
            .iter()
            .filter(|u| **u > cursor)
            .take(chunk as usize)
            .cloned()
            .collect();
        if next.is_empty() {
            if let Some(queued) = self.outbox.get_mut(gid) {
                queued.retain(|(_, m)| !batch.contains(m));
            }
            batch.clear();
            cursor.clear();
        } else {
            let mut order: Vec<usize> = batch.iter().filter_map(|m| self.msg_index(m)).collect();
            order.sort_by(|&a, &b| {
                let (a, b) = (&self.msgs[a], &self.msgs[b]);
                (a.sent_at, &a.msg_id).cmp(&(b.sent_at, &b.msg_id))
            });
            let conv = format!("g:{gid}");
            for uid in &next {
                let mut got = 0;
                for &i in &order {
                    if self.msgs[i].sender != *uid && !self.msgs[i].recalled {
                        self.append(uid, Item::Message(i));
                        got += 1;
                    }
                }
                if got > 0 {
                    self.bump(uid, &conv, got, self.now);
                }
            }
            cursor = next.last().cloned().unwrap_or_default();
        }
        self.jobs.get_mut(id).expect("running").work = Work::Fanout {
            gid: gid.into(),
            batch,
            cursor,
        };
        false
    }

    pub(super) fn recall_step(&mut self, id: &str, msg: usize, cursor: String, chunk: i64) -> bool {
        let next: Vec<String> = self.msgs[msg]
            .holders
            .iter()
            .filter(|u| **u > cursor)
            .take(chunk as usize)
            .cloned()
            .collect();
        let Some(last) = next.last().cloned() else {
            self.complete(id);
            return true;
        };
        let sender = self.msgs[msg].sender.clone();
        for uid in next.iter().filter(|u| **u != sender) {
            self.append(uid, Item::Recall(msg));
        }
        self.jobs.get_mut(id).expect("running").work = Work::Recall { msg, cursor: last };
        false
    }

    pub(super) fn receipts_run(&mut self, sender: &str) {
        for msg_id in self.dirty.remove(sender).unwrap_or_default() {
            let i = self.msg_index(&msg_id).expect("a sent message");
            let read = self.read_by.iter().filter(|(m, _)| *m == i).count() as i64;
            let m = &self.msgs[i];
            // Still waiting for fan-out: every current member of the group but the
            // sender; fanned out (or never queued): the holders.
            let waiting = self
                .outbox
                .iter()
                .find(|(_, queued)| queued.iter().any(|(_, id)| *id == msg_id));
            let recipients = match waiting {
                Some((gid, _)) => self.groups[gid]
                    .0
                    .iter()
                    .filter(|u| **u != m.sender)
                    .count(),
                None => m.holders.iter().filter(|u| **u != m.sender).count(),
            } as i64;
            let unread = (recipients - read).max(0);
            self.append(
                sender,
                Item::Receipt {
                    msg: i,
                    read,
                    unread,
                },
            );
        }
    }
}
