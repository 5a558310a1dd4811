//! What each host is put through: users created through the directory API, the
//! send and sync-poll closed loops of `courier-bench messaging`, and, in the last
//! round, a 10,000-member group fan-out timed until every member's stream holds it.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use courier_bench::client::Conn;
use courier_bench::machine::{self, machine_cpu, process_cpu};
use courier_bench::messaging::{self, Failures, Measured};
use serde_json::{Value, json};

use super::host::{Host, Running, Store};

pub struct Workload {
    pub users: usize,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub jwt_secret: String,
    pub internal_secret: String,
}

/// Connections the users are created over (as every benchmark creates them).
pub const CREATE_CONNECTIONS: usize = 16;
/// How long a measured loop may overrun its duration before a request counts as hung.
const HUNG: Duration = Duration::from_secs(120);
/// How often the gateway's store is looked at during its fan-out.
const FANOUT_CHECK: Duration = Duration::from_millis(10);
const GROUP: &str = "everyone";

/// One measured closed loop, what failed in it, and where the CPU went meanwhile.
pub struct Loop {
    pub measured: Measured,
    pub failures: Arc<Failures>,
    /// Errors of the unmeasured warm-up before it, by kind.
    pub warmup_failures: Arc<Failures>,
    /// `/proc/loadavg` just before the loop.
    pub loadavg: String,
    pub machine_cpu: Duration,
    pub host_cpu: Duration,
    pub bench_cpu: Duration,
}

/// The 10,000-member fan-out on one host.
pub struct Fanout {
    pub members: usize,
    /// `PUT /v1/groups/{gid}` with every member.
    pub group_put: Duration,
    /// Queued jobs a drain ran before the send (left from the loops; untimed).
    pub settled_jobs: i64,
    /// From the send request until every member's stream holds the message.
    pub took: Duration,
    /// Spin: `POST /internal/drain` calls it took, with the jobs they reported
    /// done, retried and dead-lettered.
    pub drain_calls: u64,
    pub drain_done: i64,
    pub drain_failed: i64,
}

/// What one host did in one round.
pub struct Run {
    pub host: Host,
    pub round: u32,
    pub users_took: Duration,
    pub sends: Loop,
    pub polls: Loop,
    pub fanout: Option<Fanout>,
    /// `PRAGMA journal_mode` of the host's SQLite file after the run (`PostgreSQL`
    /// when it stores there).
    pub journal_mode: String,
}

/// Runs the round's workload on `running`; with `fanout_members`, the fan-out too.
pub async fn run(
    running: &mut Running,
    round: u32,
    w: &Workload,
    fanout_members: Option<usize>,
) -> Result<Run> {
    let addr = running.addr;
    healthy(addr).await?;
    let ttl = Duration::from_secs(4 * 3600);
    let admin = courier_gateway::token::mint(&w.jwt_secret, "bench-admin", None, true, ttl)?;

    eprintln!("  creating {} users…", w.users);
    let started = Instant::now();
    let uids = within(
        Duration::from_secs(900),
        "creating the users",
        courier_bench::create_users(addr, &admin, "u", w.users, CREATE_CONNECTIONS),
    )
    .await?;
    let users_took = started.elapsed();
    let uids = Arc::new(uids);
    let tokens: Arc<Vec<String>> = Arc::new(
        uids.iter()
            .map(|u| courier_gateway::token::mint(&w.jwt_secret, u, None, false, ttl))
            .collect::<Result<_>>()?,
    );
    running.ensure_alive()?;

    let senders = messaging::Senders {
        uids: Arc::clone(&uids),
        tokens: Arc::clone(&tokens),
        org_size: courier_bench::ONE_ORG,
    };
    eprintln!("  sends: {} connections…", w.connections);
    let addrs = [addr];
    let warmup_failures = Arc::new(Failures::default());
    let loop_limit = w.warmup.max(w.duration) + HUNG;
    within(
        loop_limit,
        "the send warm-up",
        messaging::send_loop_with(
            &addrs,
            &senders,
            w.connections,
            w.warmup,
            "w",
            &warmup_failures,
        ),
    )
    .await?;
    let failures = Arc::new(Failures::default());
    let sends = observed(running, warmup_failures, Arc::clone(&failures), async {
        within(
            loop_limit,
            "the send loop",
            messaging::send_loop_with(&addrs, &senders, w.connections, w.duration, "s", &failures),
        )
        .await
    })
    .await?;
    running.ensure_alive()?;

    let heads = within(
        Duration::from_secs(600),
        "reading the stream heads",
        messaging::heads(addr, &tokens),
    )
    .await?;
    eprintln!("  polls: {} connections…", w.connections);
    let warmup_failures = Arc::new(Failures::default());
    within(
        loop_limit,
        "the poll warm-up",
        messaging::poll_loop_with(
            &addrs,
            &tokens,
            &heads,
            w.connections,
            w.warmup,
            &warmup_failures,
        ),
    )
    .await?;
    let failures = Arc::new(Failures::default());
    let polls = observed(running, warmup_failures, Arc::clone(&failures), async {
        within(
            loop_limit,
            "the poll loop",
            messaging::poll_loop_with(
                &addrs,
                &tokens,
                &heads,
                w.connections,
                w.duration,
                &failures,
            ),
        )
        .await
    })
    .await?;
    running.ensure_alive()?;

    let fanout = match fanout_members {
        Some(members) => Some(fanout(running, w, &admin, &uids, members).await?),
        None => None,
    };
    let journal_mode = running.database()?.journal_mode()?;
    Ok(Run {
        host: running.host,
        round,
        users_took,
        sends,
        polls,
        fanout,
        journal_mode,
    })
}

