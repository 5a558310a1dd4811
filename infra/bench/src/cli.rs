//! The command line of `courier-bench`: one subcommand a benchmark, with its
//! options and their defaults.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "courier-bench",
    about = "Benchmarks of the courier gateway against native baselines"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// The headline set one after another (healthz, messaging, scale, queue, push,
    /// online), each with its defaults as a child process, then one summary table of
    /// ratios against the baselines measured in the same run, with the machine, the
    /// date and each benchmark's conditions (load average, store settings, quotas).
    /// Exits non-zero when any of them failed; a failed one shows no figures.
    All {
        /// The PostgreSQL server of `scale`, e.g.
        /// `postgres://postgres@127.0.0.1:5433/courier_test` (as
        /// `tests/postgres/start.sh /tmp/courier-pg 5433` prints).
        #[arg(long, env = "COURIER_TEST_DATABASE_URL")]
        database_url: String,
        /// Build nothing first (the components and `courier` must be built).
        #[arg(long)]
        no_build: bool,
    },
    /// `GET /healthz` through the gateway (WASM) against a native hyper handler.
    Healthz {
        /// Measured seconds of each run.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Unmeasured seconds at the start of each run.
        #[arg(long, default_value_t = 2)]
        warmup: u64,
        /// Rounds; each round runs native, then WASM.
        #[arg(long, default_value_t = 2)]
        rounds: u32,
        /// Measured instantiations of the component (after 500 unmeasured ones).
        #[arg(long, default_value_t = 5000)]
        instantiations: usize,
        /// The Spin manifest (default: the workspace's `spin.toml`).
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Do not build the `health` component first.
        #[arg(long)]
        no_build: bool,
    },
    /// Core messaging through the gateway: 1:1 sends/s, sync polls/s, long-poll wake
    /// latency; the native send service as baseline.
    Messaging {
        /// Users sending to each other.
        #[arg(long, default_value_t = 2000)]
        users: usize,
        /// Concurrent keep-alive connections of each closed loop.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Measured seconds of each closed loop.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Do not build the components first.
        #[arg(long)]
        no_build: bool,
    },
    /// Idle online clients (one `GET /v1/sync?wait=30` each, then one `GET /v1/stream`
    /// each) on one `courier up` on SQLite: the gateway's idle CPU, RSS per client,
    /// wake latency and send latency with N waiting against none; the baseline is the
    /// same gateway with parking off (the component's own loop).
    /// Exits non-zero, with no figures, when any request failed.
    Online {
        /// Waiting clients to measure, parked (comma-separated).
        #[arg(long, value_delimiter = ',', default_values_t = [1000, 5000, 20000])]
        clients: Vec<usize>,
        /// Waiting clients of the baseline, parking off (each holds an instance; the
        /// pool has 1,000).
        #[arg(long, default_value_t = 500)]
        baseline: usize,
        /// Wake-latency samples per run.
        #[arg(long, default_value_t = 200)]
        wakes: usize,
        /// 1:1 sends per send-latency measurement.
        #[arg(long, default_value_t = 2000)]
        sends: usize,
        /// Waiting clients on `spin up`, where the component waits in its own loop:
        /// polls, then streams, with the loop's pause fixed at 20 ms (before its
        /// backoff) and backing off to 200 ms (after); 0 skips them.
        #[arg(long, default_value_t = 100)]
        spin_clients: usize,
        /// The Spin CLI [default: `spin` on PATH, else ../shared/tools/spin/spin].
        #[arg(long)]
        spin: Option<PathBuf>,
        /// A PostgreSQL server (e.g. postgres://postgres@127.0.0.1:5433/postgres): the
        /// parked and stream runs again on two gateways sharing a fresh database of it,
        /// each wake sent through the other gateway.
        #[arg(long)]
        database_url: Option<String>,
        /// The `courier` binary [default: built now, target/release/courier].
        #[arg(long)]
        courier: Option<PathBuf>,
        /// Do not build the components and `courier` first.
        #[arg(long)]
        no_build: bool,
    },
    /// The send and sync-poll loops of `messaging` on one gateway on SQLite (baseline),
    /// one on PostgreSQL, and two on one PostgreSQL database with the connections
    /// split between them; each PostgreSQL setup on a fresh database.
    Scale {
        /// The PostgreSQL server, e.g. `postgres://postgres@127.0.0.1:5433/courier_test`
        /// (as `tests/postgres/start.sh` prints); its database is only used to create
        /// and drop the runs' databases.
        #[arg(long, env = "COURIER_TEST_DATABASE_URL")]
        database_url: String,
        /// Users sending to each other.
        #[arg(long, default_value_t = 2000)]
        users: usize,
        /// Concurrent keep-alive connections of each closed loop (all gateways).
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Unmeasured seconds before each measured loop.
        #[arg(long, default_value_t = 1)]
        warmup: u64,
        /// Measured seconds of each closed loop.
        #[arg(long, default_value_t = 5)]
        duration: u64,
        /// Do not build the components first.
        #[arg(long)]
        no_build: bool,
    },
    /// The same components on real Spin (`spin up`) against the gateway (`courier
    /// up`, the baseline), both as child processes on fresh SQLite files: users
    /// created, 1:1 sends/s, sync polls/s, and a group fan-out in the last round.
    /// Exits non-zero, with no throughput, when any request failed.
    Spin {
        /// Users sending to each other.
        #[arg(long, default_value_t = 500)]
        users: usize,
        /// Concurrent keep-alive connections of each closed loop.
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Unmeasured seconds before each measured loop.
        #[arg(long, default_value_t = 2)]
        warmup: u64,
        /// Measured seconds of each closed loop.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Rounds; each runs both hosts, alternating which goes first.
        #[arg(long, default_value_t = 2)]
        rounds: u32,
        /// Members of the group of the last round's fan-out (0: none).
        #[arg(long, default_value_t = 10_000)]
        fanout_members: usize,
        /// The Spin CLI [default: `spin` on PATH, else ../shared/tools/spin/spin].
        #[arg(long)]
        spin: Option<PathBuf>,
        /// The `courier` binary [default: built in the workspace's target directory].
        #[arg(long)]
        courier: Option<PathBuf>,
        /// Store on PostgreSQL: a fresh database of this server for each host and
        /// round (e.g. `postgres://postgres@127.0.0.1:5433/courier_test`), dropped
        /// afterwards [default: each host's SQLite file].
        #[arg(long)]
        database_url: Option<String>,
        /// Build neither `courier` nor the components first.
        #[arg(long)]
        no_build: bool,
    },
    /// The queue: 10,000-member fan-out time (native store as baseline), 1:1 latency
    /// during fan-outs (idle as baseline), receipt entries merged vs one per read.
    Queue {
        /// Do not build the components first.
        #[arg(long)]
        no_build: bool,
    },
    /// Soak: minutes of fixed-rate mixed load (1:1 and group sends, syncs, long-polls,
    /// acks, read receipts, recalls) against the real `courier` binary as a child
    /// process; errors, rate, latency by kind, the gateway's memory over time, then a
    /// delivery check. Exits non-zero when the verdict fails.
    Soak {
        /// Seconds of load, warm-up included.
        #[arg(long, default_value_t = 300)]
        seconds: u64,
        /// Unmeasured seconds at the start, at most a quarter of --seconds (errors
        /// count from the start).
        #[arg(long, default_value_t = 30)]
        warmup: u64,
        /// Requests started a second, whether or not earlier ones have answered.
        #[arg(long, default_value_t = 200)]
        rate: u32,
        /// Users, all in one org.
        #[arg(long, default_value_t = 1000)]
        users: usize,
        /// Members of the group (over 100, group sends fan out through the queue).
        #[arg(long, default_value_t = 200)]
        group_members: usize,
        /// `wait` of the long-polls, in seconds.
        #[arg(long, default_value_t = 2)]
        long_poll: u64,
        /// Largest p99 latency of any kind, in milliseconds (long-polls: plus their wait).
        #[arg(long, default_value_t = 250.0)]
        max_p99_ms: f64,
        /// Largest growth of the gateway's VmRSS after warm-up, in MiB a minute.
        #[arg(long, default_value_t = 4.0)]
        max_rss_growth: f64,
        /// Seed of the users' choices.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Run on a fresh database of this PostgreSQL server (e.g.
        /// `postgres://postgres@127.0.0.1:5433/courier_test`), dropped afterwards
        /// [default: the embedded SQLite store].
        #[arg(long)]
        database_url: Option<String>,
        /// The `courier` binary [default: built in the workspace's target directory].
        #[arg(long)]
        courier: Option<PathBuf>,
        /// Build neither `courier` nor the components first.
        #[arg(long)]
        no_build: bool,
    },
    /// Push: a 10,000-member message to offline Web Push users through a local fake
    /// push service — time to the last push request, push jobs/s (native encryption
    /// and signing on one core as baseline).
    Push {
        /// Do not build the components first.
        #[arg(long)]
        no_build: bool,
    },
}
