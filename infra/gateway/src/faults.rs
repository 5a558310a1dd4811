//! Fault injection for proof tests: off unless `courier up --faults <spec>` or
//! `COURIER_FAULTS=<spec>` turns it on. The spec is comma-separated `knob=value`s:
//!
//! - `sql=<fraction>`: this share (0–1) of `fermyon:spin/sqlite` `execute` and
//!   `spin:postgres` `query`/`execute` calls fail **before** the statement runs
//!   (`COMMIT` and `ROLLBACK` included). The guest gets the interface's error: half of
//!   them, at random, a transient one (SQLite `database is locked`, PostgreSQL a lost
//!   connection), the others a hard one (SQLite `disk I/O error`, PostgreSQL SQLSTATE
//!   `58030` `io_error`). A fault inside a transaction also ends it, rolled back, as a
//!   lost connection or SQLite's I/O errors do: nothing of that transaction is kept.
//! - `latency=<a>-<b>ms` (or `<n>ms`): each of those SQL calls first waits a random
//!   time in `a..=b` milliseconds (at most 60,000).
//! - `outbound=<fraction>`: this share of outgoing HTTP requests to the network fails
//!   with `connection-refused` without being sent.
//! - `internal=<fraction>`: the same for in-process `http://<component>.spin.internal`
//!   calls (a separate knob, default 0).
//! - `seed=<u64>`: decisions are a pure function of the seed and the order of the calls
//!   (one sequence per kind); without it a random seed is chosen and logged.
//!
//! E.g. `sql=0.05,latency=0-20ms,outbound=0.3,seed=42`. An unknown knob, a repeated one,
//! or a value out of range is a start-up error. Injected faults are counted in
//! `/metrics` (`courier_faults_injected_total{kind}`).

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The longest latency a spec may ask for, in milliseconds.
const MAX_LATENCY_MS: u64 = 60_000;

/// A parsed fault spec.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    pub sql: f64,
    pub outbound: f64,
    pub internal: f64,
    /// Added to every SQL call: uniform in `min..=max` milliseconds.
    pub latency_ms: (u64, u64),
    pub seed: u64,
}

impl FaultConfig {
    /// Parses a spec (see the module doc); `seed` defaults to a random one.
    pub fn parse(text: &str) -> Result<Self> {
        let mut config = FaultConfig {
            sql: 0.0,
            outbound: 0.0,
            internal: 0.0,
            latency_ms: (0, 0),
            seed: rand::random(),
        };
        let mut seen: Vec<&str> = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (knob, value) = part
                .split_once('=')
                .with_context(|| format!("`{part}`: expected knob=value"))?;
            let (knob, value) = (knob.trim(), value.trim());
            if seen.contains(&knob) {
                bail!("`{knob}` is given twice");
            }
            seen.push(knob);
            match knob {
                "sql" => config.sql = fraction(knob, value)?,
                "outbound" => config.outbound = fraction(knob, value)?,
                "internal" => config.internal = fraction(knob, value)?,
                "latency" => config.latency_ms = latency(value)?,
                "seed" => {
                    config.seed = value
                        .parse()
                        .with_context(|| format!("seed `{value}`: expected an unsigned integer"))?
                }
                other => {
                    bail!("unknown knob `{other}` (known: sql, outbound, internal, latency, seed)")
                }
            }
        }
        if seen.iter().all(|k| *k == "seed") {
            bail!("no fault asked for (e.g. `sql=0.05,latency=0-20ms,outbound=0.3,seed=42`)");
        }
        Ok(config)
    }
}

impl FromStr for FaultConfig {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text)
    }
}

impl fmt::Display for FaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sql={},latency={}-{}ms,outbound={},internal={},seed={}",
            self.sql, self.latency_ms.0, self.latency_ms.1, self.outbound, self.internal, self.seed
        )
    }
}

fn fraction(knob: &str, value: &str) -> Result<f64> {
    let f: f64 = value
        .parse()
        .with_context(|| format!("{knob}=`{value}`: expected a fraction between 0 and 1"))?;
    if !(0.0..=1.0).contains(&f) {
        bail!("{knob}=`{value}`: expected a fraction between 0 and 1");
    }
    Ok(f)
}

