//! `courier-bench scale`: the core messaging closed loops (1:1 sends, sync polls) on
//! three setups in one run — one gateway on the embedded SQLite store, one on
//! PostgreSQL, two on one PostgreSQL database with the connections split between
//! them — each compared with the setup it changes, measured in the same run.
//!
//! Every gateway is a [`Fixture`] on a runtime of its own (like a `courier up`
//! process: one worker a CPU); the load generator runs on another. Every PostgreSQL
//! setup gets a fresh database (`CREATE DATABASE`, dropped afterwards) on the server
//! of `--database-url`. The gateways of a setup share their secrets, so a token
//! minted for one is good on the other. The quotas are the defaults, set explicitly,
//! over users spread `ORG_SIZE` to an org; any refused or failed send fails the run.
//! `report.rs` prints the tables and hands the summary its rows.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use courier_bench::{Fixture, messaging};

use crate::pg_waits;

mod report;

use courier_store::native_pg::NativePostgres;
use courier_store::sql::Sql;
use report::{headline, print_cpu, print_statements, print_throughput, print_waits};
use tokio::runtime::Runtime;

use courier_bench::machine::{self, GATEWAY_THREADS, LOAD_THREADS, Machine};

pub struct Options {
    pub users: usize,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// The PostgreSQL server (its database is only used to create and drop others).
    pub database_url: String,
    pub build: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Setup {
    Sqlite,
    Postgres,
    TwoPostgres,
}

impl Setup {
    const ALL: [Setup; 3] = [Setup::Sqlite, Setup::Postgres, Setup::TwoPostgres];

    fn name(self) -> &'static str {
        match self {
            Setup::Sqlite => "SQLite, 1 gateway",
            Setup::Postgres => "PostgreSQL, 1 gateway",
            Setup::TwoPostgres => "PostgreSQL, 2 gateways",
        }
    }

    fn gateways(self) -> usize {
        match self {
            Setup::TwoPostgres => 2,
            _ => 1,
        }
    }

    /// The setup this one's ratios are against.
    fn baseline(self) -> Option<Setup> {
        match self {
            Setup::Sqlite => None,
            Setup::Postgres => Some(Setup::Sqlite),
            Setup::TwoPostgres => Some(Setup::Postgres),
        }
    }
}

/// One measured closed loop and where the machine's CPU time went meanwhile.
struct Loop {
    measured: messaging::Measured,
    /// `/proc/loadavg` just before the loop.
    loadavg: String,
    machine_cpu: Duration,
    steal_cpu: Duration,
    gateway_cpu: Duration,
    load_cpu: Duration,
    postgres_cpu: Duration,
    own_cpu: Duration,
    /// PostgreSQL's backends during the loop (PostgreSQL send loops only).
    waits: Option<pg_waits::Waits>,
    /// `pg_stat_statements`' top statements of the loop, or why there are none
    /// (PostgreSQL send loops only).
    statements: Option<Result<Vec<pg_waits::Statement>, String>>,
}

struct Outcome {
    setup: Setup,
    sends: Loop,
    polls: Loop,
}

pub fn run(workspace: &Path, opts: &Options) -> Result<()> {
    let machine = Machine::read();
    let started_loadavg = machine::loadavg();
    let load_rt = crate::runtime(LOAD_THREADS)?;
    let mut outcomes = Vec::new();
    for (n, setup) in Setup::ALL.into_iter().enumerate() {
        eprintln!("== {} ==", setup.name());
        outcomes.push(run_setup(
            setup,
            &workspace.join("spin.toml"),
            opts,
            &load_rt,
            opts.build && n == 0,
        )?);
    }

    println!(
        "\ncourier-bench scale — {} CPUs, {}, {} RAM, Linux {} — {}",
        machine.cpus, machine.cpu_model, machine.memory, machine.kernel, machine.date
    );
    println!(
        "{} users, {} keep-alive connections a loop (split evenly over the gateways), \
         {}s warm-up + {}s measured; load average at the start {started_loadavg}, at the end {}",
        opts.users,
        opts.connections,
        opts.warmup.as_secs(),
        opts.duration.as_secs(),
        machine::loadavg()
    );
    println!(
        "stores: SQLite WAL, synchronous=NORMAL; PostgreSQL {}; {}; {} users to an org",
        postgres_settings(&opts.database_url),
        courier_bench::quotas_line(&courier_bench::default_quotas()),
        courier_bench::ORG_SIZE
    );
    print_throughput(&outcomes);
    print_cpu(&outcomes, machine.cpus);
    print_waits(&outcomes);
    print_statements(&outcomes);
    courier_bench::summary::record(
        "scale",
        &format!(
            "load average before: {started_loadavg}; PostgreSQL {}; {} users, {} to an org",
            postgres_settings(&opts.database_url),
            opts.users,
            courier_bench::ORG_SIZE
        ),
        &headline(&outcomes),
    )
}

