//! `courier-bench healthz`: `GET /healthz` from the `health` component through the
//! in-process gateway against a native hyper handler doing the same SQLite work,
//! loaded alternately from the same load generator; then instantiating the
//! component alone.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use courier_bench::Row;
use courier_bench::machine::{GATEWAY_THREADS, LOAD_THREADS, Machine, NATIVE_THREADS};

use crate::load::{self, Load, Outcome};
use crate::{gateway, native, runtime};

#[derive(Clone, Copy, PartialEq)]
enum Target {
    Native,
    Wasm,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Native => "native",
            Target::Wasm => "wasm",
        }
    }

    fn threads(self) -> &'static str {
        match self {
            Target::Native => NATIVE_THREADS,
            Target::Wasm => GATEWAY_THREADS,
        }
    }
}

pub fn run(manifest: &Path, load: &Load, rounds: u32, instantiations: usize) -> Result<()> {
    let machine = Machine::read();
    let loadavg = courier_bench::machine::loadavg();
    let load_rt = runtime(LOAD_THREADS)?;
    let native_rt = runtime(NATIVE_THREADS)?;
    let gateway_rt = runtime(GATEWAY_THREADS)?;
    let data = tempfile::Builder::new()
        .prefix("courier-bench-")
        .tempdir()
        .context("cannot create a temporary data directory")?;

    let native_dir = data.path().join("native");
    std::fs::create_dir_all(&native_dir)?;
    let (native_addr, native_stop, native_serving) = native_rt.block_on(async {
        let app = native::Native::open(&native_dir)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(native::serve(app, listener, async move {
            let _ = stopped.await;
        }));
        anyhow::Ok((addr, stop, serving))
    })?;
    let gw = gateway_rt.block_on(gateway::Gateway::start(
        manifest,
        &data.path().join("gateway"),
    ))?;
    let addr = |target| match target {
        Target::Native => native_addr,
        Target::Wasm => gw.addr,
    };
    for target in [Target::Native, Target::Wasm] {
        let status = load_rt.block_on(load::probe(addr(target), &load.path))?;
        if status != hyper::StatusCode::OK {
            bail!("{} answered {status} to GET {}", target.name(), load.path);
        }
    }

    println!("courier-bench healthz");
    println!(
        "machine: {} CPUs, {}, {} RAM, Linux {}",
        machine.cpus, machine.cpu_model, machine.memory, machine.kernel
    );
    println!("date:    {}", machine.date);
    println!(
        "load:    {} keep-alive connections, closed loop, {}s warm-up + {}s measured a run, {rounds} round(s)",
        load.connections,
        load.warmup.as_secs(),
        load.duration.as_secs()
    );
    println!();
    println!("{}", header());

    let mut totals = [Outcome::default(), Outcome::default()];
    for round in 1..=rounds {
        for target in [Target::Native, Target::Wasm] {
            eprintln!("round {round}/{rounds}: {} …", target.name());
            let outcome = load_rt.block_on(load::run(addr(target), load))?;
            println!(
                "{}",
                row(target, &round.to_string(), &outcome, machine.cpus)
            );
            totals[target as usize].merge(&outcome);
        }
    }
    let [native, wasm] = &totals;
    println!("{}", "-".repeat(header().chars().count()));
    println!("{}", row(Target::Native, "all", native, machine.cpus));
    println!("{}", row(Target::Wasm, "all", wasm, machine.cpus));
    println!();
    print_ratios(native, wasm);

    eprintln!("instantiating the component {instantiations} times…");
    let app = Arc::clone(&gw.app);
    let samples = gateway_rt.block_on(async move {
        tokio::spawn(gateway::instantiation(app, "health", 500, instantiations))
            .await
            .context("instantiation task panicked")?
    })?;
    print_instantiation(&samples, wasm);
    courier_bench::summary::record(
        "healthz",
        &format!(
            "load average before: {loadavg}; {} connections; the health component's SQLite read",
            load.connections
        ),
        &headline(native, wasm),
    )?;

    let _ = native_stop.send(());
    native_rt
        .block_on(native_serving)
        .context("native server panicked")??;
    gateway_rt.block_on(gw.stop())?;
    Ok(())
}

fn header() -> String {
    format!(
        "{:<7} {:>5} {:>10} {:>9} {:>9} {:>7} {:>12} {:>12} {:>6} {:>7}",
        "target",
        "round",
        "req/s",
        "p50 µs",
        "p99 µs",
        "errors",
        "server µs/r",
        "client µs/r",
        "busy",
        "others"
    )
}