fn latency(value: &str) -> Result<(u64, u64)> {
    let bad = || format!("latency=`{value}`: expected `<a>-<b>ms` or `<n>ms`, e.g. `0-20ms`");
    let range = value.strip_suffix("ms").with_context(bad)?;
    let (a, b) = range.split_once('-').unwrap_or((range, range));
    let a: u64 = a.trim().parse().with_context(bad)?;
    let b: u64 = b.trim().parse().with_context(bad)?;
    if a > b || b > MAX_LATENCY_MS {
        bail!("latency=`{value}`: needs a <= b <= {MAX_LATENCY_MS} ms");
    }
    Ok((a, b))
}

/// What an injected SQL fault looks like to the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlFault {
    /// Worth retrying: SQLite busy, PostgreSQL connection lost.
    Transient,
    /// Not retryable: an I/O error.
    Hard,
}

impl SqlFault {
    /// The text of the SQLite interface's `io` error.
    pub fn sqlite_text(self) -> &'static str {
        match self {
            SqlFault::Transient => "database is locked (injected fault)",
            SqlFault::Hard => "disk I/O error (injected fault)",
        }
    }
}

/// The decision for one SQL call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlDecision {
    pub delay: Duration,
    pub fail: Option<SqlFault>,
}

/// The decision streams, one per kind of call.
#[derive(Debug, Clone, Copy)]
enum Stream {
    Sql = 0,
    Outbound = 1,
    Internal = 2,
}

/// The running fault injector: decides, and counts what it injected.
#[derive(Debug)]
pub struct Faults {
    config: FaultConfig,
    /// Calls seen, by stream (the position in each decision sequence).
    calls: [AtomicU64; 3],
    /// Faults injected, by stream.
    injected: [AtomicU64; 3],
}

/// SplitMix64: a well-mixed u64 from any u64.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A uniform float in `[0, 1)` from 53 random bits.
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

impl Faults {
    pub fn new(config: FaultConfig) -> Self {
        Self {
            config,
            calls: Default::default(),
            injected: Default::default(),
        }
    }

    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// The `i`-th random word of call `n` of `stream`.
    fn draw(&self, stream: Stream, n: u64, i: u64) -> u64 {
        mix(mix(self.config.seed ^ ((stream as u64) << 60)).wrapping_add(n.wrapping_mul(4) + i))
    }

    fn next(&self, stream: Stream) -> u64 {
        self.calls[stream as usize].fetch_add(1, Ordering::Relaxed)
    }