/// Starts the setup's gateways (and database), runs the send and poll loops, and
/// stops everything again.
fn run_setup(
    setup: Setup,
    manifest: &Path,
    opts: &Options,
    load_rt: &Runtime,
    build: bool,
) -> Result<Outcome> {
    // Declared first, dropped last: after the gateways' runtimes are gone.
    let database = match setup {
        Setup::Sqlite => None,
        _ => Some(Database::create(&opts.database_url)?),
    };
    // Shared secrets; the default quotas, set explicitly, over users spread across
    // orgs (`ORG_SIZE` to one): every send must pass them.
    let mut variables: BTreeMap<String, String> = courier_bench::default_quotas();
    variables.extend(
        [
            ("jwt_secret", "courier-bench-jwt-secret-0123456789abcdef"),
            (
                "internal_secret",
                "courier-bench-internal-secret-0123456789",
            ),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.to_string())),
    );
    if let Some(db) = &database {
        variables.insert("database_url".into(), db.url.clone());
        variables.insert("database_host".into(), db.host.clone());
    }
    let runtimes = (0..setup.gateways())
        .map(|_| crate::runtime(GATEWAY_THREADS))
        .collect::<Result<Vec<_>>>()?;
    let mut fixtures = Vec::new();
    for (n, rt) in runtimes.iter().enumerate() {
        let fixture = rt.block_on(Fixture::start_with(
            manifest.to_path_buf(),
            build && n == 0,
            variables.clone(),
        ))?;
        fixtures.push(fixture);
    }
    let addrs: Vec<SocketAddr> = fixtures.iter().map(|f| f.addr).collect();
    let probe = database.as_ref().map(|db| Probe {
        server: &opts.database_url,
        database: &db.name,
        url: &db.url,
    });
    let outcome = load_rt.block_on(measure(setup, &fixtures, &addrs, opts, probe));
    drop(fixtures);
    for rt in runtimes {
        rt.shutdown_timeout(Duration::from_secs(5));
    }
    outcome
}

/// The PostgreSQL database of a setup, watched during its measured send loop.
#[derive(Clone, Copy)]
struct Probe<'a> {
    /// The server (`--database-url`), whose `pg_stat_activity` is sampled.
    server: &'a str,
    database: &'a str,
    /// The database itself, whose `pg_stat_statements` is read.
    url: &'a str,
}

/// `probe`: the PostgreSQL database whose backends are sampled, and statements
/// counted, during the measured send loop.
async fn measure(
    setup: Setup,
    fixtures: &[Fixture],
    addrs: &[SocketAddr],
    opts: &Options,
    probe: Option<Probe<'_>>,
) -> Result<Outcome> {
    let first = &fixtures[0];
    eprintln!("creating {} users…", opts.users);
    let uids = Arc::new(
        first
            .users_in("s", opts.users, 16, courier_bench::ORG_SIZE)
            .await?,
    );
    let tokens: Arc<Vec<String>> = Arc::new(
        uids.iter()
            .map(|u| first.token(u, false))
            .collect::<Result<_>>()?,
    );
    let senders = messaging::Senders {
        uids: Arc::clone(&uids),
        tokens: Arc::clone(&tokens),
        org_size: courier_bench::ORG_SIZE,
    };
    let (connections, warmup, duration) = (opts.connections, opts.warmup, opts.duration);

    eprintln!(
        "sends: {connections} connections on {} gateway(s)…",
        addrs.len()
    );
    messaging::send_loop(addrs, &senders, connections, warmup, "w").await?;
    let counting = match probe {
        Some(p) => {
            let url = p.url.to_string();
            Some(tokio::task::spawn_blocking(move || pg_waits::reset_statements(&url)).await?)
        }
        None => None,
    };
    let sampler = probe.map(|p| pg_waits::Sampler::start(p.server, p.database));
    let mut sends = observed(messaging::send_loop(
        addrs,
        &senders,
        connections,
        duration,
        "s",
    ))
    .await?;
    sends.waits = sampler.map(pg_waits::Sampler::stop).transpose()?;
    sends.statements = match (probe, counting) {
        (Some(p), Some(Ok(()))) => {
            let url = p.url.to_string();
            let top = tokio::task::spawn_blocking(move || pg_waits::top_statements(&url, 10));
            Some(Ok(top.await??))
        }
        (_, Some(Err(why))) => Some(Err(format!("{why:#}"))),
        _ => None,
    };

    let heads = messaging::heads(first.addr, &tokens).await?;
    eprintln!(
        "polls: {connections} connections on {} gateway(s)…",
        addrs.len()
    );
    messaging::poll_loop(addrs, &tokens, &heads, connections, warmup).await?;
    let polls = observed(messaging::poll_loop(
        addrs,
        &tokens,
        &heads,
        connections,
        duration,
    ))
    .await?;
    Ok(Outcome {
        setup,
        sends,
        polls,
    })
}

