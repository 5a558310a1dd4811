//! The queue benchmark: time until a message is in all 10,000 streams of a group,
//! 1:1 send latency while such fan-outs run (isolation), and receipt writes with
//! per-sender merging against one receipt entry per read.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use courier_core::Config;
use courier_core::auth::{Identity, Role};
use courier_core::{DeviceId, UserId};
use courier_messaging::worker::{DrainConfig, drain};
use courier_store::native::NativeSqlite;
use courier_store::sql::Sql;
use serde_json::json;

use super::client::{Conn, Latencies, paced_loop};
use super::messaging::{Failures, Measured};
use super::{Fixture, Row};

pub const MEMBERS: usize = 10_000;

fn who(uid: &str) -> Result<Identity> {
    Ok(Identity {
        user: UserId::parse(uid)?,
        device: DeviceId::default_device(),
        role: Role::User,
        expires_at_secs: u64::MAX / 2,
    })
}

fn text(cmid: &str, to: serde_json::Value) -> String {
    json!({ "client_msg_id": cmid, "to": to, "content": { "type": "text", "text": "to everyone" } })
        .to_string()
}

fn holders(db: &rusqlite::Connection, msg_id: &str) -> Result<i64> {
    Ok(db.query_row(
        "SELECT count(*) FROM entries WHERE msg_id = ?1 AND kind = 'message'",
        [msg_id],
        |r| r.get(0),
    )?)
}

