//! `courier-bench`: benchmarks of the gateway, each against a native baseline
//! measured in the same run, printed as ratios.
//!
//! `courier-bench healthz` serves `GET /healthz` from the `health` component through
//! the in-process gateway and from a native hyper handler doing the same SQLite work,
//! loads them alternately (native, wasm, native, wasm, …) from the same load
//! generator, and then times instantiating the component alone.
//!
//! Each side runs on its own multi-threaded tokio runtime shaped like `courier up`'s
//! (one worker a CPU, the default blocking pool), and the load generator on a third;
//! only one side is under load at a time, so both see the same machine.
//!
//! # Layout
//! - [`cli`]: the command line; `main.rs`: running each command and the in-process
//!   scenarios' report.
//! - [`all`]: `courier-bench all`, the headline set and its summary table.
//! - [`healthz`]: `courier-bench healthz`.
//! - [`load`]: the closed-loop HTTP/1.1 load generator and its statistics.
//! - [`native`]: the native baseline server.
//! - [`gateway`]: building the component, starting the gateway, instantiation timing.
//! - the library (`lib.rs`, used here as `bench`): the in-process fixture, the HTTP
//!   client, machine facts and per-thread CPU accounting, and the messaging, queue,
//!   push and soak benchmarks.
//! - [`scale`]: `courier-bench scale`, sends and polls on SQLite, PostgreSQL and two
//!   gateways on one PostgreSQL; [`pg_waits`]: what PostgreSQL's backends wait on
//!   meanwhile.
//! - [`spin`]: `courier-bench spin`, the same components on `courier up` (baseline)
//!   and on real `spin up`: sends, polls, a 10,000-member fan-out.
//! - `courier-bench soak` runs the library's `soak` against the `courier` binary as a
//!   child process.

mod all;
mod cli;
mod gateway;
mod healthz;
mod load;
mod native;
mod online;
mod pg_waits;
mod scale;
mod spin;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use courier_bench as bench;
use tokio::runtime::Runtime;

