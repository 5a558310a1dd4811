//! `courier drain`: the queue's drain loop against any deployment of the app — `spin
//! up` on one machine, Fermyon/Akamai, SpinKube — as a sidecar, a systemd timer or a
//! CronJob. Spin has no background work of its own: the queue (fan-out, receipts,
//! recall, retention, push, webhooks) moves only when something calls the worker's
//! `POST /internal/drain`. The local gateway runs the same loop in-process
//! ([`crate::drainer`]).
//!
//! One drain answers `{"done", "remaining", …}`; while `remaining` is above zero the
//! next drain follows at once. Then the loop ends (a timer's run), or with `--every`
//! waits that long and drains again (a sidecar). A refused secret ends it at once; a
//! failed drain is retried with growing pauses.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::drainer::DRAIN_PATH;

/// The longest pause after failed drains.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Failed drains in a row after which a run without `--every` gives up.
const ATTEMPTS_WITHOUT_EVERY: u32 = 5;

/// What `courier drain` was asked to do.
#[derive(Debug, Clone)]
pub struct DrainOptions {
    /// The app's base URL, e.g. `http://127.0.0.1:3000`.
    pub url: String,
    /// The app's `internal_secret`.
    pub secret: String,
    /// `None`: drain until nothing is due, then end. `Some(d)`: drain forever, every
    /// `d` while the queue is idle.
    pub every: Option<Duration>,
    /// The limit of one drain request.
    pub timeout: Duration,
}

/// One drain's report, as the worker answers it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    pub done: i64,
    pub remaining: i64,
    pub retried: i64,
    pub dead_lettered: i64,
}

impl Report {
    fn parse(body: &str) -> Result<Self> {
        let report: Value =
            serde_json::from_str(body).with_context(|| format!("drain answered `{body}`"))?;
        let field = |name: &str| report[name].as_i64().unwrap_or(0);
        Ok(Self {
            done: field("done"),
            remaining: field("remaining"),
            retried: field("retried"),
            dead_lettered: field("dead_lettered"),
        })
    }
}

/// Why one drain request failed.
#[derive(Debug)]
enum Failure {
    /// The app refused the secret (401/403): draining again cannot help.
    Refused(String),
    /// Anything else: the app is down, busy or failed; worth trying again.
    Failed(anyhow::Error),
}

/// The URL of the drain route under the app's base URL.
pub fn drain_url(base: &str) -> Result<String> {
    let parsed = url::Url::parse(base).with_context(|| format!("--url `{base}`"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        bail!("--url `{base}`: expected http(s)://host[:port], the app's base URL");
    }
    Ok(format!("{}{DRAIN_PATH}", base.trim_end_matches('/')))
}

/// Runs the loop until it is done (without `--every`) or fails for good.
pub fn run(opts: &DrainOptions) -> Result<()> {
    let url = drain_url(&opts.url)?;
    let agent = ureq::AgentBuilder::new().timeout(opts.timeout).build();
    let mut failures = 0u32;
    loop {
        match drain_once(&agent, &url, &opts.secret) {
            Ok(report) => {
                failures = 0;
                if report.done > 0 || report.dead_lettered > 0 {
                    eprintln!(
                        "courier drain: done {}, remaining {}, retried {}, dead-lettered {}",
                        report.done, report.remaining, report.retried, report.dead_lettered
                    );
                }
                if report.remaining > 0 {
                    continue;
                }
                match opts.every {
                    Some(every) => std::thread::sleep(every),
                    None => return Ok(()),
                }
            }
            Err(Failure::Refused(why)) => bail!("{url}: {why}"),
            Err(Failure::Failed(e)) => {
                failures += 1;
                if opts.every.is_none() && failures >= ATTEMPTS_WITHOUT_EVERY {
                    return Err(e.context(format!("{url}: {failures} failed drains in a row")));
                }
                let pause = backoff(opts.every, failures);
                eprintln!(
                    "courier drain: {e:#}; again in {}",
                    humantime::format_duration(pause)
                );
                std::thread::sleep(pause);
            }
        }
    }
}

/// The pause after `failures` failed drains in a row: doubling from the interval
/// (or 1 s), at most [`MAX_BACKOFF`].
fn backoff(every: Option<Duration>, failures: u32) -> Duration {
    let base = every
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_millis(100));
    base.saturating_mul(1 << failures.min(16).saturating_sub(1))
        .min(MAX_BACKOFF)
}

fn drain_once(agent: &ureq::Agent, url: &str, secret: &str) -> Result<Report, Failure> {
    let answer = agent
        .post(url)
        .set("x-internal-secret", secret)
        .send_bytes(&[]);
    match answer {
        Ok(response) => {
            let body = response
                .into_string()
                .map_err(|e| Failure::Failed(e.into()))?;
            Report::parse(&body).map_err(Failure::Failed)
        }
        Err(ureq::Error::Status(status @ (401 | 403), response)) => Err(Failure::Refused(format!(
            "{status}: {} (is --secret the app's internal_secret?)",
            response.into_string().unwrap_or_default()
        ))),
        Err(ureq::Error::Status(status, response)) => Err(Failure::Failed(anyhow::anyhow!(
            "drain answered {status}: {}",
            response.into_string().unwrap_or_default()
        ))),
        Err(e) => Err(Failure::Failed(anyhow::anyhow!("{e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drain_route_is_under_the_base_url() {
        assert_eq!(
            drain_url("http://127.0.0.1:3000/").unwrap(),
            "http://127.0.0.1:3000/internal/drain"
        );
        assert_eq!(
            drain_url("https://courier.example.com").unwrap(),
            "https://courier.example.com/internal/drain"
        );
        for bad in ["127.0.0.1:3000", "ftp://x", "http://", ""] {
            assert!(drain_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reports_are_read_from_the_worker_answer() {
        let report =
            Report::parse(r#"{"done":3,"remaining":2,"retried":1,"dead_lettered":0,"dead":0}"#)
                .unwrap();
        assert_eq!(
            report,
            Report {
                done: 3,
                remaining: 2,
                retried: 1,
                dead_lettered: 0
            }
        );
        assert!(Report::parse("not json").is_err());
    }

    #[test]
    fn pauses_double_up_to_the_cap() {
        let every = Some(Duration::from_secs(1));
        assert_eq!(backoff(every, 1), Duration::from_secs(1));
        assert_eq!(backoff(every, 2), Duration::from_secs(2));
        assert_eq!(backoff(every, 3), Duration::from_secs(4));
        assert_eq!(backoff(every, 40), MAX_BACKOFF);
        assert_eq!(backoff(Some(Duration::ZERO), 1), Duration::from_millis(100));
    }
}