    fn count(&self, stream: Stream) {
        self.injected[stream as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Decides the next SQL call.
    pub fn sql(&self) -> SqlDecision {
        let n = self.next(Stream::Sql);
        let (lo, hi) = self.config.latency_ms;
        let delay = Duration::from_millis(lo + self.draw(Stream::Sql, n, 0) % (hi - lo + 1));
        let fail = (unit(self.draw(Stream::Sql, n, 1)) < self.config.sql).then(|| {
            self.count(Stream::Sql);
            if self.draw(Stream::Sql, n, 2) & 1 == 0 {
                SqlFault::Transient
            } else {
                SqlFault::Hard
            }
        });
        SqlDecision { delay, fail }
    }

    /// The next SQL call, as the host sees it: waits the drawn latency, then answers
    /// the fault to inject, if any.
    pub async fn sql_call(&self) -> Option<SqlFault> {
        let decision = self.sql();
        if !decision.delay.is_zero() {
            tokio::time::sleep(decision.delay).await;
        }
        decision.fail
    }

    /// Whether the next outgoing HTTP request fails (`internal`: a `*.spin.internal` call).
    pub fn outbound(&self, internal: bool) -> bool {
        let (stream, share) = if internal {
            (Stream::Internal, self.config.internal)
        } else {
            (Stream::Outbound, self.config.outbound)
        };
        let n = self.next(stream);
        let fail = unit(self.draw(stream, n, 0)) < share;
        if fail {
            self.count(stream);
        }
        fail
    }

    /// Faults injected so far: `(kind, count)`.
    pub fn injected(&self) -> [(&'static str, u64); 3] {
        let n = |s: Stream| self.injected[s as usize].load(Ordering::Relaxed);
        [
            ("sql", n(Stream::Sql)),
            ("outbound", n(Stream::Outbound)),
            ("internal", n(Stream::Internal)),
        ]
    }

    /// Appends the fault counter to a `/metrics` page.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        out.push_str(
            "# HELP courier_faults_injected_total Faults injected (COURIER_FAULTS), by kind.\n",
        );
        out.push_str("# TYPE courier_faults_injected_total counter\n");
        for (kind, n) in self.injected() {
            let _ = writeln!(out, "courier_faults_injected_total{{kind=\"{kind}\"}} {n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_spec_parses_and_prints_back() {
        let c = FaultConfig::parse(" sql=0.05, latency=0-20ms,outbound=0.3,seed=42").unwrap();
        assert_eq!(
            c,
            FaultConfig {
                sql: 0.05,
                outbound: 0.3,
                internal: 0.0,
                latency_ms: (0, 20),
                seed: 42
            }
        );
        assert_eq!(FaultConfig::parse(&c.to_string()).unwrap(), c);
        assert_eq!(
            FaultConfig::parse("latency=7ms,seed=1").unwrap().latency_ms,
            (7, 7)
        );
        assert_eq!(FaultConfig::parse("internal=1").unwrap().internal, 1.0);
    }

    #[test]
    fn invalid_specs_are_refused_with_the_reason() {
        for (spec, reason) in [
            ("", "no fault"),
            ("seed=3", "no fault"),
            ("sq=0.1", "unknown knob `sq`"),
            ("sql", "knob=value"),
            ("sql=1.5", "between 0 and 1"),
            ("sql=-0.1", "between 0 and 1"),
            ("sql=NaN", "between 0 and 1"),
            ("sql=half", "between 0 and 1"),
            ("sql=0.1,sql=0.2", "twice"),
            ("latency=20", "`<a>-<b>ms`"),
            ("latency=20-10ms", "a <= b"),
            ("latency=0-600000ms", "a <= b"),
            ("sql=0.1,seed=-1", "unsigned"),
        ] {
            let err = format!("{:#}", FaultConfig::parse(spec).expect_err(spec));
            assert!(err.contains(reason), "{spec}: {err}");
        }
    }

    #[test]
    fn decisions_follow_the_seed_and_the_fractions() {
        let config = FaultConfig::parse("sql=0.1,latency=2-5ms,outbound=0.3,seed=42").unwrap();
        let (a, b) = (Faults::new(config.clone()), Faults::new(config.clone()));
        let run = |f: &Faults| {
            (0..10_000)
                .map(|_| (f.sql(), f.outbound(false), f.outbound(true)))
                .collect::<Vec<_>>()
        };
        let (first, second) = (run(&a), run(&b));
        assert_eq!(first, second, "one seed, one sequence");
        let other = Faults::new(FaultConfig { seed: 43, ..config });
        assert_ne!(run(&other), first, "another seed, another sequence");

        let failed = first.iter().filter(|(s, _, _)| s.fail.is_some()).count();
        assert!(
            (850..1150).contains(&failed),
            "sql faults {failed} of 10000"
        );
        let transient = first
            .iter()
            .filter(|(s, _, _)| s.fail == Some(SqlFault::Transient))
            .count();
        assert!(
            (failed * 4 / 10..failed * 6 / 10).contains(&transient),
            "{transient} transient of {failed}"
        );
        let outbound = first.iter().filter(|(_, o, _)| *o).count();
        assert!(
            (2700..3300).contains(&outbound),
            "outbound faults {outbound}"
        );
        assert!(first.iter().all(|(_, _, internal)| !internal), "internal=0");
        let delays: Vec<u64> = first
            .iter()
            .map(|(s, _, _)| s.delay.as_millis() as u64)
            .collect();
        assert!(delays.iter().all(|d| (2..=5).contains(d)));
        for ms in 2..=5 {
            assert!(delays.contains(&ms), "{ms} ms never drawn");
        }
        assert_eq!(
            a.injected(),
            [
                ("sql", failed as u64),
                ("outbound", outbound as u64),
                ("internal", 0)
            ]
        );
        let mut page = String::new();
        a.render_metrics(&mut page);
        assert!(page.contains(&format!(
            "courier_faults_injected_total{{kind=\"sql\"}} {failed}"
        )));
    }

    #[test]
    fn zero_and_one_never_and_always_fail() {
        let never = Faults::new(FaultConfig::parse("latency=0-0ms,seed=1").unwrap());
        let always = Faults::new(FaultConfig::parse("sql=1,outbound=1,internal=1,seed=1").unwrap());
        for _ in 0..1000 {
            assert_eq!(
                never.sql(),
                SqlDecision {
                    delay: Duration::ZERO,
                    fail: None
                }
            );
            assert!(!never.outbound(false) && !never.outbound(true));
            assert!(always.sql().fail.is_some());
            assert!(always.outbound(false) && always.outbound(true));
        }
    }
}
