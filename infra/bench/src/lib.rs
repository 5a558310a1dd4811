//! The messaging, queue, push and scale benchmarks (run by `courier-bench
//! messaging|queue|push|scale`): load against a real gateway started in this process
//! (the real components on the embedded SQLite store, or on PostgreSQL when the
//! fixture's variables say so), with a baseline measured in the same run, printed as a
//! table with ratios.
//!
//! This library is the part of `courier-bench` that other benchmarks build on; the
//! binary (`main.rs`) adds the command line and the benchmarks of whole hosts.
//!
//! # Layout
//! - `lib.rs`: the fixture (gateway on port 0 in a temp data dir) and the report.
//! - `client.rs`: keep-alive HTTP/1.1 connections, closed loops, percentiles.
//! - `machine.rs`: machine facts and CPU accounting from `/proc` (threads, processes,
//!   the whole machine), load averages.
//! - `messaging.rs`: sends/s, sync polls/s, long-poll wake latency.
//! - `queue.rs`: 10,000-member fan-out time, 1:1 latency during fan-out, receipt
//!   writes merged vs unmerged.
//! - `push.rs`: a 10,000-member message to offline Web Push users through a fake
//!   push service: time to the last push, push jobs/s.
//! - `soak.rs`: minutes of fixed-rate mixed load against the real `courier` binary
//!   as a child process: errors, rate, latency by kind, the gateway's memory, then a
//!   delivery check.
//! - `summary.rs`: the headline figures each benchmark hands to `courier-bench all`.

pub mod client;
pub mod machine;
pub mod messaging;
pub mod push;
pub mod queue;
pub mod soak;
pub mod summary;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::Notify;

use courier_gateway::server::Limits;
use courier_gateway::up::{UpOptions, prepare};

/// A gateway serving `spin.toml` from a fresh data directory, stopped when dropped.
pub struct Fixture {
    pub addr: SocketAddr,
    pub data: tempfile::TempDir,
    pub jwt_secret: String,
    stop: Arc<Notify>,
}

impl Fixture {
    pub async fn start(manifest: PathBuf, build: bool) -> Result<Self> {
        Self::start_with(manifest, build, BTreeMap::new()).await
    }

    /// [`Fixture::start`] with application variable values (by name) ahead of the
    /// environment: `database_url`/`database_host` for a PostgreSQL store, the same
    /// `jwt_secret` for gateways that share one. Serves on the runtime it runs on.
    pub async fn start_with(
        manifest: PathBuf,
        build: bool,
        variables: BTreeMap<String, String>,
    ) -> Result<Self> {
        let data = tempfile::tempdir()?;
        let jwt_secret = variables.get("jwt_secret").cloned();
        let opts = UpOptions {
            manifest,
            listen: "127.0.0.1:0".into(),
            data: data.path().to_path_buf(),
            cache_dir: Some(PathBuf::from(".courier/cache")),
            build,
            runtime_config: None,
            dev_secrets: true,
            limits: Limits::default(),
            variables,
            faults: None,
        };
        let (app, listener) = prepare(&opts).await?;
        let addr = listener.local_addr()?;
        let jwt_secret = match jwt_secret {
            Some(secret) => secret,
            None => courier_gateway::secrets::read(data.path())?
                .remove("jwt_secret")
                .context("no development jwt_secret")?,
        };
        let stop = Arc::new(Notify::new());
        let signal = Arc::clone(&stop);
        tokio::spawn(courier_gateway::listen::serve(app, listener, async move {
            signal.notified().await
        }));
        Ok(Self {
            addr,
            data,
            jwt_secret,
            stop,
        })
    }

    pub fn token(&self, uid: &str, admin: bool) -> Result<String> {
        courier_gateway::token::mint(
            &self.jwt_secret,
            uid,
            None,
            admin,
            Duration::from_secs(3600),
        )
    }

