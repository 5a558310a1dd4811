//! The two hosts as child processes: `courier up` and `spin up` on one snapshot of
//! the components, each on a fresh data directory and a port of its own choosing,
//! killed (with every process of its group) when the guard is dropped or the bench
//! is interrupted.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use courier_bench::machine::process_cpu;
use tokio::runtime::Runtime;

/// How long a host may take from start to serving (both load the components from
/// a warm compiled-code cache in a few seconds; a cold cache takes longer).
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// Where the components are built, relative to the workspace (and to `spin.toml`).
const WASM_DIR: &str = "target/wasm32-wasip2/release/";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// `courier up`, the local gateway.
    Gateway,
    /// `spin up`, real Spin.
    Spin,
}

impl Host {
    pub const BOTH: [Host; 2] = [Host::Gateway, Host::Spin];

    pub fn name(self) -> &'static str {
        match self {
            Host::Gateway => "gateway",
            Host::Spin => "Spin",
        }
    }
}

/// The programs and files both hosts run.
#[derive(Clone)]
pub struct Setup {
    pub courier: PathBuf,
    pub spin: PathBuf,
    /// A copy of `spin.toml` whose component sources point into the snapshot.
    pub manifest: PathBuf,
    /// The compiled-code cache of `courier up`.
    pub cache_dir: PathBuf,
    /// Application variables by name, the same for both hosts.
    pub variables: Vec<(String, String)>,
    /// More arguments of `courier up` (e.g. `--max-parked 0`).
    pub gateway_args: Vec<String>,
}

impl Setup {
    /// Both hosts store in `db` (`database_url`, and `database_host` for the
    /// components' allow-lists) instead of their SQLite files.
    pub fn store_in(&mut self, db: &crate::scale::Database) {
        self.variables.push(("database_url".into(), db.url.clone()));
        self.variables
            .push(("database_host".into(), db.host.clone()));
    }
}

/// The Spin CLI: `explicit`, else `spin` on `PATH`, else `../shared/tools/spin/spin`
/// beside the workspace.
pub fn spin_binary(explicit: Option<&Path>, workspace: &Path) -> Result<PathBuf> {
    if let Some(path) = explicit {
        anyhow::ensure!(path.is_file(), "--spin {}: no such file", path.display());
        return Ok(path.to_path_buf());
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("spin"))
            .find(|candidate| candidate.is_file())
    });
    let beside = workspace.join("../shared/tools/spin/spin");
    on_path
        .or_else(|| beside.is_file().then(|| beside.clone()))
        .with_context(|| {
            format!(
                "no Spin CLI: no `spin` on PATH and no {} (install Spin 4.0.2 or pass --spin PATH)",
                beside.display()
            )
        })
}

/// Builds the components and `courier` (with `build`), and returns the `courier`
/// binary to run: `explicit`, else the workspace's `target/release/courier`.
pub fn prepare(workspace: &Path, explicit: Option<&Path>, build: bool) -> Result<PathBuf> {
    if build {
        eprintln!("building the components…");
        let manifest = courier_gateway::manifest::Manifest::load(&workspace.join("spin.toml"))?;
        courier_gateway::builder::build_all(&manifest)?;
    }
    let courier = match explicit {
        Some(path) => path.to_path_buf(),
        None if build => courier_bench::soak::process::build_courier(workspace)?,
        None => workspace.join("target/release/courier"),
    };
    anyhow::ensure!(
        courier.is_file(),
        "{}: no such file (build it with `cargo build --release -p courier-gateway`)",
        courier.display()
    );
    Ok(courier)
}

/// The components as they are now, copied once, so that every round of both hosts
/// runs the same bytes even if they are rebuilt meanwhile.
pub struct Snapshot {
    pub dir: tempfile::TempDir,
    pub manifest: PathBuf,
    pub files: usize,
    /// Modification time of the newest `.wasm`, seconds since the epoch.
    pub newest: u64,
}

