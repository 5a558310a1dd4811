//! `courier-bench spin`: the same components on the two hosts a user runs them on,
//! `courier up` (the gateway, the baseline) and `spin up` (real Spin 4.x), measured
//! in one run on one machine: users created through the directory API, 1:1 sends/s
//! and sync polls/s with their latencies and the host's CPU per operation, and in the
//! last round a 10,000-member group message timed until every member's stream holds
//! it. Spin has no queue drainer, so on Spin the bench calls `POST /internal/drain`
//! itself, back to back, as `courier drain` would (with no pause between calls).
//!
//! Both hosts run as child processes on one snapshot of the built components, each
//! on a fresh SQLite file (or, with `--database-url`, a fresh PostgreSQL database), with the same variables (rate limits lifted, so
//! every send is one the store takes). Rounds alternate which host goes first. A run
//! in which any request failed prints what failed and exits non-zero, with no
//! throughput.
//!
//! - [`host`]: the snapshot, starting and stopping the hosts, their CPU time.
//! - [`workload`]: what each host is put through.

pub mod host;
mod workload;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use courier_bench::machine::{self, Machine};
use courier_bench::messaging::Failures;

use host::{Host, Running, Setup, Snapshot};
use workload::{Loop, Run, Workload};

pub struct Options {
    pub users: usize,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub rounds: u32,
    /// Members of the fan-out group (0: no fan-out).
    pub fanout_members: usize,
    pub spin: Option<PathBuf>,
    pub courier: Option<PathBuf>,
    /// Store on a fresh database of this PostgreSQL server (one per host and round)
    /// instead of the hosts' SQLite files.
    pub database_url: Option<String>,
    pub build: bool,
}