    /// The app's SQLite file, opened read-only beside the gateway.
    pub fn database(&self) -> Result<rusqlite::Connection> {
        Ok(rusqlite::Connection::open_with_flags(
            self.data.path().join("sqlite_db.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?)
    }

    /// Creates users `prefix00000…` in one org over `connections` connections.
    pub async fn users(
        &self,
        prefix: &str,
        count: usize,
        connections: usize,
    ) -> Result<Vec<String>> {
        self.users_in(prefix, count, connections, ONE_ORG).await
    }

    /// [`Fixture::users`], `org_size` to an org (see [`org_of`]).
    pub async fn users_in(
        &self,
        prefix: &str,
        count: usize,
        connections: usize,
        org_size: usize,
    ) -> Result<Vec<String>> {
        let admin = self.token("bench-admin", true)?;
        create_users_in(self.addr, &admin, prefix, count, connections, org_size).await
    }
}

/// Users to an org where a benchmark loads many companies at once (user `i` is in
/// [`org_of`]`(i, ORG_SIZE)`): the per-org quota (`rate_per_org_per_sec`, 500/s by
/// default) is one company's, so a benchmark of the whole node spreads its users
/// over many orgs, as a deployment holds many.
pub const ORG_SIZE: usize = 50;

/// One org for all: a single company (`usize::MAX` to an org).
pub const ONE_ORG: usize = usize::MAX;

/// The org of the benchmark's `i`-th user, `org_size` users to an org.
pub fn org_of(i: usize, org_size: usize) -> String {
    format!("bench{:04}", i / org_size.max(1))
}

/// The `k`-th choice of a peer for user `a` of `len` users, `org_size` to an org:
/// another user of its org (1:1 messages need one), cycling through them all as
/// `k` grows; `a` itself (a note to self) when it is alone in its org.
pub fn org_mate(a: usize, len: usize, org_size: usize, k: usize) -> usize {
    let size = org_size.max(1);
    let start = a / size * size;
    let n = len.min(start.saturating_add(size)) - start;
    if n < 2 {
        return a;
    }
    start + (a - start + 1 + k % (n - 1)) % n
}

/// Milliseconds since the Unix epoch, the clock the components read.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The quotas of `Config::default()`, set by name ahead of the environment, so a
/// `SPIN_VARIABLE_RATE_*` left in the shell cannot change what a benchmark measures.
pub fn default_quotas() -> BTreeMap<String, String> {
    let d = courier_core::Config::default();
    [
        ("rate_per_user_per_sec", d.rate_per_user_per_sec.to_string()),
        ("rate_burst", d.rate_burst.to_string()),
        ("rate_per_org_per_sec", d.rate_per_org_per_sec.to_string()),
        (
            "org_queue_share_percent",
            d.org_queue_share_percent.to_string(),
        ),
        ("org_queue_floor", d.org_queue_floor.to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect()
}

/// One line saying which quotas a run had.
pub fn quotas_line(variables: &BTreeMap<String, String>) -> String {
    let get = |name: &str| variables.get(name).map_or("default", String::as_str);
    format!(
        "quotas: {}/s per user (burst {}), {}/s per org",
        get("rate_per_user_per_sec"),
        get("rate_burst"),
        get("rate_per_org_per_sec")
    )
}

/// Creates users `prefix00000…` in one org through the gateway at `addr` (`admin`
/// is an admin token) over `connections` connections.
pub async fn create_users(
    addr: SocketAddr,
    admin: &str,
    prefix: &str,
    count: usize,
    connections: usize,
) -> Result<Vec<String>> {
    create_users_in(addr, admin, prefix, count, connections, ONE_ORG).await
}

/// [`create_users`], `org_size` to an org (see [`org_of`]).
pub async fn create_users_in(
    addr: SocketAddr,
    admin: &str,
    prefix: &str,
    count: usize,
    connections: usize,
    org_size: usize,
) -> Result<Vec<String>> {
    let uids: Vec<String> = (0..count).map(|i| format!("{prefix}{i:05}")).collect();
    let indexed: Vec<(usize, String)> = uids.iter().cloned().enumerate().collect();
    let mut handles = Vec::new();
    for part in indexed.chunks(count.div_ceil(connections.max(1))) {
        let (part, admin) = (part.to_vec(), admin.to_string());
        handles.push(tokio::spawn(async move {
            let mut conn = client::Conn::open(addr).await?;
            for (i, uid) in part {
                let body =
                    serde_json::json!({ "name": uid, "org": org_of(i, org_size) }).to_string();
                let (status, _) = conn
                    .call("PUT", &format!("/v1/users/{uid}"), Some(&admin), Some(body))
                    .await?;
                anyhow::ensure!(status == 200, "creating {uid}: {status}");
            }
            anyhow::Ok(())
        }));
    }
    for handle in handles {
        handle.await??;
    }
    Ok(uids)
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.stop.notify_one();
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub what: String,
    pub value: String,
    pub baseline: String,
    pub ratio: String,
}

pub fn print_report(title: &str, rows: &[Row]) {
    println!("\n{title}");
    println!(
        "{:<48} {:>18} {:>22} {:>8}",
        "measure", "courier (wasm)", "baseline (same run)", "ratio"
    );
    for row in rows {
        println!(
            "{:<48} {:>18} {:>22} {:>8}",
            row.what, row.value, row.baseline, row.ratio
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_org_mate_is_in_the_same_org_and_every_one_is_chosen() {
        for (len, size) in [(2000, ORG_SIZE), (120, ORG_SIZE), (7, ONE_ORG), (101, 50)] {
            for a in 0..len {
                let mates: std::collections::BTreeSet<usize> = (0..size.min(len) * 2)
                    .map(|k| org_mate(a, len, size, k))
                    .collect();
                let org = org_of(a, size);
                let peers = (0..len)
                    .filter(|&b| b != a && org_of(b, size) == org)
                    .count();
                if peers == 0 {
                    assert_eq!(mates, [a].into());
                } else {
                    assert_eq!(mates.len(), peers, "user {a} of {len}");
                    assert!(mates.iter().all(|&b| b != a && org_of(b, size) == org));
                }
            }
        }
    }
}
