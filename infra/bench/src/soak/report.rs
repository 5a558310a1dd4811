//! The soak's report: requests by kind, rate, latency, the gateway's memory and
//! CPU, the delivery check, and the verdict.

use std::time::Duration;

use super::KindStats;
use super::mix::Kind;
use super::process::{Sample, slope};
use super::verify::{Delivered, Drained};

/// What one soak measured.
pub struct Report {
    pub(super) rate: u32,
    pub(super) seconds: u64,
    pub(super) warmup: u64,
    pub(super) users: usize,
    pub(super) members: usize,
    pub(super) long_poll_secs: u64,
    pub(super) seed: u64,
    pub(super) store: &'static str,
    pub(super) max_p99_ms: f64,
    pub(super) max_rss_growth: f64,
    pub(super) stats: Vec<KindStats>,
    pub(super) error_examples: Vec<String>,
    pub(super) load_before: String,
    pub(super) load_after: String,
    pub(super) samples: Vec<Sample>,
    pub(super) unanswered_sends: u64,
    pub(super) drained: Drained,
    pub(super) delivered: Delivered,
    pub(super) gateway_alive: bool,
    pub(super) exit: String,
    /// The gateway's `WARN` log lines.
    pub(super) warnings: Vec<String>,
    pub(super) log_errors: usize,
    pub(super) log_tail: String,
}

const MIB: f64 = 1024.0;
/// The shortest measured window, in seconds, whose memory growth is judged.
const MIN_WINDOW_FOR_MEMORY: f64 = 120.0;

impl Report {
    fn window(&self) -> f64 {
        (self.seconds - self.warmup) as f64
    }

    fn achieved(&self) -> f64 {
        self.stats.iter().map(|k| k.ok_in_window).sum::<u64>() as f64 / self.window()
    }

    fn errors(&self) -> u64 {
        self.stats.iter().map(KindStats::errors).sum()
    }

    /// The samples from the end of the warm-up to the end of the load.
    fn measured(&self) -> Vec<Sample> {
        let (from, to) = (self.warmup as f64 - 0.5, self.seconds as f64 + 0.5);
        self.samples
            .iter()
            .filter(|s| s.at >= from && s.at <= to)
            .copied()
            .collect()
    }

    /// RSS growth after warm-up, MiB a minute: the least-squares slope.
    fn rss_growth(&self) -> Option<f64> {
        let points: Vec<(f64, f64)> = self
            .measured()
            .iter()
            .map(|s| (s.at / 60.0, s.rss_kib as f64 / MIB))
            .collect();
        slope(&points)
    }

    /// Each kind's p99 limit: long-polls may hold for their wait.
    fn p99_limit(&self, kind: Kind) -> f64 {
        match kind {
            Kind::LongPoll => self.long_poll_secs as f64 * 1000.0 + self.max_p99_ms,
            _ => self.max_p99_ms,
        }
    }

