//! The core messaging benchmark: 1:1 sends/s, sync polls/s and long-poll wake
//! latency through the gateway; the same sends through the native service (no WASM,
//! no HTTP) as the baseline.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use courier_core::Config;
use courier_core::auth::{Identity, Role};
use courier_core::{DeviceId, UserId};
use courier_store::native::NativeSqlite;
use serde_json::{Value, json};

use super::client::{Conn, Latencies, closed_loop_on};
use super::{Fixture, ORG_SIZE, Row, org_mate, org_of};

pub struct Options {
    pub users: usize,
    pub connections: usize,
    pub duration: Duration,
    /// The application variables the gateway was started with (its quotas); the
    /// native baseline runs with the same.
    pub variables: BTreeMap<String, String>,
}

fn send_body(tag: &str, i: u64, worker: usize, to: &str) -> String {
    json!({ "client_msg_id": format!("{tag}{worker}-{i}"), "to": { "user": to }, "content": { "type": "text", "text": "benchmark message" } })
        .to_string()
}

/// What one closed loop measured.
pub struct Measured {
    /// Latencies of the successful operations.
    pub latencies: Latencies,
    pub errors: u64,
    pub window: Duration,
}

impl Measured {
    /// Successful operations a second.
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.window.as_secs_f64()
    }
}

/// What failed in a closed loop, by kind (the status code, or `failed` for a request
/// that got no answer), each with its count and the first such answer: why a run
/// that must have no errors had some.
#[derive(Debug, Default)]
pub struct Failures(Mutex<BTreeMap<String, (u64, String)>>);

impl Failures {
    /// Whether `answer` has the `expected` status; records it when it has not.
    pub fn check(&self, answer: &Result<(u16, Bytes)>, expected: u16) -> bool {
        let (kind, detail) = match answer {
            Ok((status, _)) if *status == expected => return true,
            Ok((status, body)) => (
                status.to_string(),
                String::from_utf8_lossy(body).chars().take(300).collect(),
            ),
            Err(e) => ("failed".to_string(), format!("{e:#}")),
        };
        let mut kinds = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kinds.entry(kind).or_insert((0, detail)).0 += 1;
        false
    }

    /// Kind → (count, the first answer's body or error).
    pub fn kinds(&self) -> BTreeMap<String, (u64, String)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `measured` when none of its operations failed; otherwise an error naming
    /// `what` and each kind of failure: a run with errors reports no figure.
    pub fn clean(&self, what: &str, measured: Measured) -> Result<Measured> {
        if measured.errors == 0 {
            return Ok(measured);
        }
        let kinds: Vec<String> = self
            .kinds()
            .into_iter()
            .map(|(kind, (count, first))| format!("{kind} ×{count} (first: {first})"))
            .collect();
        anyhow::bail!(
            "{what}: {} of {} requests failed, so no figure is reported: {}",
            measured.errors,
            measured.errors + measured.latencies.len() as u64,
            kinds.join("; ")
        )
    }
}

/// Who sends in a send loop: `uids` (`tokens[i]` is `uids[i]`'s), `org_size` to an
/// org as they were created (see [`crate::org_of`]).
pub struct Senders {
    pub uids: Arc<Vec<String>>,
    pub tokens: Arc<Vec<String>>,
    pub org_size: usize,
}

/// 1:1 sends between pairs of users of one org on `connections` connections spread
/// over `addrs`, a unique `client_msg_id` each (`tag` keeps runs on the same users
/// apart). Fails when any send did not get its 201.
pub async fn send_loop(
    addrs: &[SocketAddr],
    senders: &Senders,
    connections: usize,
    duration: Duration,
    tag: &str,
) -> Result<Measured> {
    let failures = Arc::new(Failures::default());
    let measured = send_loop_with(addrs, senders, connections, duration, tag, &failures).await?;
    failures.clean("1:1 sends", measured)
}

/// [`send_loop`] that also records what each failed send got in `failures`.
pub async fn send_loop_with(
    addrs: &[SocketAddr],
    senders: &Senders,
    connections: usize,
    duration: Duration,
    tag: &str,
    failures: &Arc<Failures>,
) -> Result<Measured> {
    let (uids, tokens, org_size) = (&senders.uids, &senders.tokens, senders.org_size);
    let (u, t, tag, f) = (
        Arc::clone(uids),
        Arc::clone(tokens),
        Arc::new(tag.to_string()),
        Arc::clone(failures),
    );
    let (latencies, errors, window) = closed_loop_on(
        addrs,
        connections,
        duration,
        move |mut conn: Conn, worker, i| {
            let (u, t, tag, f) = (
                Arc::clone(&u),
                Arc::clone(&t),
                Arc::clone(&tag),
                Arc::clone(&f),
            );
            async move {
                let a = (i as usize * 7919 + worker * 104_729) % u.len();
                let b = org_mate(a, u.len(), org_size, i as usize);
                let answer = conn
                    .call(
                        "POST",
                        "/v1/messages",
                        Some(&t[a]),
                        Some(send_body(&tag, i, worker, &u[b])),
                    )
                    .await;
                let ok = f.check(&answer, 201);
                (conn, ok)
            }
        },
    )
    .await?;
    Ok(Measured {
        latencies,
        errors,
        window,
    })
}

