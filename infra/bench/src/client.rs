//! A minimal HTTP/1.1 keep-alive client for the benchmarks, and latency summaries.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One keep-alive connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(addr).await.context("connect")?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self { sender })
    }

    /// Sends one request and reads the whole answer: `(status, body)`.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> Result<(u16, Bytes)> {
        let auth = token.map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|auth| ("authorization", auth))
            .into_iter()
            .collect();
        self.call_with(method, path, &headers, body).await
    }

    /// [`Conn::call`] with any request headers (`name`, `value`).
    pub async fn call_with(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<(u16, Bytes)> {
        self.sender.ready().await?;
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, "localhost")
            .header(http::header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let response = self.sender.send_request(req).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// Latencies of one measured run.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    pub micros: Vec<u64>,
}

impl Latencies {
    pub fn record(&mut self, took: Duration) {
        self.micros.push(took.as_micros() as u64);
    }

    pub fn merge(&mut self, other: Latencies) {
        self.micros.extend(other.micros);
    }

    /// The `p`-th percentile (0–100) in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.micros.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.micros.clone();
        sorted.sort_unstable();
        let index = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted[index.min(sorted.len() - 1)] as f64 / 1000.0
    }

    pub fn len(&self) -> usize {
        self.micros.len()
    }

    pub fn is_empty(&self) -> bool {
        self.micros.is_empty()
    }
}

/// Runs `task` on `n` concurrent connections until `duration` passes; each call of
/// `task(conn, worker, i)` is one timed operation returning whether it succeeded.
pub async fn closed_loop<F, Fut>(
    addr: SocketAddr,
    n: usize,
    duration: Duration,
    task: F,
) -> Result<(Latencies, u64, Duration)>
where
    F: Fn(Conn, usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = (Conn, bool)> + Send,
{
    paced_loop(addr, n, duration, Duration::ZERO, task).await
}

/// [`closed_loop`] spread over several gateways: worker `w` connects to
/// `addrs[w % addrs.len()]`.
pub async fn closed_loop_on<F, Fut>(
    addrs: &[SocketAddr],
    n: usize,
    duration: Duration,
    task: F,
) -> Result<(Latencies, u64, Duration)>
where
    F: Fn(Conn, usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = (Conn, bool)> + Send,
{
    spread_loop(addrs, n, duration, Duration::ZERO, task).await
}

/// [`closed_loop`] with a `pause` after each operation, outside the timing.
pub async fn paced_loop<F, Fut>(
    addr: SocketAddr,
    n: usize,
    duration: Duration,
    pause: Duration,
    task: F,
) -> Result<(Latencies, u64, Duration)>
where
    F: Fn(Conn, usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = (Conn, bool)> + Send,
{
    spread_loop(&[addr], n, duration, pause, task).await
}

async fn spread_loop<F, Fut>(
    addrs: &[SocketAddr],
    n: usize,
    duration: Duration,
    pause: Duration,
    task: F,
) -> Result<(Latencies, u64, Duration)>
where
    F: Fn(Conn, usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = (Conn, bool)> + Send,
{
    anyhow::ensure!(!addrs.is_empty(), "no gateway to load");
    let started = Instant::now();
    let deadline = started + duration;
    let mut handles = Vec::new();
    for worker in 0..n {
        let task = task.clone();
        let addr = addrs[worker % addrs.len()];
        handles.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await?;
            let (mut latencies, mut errors, mut i) = (Latencies::default(), 0u64, 0u64);
            while Instant::now() < deadline {
                let t = Instant::now();
                let (back, ok) = task(conn, worker, i).await;
                conn = back;
                if ok {
                    latencies.record(t.elapsed());
                } else {
                    errors += 1;
                }
                i += 1;
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
            anyhow::Ok((latencies, errors))
        }));
    }
    let mut all = Latencies::default();
    let mut errors = 0;
    for handle in handles {
        let (latencies, e) = handle.await??;
        all.merge(latencies);
        errors += e;
    }
    Ok((all, errors, started.elapsed()))
}
