//! Crashes: one gateway on a data directory, a mixed workload from several client
//! threads, and SIGKILLs of the gateway at random points (a seeded schedule), each
//! followed by a restart on the same data; then the worker drains and every
//! accepted request's effect must be there exactly once.
//!
//! The first kill comes at a random point of a 10,000-member fan-out, the others at
//! random delays. Clients retry a request whose answer was lost, unchanged, against
//! the restarted gateway. `COURIER_CRASH_SEED=<n>` repeats a run's schedule and the
//! clients' choices (not the threads' interleaving).
//!
//! # Layout
//! - this file: the test — set-up, the kills, the drain, the figures.
//! - `workload`: the clients, their retries and the ledger of what got a 2xx.
//! - `invariants`: the store and the API checked against the ledger.
//! - `pushes`: the pushes the fake Web Push service received, and none after an ack.

mod invariants;
mod pushes;
mod workload;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use courier_store::Sql;
use courier_store::directory;
use courier_store::sql::write_tx;

use crate::client::{Client, Expect, INTERNAL_SECRET, JWT_SECRET};
use crate::harness::Gateway;
use crate::vendors::FakeVendors;
use workload::{CROWD, Cast, PHONE, Rng, To, Workload};

const CROWD_SIZE: usize = 10_000;
const ACTIVES: usize = 8;
const OFFLINE: usize = 4;
/// A new push waits this long; an ack well inside it must stop the push.
const PUSH_DELAY_MS: u64 = 3_000;