    /// What failed; empty when the soak passed.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if self.errors() > 0 {
            failures.push(format!("{} requests failed", self.errors()));
        }
        let share = self.achieved() / f64::from(self.rate);
        if share < 0.95 {
            failures.push(format!(
                "achieved {:.1} % of the target rate",
                share * 100.0
            ));
        }
        for kind in Kind::ALL {
            let latencies = &self.stats[kind.index()].latencies;
            let p99 = latencies.percentile_ms(99.0);
            if latencies.is_empty() || p99 > self.p99_limit(kind) {
                failures.push(format!(
                    "{} p99 {p99:.1} ms (limit {:.0} ms, {} samples)",
                    kind.name(),
                    self.p99_limit(kind),
                    latencies.len()
                ));
            }
        }
        match self.rss_growth() {
            // Caches and pools still fill in the first minutes: a short run cannot
            // tell growth from a leak.
            _ if self.window() < MIN_WINDOW_FOR_MEMORY => {}
            Some(growth) if growth <= self.max_rss_growth => {}
            Some(growth) => failures.push(format!("RSS grew {growth:.2} MiB/min")),
            None => failures.push("too few memory samples after warm-up".into()),
        }
        let delivery = &self.delivered.last;
        if delivery.problems() > 0 || delivery.unexpected > self.unanswered_sends {
            failures.push(format!(
                "delivery: {} problems, {} unexpected messages",
                delivery.problems(),
                delivery.unexpected
            ));
        }
        if self.delivered.first.problems() > 0 {
            failures.push(format!(
                "delivery was incomplete {} s after the queue was drained",
                self.drained.took.as_secs()
            ));
        }
        if self.drained.remaining != 0 {
            failures.push(format!("{} queue jobs left", self.drained.remaining));
        }
        if !self.gateway_alive {
            failures.push("the gateway exited during the load".into());
        }
        failures
    }

    pub fn print(&self) {
        println!(
            "load: {}/s for {} s ({} s warm-up, {:.0} s measured), {} users, a {}-member group, long-poll wait {} s, seed {}; store {}",
            self.rate,
            self.seconds,
            self.warmup,
            self.window(),
            self.users,
            self.members,
            self.long_poll_secs,
            self.seed,
            self.store
        );
        println!(
            "load average before {}, after {}\n",
            self.load_before, self.load_after
        );
        self.print_requests();
        self.print_gateway();
        self.print_delivery();
        println!("\nverdict:");
        let failures = self.failures();
        for failure in &failures {
            println!("  FAIL {failure}");
        }
        if failures.is_empty() {
            let memory = if self.window() < MIN_WINDOW_FOR_MEMORY {
                "memory not judged (short run)"
            } else {
                "memory growth within its limit"
            };
            println!(
                "  PASS — no errors, rate ≥ 95 % of target, p99 within limits, {memory}, every message delivered once"
            );
        }
    }

    fn print_requests(&self) {
        println!(
            "{:<14} {:>8} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9}",
            "kind", "sent", "ok", "errors", "skipped", "ok/s", "p50 ms", "p99 ms", "max ms"
        );
        let mut all = KindStats::default();
        let line = |name: &str, k: &KindStats| {
            println!(
                "{:<14} {:>8} {:>8} {:>7} {:>8} {:>8.1} {:>8.1} {:>8.1} {:>9.1}",
                name,
                k.sent,
                k.ok,
                k.errors(),
                k.skipped,
                k.ok_in_window as f64 / self.window(),
                k.latencies.percentile_ms(50.0),
                k.latencies.percentile_ms(99.0),
                k.latencies.percentile_ms(100.0)
            );
        };
        for kind in Kind::ALL {
            let k = &self.stats[kind.index()];
            line(kind.name(), k);
            all.sent += k.sent;
            all.ok += k.ok;
            all.skipped += k.skipped;
            all.ok_in_window += k.ok_in_window;
            for (class, n) in &k.errors {
                *all.errors.entry(class.clone()).or_default() += n;
            }
            if kind != Kind::LongPoll {
                all.latencies.merge(k.latencies.clone());
            }
        }
        line("all", &all);
        println!(
            "(\"all\" latencies without the long-polls; latency runs from each request's scheduled start)"
        );
        println!(
            "target {}/s, achieved {:.1}/s ({:.1} %) answered ok in the measured window",
            self.rate,
            self.achieved(),
            self.achieved() / f64::from(self.rate) * 100.0
        );
        for kind in Kind::ALL {
            let errors = &self.stats[kind.index()].errors;
            if !errors.is_empty() {
                let list: Vec<String> = errors.iter().map(|(c, n)| format!("{c} ×{n}")).collect();
                println!("errors, {}: {}", kind.name(), list.join(", "));
            }
        }
        for example in &self.error_examples {
            println!("  e.g. {example}");
        }
    }

    fn print_gateway(&self) {
        let measured = self.measured();
        let (Some(first), Some(last)) = (measured.first(), measured.last()) else {
            println!("\ngateway: no samples after warm-up");
            return;
        };
        let mib = |kib: u64| kib as f64 / MIB;
        let minutes = (last.at - first.at) / 60.0;
        println!(
            "\ngateway memory (VmRSS): {:.1} MiB after warm-up ({:.0} s), {:.1} MiB at the end; peak (VmHWM) {:.1} MiB",
            mib(first.rss_kib),
            first.at,
            mib(last.rss_kib),
            mib(last.hwm_kib)
        );
        let limit = if self.window() < MIN_WINDOW_FOR_MEMORY {
            format!("not judged under {MIN_WINDOW_FOR_MEMORY} s measured")
        } else {
            format!("limit {}", self.max_rss_growth)
        };
        println!(
            "  growth {:.2} MiB/min (least squares over {} samples every {} s; {limit}); end − start {:+.1} MiB over {minutes:.1} min",
            self.rss_growth().unwrap_or(f64::NAN),
            measured.len(),
            super::SAMPLE_EVERY.as_secs(),
            mib(last.rss_kib) - mib(first.rss_kib)
        );
        // Each 30 s: VmRSS, RssAnon, and the most requests open at once in those 30 s.
        let mut peak = 0;
        let series: Vec<String> = self
            .samples
            .iter()
            .filter_map(|s| {
                peak = peak.max(s.peak_in_flight);
                let shown =
                    (s.at.round() as u64).is_multiple_of(30) || s.at == first.at || s.at == last.at;
                shown.then(|| {
                    let point = format!(
                        "{:.0}s {:.1} ({:.1}) ≤{peak}",
                        s.at,
                        mib(s.rss_kib),
                        mib(s.anon_kib)
                    );
                    peak = 0;
                    point
                })
            })
            .collect();
        println!(
            "  VmRSS MiB (RssAnon MiB) ≤most requests open since the previous point: {}",
            series.join(", ")
        );
        let wall = Duration::from_secs_f64((last.at - first.at).max(1e-3));
        let gateway = last.gateway_cpu.saturating_sub(first.gateway_cpu);
        let own = last.own_cpu.saturating_sub(first.own_cpu);
        let ok: u64 = self.stats.iter().map(|k| k.ok_in_window).sum();
        let ticks = (last.machine_total - first.machine_total).max(1) as f64;
        let busy = (last.machine_busy - first.machine_busy) as f64 / ticks;
        // A tick is 10 ms of one CPU.
        let machine = Duration::from_millis(10) * (ticks as u32);
        let others = (busy - (gateway + own).as_secs_f64() / machine.as_secs_f64()).max(0.0);
        println!(
            "gateway CPU {:.0} % of one core, {:.0} µs a request; load generator {:.0} % of one core; machine busy {:.0} %, others {:.0} %",
            gateway.as_secs_f64() / wall.as_secs_f64() * 100.0,
            gateway.as_secs_f64() * 1e6 / ok.max(1) as f64,
            own.as_secs_f64() / wall.as_secs_f64() * 100.0,
            busy * 100.0,
            others * 100.0
        );
    }

    fn print_delivery(&self) {
        let d = &self.drained;
        println!(
            "\nqueue drained: {} calls, {} jobs, {} remaining, {:.1} s",
            d.calls,
            d.jobs,
            d.remaining,
            d.took.as_secs_f64()
        );
        let (first, last) = (&self.delivered.first, &self.delivered.last);
        println!(
            "delivery: {} accepted messages ({} recalled), {} copies expected in {} streams ({} entries read)",
            last.messages, last.recalls, last.copies, last.streams, last.entries
        );
        println!(
            "  missing {}, duplicated {}, unexpected {} (sends without an answer: {}), recall entries missing {} / duplicated {}, content wrong {}",
            last.missing,
            last.duplicates,
            last.unexpected,
            self.unanswered_sends,
            last.recall_missing,
            last.recall_duplicates,
            last.wrong_content
        );
        if self.delivered.checks > 1 {
            println!(
                "  ({} checks; the first found {} missing, {} other problems)",
                self.delivered.checks,
                first.missing,
                first.problems() - first.missing
            );
        }
        for example in &last.examples {
            println!("  e.g. {example}");
        }
        println!(
            "gateway: stopped with {}; log {} WARN, {} ERROR lines",
            self.exit,
            self.warnings.len(),
            self.log_errors
        );
        for warning in self.warnings.iter().take(3) {
            println!("  {warning}");
        }
        if self.log_errors > 0 || !self.gateway_alive {
            println!("last log lines:\n{}", self.log_tail);
        }
    }
}