/// One line of the table; CPU figures are CPU time per successful request, `busy`
/// is the share of all CPUs the bench used in the window and `others` the share
/// other processes took (anything but ~0% means the numbers are disturbed).
fn row(target: Target, round: &str, o: &Outcome, cpus: usize) -> String {
    let share = |cpu: Duration| cpu.as_secs_f64() / (o.window.as_secs_f64() * cpus as f64);
    format!(
        "{:<7} {:>5} {:>10.0} {:>9.0} {:>9.0} {:>7} {:>12.1} {:>12.1} {:>5.0}% {:>6.0}%",
        target.name(),
        round,
        o.rps(),
        micros(o.quantile(0.50)),
        micros(o.quantile(0.99)),
        o.errors,
        micros(o.cpu_per_request(target.threads())),
        micros(o.cpu_per_request(LOAD_THREADS)),
        share(o.own_cpu()) * 100.0,
        share(o.others_cpu()) * 100.0
    )
}

fn print_ratios(native: &Outcome, wasm: &Outcome) {
    let ratio = |w: f64, n: f64| if n > 0.0 { w / n } else { f64::NAN };
    let slowdown = ratio(native.rps(), wasm.rps());
    println!("wasm / native (all rounds):");
    println!(
        "  throughput  {:.2}x  (native serves {slowdown:.2}x as many requests; goal: within 1.3x) {}",
        ratio(wasm.rps(), native.rps()),
        if slowdown <= 1.3 { "MET" } else { "MISSED" }
    );
    for (name, q) in [("p50", 0.50), ("p99", 0.99)] {
        println!(
            "  {name} latency {:.2}x",
            ratio(micros(wasm.quantile(q)), micros(native.quantile(q)))
        );
    }
    println!(
        "  server CPU per request {:.2}x  ({:.1} µs vs {:.1} µs)",
        ratio(
            micros(wasm.cpu_per_request(GATEWAY_THREADS)),
            micros(native.cpu_per_request(NATIVE_THREADS))
        ),
        micros(wasm.cpu_per_request(GATEWAY_THREADS)),
        micros(native.cpu_per_request(NATIVE_THREADS))
    );
    println!();
}

/// The summary's rows: throughput, p99 and server CPU, WASM against native.
fn headline(native: &Outcome, wasm: &Outcome) -> Vec<Row> {
    let ratio = |w: f64, n: f64| format!("{:.2}", w / n);
    let (wasm_cpu, native_cpu) = (
        micros(wasm.cpu_per_request(GATEWAY_THREADS)),
        micros(native.cpu_per_request(NATIVE_THREADS)),
    );
    let (wasm_p99, native_p99) = (micros(wasm.quantile(0.99)), micros(native.quantile(0.99)));
    vec![
        Row {
            what: "GET /healthz req/s".into(),
            value: format!("{:.0}", wasm.rps()),
            baseline: format!("{:.0} native", native.rps()),
            ratio: ratio(wasm.rps(), native.rps()),
        },
        Row {
            what: "GET /healthz p99 (µs)".into(),
            value: format!("{wasm_p99:.0}"),
            baseline: format!("{native_p99:.0} native"),
            ratio: ratio(wasm_p99, native_p99),
        },
        Row {
            what: "server CPU per request (µs)".into(),
            value: format!("{wasm_cpu:.1}"),
            baseline: format!("{native_cpu:.1} native"),
            ratio: ratio(wasm_cpu, native_cpu),
        },
    ]
}

fn print_instantiation(samples: &[u64], wasm: &Outcome) {
    let mean = samples.iter().sum::<u64>() as f64 / samples.len().max(1) as f64 / 1000.0;
    println!(
        "instantiation of `health` alone (fresh Store + instantiate + drop, sequential, n = {}):",
        samples.len()
    );
    println!(
        "  mean {mean:.1} µs, p50 {:.1} µs, p99 {:.1} µs",
        micros(load::quantile(samples, 0.50)),
        micros(load::quantile(samples, 0.99))
    );
    let server = micros(wasm.cpu_per_request(GATEWAY_THREADS));
    if server > 0.0 {
        println!(
            "  = {:.0}% of the gateway's CPU time per /healthz request ({server:.1} µs)",
            mean / server * 100.0
        );
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