/// Every user's stream head, read through `addr`.
pub async fn heads(addr: SocketAddr, tokens: &[String]) -> Result<Arc<Vec<i64>>> {
    let mut heads = Vec::new();
    let mut conn = Conn::open(addr).await?;
    for token in tokens {
        let (status, body) = conn
            .call("GET", "/v1/sync?after=0&limit=1", Some(token), None)
            .await?;
        anyhow::ensure!(status == 200, "reading a head: {status}");
        heads.push(
            serde_json::from_slice::<Value>(&body)?["head"]
                .as_i64()
                .unwrap_or(0),
        );
    }
    Ok(Arc::new(heads))
}

/// `GET /v1/sync?after=<head>` (no wait, nothing new) for users in turn on
/// `connections` connections spread over `addrs`. Fails when any poll did not get
/// its 200.
pub async fn poll_loop(
    addrs: &[SocketAddr],
    tokens: &Arc<Vec<String>>,
    heads: &Arc<Vec<i64>>,
    connections: usize,
    duration: Duration,
) -> Result<Measured> {
    let failures = Arc::new(Failures::default());
    let measured = poll_loop_with(addrs, tokens, heads, connections, duration, &failures).await?;
    failures.clean("sync polls", measured)
}

/// [`poll_loop`] that also records what each failed poll got in `failures`.
pub async fn poll_loop_with(
    addrs: &[SocketAddr],
    tokens: &Arc<Vec<String>>,
    heads: &Arc<Vec<i64>>,
    connections: usize,
    duration: Duration,
    failures: &Arc<Failures>,
) -> Result<Measured> {
    let (t, heads, f) = (Arc::clone(tokens), Arc::clone(heads), Arc::clone(failures));
    let (latencies, errors, window) = closed_loop_on(
        addrs,
        connections,
        duration,
        move |mut conn: Conn, worker, i| {
            let (t, heads, f) = (Arc::clone(&t), Arc::clone(&heads), Arc::clone(&f));
            async move {
                let a = (i as usize * 31 + worker * 7) % t.len();
                let path = format!("/v1/sync?after={}", heads[a]);
                let answer = conn.call("GET", &path, Some(&t[a]), None).await;
                let ok = f.check(&answer, 200);
                (conn, ok)
            }
        },
    )
    .await?;
    Ok(Measured {
        latencies,
        errors,
        window,
    })
}

pub async fn run(fixture: &Fixture, opts: &Options) -> Result<Vec<Row>> {
    println!("creating {} users, {ORG_SIZE} to an org…", opts.users);
    let uids = Arc::new(fixture.users_in("b", opts.users, 16, ORG_SIZE).await?);
    let tokens: Arc<Vec<String>> = Arc::new(
        uids.iter()
            .map(|u| fixture.token(u, false))
            .collect::<Result<_>>()?,
    );
    let senders = Senders {
        uids: Arc::clone(&uids),
        tokens: Arc::clone(&tokens),
        org_size: ORG_SIZE,
    };
    let mut rows = Vec::new();

    // Sends: random pairs within an org, a unique client_msg_id each.
    println!(
        "sends: {} connections for {:?}…",
        opts.connections, opts.duration
    );
    let sends = send_loop(
        &[fixture.addr],
        &senders,
        opts.connections,
        opts.duration,
        "b",
    )
    .await?;
    let config = Config::from_lookup(|name| opts.variables.get(name).cloned())
        .map_err(|e| anyhow::anyhow!("the benchmark's variables: {e}"))?;
    let native = native_sends(
        opts.users,
        &config,
        opts.duration.min(Duration::from_secs(3)),
    )?;
    let send_rate = sends.rate();
    rows.push(Row {
        what: "1:1 sends/s (no errors)".into(),
        value: format!("{send_rate:.0}"),
        baseline: format!("{native:.0} native service"),
        ratio: format!("{:.2}", send_rate / native),
    });
    rows.push(Row {
        what: "send latency p50 / p99 (ms)".into(),
        value: format!(
            "{:.2} / {:.2}",
            sends.latencies.percentile_ms(50.0),
            sends.latencies.percentile_ms(99.0)
        ),
        baseline: "goal p99 < 20".into(),
        ratio: String::new(),
    });

    // Polls: each user's head, no wait.
    let heads = heads(fixture.addr, &tokens).await?;
    println!(
        "polls: {} connections for {:?}…",
        opts.connections, opts.duration
    );
    let polls = poll_loop(
        &[fixture.addr],
        &tokens,
        &heads,
        opts.connections,
        opts.duration,
    )
    .await?;
    rows.push(Row {
        what: "sync polls/s (no errors)".into(),
        value: format!("{:.0}", polls.rate()),
        baseline: "goal ≥ 20,000".into(),
        ratio: String::new(),
    });
    rows.push(Row {
        what: "poll latency p50 / p99 (ms)".into(),
        value: format!(
            "{:.2} / {:.2}",
            polls.latencies.percentile_ms(50.0),
            polls.latencies.percentile_ms(99.0)
        ),
        baseline: String::new(),
        ratio: String::new(),
    });

    let wake = wake_latency(fixture, &uids, &tokens, 200).await?;
    rows.push(Row {
        what: format!("long-poll wake p50 / p99 (ms, {} wakes)", wake.len()),
        value: format!(
            "{:.1} / {:.1}",
            wake.percentile_ms(50.0),
            wake.percentile_ms(99.0)
        ),
        baseline: "goal p99 < 50".into(),
        ratio: String::new(),
    });
    Ok(rows)
}