pub fn run(workspace: &Path, opts: &Options) -> Result<()> {
    anyhow::ensure!(opts.users >= 2, "--users must be at least 2");
    anyhow::ensure!(opts.rounds >= 1, "--rounds must be at least 1");
    let spin = host::spin_binary(opts.spin.as_deref(), workspace)?;
    let courier = host::prepare(workspace, opts.courier.as_deref(), opts.build)?;
    let snapshot = Snapshot::take(workspace)?;
    let spin_version = std::process::Command::new(&spin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();

    let w = Workload {
        users: opts.users,
        connections: opts.connections,
        warmup: opts.warmup,
        duration: opts.duration,
        jwt_secret: "courier-bench-jwt-secret-0123456789abcdef".into(),
        internal_secret: "courier-bench-internal-secret-0123456789".into(),
    };
    let variables = [
        ("jwt_secret", w.jwt_secret.as_str()),
        ("internal_secret", w.internal_secret.as_str()),
        ("rate_per_user_per_sec", "1000000"),
        ("rate_burst", "1000000"),
        ("rate_per_org_per_sec", "1000000"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect();
    let setup = Setup {
        courier,
        spin,
        manifest: snapshot.manifest.clone(),
        cache_dir: workspace.join(".courier/cache"),
        variables,
        gateway_args: Vec::new(),
    };

    let machine = Machine::read();
    let started_loadavg = machine::loadavg();
    let rt = crate::runtime(machine::LOAD_THREADS)?;
    host::stop_hosts_on_signal(&rt)?;
    let mut runs = Vec::new();
    for round in 1..=opts.rounds {
        let mut order = Host::BOTH;
        if round % 2 == 0 {
            order.reverse();
        }
        let fanout =
            (round == opts.rounds && opts.fanout_members > 0).then_some(opts.fanout_members);
        for host in order {
            eprintln!("== round {round}: {} ==", host.name());
            // Declared before the host, dropped after it.
            let database = opts
                .database_url
                .as_deref()
                .map(crate::scale::Database::create)
                .transpose()?;
            let mut setup = setup.clone();
            if let Some(db) = &database {
                setup.store_in(db);
            }
            let mut running = Running::start(host, &setup)?;
            eprintln!("  serving on {}", running.addr);
            let run = rt.block_on(workload::run(&mut running, round, &w, fanout))?;
            drop(running);
            // A host that had failures is not measured further: the run fails.
            let failed = failures(&run);
            runs.push(run);
            if !failed.is_empty() {
                report_failures(&runs);
                bail!("requests failed on {}: {}", host.name(), failed.join("; "));
            }
        }
    }

    println!(
        "\ncourier-bench spin — {} CPUs, {}, {} RAM, Linux {} — {}",
        machine.cpus, machine.cpu_model, machine.memory, machine.kernel, machine.date
    );
    println!(
        "{spin_version}; {} components ({} files, newest built {}s ago); store: {}; {} \
         users, {} keep-alive connections a loop, {}s warm-up + {}s measured, {} \
         round(s); load average at the start {started_loadavg}, at the end {}",
        snapshot.dir.path().display(),
        snapshot.files,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .saturating_sub(snapshot.newest),
        match &opts.database_url {
            Some(url) => format!("a fresh PostgreSQL database per host and round on {url}"),
            None => "each host's SQLite file".into(),
        },
        opts.users,
        opts.connections,
        opts.warmup.as_secs(),
        opts.duration.as_secs(),
        opts.rounds,
        machine::loadavg()
    );
    print_loops(&runs, machine.cpus);
    print_fanout(&runs);
    Ok(())
}

/// What failed in a run's loops and warm-ups, as `what: kind ×count (first answer)`.
fn failures(run: &Run) -> Vec<String> {
    let mut out = Vec::new();
    for (what, l) in [("sends", &run.sends), ("polls", &run.polls)] {
        for (phase, f) in [("warm-up", &l.warmup_failures), ("measured", &l.failures)] {
            out.extend(describe(what, phase, f));
        }
        if l.measured.errors > 0 && l.failures.kinds().is_empty() {
            out.push(format!("{what}: {} errors", l.measured.errors));
        }
    }
    out
}

fn describe(what: &str, phase: &str, f: &Failures) -> Vec<String> {
    f.kinds()
        .into_iter()
        .map(|(kind, (count, first))| format!("{what} ({phase}): {kind} ×{count} ({first})"))
        .collect()
}

fn report_failures(runs: &[Run]) {
    for run in runs {
        for line in failures(run) {
            eprintln!("round {} {}: {line}", run.round, run.host.name());
        }
    }
}

fn print_loops(runs: &[Run], cpus: usize) {
    let baseline = |run: &Run| {
        runs.iter()
            .find(|r| r.round == run.round && r.host == Host::Gateway)
    };
    let ratio = |value: f64, base: f64| {
        if base > 0.0 {
            format!("{:.2}x", value / base)
        } else {
            "n/a".into()
        }
    };
    let latency = |l: &Loop| {
        format!(
            "{:.1} / {:.1}",
            l.measured.latencies.percentile_ms(50.0),
            l.measured.latencies.percentile_ms(99.0)
        )
    };
    let per_op = |l: &Loop, cpu: Duration| {
        cpu.as_secs_f64() * 1e6 / l.measured.latencies.len().max(1) as f64
    };
    let busy = |l: &Loop| {
        l.machine_cpu.as_secs_f64() / (l.measured.window.as_secs_f64() * cpus as f64) * 100.0
    };
    println!();
    println!(
        "| round | host | users created | sends/s | vs gateway | send p50 / p99 ms | host µs/send | polls/s | vs gateway | poll p50 / p99 ms | host µs/poll | bench µs/op send / poll | machine busy send / poll | load avg before send / poll | store |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for run in runs {
        let base = baseline(run);
        let vs = |value: f64, pick: fn(&Run) -> f64| match base {
            Some(b) if run.host != Host::Gateway => ratio(value, pick(b)),
            Some(_) => "baseline".into(),
            None => "n/a".into(),
        };
        println!(
            "| {} | {} | {:.2} s | {:.0} | {} | {} | {:.0} | {:.0} | {} | {} | {:.0} | {:.0} / {:.0} | {:.0} % / {:.0} % | {} / {} | {} |",
            run.round,
            run.host.name(),
            run.users_took.as_secs_f64(),
            run.sends.measured.rate(),
            vs(run.sends.measured.rate(), |r| r.sends.measured.rate()),
            latency(&run.sends),
            per_op(&run.sends, run.sends.host_cpu),
            run.polls.measured.rate(),
            vs(run.polls.measured.rate(), |r| r.polls.measured.rate()),
            latency(&run.polls),
            per_op(&run.polls, run.polls.host_cpu),
            per_op(&run.sends, run.sends.bench_cpu),
            per_op(&run.polls, run.polls.bench_cpu),
            busy(&run.sends),
            busy(&run.polls),
            run.sends.loadavg,
            run.polls.loadavg,
            run.journal_mode,
        );
    }
}

fn print_fanout(runs: &[Run]) {
    let with: Vec<_> = runs.iter().filter(|r| r.fanout.is_some()).collect();
    if with.is_empty() {
        return;
    }
    let gateway = with
        .iter()
        .find(|r| r.host == Host::Gateway)
        .and_then(|r| r.fanout.as_ref());
    println!();
    println!(
        "| host | members | group PUT | jobs left by the loops (drained first, untimed) | fan-out until every stream holds it | time vs gateway | drain calls (jobs done / retried) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for run in with {
        let Some(f) = &run.fanout else { continue };
        let vs = match (run.host, gateway) {
            (Host::Gateway, _) => "baseline".to_string(),
            (_, Some(g)) if g.took > Duration::ZERO => {
                format!("{:.2}x", f.took.as_secs_f64() / g.took.as_secs_f64())
            }
            _ => "n/a".into(),
        };
        let drains = match run.host {
            Host::Gateway => "its own drainer".to_string(),
            Host::Spin => format!("{} ({} / {})", f.drain_calls, f.drain_done, f.drain_failed),
        };
        println!(
            "| {} | {} | {:.2} s | {} | {:.2} s | {vs} | {drains} |",
            run.host.name(),
            f.members,
            f.group_put.as_secs_f64(),
            f.settled_jobs,
            f.took.as_secs_f64(),
        );
    }
}