impl Snapshot {
    pub fn take(workspace: &Path) -> Result<Self> {
        let manifest = workspace.join("spin.toml");
        let text = std::fs::read_to_string(&manifest)
            .with_context(|| format!("cannot read {}", manifest.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("courier-bench-wasm-")
            .tempdir()?;
        let (mut files, mut newest) = (0, 0);
        for source in text.split(&format!("\"{WASM_DIR}")).skip(1) {
            let name = source.split('"').next().unwrap_or_default();
            let from = workspace.join(WASM_DIR).join(name);
            let modified = std::fs::metadata(&from)
                .and_then(|m| m.modified())
                .with_context(|| {
                    format!(
                        "{} is missing: build the components with `cargo build --release \
                         --target wasm32-wasip2 --workspace --exclude courier-gateway \
                         --exclude courier-bench --exclude courier-fuzz`",
                        from.display()
                    )
                })?;
            let secs = modified
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            newest = newest.max(secs);
            std::fs::copy(&from, dir.path().join(name))
                .with_context(|| format!("cannot copy {}", from.display()))?;
            files += 1;
        }
        anyhow::ensure!(
            files > 0,
            "{} names no {WASM_DIR}*.wasm",
            manifest.display()
        );
        let copy = dir.path().join("spin.toml");
        let sources = format!("\"{}/", dir.path().display());
        std::fs::write(&copy, text.replace(&format!("\"{WASM_DIR}"), &sources))?;
        Ok(Self {
            dir,
            manifest: copy,
            files,
            newest,
        })
    }
}

/// Process groups of the hosts running now: what an interrupt must kill. Global
/// because signals are.
static RUNNING: Mutex<Vec<(u32, PathBuf)>> = Mutex::new(Vec::new());

fn running() -> std::sync::MutexGuard<'static, Vec<(u32, PathBuf)>> {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// On SIGINT, SIGTERM or SIGHUP: kills the running hosts, removes their data
/// directories and exits (130). Each host runs in a process group of its own (so
/// that `spin up`'s child `spin trigger http` goes with it), which a terminal's
/// Ctrl-C does not reach.
pub fn stop_hosts_on_signal(rt: &Runtime) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let _entered = rt.enter();
    let mut signals = [
        signal(SignalKind::interrupt())?,
        signal(SignalKind::terminate())?,
        signal(SignalKind::hangup())?,
    ];
    rt.spawn(async move {
        let [a, b, c] = &mut signals;
        tokio::select! {
            _ = a.recv() => {}
            _ = b.recv() => {}
            _ = c.recv() => {}
        }
        for (pgid, dir) in running().iter() {
            kill_group(*pgid);
            let _ = std::fs::remove_dir_all(dir);
        }
        eprintln!("courier-bench spin: interrupted; the hosts are stopped");
        std::process::exit(130);
    });
    Ok(())
}

/// A host serving on `addr`; its whole process group is killed when this is dropped.
pub struct Running {
    pub host: Host,
    pub addr: SocketAddr,
    /// `--data` / `--state-dir`: the host's SQLite file is `sqlite_db.db` in it.
    pub state: PathBuf,
    /// The PostgreSQL database the host stores in, if not its SQLite file.
    pub database_url: Option<String>,
    log: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Running {
    /// Starts `host` on a fresh data directory and waits until it says where it
    /// listens (`courier: listening on http://…`, `Serving http://…`).
    pub fn start(host: Host, setup: &Setup) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("courier-bench-{}-", host.name().to_lowercase()))
            .tempdir()?;
        let state = dir.path().join("state");
        let log = dir.path().join("stderr.log");
        let mut command = match host {
            Host::Gateway => {
                let mut c = Command::new(&setup.courier);
                c.arg("up")
                    .arg("--manifest")
                    .arg(&setup.manifest)
                    .args(["--no-build", "--listen", "127.0.0.1:0", "--data"])
                    .arg(&state)
                    .arg("--cache-dir")
                    .arg(&setup.cache_dir)
                    .args(&setup.gateway_args);
                c
            }
            Host::Spin => {
                let mut c = Command::new(&setup.spin);
                c.arg("up")
                    .arg("--from")
                    .arg(&setup.manifest)
                    .args(["--listen", "127.0.0.1:0", "--state-dir"])
                    .arg(&state);
                c
            }
        };
        // Only the bench's variables, and each host's default logging.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("SPIN_VARIABLE_")
                || ["RUST_LOG", "COURIER_LOG", "COURIER_CACHE_DIR"].contains(&&*name)
            {
                command.env_remove(&*name);
            }
        }
        for (name, value) in &setup.variables {
            command.env(courier_gateway::variables::env_name(name), value);
        }
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("cannot start {}", host.name()))?;
        running().push((child.id(), dir.path().to_path_buf()));
        let stdout = child.stdout.take();
        let mut this = Self {
            host,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            state,
            database_url: setup
                .variables
                .iter()
                .find(|(name, _)| name == "database_url")
                .map(|(_, url)| url.clone()),
            log,
            child,
            _dir: dir,
        };
        let stdout = stdout.context("no stdout")?;
        let (tx, rx) = mpsc::channel();
        // Reads stdout to its end, so the host never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let line = line.trim();
                let url = line
                    .strip_prefix("courier: listening on http://")
                    .or_else(|| line.strip_prefix("Serving http://"));
                if let Some(url) = url {
                    let _ = tx.send(url.trim_end_matches('/').to_string());
                }
            }
        });
        let started = Instant::now();
        this.addr = loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(addr) => break addr.parse().with_context(|| format!("address {addr}"))?,
                Err(mpsc::RecvTimeoutError::Timeout) if started.elapsed() < START_TIMEOUT => {
                    if let Some(status) = this.child.try_wait()? {
                        bail!("{} exited ({status}):\n{}", host.name(), this.log_tail(20));
                    }
                }
                Err(_) => bail!(
                    "{} did not start in {}s:\n{}",
                    host.name(),
                    START_TIMEOUT.as_secs(),
                    this.log_tail(20)
                ),
            }
        };
        Ok(this)
    }

    /// An error if the host has exited.
    pub fn ensure_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); its log ends with:\n{}",
                self.host.name(),
                self.log_tail(20)
            );
        }
        Ok(())
    }

    /// CPU time (user + system) the host's processes have used so far: every live
    /// process of its group (`spin up` serves from a child, `spin trigger http`).
    pub fn cpu(&self) -> Duration {
        self.group()
            .map(|proc| process_cpu(&proc.join("stat").to_string_lossy()))
            .sum()
    }

    /// The host's store, opened beside it: its SQLite file read-only, or the
    /// PostgreSQL database of `database_url`.
    pub fn database(&self) -> Result<Store> {
        if let Some(url) = &self.database_url {
            return PgReader::connect(url).map(Store::Postgres);
        }
        let path = self.state.join("sqlite_db.db");
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map(Store::Sqlite)
            .with_context(|| format!("cannot open {}", path.display()))
    }

    /// Resident memory of the host's processes, in bytes (`VmRSS` summed over its
    /// process group, as [`Running::cpu`]).
    pub fn rss(&self) -> u64 {
        self.group()
            .filter_map(|proc| {
                let status = std::fs::read_to_string(proc.join("status")).ok()?;
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map(|kb| kb * 1024)
            .sum()
    }

    /// `/proc/<pid>` of every live process of the host's group.
    fn group(&self) -> impl Iterator<Item = PathBuf> {
        let pgid = self.child.id().to_string();
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .filter_map(move |entry| {
                let entry = entry.ok()?;
                entry.file_name().to_str()?.parse::<u32>().ok()?;
                let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
                // `pid (comm) state ppid pgrp …`
                let pgrp = stat
                    .get(stat.rfind(')')? + 1..)?
                    .split_whitespace()
                    .nth(2)?;
                (pgrp == pgid).then(|| entry.path())
            })
    }

    /// The last `n` lines of the host's stderr.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Where a host stores, read by the bench.
pub enum Store {
    Sqlite(rusqlite::Connection),
    /// A thread of its own holds the connection: the blocking PostgreSQL client
    /// cannot run on the bench's tokio threads.
    Postgres(PgReader),
}

impl Store {
    /// The first column of the first row of `sql` (one `?` parameter) as an integer.
    pub fn count(&self, sql: &str, param: &str) -> Result<i64> {
        match self {
            Store::Sqlite(db) => Ok(db.query_row(sql, [param], |r| r.get(0))?),
            Store::Postgres(reader) => reader.count(sql, param),
        }
    }

    /// `PRAGMA journal_mode` of a SQLite file; `PostgreSQL` otherwise.
    pub fn journal_mode(&self) -> Result<String> {
        match self {
            Store::Sqlite(db) => Ok(db.query_row("PRAGMA journal_mode", [], |r| r.get(0))?),
            Store::Postgres(_) => Ok("PostgreSQL".into()),
        }
    }
}

type CountRequest = (String, String, mpsc::Sender<Result<i64>>);

/// One PostgreSQL connection on a thread of its own, answering counts.
pub struct PgReader(mpsc::Sender<CountRequest>);

impl PgReader {
    fn connect(url: &str) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<CountRequest>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let url = url.to_string();
        std::thread::spawn(move || {
            use courier_store::sql::Sql as _;
            let db = match courier_store::native_pg::NativePostgres::connect(&url) {
                Ok(db) => {
                    let _ = ready_tx.send(Ok(()));
                    db
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(anyhow::anyhow!("cannot connect to {url}: {e}")));
                    return;
                }
            };
            for (sql, param, answer) in rx {
                let n = db
                    .query_i64(&sql, &[param.as_str().into()])
                    .map_err(|e| anyhow::anyhow!("{sql}: {e}"))
                    .and_then(|n| n.context("no row"));
                let _ = answer.send(n);
            }
        });
        ready_rx
            .recv()
            .context("the PostgreSQL reader thread died")??;
        Ok(Self(tx))
    }

    fn count(&self, sql: &str, param: &str) -> Result<i64> {
        let (tx, rx) = mpsc::channel();
        self.0
            .send((sql.to_string(), param.to_string(), tx))
            .context("the PostgreSQL reader thread died")?;
        rx.recv().context("the PostgreSQL reader thread died")?
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let pgid = self.child.id();
        kill_group(pgid);
        let _ = self.child.kill();
        // The group id cannot be reused before the child is reaped.
        running().retain(|(id, _)| *id != pgid);
        let _ = self.child.wait();
    }
}