/// Runs one measured loop, with the CPU time every party used meanwhile.
async fn observed(
    run: impl std::future::Future<Output = Result<messaging::Measured>>,
) -> Result<Loop> {
    let loadavg = machine::loadavg();
    let machine_before = machine::machine_cpu()?;
    let steal_before = machine::steal_cpu()?;
    let threads_before = machine::cpu_by_thread()?;
    let postgres_before = machine::processes_cpu("postgres");
    let measured = run.await?;
    let postgres_after = machine::processes_cpu("postgres");
    let threads_after = machine::cpu_by_thread()?;
    let steal_after = machine::steal_cpu()?;
    let machine_after = machine::machine_cpu()?;
    let own = |m: &HashMap<String, Duration>| m.values().sum::<Duration>();
    Ok(Loop {
        measured,
        loadavg,
        machine_cpu: machine_after.saturating_sub(machine_before),
        steal_cpu: steal_after.saturating_sub(steal_before),
        gateway_cpu: machine::cpu_delta(&threads_before, &threads_after, GATEWAY_THREADS),
        load_cpu: machine::cpu_delta(&threads_before, &threads_after, LOAD_THREADS),
        postgres_cpu: postgres_after.saturating_sub(postgres_before),
        own_cpu: own(&threads_after).saturating_sub(own(&threads_before)),
        waits: None,
        statements: None,
    })
}

/// The PostgreSQL server's durability settings, as `current_setting` reads them (a
/// query, which the store's executor wraps in `WITH …`: `SHOW` cannot be wrapped).
fn postgres_settings(server: &str) -> String {
    let read = || -> Result<String> {
        let admin = NativePostgres::connect(server).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut out = Vec::new();
        for name in ["fsync", "synchronous_commit", "full_page_writes"] {
            let value = admin
                .query_row("SELECT current_setting(?)", &[name.into()])
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .and_then(|row| row.into_iter().next())
                .and_then(courier_store::sql::SqlValue::into_string)
                .unwrap_or_default();
            out.push(format!("{name}={value}"));
        }
        Ok(out.join(", "))
    };
    read().unwrap_or_else(|e| format!("settings unknown ({e:#})"))
}

/// A fresh database on the PostgreSQL server, dropped (with any sessions still on
/// it) when this is.
pub struct Database {
    server: String,
    /// The database's name.
    pub name: String,
    /// The URL the gateways use (`database_url`).
    pub url: String,
    /// `host:port` of the server (`database_host`, for the allow-lists).
    pub host: String,
}

impl Database {
    pub fn create(server: &str) -> Result<Self> {
        let name = courier_store::testdb::unique_name("courier_bench_");
        let (url, host) = courier_store::testdb::on_database(server, &name)?;
        NativePostgres::connect(server)
            .and_then(|admin| admin.execute(&format!("CREATE DATABASE {name}"), &[]))
            .map_err(|e| anyhow::anyhow!("creating database {name} on {server}: {e}"))?;
        eprintln!("created database {name}");
        Ok(Self {
            server: server.to_string(),
            name,
            url,
            host,
        })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let dropped = NativePostgres::connect(&self.server).and_then(|admin| {
            admin.execute(
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
                &[],
            )
        });
        if let Err(e) = dropped {
            eprintln!("could not drop database {}: {e}", self.name);
        }
    }
}
