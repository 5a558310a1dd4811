//! The report of `courier-bench online`: the table of every case measured, the
//! ratios against the loop, and the summary's rows.

use courier_bench::Row;
use courier_bench::machine::{self, Machine};

use super::{LOOP_AFTER_MS, LOOP_BEFORE_MS, Measured, PG_MAX_CLIENTS};

/// What one run measured, and under which limits.
pub(super) struct Run<'a> {
    pub machine: &'a Machine,
    pub started_loadavg: &'a str,
    pub results: &'a [Measured],
    /// Client counts lowered to the open-file limit, as "asked → used".
    pub capped: &'a [String],
    pub open_files: u64,
    /// PostgreSQL cases were capped at `PG_MAX_CLIENTS`.
    pub postgres_capped: bool,
}

/// Prints the run's table and ratios.
pub(super) fn print(run: &Run<'_>) {
    println!(
        "courier-bench online — {} CPUs ({}), {}, {}, {} — loadavg {} at the start, {} at the end",
        run.machine.cpus,
        run.machine.cpu_model,
        run.machine.memory,
        run.machine.kernel,
        run.machine.date,
        run.started_loadavg,
        machine::loadavg(),
    );
    println!(
        "{:<28} {:>7} {:>8} {:>10} {:>12} {:>16} {:>22} {:>22} {:>8}",
        "mode",
        "clients",
        "ramp s",
        "idle CPU",
        "RSS/client",
        "wake p50/p99 ms",
        "send p50/p99 ms (0)",
        "send p50/p99 ms (N)",
        "p99 ×"
    );
    for m in run.results {
        println!(
            "{:<28} {:>7} {:>8.1} {:>9.1}% {:>9.1} KiB {:>7.1} / {:<7.1} {:>10.1} / {:<10.1} {:>10.1} / {:<10.1} {:>7.2}",
            m.case.label,
            m.case.n,
            m.ramp.as_secs_f64(),
            m.idle_cpu_pct,
            m.rss_per_client / 1024.0,
            m.wake.percentile_ms(50.0),
            m.wake.percentile_ms(99.0),
            m.send_idle.percentile_ms(50.0),
            m.send_idle.percentile_ms(99.0),
            m.send_loaded.percentile_ms(50.0),
            m.send_loaded.percentile_ms(99.0),
            m.send_loaded.percentile_ms(99.0) / m.send_idle.percentile_ms(99.0),
        );
    }
    if !run.capped.is_empty() {
        println!(
            "client counts capped by the open-file limit of {}: {}",
            run.open_files,
            run.capped.join(", ")
        );
    }
    if run.postgres_capped {
        println!(
            "PostgreSQL cases capped at {PG_MAX_CLIENTS} clients (more do not all start waiting within one wait)"
        );
    }
    let per_1000 = |m: &Measured| m.idle_cpu_pct * 1000.0 / m.case.n as f64;
    let find = |label: &str| run.results.iter().find(|m| m.case.label == label);
    let base = run.results.first();
    for held in ["parked", "streams", "parked, PG ×2", "streams, PG ×2"] {
        let (Some(base), Some(held)) = (base, find(held)) else {
            continue;
        };
        println!(
            "ratios, {} ({}) against the loop ({}): idle CPU per 1,000 clients {:.3}x, RSS per client {:.3}x, wake p99 {:.3}x",
            held.case.label,
            held.case.n,
            base.case.n,
            per_1000(held) / per_1000(base),
            held.rss_per_client / base.rss_per_client,
            held.wake.percentile_ms(99.0) / base.wake.percentile_ms(99.0),
        );
    }
    for kind in ["loop", "streams"] {
        let before = find(&format!("Spin {kind}, {LOOP_BEFORE_MS} ms (before)"));
        let after = find(&format!("Spin {kind}, {LOOP_AFTER_MS} ms (after)"));
        if let (Some(before), Some(after)) = (before, after) {
            println!(
                "ratios, Spin {kind}, after against before ({} clients): idle CPU {:.3}x ({:.1} → {:.1} % of a core per 100 clients), wake p99 {:.2}x",
                after.case.n,
                after.idle_cpu_pct / before.idle_cpu_pct,
                before.idle_cpu_pct * 100.0 / before.case.n as f64,
                after.idle_cpu_pct * 100.0 / after.case.n as f64,
                after.wake.percentile_ms(99.0) / before.wake.percentile_ms(99.0),
            );
        }
    }
}

/// The summary's rows: for each of the gateway's held modes, its largest count
/// against the loop (the first case): idle CPU per 1,000 clients, RSS per client, wake p99.
pub(super) fn headline(results: &[Measured]) -> Vec<Row> {
    let Some(base) = results.first() else {
        return Vec::new();
    };
    let per_1000 = |m: &Measured| m.idle_cpu_pct * 1000.0 / m.case.n as f64;
    let mut rows = Vec::new();
    // The gateway's held modes; the Spin cases are another host, compared with each
    // other in the printed ratios, not with the gateway's loop.
    let mut labels: Vec<&str> = results[1..]
        .iter()
        .map(|m| m.case.label.as_str())
        .filter(|label| !label.starts_with("Spin"))
        .collect();
    labels.dedup();
    for label in labels {
        let Some(held) = results
            .iter()
            .filter(|m| m.case.label == label)
            .max_by_key(|m| m.case.n)
        else {
            continue;
        };
        let figures = [
            (
                "idle CPU per 1,000 clients (%)",
                per_1000(held),
                per_1000(base),
            ),
            (
                "RSS per client (KiB)",
                held.rss_per_client / 1024.0,
                base.rss_per_client / 1024.0,
            ),
            (
                "wake p99 (ms)",
                held.wake.percentile_ms(99.0),
                base.wake.percentile_ms(99.0),
            ),
        ];
        for (what, value, baseline) in figures {
            rows.push(Row {
                what: format!("{label}, {} clients: {what}", held.case.n),
                value: format!("{value:.2}"),
                baseline: format!("{baseline:.2} loop, {}", base.case.n),
                ratio: format!("{:.3}", value / baseline),
            });
        }
    }
    rows
}