pub async fn run(fixture: &Fixture) -> Result<Vec<Row>> {
    println!("creating {MEMBERS} users and a {MEMBERS}-member group…");
    let uids = fixture.users("q", MEMBERS, 16).await?;
    let admin = fixture.token("bench-admin", true)?;
    let mut conn = Conn::open(fixture.addr).await?;
    let body = json!({ "name": "everyone", "owner": uids[0], "members": uids }).to_string();
    let (status, _) = conn
        .call("PUT", "/v1/groups/everyone", Some(&admin), Some(body))
        .await?;
    anyhow::ensure!(status == 200, "group: {status}");
    let db = fixture.database()?;
    let sender = fixture.token(&uids[0], false)?;
    let mut times = Vec::new();
    for round in 0..3 {
        let started = Instant::now();
        let (status, body) = conn
            .call(
                "POST",
                "/v1/messages",
                Some(&sender),
                Some(text(
                    &format!("all-{round}"),
                    json!({ "group": "everyone" }),
                )),
            )
            .await?;
        anyhow::ensure!(status == 201, "send: {status}");
        let msg_id = serde_json::from_slice::<serde_json::Value>(&body)?["msg_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        while holders(&db, &msg_id)? < MEMBERS as i64 {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(120),
                "fan-out did not finish"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        times.push(started.elapsed());
    }
    let native = tokio::task::spawn_blocking(native_fanout).await??;
    let best = times.iter().min().copied().unwrap_or_default();
    let mut rows = vec![Row {
        what: format!("{MEMBERS}-member fan-out, send → all streams (ms)"),
        value: times
            .iter()
            .map(|t| format!("{:.0}", t.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(" / "),
        baseline: format!("{:.0} native store", native.as_secs_f64() * 1000.0),
        ratio: format!("{:.2}", best.as_secs_f64() / native.as_secs_f64()),
    }];

    // Isolation: 1:1 latency with and without a fan-out running.
    let quiet = one_to_one(fixture, &uids, "quiet").await?;
    let busy = Arc::new(AtomicBool::new(true));
    let flood = {
        let (busy, addr, sender) = (Arc::clone(&busy), fixture.addr, sender.clone());
        tokio::spawn(async move {
            let mut conn = Conn::open(addr).await?;
            let mut i = 0;
            while busy.load(Ordering::Relaxed) {
                let (status, body) = conn
                    .call(
                        "POST",
                        "/v1/messages",
                        Some(&sender),
                        Some(text(&format!("flood-{i}"), json!({ "group": "everyone" }))),
                    )
                    .await?;
                anyhow::ensure!(
                    status == 201,
                    "group send during the 1:1 loop: {status} {}",
                    String::from_utf8_lossy(&body)
                );
                i += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            anyhow::Ok(i)
        })
    };
    let loaded = one_to_one(fixture, &uids, "loaded").await?;
    busy.store(false, Ordering::Relaxed);
    let floods = flood.await??;
    rows.push(Row {
        what: format!("1:1 send p50 / p99 during {floods} fan-outs (ms)"),
        value: format!(
            "{:.2} / {:.2}",
            loaded.percentile_ms(50.0),
            loaded.percentile_ms(99.0)
        ),
        baseline: format!(
            "{:.2} / {:.2} idle",
            quiet.percentile_ms(50.0),
            quiet.percentile_ms(99.0)
        ),
        ratio: format!(
            "{:.2}",
            loaded.percentile_ms(99.0) / quiet.percentile_ms(99.0)
        ),
    });

    let (merged, unmerged) = tokio::task::spawn_blocking(receipt_writes).await??;
    rows.push(Row {
        what: "receipt entries written, merged per sender".into(),
        value: format!("{merged}"),
        baseline: format!("{unmerged} one per read"),
        ratio: format!(
            "{:.2} (saves {:.0} %)",
            merged as f64 / unmerged as f64,
            100.0 * (1.0 - merged as f64 / unmerged as f64)
        ),
    });
    Ok(rows)
}

/// `round` tells the runs' `client_msg_id`s apart: the same senders send in both.
async fn one_to_one(fixture: &Fixture, uids: &[String], round: &'static str) -> Result<Latencies> {
    // 40 senders, each well under the per-user quota.
    let pairs: Arc<Vec<(String, String)>> = Arc::new(
        (1..41)
            .map(|i| Ok((fixture.token(&uids[i], false)?, uids[i + 40].clone())))
            .collect::<Result<_>>()?,
    );
    let failures = Arc::new(Failures::default());
    let f = Arc::clone(&failures);
    // A steady 1:1 rate (a pause after each send), not a flood: the point is latency.
    let (latencies, errors, window) = paced_loop(
        fixture.addr,
        4,
        Duration::from_secs(3),
        Duration::from_millis(20),
        move |mut conn: Conn, worker, i| {
            let (pairs, f) = (Arc::clone(&pairs), Arc::clone(&f));
            async move {
                let (token, to) = &pairs[(worker * 10 + i as usize) % pairs.len()];
                let body = text(&format!("p-{round}-{worker}-{i}"), json!({ "user": to }));
                let answer = conn
                    .call("POST", "/v1/messages", Some(token), Some(body))
                    .await;
                let ok = f.check(&answer, 201);
                (conn, ok)
            }
        },
    )
    .await?;
    let measured = Measured {
        latencies,
        errors,
        window,
    };
    Ok(failures.clean("1:1 sends", measured)?.latencies)
}

fn native_store(dir: &std::path::Path, users: &[String]) -> Result<NativeSqlite> {
    let db = NativeSqlite::open(&dir.join("native.db"))?;
    courier_store::schema::migrate(&db)?;
    db.execute("BEGIN", &[])?;
    for u in users {
        courier_store::directory::put_user(&db, u, u, "bench", 0)?;
    }
    db.execute("COMMIT", &[])?;
    Ok(db)
}

fn drain_all(db: &NativeSqlite) -> Result<()> {
    let clock = crate::now_ms;
    let mut n = 0u64;
    let mut random = || {
        n += 1;
        n
    };
    while drain(db, &DrainConfig::default(), &clock, &mut random)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .remaining
        > 0
    {}
    Ok(())
}

/// The same fan-out on rusqlite directly: service + worker, no WASM, no HTTP.
fn native_fanout() -> Result<Duration> {
    let dir = tempfile::tempdir()?;
    let users: Vec<String> = (0..MEMBERS).map(|i| format!("n{i:05}")).collect();
    let db = native_store(dir.path(), &users)?;
    let policy = courier_store::directory::ControlPolicy { max_members: 2000 };
    courier_store::directory::put_group(&db, "all", "all", &users[0], &users, policy, 0)?;
    let config = Config::default();
    let started = Instant::now();
    courier_messaging::send::send(
        &db,
        &config,
        &who(&users[0])?,
        text("n-all", json!({ "group": "all" })).as_bytes(),
        1,
        1,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    drain_all(&db)?;
    Ok(started.elapsed())
}

/// The WeChat Work receipt pattern: readers acknowledge batches of messages from
/// several senders. Merged: our per-sender jobs (drained every 20 read requests).
/// Unmerged: one receipt entry per (message, read). Returns the entries written.
fn receipt_writes() -> Result<(i64, i64)> {
    let dir = tempfile::tempdir()?;
    let users: Vec<String> = (0..50).map(|i| format!("r{i:05}")).collect();
    let db = native_store(dir.path(), &users)?;
    let policy = courier_store::directory::ControlPolicy { max_members: 2000 };
    courier_store::directory::put_group(&db, "team", "team", &users[0], &users, policy, 0)?;
    let config = Config {
        rate_per_user_per_sec: 1_000_000,
        rate_burst: 1_000_000,
        ..Config::default()
    };
    let mut msg_ids = Vec::new();
    for i in 0..100 {
        let sender = &users[i % 4];
        let courier_messaging::Reply { body: reply, .. } = courier_messaging::send::send(
            &db,
            &config,
            &who(sender)?,
            text(&format!("t{i}"), json!({ "group": "team" })).as_bytes(),
            10 + i as i64,
            i as u64,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        msg_ids.push(reply["msg_id"].as_str().unwrap_or_default().to_string());
    }
    let before = db
        .query_i64("SELECT count(*) FROM entries WHERE kind = 'receipt'", &[])?
        .unwrap_or(0);
    let mut requests = 0;
    let mut unmerged = 0;
    for batch in msg_ids.chunks(10) {
        for reader in &users[4..] {
            let body = json!({ "msg_ids": batch }).to_string();
            let courier_messaging::Reply { body: reply, .. } =
                courier_messaging::receipts::mark_read(
                    &db,
                    &config,
                    &who(reader)?,
                    body.as_bytes(),
                    1_000,
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            unmerged += reply["read"].as_array().map_or(0, |ids| ids.len() as i64);
            requests += 1;
            if requests % 20 == 0 {
                drain_all(&db)?;
            }
        }
    }
    drain_all(&db)?;
    let merged = db
        .query_i64("SELECT count(*) FROM entries WHERE kind = 'receipt'", &[])?
        .unwrap_or(0)
        - before;
    Ok((merged, unmerged))
}
