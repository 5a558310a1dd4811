//! The soak (`courier-bench soak`): minutes of fixed-rate, open-loop mixed load on
//! loopback against the real `courier` binary, started as a child process so that
//! its memory is its own. 1:1 and group sends, syncs, long-polls, acks, read
//! receipts and recalls come in fixed proportions ([`mix::CYCLE`]), each request
//! started on its schedule whether or not earlier ones have answered; latency runs
//! from that scheduled start, so a slow gateway cannot hide behind a late load
//! generator. The gateway's `VmRSS`/`VmHWM` are read from `/proc` every few seconds.
//! After the load the queue is drained and every stream read back: each accepted
//! message must be there once for each recipient ([`verify`]).
//!
//! The verdict: no errors, the achieved rate at least 95 % of the target, each
//! kind's p99 under a threshold (long-polls: under their wait plus it), the
//! gateway's memory growth after warm-up under a threshold, every message delivered
//! once, and the gateway still running.
//!
//! # Layout
//! - `soak.rs`: options, the open-loop scheduler, the report and its verdict.
//! - `soak/mix.rs`: the workload: which request comes next, what answers teach it.
//! - `soak/process.rs`: the `courier up` child process and its `/proc` figures.
//! - `soak/verify.rs`: draining the queue and the delivery check.
//! - `soak/report.rs`: the printed report and the verdict.

pub mod mix;
pub mod process;
mod report;
pub mod verify;

pub use report::Report;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;
use tokio::time::Instant;

use self::mix::{CYCLE, Kind, Mix, Request};
use self::process::{Courier, Sample};
use self::verify::Delivered;
use super::client::{Conn, Latencies};

/// How often the gateway's memory and CPU are read.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// A request without an answer after this long is an error (long-polls: plus
/// their wait).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The group's id.
const GROUP: &str = "soak";

pub struct Options {
    pub workspace: PathBuf,
    /// Seconds of load, warm-up included.
    pub seconds: u64,
    /// Unmeasured seconds at the start (latency, rate and memory growth are measured
    /// after them; errors count throughout).
    pub warmup: u64,
    /// Requests started a second.
    pub rate: u32,
    pub users: usize,
    /// Members of the group (users `0..n`); above `inline_fanout_max` (100) a group
    /// send is fanned out by queue jobs.
    pub group_members: usize,
    /// `wait` of the long-polls, seconds.
    pub long_poll_secs: u64,
    pub max_p99_ms: f64,
    pub max_rss_growth_mib_per_min: f64,
    pub seed: u64,
    /// Application variables of the gateway by name (e.g. `database_url` and
    /// `database_host` for a PostgreSQL store).
    pub variables: BTreeMap<String, String>,
    /// The `courier` binary; built in the workspace when `None`.
    pub courier: Option<PathBuf>,
    /// Build `courier` and the components first.
    pub build: bool,
}

#[derive(Debug, Default)]
struct KindStats {
    sent: u64,
    ok: u64,
    skipped: u64,
    /// Errors by status code or failure.
    errors: BTreeMap<String, u64>,
    /// Successes that answered inside the measured window.
    ok_in_window: u64,
    /// Latencies of successes scheduled inside the measured window.
    latencies: Latencies,
}