fn seed() -> u64 {
    std::env::var("COURIER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

/// The gateway's variables: the fake vendors, the secrets, limits out of the way
/// (the workload is not what is limited here), small fan-out chunks (400 of them),
/// and presence short enough that only an ack can stop a push.
fn variables(fake: &FakeVendors) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = fake.env();
    vars.extend(
        [
            ("JWT_SECRET", JWT_SECRET.to_string()),
            ("INTERNAL_SECRET", INTERNAL_SECRET.to_string()),
            ("FANOUT_CHUNK", "25".into()),
            ("RATE_PER_USER_PER_SEC", "1000".into()),
            ("RATE_BURST", "1000".into()),
            ("RATE_PER_ORG_PER_SEC", "100000".into()),
            ("ORG_QUEUE_FLOOR", "100000".into()),
            ("PRESENCE_TTL_SECS", "1".into()),
            ("PUSH_DELAY_MS", PUSH_DELAY_MS.to_string()),
            ("PUSH_INTERVAL_MS", "1000".into()),
        ]
        .map(|(k, v)| (format!("SPIN_VARIABLE_{k}"), v)),
    );
    vars
}

/// Users, groups and the offline users' push registrations. The users with a part
/// to play are made over HTTP; the crowd's 9,988 others are written beside the
/// gateway by the store's own `put_user`, in one transaction (10,000 PUTs take
/// minutes on a loaded machine, and the directory is not what is tested here).
fn cast(client: &Client, db: &dyn Sql, fake: &FakeVendors) -> Cast {
    let actives: Vec<String> = (0..ACTIVES).map(|i| format!("a{i}")).collect();
    let offline: Vec<String> = (0..OFFLINE).map(|i| format!("o{i}")).collect();
    let fillers: Vec<String> = (0..CROWD_SIZE - ACTIVES - OFFLINE)
        .map(|i| format!("f{i:04}"))
        .collect();
    for uid in actives.iter().chain(&offline) {
        client.user(uid, "acme");
    }
    let now = crate::client::now_secs() as i64 * 1000;
    write_tx(db, |db| {
        fillers
            .iter()
            .try_for_each(|u| directory::put_user(db, u, &u.to_uppercase(), "crowd", now))
    })
    .expect("write the crowd's users");
    let crowd: Vec<String> = actives
        .iter()
        .chain(&offline)
        .chain(&fillers)
        .cloned()
        .collect();
    let mut groups = BTreeMap::new();
    groups.insert(
        "s0".to_string(),
        actives.iter().chain(&offline).cloned().collect(),
    );
    groups.insert(
        "s1".to_string(),
        actives[..4]
            .iter()
            .chain([&offline[0], &offline[2]])
            .chain(&fillers[..50])
            .cloned()
            .collect::<Vec<_>>(),
    );
    groups.insert(CROWD.to_string(), crowd.clone());
    for (gid, members) in &groups {
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        let made = client.group(gid, &actives[0], &members);
        assert_eq!(made["members"], members.len(), "{gid}: {made}");
    }
    groups.remove(CROWD);
    let mut registrations = BTreeMap::new();
    for uid in &offline {
        let body = fake.webpush_registration(uid);
        let path = format!("/v1/push/devices/{PHONE}");
        let reply = client.call(
            "PUT",
            &path,
            Some(&crate::client::user_token(uid)),
            Some(body.to_string().as_bytes()),
        );
        reply.expect_json(200);
        registrations.insert(uid.clone(), body);
    }
    Cast {
        actives,
        offline,
        groups,
        crowd,
        registrations,
    }
}

/// When a kill came and what was going on.
struct Kill {
    at: Duration,
    attempts: u64,
    crowd_holders: i64,
    restart: Duration,
}

fn holders(db: &dyn Sql, msg_id: &str) -> i64 {
    db.query_i64(
        "SELECT count(*) FROM entries WHERE msg_id = ? AND kind = 'message'",
        &[msg_id.into()],
    )
    .unwrap()
    .unwrap_or(0)
}

/// SIGKILLs the gateway and restarts it on its data; the clients follow it.
fn kill_and_restart(
    gw: &mut Gateway,
    w: &Workload<'_>,
    vars: &[(&str, &str)],
    db: &dyn Sql,
    crowd_msg: &str,
    began: Instant,
) -> Kill {
    let at = began.elapsed();
    let attempts = w.counts.attempts.load(Ordering::Relaxed);
    gw.sigkill();
    let crowd_holders = holders(db, crowd_msg);
    let data = gw.take_data();
    let restarting = Instant::now();
    *gw = Gateway::start_in("spin.toml", data, vars, &[]);
    w.moved_to(&gw.base);
    Kill {
        at,
        attempts,
        crowd_holders,
        restart: restarting.elapsed(),
    }
}

/// The kill schedule: the first at a random point of the crowd's fan-out, then two
/// or three more at random delays; the clients go on a little after the last.
fn kill_repeatedly(
    gw: &mut Gateway,
    w: &Workload<'_>,
    vars: &[(&str, &str)],
    db: &dyn Sql,
    rng: &mut Rng,
    began: Instant,
) -> Vec<Kill> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let crowd_msg = loop {
        let crowd = w
            .ledger()
            .sends
            .iter()
            .find(|s| s.to == To::Group(CROWD.into()))
            .map(|s| s.msg_id().to_string());
        if let Some(id) = crowd {
            break id;
        }
        assert!(Instant::now() < deadline, "the crowd message was not sent");
        std::thread::sleep(Duration::from_millis(2));
    };
    let threshold = rng.range(200, 6_000) as i64;
    while holders(db, &crowd_msg) < threshold {
        assert!(Instant::now() < deadline, "the fan-out did not get going");
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut kills = vec![kill_and_restart(gw, w, vars, db, &crowd_msg, began)];
    for _ in 1..rng.range(3, 5) {
        std::thread::sleep(Duration::from_millis(rng.range(1_000, 4_000)));
        kills.push(kill_and_restart(gw, w, vars, db, &crowd_msg, began));
    }
    std::thread::sleep(Duration::from_millis(rng.range(500, 1_500)));
    kills
}

/// Sets the clients' stop flag however the kills end (a panic must not leave the
/// client threads running forever).
struct StopOnDrop<'a>(&'a Workload<'a>);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::SeqCst);
    }
}