/// Runs `future`, an error if it takes longer than `limit` (a request hung).
async fn within<T>(
    limit: Duration,
    what: &str,
    future: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(limit, future)
        .await
        .map_err(|_| anyhow::anyhow!("{what} did not finish in {}s", limit.as_secs()))?
}

/// Waits until `GET /healthz` answers 200.
async fn healthy(addr: std::net::SocketAddr) -> Result<()> {
    let started = Instant::now();
    loop {
        let answer = match Conn::open(addr).await {
            Ok(mut conn) => conn.call("GET", "/healthz", None, None).await,
            Err(e) => Err(e),
        };
        match answer {
            Ok((200, _)) => return Ok(()),
            _ if started.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok((status, body)) => bail!(
                "GET /healthz answered {status}: {}",
                String::from_utf8_lossy(&body)
            ),
            Err(e) => return Err(e.context("GET /healthz")),
        }
    }
}

/// Runs one measured loop, with the CPU time the machine, the host and the bench
/// used meanwhile.
async fn observed(
    running: &Running,
    warmup_failures: Arc<Failures>,
    failures: Arc<Failures>,
    run: impl Future<Output = Result<Measured>>,
) -> Result<Loop> {
    let loadavg = machine::loadavg();
    let (machine_before, host_before) = (machine_cpu()?, running.cpu());
    let bench_before = process_cpu("/proc/self/stat");
    let measured = run.await?;
    let bench_cpu = process_cpu("/proc/self/stat").saturating_sub(bench_before);
    let host_cpu = running.cpu().saturating_sub(host_before);
    let machine_cpu = machine_cpu()?.saturating_sub(machine_before);
    Ok(Loop {
        measured,
        failures,
        warmup_failures,
        loadavg,
        machine_cpu,
        host_cpu,
        bench_cpu,
    })
}

/// `POST /internal/drain` once: its answer.
async fn drain_once(conn: &mut Conn, secret: &str) -> Result<Value> {
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
    Ok(serde_json::from_slice(&body)?)
}

/// Streams holding `msg_id` as a message.
fn holders(db: &Store, msg_id: &str) -> Result<usize> {
    let n = db.count(
        "SELECT count(*) FROM entries WHERE msg_id = ? AND kind = 'message'",
        msg_id,
    )?;
    Ok(n as usize)
}