impl KindStats {
    fn errors(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The scheduler's and the requests' shared state.
struct Shared {
    addr: SocketAddr,
    mix: Mutex<Mix>,
    stats: Mutex<Vec<KindStats>>,
    error_examples: Mutex<Vec<String>>,
    idle: Mutex<Vec<Conn>>,
    measured: (Instant, Instant),
    /// Requests without an answer yet, and their most since the last sample.
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs one request on an idle keep-alive connection (or a new one) and records it.
async fn fire(shared: Arc<Shared>, request: Request, scheduled: Instant) {
    let open = shared.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    shared.peak_in_flight.fetch_max(open, Ordering::Relaxed);
    let idle = lock(&shared.idle).pop();
    let conn = match idle {
        Some(conn) => Ok(conn),
        None => Conn::open(shared.addr).await,
    };
    let limit = REQUEST_TIMEOUT
        + Duration::from_secs(if request.kind == Kind::LongPoll {
            30
        } else {
            0
        });
    let answer = match conn {
        Err(e) => Err(format!("connect: {e:#}")),
        Ok(mut conn) => {
            let call = conn.call(
                request.method,
                &request.path,
                Some(&request.token),
                request.body.clone(),
            );
            match tokio::time::timeout(limit, call).await {
                Ok(Ok(answer)) => {
                    lock(&shared.idle).push(conn);
                    Ok(answer)
                }
                Ok(Err(e)) => Err(format!("{e:#}")),
                Err(_) => Err("timeout".to_string()),
            }
        }
    };
    let done = Instant::now();
    shared.in_flight.fetch_sub(1, Ordering::Relaxed);
    lock(&shared.mix).learn(&request, answer.as_ref().ok().map(|(s, b)| (*s, &b[..])));
    let failure = match &answer {
        Ok((status, _)) if *status == request.expected_status() => None,
        Ok((status, body)) => Some((
            status.to_string(),
            format!("{status} {}", String::from_utf8_lossy(body)),
        )),
        Err(e) if e == "timeout" => Some(("timeout".into(), e.clone())),
        Err(e) => Some(("failed".into(), e.clone())),
    };
    let (start, end) = shared.measured;
    let mut stats = lock(&shared.stats);
    let kind = &mut stats[request.kind.index()];
    match failure {
        None => {
            kind.ok += 1;
            if (start..end).contains(&done) {
                kind.ok_in_window += 1;
            }
            if (start..end).contains(&scheduled) {
                kind.latencies.record(done - scheduled);
            }
        }
        Some((class, detail)) => {
            *kind.errors.entry(class).or_default() += 1;
            let mut examples = lock(&shared.error_examples);
            if examples.len() < 5 {
                examples.push(format!("{} {} → {detail}", request.method, request.path));
            }
        }
    }
}

/// Creates the users and the group; the mix over them.
async fn populate(courier: &Courier, opts: &Options) -> Result<Mix> {
    let secret = courier.secret("jwt_secret")?;
    let ttl = Duration::from_secs(opts.seconds + 3600);
    let admin = courier_gateway::token::mint(&secret, "bench-admin", None, true, ttl)?;
    let uids = super::create_users(courier.addr, &admin, "s", opts.users, 16).await?;
    let members = opts.group_members.min(opts.users);
    let body = json!({ "name": GROUP, "owner": uids[0], "members": &uids[..members] });
    let (status, answer) = Conn::open(courier.addr)
        .await?
        .call(
            "PUT",
            &format!("/v1/groups/{GROUP}"),
            Some(&admin),
            Some(body.to_string()),
        )
        .await?;
    anyhow::ensure!(
        status == 200,
        "creating the group: {status} {}",
        String::from_utf8_lossy(&answer)
    );
    let tokens = uids
        .iter()
        .map(|uid| courier_gateway::token::mint(&secret, uid, None, false, ttl))
        .collect::<Result<_>>()?;
    Ok(Mix::new(
        uids,
        tokens,
        members,
        GROUP,
        opts.long_poll_secs,
        opts.seed,
    ))
}

/// Samples the gateway at 0, every [`SAMPLE_EVERY`], at the end of the warm-up and
/// at the end of the load; prints progress every 30 s.
async fn sample(shared: Arc<Shared>, pid: u32, started: Instant, opts: (u64, u64)) -> Vec<Sample> {
    let (warmup, seconds) = opts;
    let mut at: Vec<u64> = (0..=seconds)
        .step_by(SAMPLE_EVERY.as_secs() as usize)
        .chain([warmup, seconds])
        .collect();
    at.sort_unstable();
    at.dedup();
    let mut samples = Vec::new();
    for second in at {
        tokio::time::sleep_until(started + Duration::from_secs(second)).await;
        let Ok(mut sample) = Sample::take(pid, started.elapsed().as_secs_f64()) else {
            break;
        };
        let now_open = shared.in_flight.load(Ordering::Relaxed);
        sample.peak_in_flight = shared.peak_in_flight.swap(now_open, Ordering::Relaxed);
        if second.is_multiple_of(30) && second > 0 {
            let stats = lock(&shared.stats);
            let sum = |f: fn(&KindStats) -> u64| stats.iter().map(f).sum::<u64>();
            eprintln!(
                "soak: {second:>5} s  sent {}  ok {}  errors {}  gateway RSS {:.1} MiB",
                sum(|k| k.sent),
                sum(|k| k.ok),
                sum(KindStats::errors),
                sample.rss_kib as f64 / 1024.0
            );
        }
        samples.push(sample);
    }
    samples
}

/// Starts the gateway, runs the load, drains, checks delivery and stops the gateway.
pub async fn run(opts: &Options) -> Result<Report> {
    anyhow::ensure!(
        opts.rate > 0 && opts.seconds > 0,
        "--rate and --seconds must be positive"
    );
    anyhow::ensure!(
        opts.users >= 2 && opts.group_members >= 1,
        "the soak needs at least 2 users and a group of at least 1"
    );
    anyhow::ensure!(opts.long_poll_secs <= 30, "a long-poll waits at most 30 s");
    let binary = match &opts.courier {
        Some(path) => path.clone(),
        None if opts.build => {
            eprintln!("soak: building courier…");
            tokio::task::block_in_place(|| process::build_courier(&opts.workspace))?
        }
        None => opts.workspace.join(if cfg!(debug_assertions) {
            "target/debug/courier"
        } else {
            "target/release/courier"
        }),
    };
    eprintln!("soak: starting {} up…", binary.display());
    let mut courier = tokio::task::block_in_place(|| {
        Courier::start(&binary, &opts.workspace, opts.build, &opts.variables)
    })?;
    eprintln!(
        "soak: gateway pid {} on {}; creating {} users and a {}-member group…",
        courier.pid(),
        courier.addr,
        opts.users,
        opts.group_members.min(opts.users)
    );
    let mix = populate(&courier, opts).await?;
    let warmup = opts.warmup.min(opts.seconds / 4);
    let load_before = super::machine::loadavg();
    let started = Instant::now();
    let measured = (
        started + Duration::from_secs(warmup),
        started + Duration::from_secs(opts.seconds),
    );
    let shared = Arc::new(Shared {
        addr: courier.addr,
        mix: Mutex::new(mix),
        stats: Mutex::new(Kind::ALL.iter().map(|_| KindStats::default()).collect()),
        error_examples: Mutex::new(Vec::new()),
        idle: Mutex::new(Vec::new()),
        in_flight: AtomicU64::new(0),
        peak_in_flight: AtomicU64::new(0),
        measured,
    });
    eprintln!(
        "soak: {} requests/s for {} s ({warmup} s warm-up), seed {}…",
        opts.rate, opts.seconds, opts.seed
    );
    let sampler = tokio::spawn(sample(
        Arc::clone(&shared),
        courier.pid(),
        started,
        (warmup, opts.seconds),
    ));
    let mut requests = tokio::task::JoinSet::new();
    for i in 0u64.. {
        let scheduled = started + Duration::from_secs_f64(i as f64 / f64::from(opts.rate));
        if scheduled >= measured.1 {
            break;
        }
        tokio::time::sleep_until(scheduled).await;
        let kind = CYCLE[(i % CYCLE.len() as u64) as usize];
        let request = lock(&shared.mix).next(kind);
        let mut stats = lock(&shared.stats);
        let Some(request) = request else {
            stats[kind.index()].skipped += 1;
            continue;
        };
        stats[kind.index()].sent += 1;
        requests.spawn(fire(Arc::clone(&shared), request, scheduled));
        // Reap finished requests as we go, so the set stays small.
        while requests.try_join_next().is_some() {}
    }
    let samples = sampler.await.context("sampler panicked")?;
    eprintln!(
        "soak: load done; waiting for {} open requests…",
        requests.len()
    );
    while requests.join_next().await.is_some() {}
    let gateway_alive = courier.exited()?.is_none();
    let load_after = super::machine::loadavg();
    let shared = Arc::into_inner(shared).context("a request is still running")?;
    let mix = shared.mix.into_inner().unwrap_or_else(|e| e.into_inner());

    eprintln!("soak: draining the queue and reading every stream back…");
    let secret = courier.secret("internal_secret")?;
    let mut drained = verify::drain(courier.addr, &secret, Duration::from_secs(300)).await?;
    let first = verify::check(courier.addr, &mix, 4).await?;
    let mut delivered = Delivered {
        last: first.clone(),
        first,
        checks: 1,
    };
    // A copy still missing may be in a job the gateway's own drainer holds: drain and
    // look again, twice at most.
    while delivered.last.problems() > 0 && delivered.checks < 3 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        drained = verify::drain(courier.addr, &secret, Duration::from_secs(60)).await?;
        delivered.last = verify::check(courier.addr, &mix, 4).await?;
        delivered.checks += 1;
    }
    let (warnings, log_errors, log_tail) = courier.log_summary(10);
    let exit = courier.stop()?;
    Ok(Report {
        rate: opts.rate,
        seconds: opts.seconds,
        warmup,
        users: mix.uids.len(),
        members: mix.members,
        long_poll_secs: opts.long_poll_secs,
        seed: opts.seed,
        store: if opts.variables.contains_key("database_url") {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        max_p99_ms: opts.max_p99_ms,
        max_rss_growth: opts.max_rss_growth_mib_per_min,
        stats: shared.stats.into_inner().unwrap_or_else(|e| e.into_inner()),
        error_examples: shared
            .error_examples
            .into_inner()
            .unwrap_or_else(|e| e.into_inner()),
        load_before,
        load_after,
        samples,
        unanswered_sends: mix.unanswered_sends,
        drained,
        delivered,
        gateway_alive,
        exit: exit.to_string(),
        warnings,
        log_errors,
        log_tail,
    })
}