/// Waits until the queue holds no work but the retention job (leases of killed
/// workers expire after 30 s). Fails on a dead-lettered job.
fn drained(gw: &Gateway, db: &dyn Sql) -> Duration {
    let started = Instant::now();
    let left = || {
        db.query_i64(
            "SELECT (SELECT count(*) FROM jobs WHERE kind <> 'retention')
                  + (SELECT count(*) FROM group_outbox) + (SELECT count(*) FROM receipt_dirty)",
            &[],
        )
        .unwrap()
        .unwrap_or(0)
    };
    while left() > 0 {
        let dead = db
            .query_i64("SELECT count(*) FROM jobs WHERE state = 'dead'", &[])
            .unwrap()
            .unwrap_or(0);
        assert_eq!(dead, 0, "dead-lettered jobs; log:\n{}", gw.log().join("\n"));
        assert!(
            started.elapsed() < Duration::from_secs(100),
            "the queue did not drain: {} left; log:\n{}",
            left(),
            gw.log().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

/// 3–4 SIGKILLs during 1:1, small-group and 10,000-member sends, deliberate and
/// crash-forced repeats, receipts, recalls and push registrations, each followed by
/// a restart on the same data. Afterwards: dense streams; every send that got a 2xx
/// in each of its streams exactly once, at the seq its answer gave (the fan-out in
/// all 10,000); nothing else stored; receipts and read entries exactly the 2xx
/// receipts; every 2xx recall applied in every stream; a push to every offline user
/// and none after an ack.
#[test]
fn sigkills_during_a_mixed_workload_lose_nothing_and_repeat_nothing() {
    let seed = seed();
    println!("crashes: seed {seed} (COURIER_CRASH_SEED={seed} repeats the schedule)");
    let began = Instant::now();
    let fake = FakeVendors::start();
    let vars = variables(&fake);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut gw = Gateway::start_in("spin.toml", tempfile::tempdir().unwrap(), &vars, &[]);
    let up = began.elapsed();
    let db = gw.db();
    let cast = cast(&Client::of(&gw), &*db, &fake);
    let setup = began.elapsed() - up;

    let mut rng = Rng::new(seed);
    let w = Workload::new(&cast, &gw.base);
    let workload_began = Instant::now();
    let kills = std::thread::scope(|s| {
        for (i, me) in cast.actives.iter().enumerate() {
            let (w, client_seed) = (&w, seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9));
            s.spawn(move || w.client(me, client_seed));
        }
        let _stop = StopOnDrop(&w);
        kill_repeatedly(&mut gw, &w, &vars, &*db, &mut rng, workload_began)
    });
    let workload = workload_began.elapsed();
    for (i, k) in kills.iter().enumerate() {
        println!(
            "crashes: kill {} at {:.2} s (after {} requests; crowd fan-out at {} of {CROWD_SIZE}); \
             restarted in {:.2} s",
            i + 1,
            k.at.as_secs_f64(),
            k.attempts,
            k.crowd_holders,
            k.restart.as_secs_f64()
        );
    }
    let drain = drained(&gw, &*db);

    let mut ledger = std::mem::take(&mut *w.ledger());
    let pushes = pushes::check_pushes(&*db, &fake, &cast, &ledger);
    ledger
        .sends
        .extend(pushes::acked_users_get_no_push(&gw, &*db, &fake, &cast));
    let figures = invariants::check(&gw, &*db, &cast, &ledger);

    let c = &w.counts;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    println!(
        "crashes: gateway up in {:.1} s (components built); set-up {:.1} s ({} users, groups \
         of {}, {} and {CROWD_SIZE}); workload {:.1} s; drain after the workload {:.1} s; \
         total {:.1} s",
        up.as_secs_f64(),
        setup.as_secs_f64(),
        CROWD_SIZE,
        cast.groups["s0"].len(),
        cast.groups["s1"].len(),
        workload.as_secs_f64(),
        drain.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
    println!(
        "crashes: {} kills, {} restarts; {} HTTP attempts: {} refused connections (gateway \
         down), {} answers lost mid-request, {} 429/503; {} requests retried after a lost \
         answer, {} of them sends already stored (200)",
        kills.len(),
        kills.len(),
        n(&c.attempts),
        n(&c.unreachable),
        n(&c.lost),
        n(&c.refused),
        n(&c.interrupted),
        n(&c.replayed)
    );
    println!(
        "crashes: {} sends accepted in the workload ({} more repeated on purpose), {} receipts \
         requests ({} reads, {} of the crowd message), {} recalls, {} re-registrations, {} syncs; {} stream entries, {} message copies; \
         pushes per offline user {pushes:?}",
        n(&c.sends),
        n(&c.duplicates),
        n(&c.receipts),
        figures.reads,
        figures.crowd_readers,
        n(&c.recalls),
        n(&c.registrations),
        n(&c.syncs),
        figures.entries,
        figures.copies,
    );
}