/// Creates the users missing for a `members`-member group, the group, drains what
/// the loops queued (untimed), then sends one message to the group and times it
/// into every member's stream: on the gateway its own drainer does the work (the
/// store is looked at every [`FANOUT_CHECK`]); on Spin nothing drains, so
/// this calls `POST /internal/drain` until it reports nothing remaining and every
/// stream holds the message, as a drain loop beside Spin would.
async fn fanout(
    running: &mut Running,
    w: &Workload,
    admin: &str,
    uids: &[String],
    members: usize,
) -> Result<Fanout> {
    let addr = running.addr;
    let mut all: Vec<String> = uids.iter().take(members).cloned().collect();
    let missing = members - all.len();
    if missing > 0 {
        eprintln!("  creating {missing} more users for the {members}-member group…");
        let more = within(
            Duration::from_secs(1800),
            "creating the group's users",
            courier_bench::create_users(addr, admin, "f", missing, CREATE_CONNECTIONS),
        )
        .await?;
        all.extend(more);
    }
    eprintln!("  the {members}-member group and one message to it…");
    let mut conn = Conn::open(addr).await?;
    let body = json!({ "name": GROUP, "owner": all[0], "members": all }).to_string();
    let started = Instant::now();
    let (status, answer) = within(
        Duration::from_secs(600),
        "PUT /v1/groups",
        conn.call(
            "PUT",
            &format!("/v1/groups/{GROUP}"),
            Some(admin),
            Some(body),
        ),
    )
    .await?;
    anyhow::ensure!(
        status == 200,
        "PUT /v1/groups/{GROUP} answered {status}: {}",
        String::from_utf8_lossy(&answer)
    );
    let group_put = started.elapsed();
    let settled =
        courier_bench::soak::verify::drain(addr, &w.internal_secret, Duration::from_secs(300))
            .await?;
    anyhow::ensure!(
        settled.remaining == 0,
        "the queue did not empty before the fan-out"
    );

    let sender = courier_gateway::token::mint(
        &w.jwt_secret,
        &all[0],
        None,
        false,
        Duration::from_secs(3600),
    )?;
    let send = json!({ "client_msg_id": "fanout-1", "to": { "group": GROUP },
        "content": { "type": "text", "text": "to everyone" } })
    .to_string();
    let db = running.database()?;
    let limit = Duration::from_secs(600);
    let started = Instant::now();
    let (status, answer) = conn
        .call("POST", "/v1/messages", Some(&sender), Some(send))
        .await?;
    anyhow::ensure!(
        status == 201,
        "the group send answered {status}: {}",
        String::from_utf8_lossy(&answer)
    );
    let msg_id = serde_json::from_slice::<Value>(&answer)?["msg_id"]
        .as_str()
        .context("no msg_id in the send's answer")?
        .to_string();
    let (mut calls, mut done, mut failed) = (0u64, 0i64, 0i64);
    let took = loop {
        anyhow::ensure!(
            started.elapsed() < limit,
            "the fan-out did not finish in {}s ({} of {members} streams)",
            limit.as_secs(),
            holders(&db, &msg_id)?
        );
        match running.host {
            Host::Gateway => {
                if holders(&db, &msg_id)? >= members {
                    break started.elapsed();
                }
                tokio::time::sleep(FANOUT_CHECK).await;
            }
            Host::Spin => {
                let report = drain_once(&mut conn, &w.internal_secret).await?;
                calls += 1;
                done += report["done"].as_i64().unwrap_or(0);
                failed += report["retried"].as_i64().unwrap_or(0)
                    + report["dead_lettered"].as_i64().unwrap_or(0);
                let remaining = report["remaining"].as_i64().unwrap_or(-1);
                if remaining == 0 && holders(&db, &msg_id)? >= members {
                    break started.elapsed();
                }
            }
        }
    };
    let holding = holders(&db, &msg_id)?;
    anyhow::ensure!(
        holding == members,
        "{holding} streams hold the group message, expected {members}"
    );
    running.ensure_alive()?;
    Ok(Fanout {
        members,
        group_put,
        settled_jobs: settled.jobs,
        took,
        drain_calls: calls,
        drain_done: done,
        drain_failed: failed,
    })
}