/// Waiters long-poll; a sender sends to one of them at a time; the wake latency is
/// from the send's answer to the waiter's answer.
async fn wake_latency(
    fixture: &Fixture,
    uids: &[String],
    tokens: &[String],
    samples: usize,
) -> Result<Latencies> {
    let waiters = 16.min(uids.len() / 2);
    let senders = waiters + 1..uids.len().min(2 * waiters + 1);
    anyhow::ensure!(!senders.is_empty(), "wake: too few users");
    let mut latencies = Latencies::default();
    let mut sender = Conn::open(fixture.addr).await?;
    let mut conns = Vec::new();
    for _ in 0..waiters {
        conns.push(Conn::open(fixture.addr).await?);
    }
    let mut i = 0u64;
    while latencies.len() < samples {
        let w = (i as usize) % waiters;
        let waiter = w + 1;
        let (status, body) = conns[w]
            .call(
                "GET",
                "/v1/sync?after=0&limit=1",
                Some(&tokens[waiter]),
                None,
            )
            .await?;
        anyhow::ensure!(status == 200, "wake: reading the head: {status}");
        let head = serde_json::from_slice::<Value>(&body)?["head"]
            .as_i64()
            .unwrap_or(0);
        let mut conn = conns.swap_remove(w);
        let token = tokens[waiter].clone();
        let poll = tokio::spawn(async move {
            let result = conn
                .call(
                    "GET",
                    &format!("/v1/sync?after={head}&wait=10"),
                    Some(&token),
                    None,
                )
                .await;
            (conn, result.map(|(status, _)| (status, Instant::now())))
        });
        // Let the long-poll settle into its wait before sending.
        tokio::time::sleep(Duration::from_millis(30 + (i % 20))).await;
        // Senders take turns, each well under the per-user quota.
        let from = senders.start + (i as usize) % senders.len();
        let (status, body) = sender
            .call(
                "POST",
                "/v1/messages",
                Some(&tokens[from]),
                Some(send_body("b", i, 99_999, &uids[waiter])),
            )
            .await?;
        anyhow::ensure!(
            status == 201,
            "wake: the send got {status}: {}",
            String::from_utf8_lossy(&body)
        );
        let sent = Instant::now();
        let (conn, woke) = poll.await?;
        conns.insert(w, conn);
        let (status, woke) = woke?;
        anyhow::ensure!(status == 200, "wake: the long-poll got {status}");
        latencies.record(woke.saturating_duration_since(sent));
        i += 1;
    }
    Ok(latencies)
}

/// The send service on rusqlite directly, one thread: what the platform costs. The
/// same population as the gateway's (`users`, [`ORG_SIZE`] to an org) and the same
/// quotas (`config`), on the real clock: every send must pass, as there.
fn native_sends(users: usize, config: &Config, duration: Duration) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let db = NativeSqlite::open(&dir.path().join("native.db"))?;
    courier_store::schema::migrate(&db)?;
    let users: Vec<String> = (0..users.max(2)).map(|i| format!("n{i:05}")).collect();
    for (i, u) in users.iter().enumerate() {
        courier_store::directory::put_user(&db, u, u, &org_of(i, ORG_SIZE), 0)?;
    }
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < duration {
        let a = (n as usize * 7919) % users.len();
        let b = org_mate(a, users.len(), ORG_SIZE, n as usize);
        let who = Identity {
            user: UserId::parse(&users[a])?,
            device: DeviceId::default_device(),
            role: Role::User,
            expires_at_secs: u64::MAX / 2,
        };
        courier_messaging::send::send(
            &db,
            config,
            &who,
            send_body("b", n, 0, &users[b]).as_bytes(),
            crate::now_ms(),
            n,
        )
        .map_err(|e| anyhow::anyhow!("native send {n}: {e}"))?;
        n += 1;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}
