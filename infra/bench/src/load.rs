//! The load generator: `connections` keep-alive HTTP/1.1 connections, each in a closed
//! loop (send, read the whole response, send again) for a warm-up and then a fixed
//! measured window. Every latency in the window is kept, so percentiles are exact.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use courier_bench::machine;

/// What to send and for how long.
#[derive(Debug, Clone)]
pub struct Load {
    pub path: String,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// The outcome of one measured window.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Latencies of the 200 answers, in nanoseconds, sorted.
    pub latencies: Vec<u64>,
    /// Non-200 answers and failed requests.
    pub errors: u64,
    pub window: Duration,
    /// CPU time used in the window, by thread name.
    pub cpu: HashMap<String, Duration>,
    /// CPU time every process of the machine used in the window.
    pub machine_cpu: Duration,
}

impl Outcome {
    pub fn ok(&self) -> u64 {
        self.latencies.len() as u64
    }

    /// Successful requests a second.
    pub fn rps(&self) -> f64 {
        self.ok() as f64 / self.window.as_secs_f64()
    }

    /// The nearest-rank `q` quantile of the latencies.
    pub fn quantile(&self, q: f64) -> Duration {
        quantile(&self.latencies, q)
    }

    /// Folds another window of the same target into this one.
    pub fn merge(&mut self, other: &Outcome) {
        self.latencies.extend_from_slice(&other.latencies);
        self.latencies.sort_unstable();
        self.errors += other.errors;
        self.window += other.window;
        self.machine_cpu += other.machine_cpu;
        for (name, cpu) in &other.cpu {
            *self.cpu.entry(name.clone()).or_default() += *cpu;
        }
    }

    /// CPU time this process used in the window.
    pub fn own_cpu(&self) -> Duration {
        self.cpu.values().sum()
    }

    /// CPU time other processes used in the window (approximate: interrupt time
    /// is in neither figure).
    pub fn others_cpu(&self) -> Duration {
        self.machine_cpu.saturating_sub(self.own_cpu())
    }

    /// CPU time per successful request of the threads named `name`.
    pub fn cpu_per_request(&self, name: &str) -> Duration {
        let cpu = self.cpu.get(name).copied().unwrap_or_default();
        match u32::try_from(self.ok()) {
            Ok(n) if n > 0 => cpu / n,
            _ => Duration::ZERO,
        }
    }
}

/// The nearest-rank `q` quantile of sorted nanosecond samples.
pub fn quantile(sorted: &[u64], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    Duration::from_nanos(sorted[index])
}

#[derive(Default)]
struct ConnectionStats {
    latencies: Vec<u64>,
    errors: u64,
}

/// Runs `load` against `addr` and measures the window after the warm-up.
pub async fn run(addr: SocketAddr, load: &Load) -> Result<Outcome> {
    let measure_from = Instant::now() + load.warmup;
    let end = measure_from + load.duration;
    let workers: Vec<_> = (0..load.connections)
        .map(|_| tokio::spawn(connection(addr, load.path.clone(), measure_from, end)))
        .collect();

    tokio::time::sleep_until(measure_from.into()).await;
    let machine_before = machine::machine_cpu()?;
    let cpu_before = machine::cpu_by_thread()?;
    tokio::time::sleep_until(end.into()).await;
    let cpu_after = machine::cpu_by_thread()?;
    let machine_after = machine::machine_cpu()?;

    let mut outcome = Outcome {
        window: load.duration,
        cpu: cpu_after
            .keys()
            .map(|name| {
                (
                    name.clone(),
                    machine::cpu_delta(&cpu_before, &cpu_after, name),
                )
            })
            .collect(),
        machine_cpu: machine_after.saturating_sub(machine_before),
        ..Outcome::default()
    };
    for worker in workers {
        let stats = worker.await.context("load connection panicked")??;
        outcome.latencies.extend(stats.latencies);
        outcome.errors += stats.errors;
    }
    outcome.latencies.sort_unstable();
    Ok(outcome)
}

/// Sends one request on a new connection: a check that the target answers at all.
pub async fn probe(addr: SocketAddr, path: &str) -> Result<StatusCode> {
    let mut sender = connect(addr).await?;
    exchange(&mut sender, &addr.to_string(), path).await
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Empty<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // The connection ends when the sender is dropped or the server closes it;
        // a failed request is counted where it is sent.
        let _ = conn.await;
    });
    Ok(sender)
}

/// One closed-loop connection. A request counts if it started and finished inside
/// the window; a broken connection is counted as an error and replaced.
async fn connection(
    addr: SocketAddr,
    path: String,
    measure_from: Instant,
    end: Instant,
) -> Result<ConnectionStats> {
    let mut stats = ConnectionStats::default();
    let mut sender = Some(connect(addr).await?);
    let host = addr.to_string();
    while Instant::now() < end {
        let mut current = match sender.take() {
            Some(s) => s,
            None => connect(addr).await?,
        };
        let started = Instant::now();
        let result = exchange(&mut current, &host, &path).await;
        let finished = Instant::now();
        let counted = started >= measure_from && finished <= end;
        match result {
            Ok(StatusCode::OK) => {
                if counted {
                    stats.latencies.push(
                        (finished - started)
                            .as_nanos()
                            .try_into()
                            .unwrap_or(u64::MAX),
                    );
                }
                sender = Some(current);
            }
            Ok(_) => {
                stats.errors += u64::from(counted);
                sender = Some(current);
            }
            Err(_) => stats.errors += u64::from(counted),
        }
    }
    Ok(stats)
}

/// Sends one GET and reads the whole answer.
async fn exchange(
    sender: &mut SendRequest<Empty<Bytes>>,
    host: &str,
    path: &str,
) -> Result<StatusCode> {
    sender.ready().await?;
    let request = Request::get(path)
        .header(hyper::header::HOST, host)
        .body(Empty::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    response.into_body().collect().await?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&samples, 0.5), Duration::from_nanos(50));
        assert_eq!(quantile(&samples, 0.99), Duration::from_nanos(99));
        assert_eq!(quantile(&samples, 1.0), Duration::from_nanos(100));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn merged_windows_add_up() {
        let mut a = Outcome {
            latencies: vec![1, 3],
            errors: 1,
            window: Duration::from_secs(1),
            ..Outcome::default()
        };
        let b = Outcome {
            latencies: vec![2],
            window: Duration::from_secs(1),
            ..Outcome::default()
        };
        a.merge(&b);
        assert_eq!(a.latencies, vec![1, 2, 3]);
        assert_eq!(a.errors, 1);
        assert_eq!(a.rps(), 1.5);
    }
}