use crate::cli::{Cli, Command};
use crate::load::Load;
use courier_bench::machine;

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("courier-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::All {
            database_url,
            no_build,
        } => all::run(&all::Options {
            database_url,
            build: !no_build,
        }),
        Command::Healthz {
            duration,
            connections,
            warmup,
            rounds,
            instantiations,
            manifest,
            no_build,
        } => {
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            let workspace = std::path::absolute(workspace)?;
            let manifest = manifest.unwrap_or_else(|| workspace.join("spin.toml"));
            if !no_build {
                eprintln!("building the health component…");
                gateway::build_health(&workspace)?;
            }
            let load = Load {
                path: "/healthz".into(),
                connections,
                warmup: Duration::from_secs(warmup),
                duration: Duration::from_secs(duration),
            };
            healthz::run(&manifest, &load, rounds, instantiations)
        }
        Command::Messaging {
            users,
            connections,
            duration,
            no_build,
        } => {
            let variables = bench::default_quotas();
            scenario_with("messaging", no_build, variables.clone(), move |fixture| {
                Box::pin(async move {
                    let opts = bench::messaging::Options {
                        users,
                        connections,
                        duration: Duration::from_secs(duration),
                        variables,
                    };
                    bench::messaging::run(fixture, &opts).await
                })
            })
        }
        Command::Scale {
            database_url,
            users,
            connections,
            warmup,
            duration,
            no_build,
        } => {
            let workspace =
                std::path::absolute(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))?;
            scale::run(
                &workspace,
                &scale::Options {
                    users,
                    connections,
                    warmup: Duration::from_secs(warmup),
                    duration: Duration::from_secs(duration),
                    database_url,
                    build: !no_build,
                },
            )
        }
        Command::Spin {
            users,
            connections,
            warmup,
            duration,
            rounds,
            fanout_members,
            spin,
            courier,
            database_url,
            no_build,
        } => {
            let workspace =
                std::path::absolute(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))?;
            spin::run(
                &workspace,
                &spin::Options {
                    users,
                    connections,
                    warmup: Duration::from_secs(warmup),
                    duration: Duration::from_secs(duration),
                    rounds,
                    fanout_members,
                    spin,
                    courier,
                    database_url,
                    build: !no_build,
                },
            )
        }
        Command::Online {
            clients,
            baseline,
            wakes,
            sends,
            spin_clients,
            spin,
            database_url,
            courier,
            no_build,
        } => {
            let workspace =
                std::path::absolute(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))?;
            online::run(
                &workspace,
                &online::Options {
                    counts: clients,
                    baseline,
                    wakes,
                    sends,
                    spin_clients,
                    spin,
                    database_url,
                    courier,
                    build: !no_build,
                },
            )
        }
        Command::Queue { no_build } => {
            scenario_with("queue", no_build, bench::default_quotas(), |fixture| {
                Box::pin(bench::queue::run(fixture))
            })
        }
        Command::Soak {
            seconds,
            warmup,
            rate,
            users,
            group_members,
            long_poll,
            max_p99_ms,
            max_rss_growth,
            seed,
            database_url,
            courier,
            no_build,
        } => {
            let database = database_url
                .as_deref()
                .map(scale::Database::create)
                .transpose()?;
            let variables = database
                .iter()
                .flat_map(|db| {
                    [
                        ("database_url".to_string(), db.url.clone()),
                        ("database_host".to_string(), db.host.clone()),
                    ]
                })
                .collect();
            let opts = bench::soak::Options {
                workspace: Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../..")
                    .canonicalize()?,
                seconds,
                warmup,
                rate,
                users,
                group_members,
                long_poll_secs: long_poll,
                max_p99_ms,
                max_rss_growth_mib_per_min: max_rss_growth,
                seed,
                variables,
                courier,
                build: !no_build,
            };
            let report = runtime("bench")?.block_on(bench::soak::run(&opts))?;
            let facts = machine::Machine::read();
            println!(
                "\ncourier-bench soak — {} CPUs, {}, {} RAM, Linux {} — {}",
                facts.cpus, facts.cpu_model, facts.memory, facts.kernel, facts.date
            );
            report.print();
            let failures = report.failures();
            if !failures.is_empty() {
                bail!("soak failed: {}", failures.join("; "));
            }
            Ok(())
        }
        Command::Push { no_build } => {
            // The fake push service's port must be in the app's variables before the
            // gateway starts.
            let service = std::net::TcpListener::bind("127.0.0.1:0")?;
            let mut variables = bench::default_quotas();
            variables.extend(bench::push::variables(service.local_addr()?));
            scenario_with("push", no_build, variables, move |fixture| {
                Box::pin(bench::push::run(fixture, service))
            })
        }
    }
}

type RowsFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<bench::Row>>> + 'a>>;

/// Starts the gateway in-process on the workspace's `spin.toml` (building the
/// components first unless `no_build`) with application variables (by name, ahead
/// of the environment), runs one scenario and prints its table.
fn scenario_with(
    name: &str,
    no_build: bool,
    variables: std::collections::BTreeMap<String, String>,
    run: impl for<'a> FnOnce(&'a bench::Fixture) -> RowsFuture<'a>,
) -> Result<()> {
    let workspace = std::path::absolute(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))?;
    let runtime = runtime("bench")?;
    let quotas = bench::quotas_line(&variables);
    runtime.block_on(async {
        let fixture =
            bench::Fixture::start_with(workspace.join("spin.toml"), !no_build, variables).await?;
        let loadavg = machine::loadavg();
        let rows = run(&fixture).await?;
        let facts = machine::Machine::read();
        let title = format!(
            "courier-bench {name} — {} CPUs, {}, {} — {}\n\
             load average before: {loadavg}; store: embedded SQLite (WAL, synchronous=NORMAL); {quotas}",
            facts.cpus, facts.cpu_model, facts.kernel, facts.date
        );
        bench::print_report(&title, &rows);
        bench::summary::record(
            name,
            &format!(
                "load average before: {loadavg}; embedded SQLite (WAL, synchronous=NORMAL); {quotas}"
            ),
            &rows,
        )
    })
}

/// A multi-threaded runtime like `courier up`'s, with named threads so CPU time can
/// be told apart; idle blocking threads are kept so none takes its CPU time away.
fn runtime(name: &str) -> Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name(name)
        .thread_keep_alive(Duration::from_secs(3600))
        .build()
        .with_context(|| format!("cannot start the {name} runtime"))
}
