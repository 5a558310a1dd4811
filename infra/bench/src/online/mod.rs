//! `courier-bench online`: idle online clients on one gateway (a child `courier up` on
//! a fresh SQLite file). Each client holds one `GET /v1/sync?wait=30`, as a web client
//! does. For each N: the gateway's CPU while they wait, its resident memory per
//! waiting client, the wake latency (from a send's answer to the woken client's
//! answer), and 1:1 send latency with N waiting against none.
//!
//! The same again with each client holding one `GET /v1/stream` (Server-Sent
//! Events) instead, which the gateway holds the same way between the component's
//! runs; a stream's wake is its first `event: entry`.
//!
//! With `--database-url`, both again on two gateways sharing one PostgreSQL database:
//! the clients alternate between them and every wake is sent through the other one
//! (the cross-gateway wake, `LISTEN`/`NOTIFY`).
//!
//! On `spin up` (no parking: the component waits in its own loop), a few clients
//! polling and then streaming, with the loop's pause fixed at 20 ms (as before its
//! backoff) and backing off to 200 ms (the default `wait_poll_max_ms`).
//!
//! Baseline, in the same run: the same gateway with parking off (`--max-parked 0`),
//! where every waiting poll holds a component instance that re-reads its head (pause
//! 20 ms doubling to 200 ms), at a count its 1,000-instance pool can hold.
//!
//! All measurements of one N fall inside the first poll's 29.5 s wait, so no poll is
//! answered by its deadline meanwhile; a poll answered otherwise than by its wake, or
//! any request that fails, fails the run (no figures are printed for it).
//!
//! # Layout
//! - `mod.rs`: the options, the cases of a run and measuring one.
//! - `clients.rs`: one waiting poll or stream, the held-client gauges, send latencies.
//! - `report.rs`: the table, the ratios and the summary's rows.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use courier_bench::client::{Conn, Latencies};
use courier_bench::machine::{self, Machine};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

mod clients;
mod report;

use clients::{first_event, held_at_least, send_latencies, wait_once};

use crate::spin::host::{Host, Running, Setup, Snapshot};

pub struct Options {
    /// Parked counts to measure.
    pub counts: Vec<usize>,
    /// Waiting polls of the baseline (parking off).
    pub baseline: usize,
    /// Wake-latency samples per N.
    pub wakes: usize,
    /// 1:1 sends per latency measurement.
    pub sends: usize,
    /// Waiting clients on `spin up` (the component's own loop, before and after its
    /// backoff); 0 skips them.
    pub spin_clients: usize,
    pub spin: Option<PathBuf>,
    /// A PostgreSQL server: the parked and stream runs again on two gateways sharing
    /// one fresh database of it, every wake crossing from one to the other.
    pub database_url: Option<String>,
    pub courier: Option<PathBuf>,
    pub build: bool,
}

const JWT: &str = "courier-bench-jwt-secret-0123456789abcdef";
const INTERNAL: &str = "courier-bench-internal-secret-0123456789";
/// Users that send (never wait): senders of the wakes and of the send loop.
const SENDERS: usize = 64;
/// Concurrent connections of the send-latency loop.
const SEND_CONNECTIONS: usize = 8;
/// Idle CPU is measured over this window.
const IDLE_WINDOW: Duration = Duration::from_secs(3);
/// The polls' `wait`; everything is measured before the first one's deadline.
const WAIT_SECS: u64 = 30;
const BUDGET: Duration = Duration::from_millis(28_500);
/// Descriptors left for everything but client sockets, in the bench and the gateway
/// (its store pool, listener, logs: well under a hundred).
const SPARE_FILES: u64 = 256;
/// Clients that start waiting at once.
const RAMP_STEP: usize = 100;
/// On `spin up`, which counts nothing, the clients are taken as waiting this long
/// after the last one connected (a first pass takes milliseconds).
const SPIN_SETTLE: Duration = Duration::from_secs(2);
/// Sends per latency measurement and wakes of a case on `spin up`.
const SPIN_SENDS: usize = 500;
const SPIN_WAKES: usize = 40;
/// Most clients of a PostgreSQL case: its first passes (each writes the device's
/// presence in a commit of its own) ran at about 550/s on this 2-core machine, and
/// more than this do not all start waiting inside one wait.
const PG_MAX_CLIENTS: usize = 10_000;
/// `wait_poll_max_ms` of the component's loop before the backoff (a fixed 20 ms
/// pause, as it was) and after (the default).
const LOOP_BEFORE_MS: u64 = 20;
const LOOP_AFTER_MS: u64 = 200;

