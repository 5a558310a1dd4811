//! `courier-bench all`: the headline benchmarks one after another (healthz,
//! messaging, scale, queue, push, online), each as a child process of this binary
//! with its own defaults, then one summary table of what each measured against the
//! baseline it measured in the same run. A benchmark that fails (any failed request
//! fails it) shows as FAILED with no figures, the others still run, and the whole
//! run exits non-zero.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use courier_bench::machine::{self, Machine};
use courier_bench::summary::{self, Section};

/// The headline set, in the order it runs.
pub const BENCHES: [&str; 6] = ["healthz", "messaging", "scale", "queue", "push", "online"];

pub struct Options {
    /// The PostgreSQL server of `scale` (and of nothing else).
    pub database_url: String,
    pub build: bool,
}

struct Ran {
    bench: &'static str,
    took: Duration,
    /// `None` when it succeeded; else how it ended.
    failure: Option<String>,
}

pub fn run(opts: &Options) -> Result<()> {
    let machine = Machine::read();
    let started_loadavg = machine::loadavg();
    let exe = std::env::current_exe().context("cannot find this binary")?;
    let dir = tempfile::Builder::new()
        .prefix("courier-bench-all-")
        .tempdir()?;
    let file = dir.path().join("summary.jsonl");
    let mut ran = Vec::new();
    for bench in BENCHES {
        eprintln!("\n==> courier-bench {bench}");
        let mut command = Command::new(&exe);
        command
            .arg(bench)
            .env(summary::ENV, &file)
            .env("COURIER_TEST_DATABASE_URL", &opts.database_url);
        if !opts.build {
            command.arg("--no-build");
        }
        let started = Instant::now();
        let status = command
            .status()
            .with_context(|| format!("cannot run courier-bench {bench}"))?;
        ran.push(Ran {
            bench,
            took: started.elapsed(),
            failure: (!status.success()).then(|| status.to_string()),
        });
    }
    let sections = summary::read(&file)?;
    print_table(&machine, &started_loadavg, &ran, &sections);
    let failed: Vec<&str> = ran
        .iter()
        .filter(|r| r.failure.is_some())
        .map(|r| r.bench)
        .collect();
    if !failed.is_empty() {
        bail!("failed: {} (no figures for them)", failed.join(", "));
    }
    Ok(())
}

fn print_table(machine: &Machine, loadavg: &str, ran: &[Ran], sections: &[Section]) {
    println!(
        "\ncourier-bench all — {} CPUs, {}, {} RAM, Linux {} — {} — load average at the start {loadavg}, at the end {}",
        machine.cpus,
        machine.cpu_model,
        machine.memory,
        machine.kernel,
        machine.date,
        machine::loadavg()
    );
    println!();
    println!("| bench | measure | courier | baseline (same run) | ratio |");
    println!("|---|---|---:|---:|---:|");
    for r in ran {
        let section = sections.iter().find(|s| s.bench == r.bench);
        match (&r.failure, section) {
            (None, Some(section)) => {
                for row in &section.rows {
                    println!(
                        "| {} | {} | {} | {} | {} |",
                        r.bench, row.what, row.value, row.baseline, row.ratio
                    );
                }
            }
            (Some(failure), _) => println!("| {} | FAILED ({failure}) | - | - | - |", r.bench),
            (None, None) => println!(
                "| {} | FAILED (it recorded no figures) | - | - | - |",
                r.bench
            ),
        }
    }
    println!();
    for r in ran {
        let conditions = sections
            .iter()
            .find(|s| s.bench == r.bench)
            .map_or("", |s| s.conditions.as_str());
        println!(
            "- {} ({:.0} s): {conditions}",
            r.bench,
            r.took.as_secs_f64()
        );
    }
}
