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

pub mod client;
pub mod machine;
pub mod messaging;
pub mod push;
pub mod queue;
pub mod soak;

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
        let admin = self.token("bench-admin", true)?;
        create_users(self.addr, &admin, prefix, count, connections).await
    }
}

/// Creates users `prefix00000…` in the org `bench` through the gateway at `addr`
/// (`admin` is an admin token) over `connections` connections.
pub async fn create_users(
    addr: SocketAddr,
    admin: &str,
    prefix: &str,
    count: usize,
    connections: usize,
) -> Result<Vec<String>> {
    let uids: Vec<String> = (0..count).map(|i| format!("{prefix}{i:05}")).collect();
    let mut handles = Vec::new();
    for part in uids.chunks(count.div_ceil(connections.max(1))) {
        let (part, admin) = (part.to_vec(), admin.to_string());
        handles.push(tokio::spawn(async move {
            let mut conn = client::Conn::open(addr).await?;
            for uid in part {
                let body = serde_json::json!({ "name": uid, "org": "bench" }).to_string();
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