/// One measured setup: where the clients wait and how.
#[derive(Clone)]
struct Case {
    label: String,
    host: Host,
    /// Gateways sharing the store (2: one PostgreSQL database); clients alternate
    /// between them and each wake is sent through the other one.
    gateways: usize,
    /// `GET /v1/stream` instead of `GET /v1/sync?wait=30`.
    streams: bool,
    /// The gateway parks (off: every waiting poll holds an instance).
    parking: bool,
    /// `wait_poll_max_ms`, for the component's own loop.
    poll_max_ms: Option<u64>,
    postgres: bool,
    n: usize,
}

struct Measured {
    case: Case,
    ramp: Duration,
    idle_cpu_pct: f64,
    rss_per_client: f64,
    wake: Latencies,
    send_idle: Latencies,
    send_loaded: Latencies,
}

pub fn run(workspace: &Path, opts: &Options) -> Result<()> {
    let courier = crate::spin::host::prepare(workspace, opts.courier.as_deref(), opts.build)?;
    let open_files = courier_gateway::listen::raise_open_file_limit();
    // Both processes hold one socket per client, under the same limit (raised to
    // the hard one; a container may not allow more): counts above it are capped,
    // and the report says so.
    let room = usize::try_from(open_files.saturating_sub(SPARE_FILES)).unwrap_or(usize::MAX);
    let mut capped = Vec::new();
    let counts: Vec<usize> = opts
        .counts
        .iter()
        .map(|&n| {
            if n > room {
                capped.push(format!("{n} → {room}"));
            }
            n.min(room)
        })
        .collect();
    if !capped.is_empty() {
        eprintln!(
            "the open-file limit is {open_files} (hard): client counts capped ({})",
            capped.join(", ")
        );
    }
    anyhow::ensure!(
        opts.baseline <= room && opts.spin_clients <= room,
        "--baseline {} or --spin-clients {} is over the open-file limit",
        opts.baseline,
        opts.spin_clients
    );
    let spin = if opts.spin_clients > 0 {
        Some(crate::spin::host::spin_binary(
            opts.spin.as_deref(),
            workspace,
        )?)
    } else {
        None
    };
    let snapshot = Snapshot::take(workspace)?;
    let variables = [
        ("jwt_secret", JWT),
        ("internal_secret", INTERNAL),
        ("rate_per_user_per_sec", "1000000"),
        ("rate_burst", "1000000"),
        ("rate_per_org_per_sec", "1000000"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    let setup = Setup {
        courier,
        spin: spin.clone().unwrap_or_default(),
        manifest: snapshot.manifest.clone(),
        cache_dir: workspace.join(".courier/cache"),
        variables,
        gateway_args: Vec::new(),
    };
    let machine = Machine::read();
    let started_loadavg = machine::loadavg();
    let rt = crate::runtime(machine::LOAD_THREADS)?;
    crate::spin::host::stop_hosts_on_signal(&rt)?;

    // A failed case ends the run; the cases measured before it are still printed.
    let mut results = Vec::new();
    let mut failed = None;
    for case in cases(opts, &counts) {
        match measure(&rt, &setup, opts, case) {
            Ok(m) => results.push(m),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }

    report::print(&report::Run {
        machine: &machine,
        started_loadavg: &started_loadavg,
        results: &results,
        capped: &capped,
        open_files,
        postgres_capped: opts.database_url.is_some() && counts.iter().any(|&n| n > PG_MAX_CLIENTS),
    });
    match failed {
        Some(e) => Err(e),
        None => courier_bench::summary::record(
            "online",
            &format!("load average before: {started_loadavg}; embedded SQLite; quotas lifted"),
            &report::headline(&results),
        ),
    }
}

/// The cases of one run: the baseline first, the others are compared with it.
fn cases(opts: &Options, counts: &[usize]) -> Vec<Case> {
    let gateway = |label: &str, streams: bool, parking: bool, n: usize| Case {
        label: label.to_string(),
        host: Host::Gateway,
        gateways: 1,
        streams,
        parking,
        poll_max_ms: None,
        postgres: false,
        n,
    };
    let mut cases = vec![gateway("loop (baseline)", false, false, opts.baseline)];
    cases.extend(counts.iter().map(|&n| gateway("parked", false, true, n)));
    cases.extend(counts.iter().map(|&n| gateway("streams", true, true, n)));
    if opts.database_url.is_some() {
        for (label, streams) in [("parked, PG ×2", false), ("streams, PG ×2", true)] {
            let mut pg_counts: Vec<usize> = counts.iter().map(|&n| n.min(PG_MAX_CLIENTS)).collect();
            pg_counts.dedup();
            cases.extend(pg_counts.into_iter().map(|n| Case {
                gateways: 2,
                postgres: true,
                ..gateway(label, streams, true, n)
            }));
        }
    }
    if opts.spin_clients > 0 {
        for (when, max) in [("before", LOOP_BEFORE_MS), ("after", LOOP_AFTER_MS)] {
            for (kind, streams) in [("loop", false), ("streams", true)] {
                cases.push(Case {
                    host: Host::Spin,
                    poll_max_ms: Some(max),
                    ..gateway(
                        &format!("Spin {kind}, {max} ms ({when})"),
                        streams,
                        false,
                        opts.spin_clients,
                    )
                });
            }
        }
    }
    cases
}

/// Starts the case's hosts (on a fresh database of their own), measures, stops them.
fn measure(rt: &Runtime, setup: &Setup, opts: &Options, case: Case) -> Result<Measured> {
    // Declared before the hosts, dropped after them.
    let database = match (&opts.database_url, case.postgres) {
        (Some(server), true) => Some(crate::scale::Database::create(server)?),
        _ => None,
    };
    let mut setup = setup.clone();
    // Every client connects from 127.0.0.1: the per-address cap is off here.
    let max_parked = if case.parking { case.n + 16 } else { 0 };
    setup.gateway_args = vec![
        "--max-parked".into(),
        max_parked.to_string(),
        "--max-connections-per-address".into(),
        "0".into(),
    ];
    if let Some(db) = &database {
        setup.store_in(db);
    }
    if let Some(max) = case.poll_max_ms {
        setup
            .variables
            .push(("wait_poll_max_ms".into(), max.to_string()));
    }
    eprintln!("== {}: {} waiting clients ==", case.label, case.n);
    let mut hosts = (0..case.gateways)
        .map(|_| Running::start(case.host, &setup))
        .collect::<Result<Vec<_>>>()?;
    rt.block_on(one(&mut hosts, &case, opts)).map_err(|e| {
        let logs: Vec<String> = hosts.iter().map(|h| h.log_tail(15)).collect();
        anyhow::anyhow!(
            "{} with {} waiting clients FAILED (no figures): {e:#}\nlog:\n{}",
            case.label,
            case.n,
            logs.join("\n--\n")
        )
    })
}

/// One case, its hosts started: `case.n` waiting clients.
async fn one(hosts: &mut [Running], case: &Case, opts: &Options) -> Result<Measured> {
    let n = case.n;
    let addrs: Vec<SocketAddr> = hosts.iter().map(|h| h.addr).collect();
    let ttl = Duration::from_secs(3600);
    let admin = courier_gateway::token::mint(JWT, "bench-admin", None, true, ttl)?;
    eprintln!("  creating {n} + {SENDERS} users…");
    let waiting = courier_bench::create_users(addrs[0], &admin, "w", n, 16).await?;
    let senders = courier_bench::create_users(addrs[0], &admin, "s", SENDERS, 8).await?;
    let token = |u: &str| courier_gateway::token::mint(JWT, u, None, false, ttl);
    let sender_tokens: Vec<String> = senders.iter().map(|u| token(u)).collect::<Result<_>>()?;

    // On `spin up` a send takes longer and a wake up to a whole pause (200 ms): fewer
    // of each, so that all fit inside one wait.
    let (sends, wakes) = match case.host {
        Host::Spin => (opts.sends.min(SPIN_SENDS), opts.wakes.min(SPIN_WAKES)),
        Host::Gateway => (opts.sends, opts.wakes),
    };
    let wakes = wakes.min(n);
    let send_idle = send_latencies(addrs[0], &senders, &sender_tokens, sends, "i").await?;
    let rss_before: u64 = hosts.iter().map(Running::rss).sum();

    // The clients: one socket and one waiting poll each, on the hosts in turn.
    eprintln!("  {n} clients start waiting…");
    let started = Instant::now();
    let answers: Arc<Mutex<HashMap<usize, oneshot::Sender<Result<Instant>>>>> = Default::default();
    let mut receivers = HashMap::new();
    for i in 0..n {
        let (tx, rx) = oneshot::channel();
        answers.lock().expect("lock").insert(i, tx);
        receivers.insert(i, rx);
    }
    let streams = case.streams;
    let mut clients = Vec::with_capacity(n);
    for (i, uid) in waiting.iter().enumerate() {
        let route = if streams {
            "/v1/stream?after=0".to_string()
        } else {
            format!("/v1/sync?after=0&wait={WAIT_SECS}")
        };
        let request = format!(
            "GET {route} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {}\r\n\r\n",
            token(uid)?
        );
        let answers = Arc::clone(&answers);
        let addr = addrs[i % addrs.len()];
        clients.push(tokio::spawn(async move {
            let answered = if streams {
                first_event(addr, request).await
            } else {
                wait_once(addr, request).await
            };
            if let Some(tx) = answers.lock().expect("lock").remove(&i) {
                let _ = tx.send(answered);
            }
        }));
        // In steps, each once the gateway holds the last: the first pass of each poll
        // runs an instance, and a burst of thousands at once would touch (and keep
        // resident) thousands of instance slots, which is no cost of waiting.
        if i % RAMP_STEP == RAMP_STEP - 1 {
            held_at_least(&addrs, case, i + 1, started).await?;
        }
    }
    held_at_least(&addrs, case, n, started).await?;
    if let Some((i, _)) = receivers.iter_mut().find(|(_, rx)| !rx.is_empty()) {
        let i = *i;
        let answer = receivers.remove(&i).expect("receiver").await;
        bail!("client {i} was answered before any write: {answer:?}");
    }
    let ramp = started.elapsed();
    // With PostgreSQL, its server's CPU (the LISTEN sessions, the triggers) counts too.
    let cpu = |hosts: &[Running]| {
        let server = if case.postgres {
            machine::processes_cpu("postgres")
        } else {
            Duration::ZERO
        };
        hosts.iter().map(Running::cpu).sum::<Duration>() + server
    };
    let before = cpu(hosts);
    tokio::time::sleep(IDLE_WINDOW).await;
    let idle_cpu_pct = (cpu(hosts) - before).as_secs_f64() / IDLE_WINDOW.as_secs_f64() * 100.0;
    let rss_after: u64 = hosts.iter().map(Running::rss).sum();
    let rss_per_client = rss_after.saturating_sub(rss_before) as f64 / n as f64;

    eprintln!("  sends with {n} waiting…");
    let send_loaded = send_latencies(addrs[0], &senders, &sender_tokens, sends, "l").await?;

    eprintln!("  {wakes} wakes…");
    let mut wake = Latencies::default();
    let mut conns = Vec::with_capacity(addrs.len());
    for &addr in &addrs {
        conns.push(Conn::open(addr).await?);
    }
    for k in 0..wakes {
        let i = k * n / wakes;
        let body = serde_json::json!({
            "client_msg_id": format!("wake{k}"),
            "to": {"user": waiting[i]},
            "content": {"type": "text", "text": "wake"},
        })
        .to_string();
        // Through the next host: with two gateways, never the client's own.
        let through = (i + 1) % conns.len();
        let (status, answer) = conns[through]
            .call(
                "POST",
                "/v1/messages",
                Some(&sender_tokens[k % SENDERS]),
                Some(body),
            )
            .await?;
        let sent = Instant::now();
        anyhow::ensure!(
            status == 201,
            "wake send: {status} {}",
            String::from_utf8_lossy(&answer)
        );
        let rx = receivers.remove(&i).context("client already answered")?;
        let answered = tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .context("a woken client was not answered within 5 s")??
            .context("woken client")?;
        wake.record(answered.saturating_duration_since(sent));
    }
    anyhow::ensure!(
        started.elapsed() < BUDGET,
        "the measurements took {:?}, past the polls' wait: rerun with fewer clients",
        started.elapsed()
    );
    if let Some((i, _)) = receivers.iter_mut().find(|(_, rx)| !rx.is_empty()) {
        bail!("client {i} was answered without a write");
    }
    for host in hosts.iter_mut() {
        host.ensure_alive()?;
    }
    for client in clients {
        client.abort();
    }
    Ok(Measured {
        case: case.clone(),
        ramp,
        idle_cpu_pct,
        rss_per_client,
        wake,
        send_idle,
        send_loaded,
    })
}
