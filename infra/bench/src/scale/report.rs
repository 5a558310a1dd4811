//! The report of `courier-bench scale`: throughput and latency by setup, where the
//! CPU went, what PostgreSQL's backends waited on, and the summary's rows.

use std::time::Duration;

use courier_bench::Row;

use super::{Loop, Outcome, Setup};

pub(super) fn print_throughput(outcomes: &[Outcome]) {
    let find = |setup: Setup| outcomes.iter().find(|o| o.setup == setup);
    let ratio = |value: f64, base: Option<f64>| match base {
        Some(base) if base > 0.0 => format!("{:.2}x", value / base),
        Some(_) => "n/a".into(),
        None => "baseline".into(),
    };
    let latency = |l: &Loop| {
        format!(
            "{:.1} / {:.1}",
            l.measured.latencies.percentile_ms(50.0),
            l.measured.latencies.percentile_ms(99.0)
        )
    };
    println!();
    println!("| setup | sends/s | vs | send p50 / p99 ms | polls/s | vs | poll p50 / p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for o in outcomes {
        let base = o.setup.baseline().and_then(find);
        let vs = o
            .setup
            .baseline()
            .map(|b| format!(" ({})", b.name()))
            .unwrap_or_default();
        println!(
            "| {} | {:.0} | {}{vs} | {} | {:.0} | {}{vs} | {} |",
            o.setup.name(),
            o.sends.measured.rate(),
            ratio(
                o.sends.measured.rate(),
                base.map(|b| b.sends.measured.rate())
            ),
            latency(&o.sends),
            o.polls.measured.rate(),
            ratio(
                o.polls.measured.rate(),
                base.map(|b| b.polls.measured.rate())
            ),
            latency(&o.polls),
        );
    }
}

/// CPU per operation by party, and how busy the machine was: `machine busy` is the
/// share of all CPUs every process used in the window (user + system, from
/// `/proc/stat`); `other` what neither this process nor PostgreSQL used (other builds,
/// the OS), approximate: `/proc/stat` is sampled at each tick while per-process times
/// are exact, so it reads 0 % when the machine's figure falls a little short;
/// `steal` the share the hypervisor gave to other guests.
pub(super) fn print_cpu(outcomes: &[Outcome], cpus: usize) {
    println!();
    println!(
        "| setup | loop | load avg before | machine busy | other | steal | gateway µs/op | PostgreSQL µs/op | load gen µs/op |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for o in outcomes {
        for (name, l) in [("sends", &o.sends), ("polls", &o.polls)] {
            let window = l.measured.window.as_secs_f64() * cpus as f64;
            let share = |cpu: Duration| cpu.as_secs_f64() / window * 100.0;
            let ops = l.measured.latencies.len().max(1) as f64;
            let per_op = |cpu: Duration| cpu.as_secs_f64() * 1e6 / ops;
            let other = l
                .machine_cpu
                .saturating_sub(l.own_cpu)
                .saturating_sub(l.postgres_cpu);
            println!(
                "| {} | {name} | {} | {:.0} % | {:.0} % | {:.0} % | {:.0} | {:.0} | {:.0} |",
                o.setup.name(),
                l.loadavg,
                share(l.machine_cpu),
                share(other),
                share(l.steal_cpu),
                per_op(l.gateway_cpu),
                per_op(l.postgres_cpu),
                per_op(l.load_cpu),
            );
        }
    }
}

/// What PostgreSQL's backends did during each PostgreSQL send loop.
pub(super) fn print_waits(outcomes: &[Outcome]) {
    for o in outcomes {
        let Some(waits) = &o.sends.waits else {
            continue;
        };
        println!();
        println!(
            "{}, sends: backends of the bench database by wait event, state and statement              (pg_stat_activity every 20 ms, {} samples; average backends a sample)",
            o.setup.name(),
            waits.samples
        );
        println!("| backends | wait | state | statement |");
        println!("|---:|---|---|---|");
        for (n, (wait, state, statement)) in waits.top(12) {
            println!("| {n:.2} | {wait} | {state} | `{statement}` |");
        }
    }
}

/// The summary's rows: each setup's sends/s and polls/s (with p99) against its
/// baseline setup.
pub(super) fn headline(outcomes: &[Outcome]) -> Vec<Row> {
    let find = |setup: Setup| outcomes.iter().find(|o| o.setup == setup);
    let mut rows = Vec::new();
    for o in outcomes {
        let base = o.setup.baseline().and_then(find);
        for (kind, l, base_l) in [
            ("sends/s", &o.sends, base.map(|b| &b.sends)),
            ("polls/s", &o.polls, base.map(|b| &b.polls)),
        ] {
            let rate = l.measured.rate();
            rows.push(Row {
                what: format!(
                    "{}: {kind} (p99 {:.1} ms)",
                    o.setup.name(),
                    l.measured.latencies.percentile_ms(99.0)
                ),
                value: format!("{rate:.0}"),
                baseline: match (o.setup.baseline(), base_l) {
                    (Some(b), Some(base_l)) => {
                        format!("{:.0} {}", base_l.measured.rate(), b.name())
                    }
                    _ => "-".into(),
                },
                ratio: base_l
                    .map(|b| format!("{:.2}", rate / b.measured.rate()))
                    .unwrap_or_default(),
            });
        }
    }
    rows
}

/// `pg_stat_statements`' top statements of each PostgreSQL send loop.
pub(super) fn print_statements(outcomes: &[Outcome]) {
    for o in outcomes {
        let Some(statements) = &o.sends.statements else {
            continue;
        };
        println!();
        match statements {
            Err(why) => println!("{}, sends: no pg_stat_statements ({why})", o.setup.name()),
            Ok(top) => {
                println!(
                    "{}, sends: top statements by total execution time (pg_stat_statements, the measured loop)",
                    o.setup.name()
                );
                println!("| calls | total ms | mean ms | statement |");
                println!("|---:|---:|---:|---|");
                for st in top {
                    println!(
                        "| {} | {:.0} | {:.3} | `{}` |",
                        st.calls, st.total_ms, st.mean_ms, st.query
                    );
                }
            }
        }
    }
}
