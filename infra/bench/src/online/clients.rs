//! The clients of `courier-bench online`: a waiting poll or stream on a socket of
//! its own, the gauges of held clients, and send latencies.

use anyhow::{Context, Result, bail};
use courier_bench::client::{Conn, Latencies};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one waiting poll on a fresh socket; the instant its whole 200 arrived.
use super::{Case, SEND_CONNECTIONS, SPIN_SETTLE};
use crate::spin::host::Host;

pub(super) async fn wait_once(addr: SocketAddr, request: String) -> Result<Instant> {
    let mut socket = TcpStream::connect(addr).await?;
    socket.write_all(request.as_bytes()).await?;
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    loop {
        let read = socket.read(&mut buf).await?;
        anyhow::ensure!(read > 0, "connection closed before an answer");
        got.extend_from_slice(&buf[..read]);
        let text = String::from_utf8_lossy(&got);
        if let Some(end) = text.find("\r\n\r\n") {
            anyhow::ensure!(text.starts_with("HTTP/1.1 200"), "answer: {text}");
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return Ok(Instant::now());
            }
        }
    }
}

/// Opens one event stream on a fresh socket; the instant its first entry event
/// arrived (its pings are no answer).
pub(super) async fn first_event(addr: SocketAddr, request: String) -> Result<Instant> {
    let mut socket = TcpStream::connect(addr).await?;
    socket.write_all(request.as_bytes()).await?;
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    loop {
        let read = socket.read(&mut buf).await?;
        anyhow::ensure!(read > 0, "the stream ended before an event");
        got.extend_from_slice(&buf[..read]);
        let text = String::from_utf8_lossy(&got);
        if let Some(end) = text.find("\r\n\r\n") {
            anyhow::ensure!(
                text.starts_with("HTTP/1.1 200") && text[..end].contains("text/event-stream"),
                "answer: {text}"
            );
            if text[end..].contains("event: entry") {
                return Ok(Instant::now());
            }
        }
    }
}

/// Waits until the gateways hold `n` clients waiting; on `spin up`, which counts
/// nothing, [`SPIN_SETTLE`] once all have connected.
pub(super) async fn held_at_least(
    addrs: &[SocketAddr],
    case: &Case,
    n: usize,
    started: Instant,
) -> Result<()> {
    if case.host == Host::Spin {
        if n == case.n {
            tokio::time::sleep(SPIN_SETTLE).await;
        }
        return Ok(());
    }
    loop {
        let mut held = 0;
        for &addr in addrs {
            held += self::held(addr, case.parking).await?;
        }
        if held >= n {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(20) {
            bail!("only {held} of {n} clients were waiting after 20 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How many clients a gateway holds waiting: its parked gauge, or (parking off)
/// the instances in use.
async fn held(addr: SocketAddr, parking: bool) -> Result<usize> {
    let mut conn = Conn::open(addr).await?;
    let (status, page) = conn.call("GET", "/metrics", None, None).await?;
    anyhow::ensure!(status == 200, "/metrics: {status}");
    let page = String::from_utf8_lossy(&page);
    let name = if parking {
        "courier_parked_polls "
    } else {
        "courier_instances_in_use "
    };
    let value = page
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .with_context(|| format!("no {name}in /metrics"))?;
    let value: f64 = value.trim().parse()?;
    // The /metrics request itself is not an instance.
    Ok(value as usize)
}

/// `count` 1:1 sends between the senders on [`SEND_CONNECTIONS`] connections.
pub(super) async fn send_latencies(
    addr: SocketAddr,
    senders: &[String],
    tokens: &[String],
    count: usize,
    tag: &str,
) -> Result<Latencies> {
    let mut tasks = Vec::new();
    for c in 0..SEND_CONNECTIONS {
        let (senders, tokens, tag) = (senders.to_vec(), tokens.to_vec(), tag.to_string());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await?;
            let mut latencies = Latencies::default();
            for k in (c..count).step_by(SEND_CONNECTIONS) {
                let from = k % senders.len();
                let to = (from + 1 + k / senders.len()) % senders.len();
                let to = if to == from {
                    (to + 1) % senders.len()
                } else {
                    to
                };
                let body = serde_json::json!({
                    "client_msg_id": format!("{tag}{k}"),
                    "to": {"user": senders[to]},
                    "content": {"type": "text", "text": "hi"},
                })
                .to_string();
                let began = Instant::now();
                let (status, answer) = conn
                    .call("POST", "/v1/messages", Some(&tokens[from]), Some(body))
                    .await?;
                anyhow::ensure!(
                    status == 201,
                    "send: {status} {}",
                    String::from_utf8_lossy(&answer)
                );
                latencies.record(began.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Latencies::default();
    for task in tasks {
        all.merge(task.await??);
    }
    Ok(all)
}
