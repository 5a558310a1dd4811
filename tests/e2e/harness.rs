//! The end-to-end harness: builds the components once per test run, starts the real
//! `courier` binary on port 0 with its own data directory, and talks HTTP to it.
//!
//! The wasm build uses its own target directory (`target/e2e-wasm`) so it never waits
//! on the build lock of the `cargo test` that runs us; the manifests are rewritten to
//! point at that directory and the gateway runs with `--no-build`. Compiled components
//! are cached in `target/e2e-cache`, shared by every gateway the tests start.
//!
//! With `COURIER_TEST_DATABASE_URL` set (a PostgreSQL server, as
//! `tests/postgres/start.sh` prints), every gateway stores into a PostgreSQL database
//! of its own (created on start, named in its data directory so a restart on that
//! directory finds it, dropped with the gateway) instead of its SQLite file: the
//! whole suite then runs on PostgreSQL, tests still independent and parallel.
//!
//! With `COURIER_TEST_HOST=spin`, every app is served by real Spin instead (`spin up`
//! on the same prepared manifest and wasm, its state directory as the data directory,
//! so `sqlite_db.db` is where it is for the gateway), with a `courier drain` loop
//! beside it standing in for the gateway's drainer. `spin` comes from `PATH`, else
//! `../shared/tools/spin/spin` beside the repository. Tests about the gateway itself
//! (its flags, logs, metrics, fault injection) call [`gateway_only`] and return early
//! there. Both dimensions combine: Spin on PostgreSQL is one more run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use courier_store::native::NativeSqlite;
use courier_store::native_pg::NativePostgres;
use courier_store::sql::Sql;
use serde_json::Value;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn wasm_dir() -> PathBuf {
    root().join("target/e2e-wasm/wasm32-wasip2/release")
}

/// Builds every wasm crate of the workspace once per test process.
fn build_components() {
    static BUILT: OnceLock<bool> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        Command::new(env!("CARGO"))
            .current_dir(root())
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--workspace",
            ])
            .args(NATIVE_ONLY.iter().flat_map(|p| ["--exclude", p]))
            .arg("--target-dir")
            .arg(root().join("target/e2e-wasm"))
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .is_ok_and(|status| status.success())
    });
    assert!(
        *built,
        "building the components failed (see the cargo output above)"
    );
}

/// Workspace packages that are not components and do not build for wasm32-wasip2.
const NATIVE_ONLY: &[&str] = &["courier-gateway", "courier-bench", "courier-fuzz"];

/// Writes a copy of `manifest` (relative to the root) whose component sources point
/// at the e2e wasm build, into `dir`.
pub fn prepared_manifest(manifest: &str, dir: &Path) -> PathBuf {
    build_components();
    let text = std::fs::read_to_string(root().join(manifest)).expect("read manifest");
    let wasm = format!("{}/", wasm_dir().display());
    let text = text
        .replace(
            "\"../../target/wasm32-wasip2/release/",
            &format!("\"{wasm}"),
        )
        .replace("\"target/wasm32-wasip2/release/", &format!("\"{wasm}"));
    let path = dir.join("spin.toml");
    std::fs::write(&path, text).expect("write manifest");
    path
}

/// The host that serves the apps of this test run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// `courier up`, the local gateway (the default).
    Gateway,
    /// Real Spin: `spin up` (`COURIER_TEST_HOST=spin`).
    Spin,
}

/// The host of this run, from `COURIER_TEST_HOST` (`courier`, the default, or `spin`).
pub fn host() -> Host {
    match std::env::var("COURIER_TEST_HOST").as_deref() {
        Err(_) | Ok("") | Ok("courier") | Ok("gateway") => Host::Gateway,
        Ok("spin") => Host::Spin,
        Ok(other) => panic!("COURIER_TEST_HOST={other}: expected `courier` or `spin`"),
    }
}

/// For a test about the gateway itself (its flags, logs, metrics, fault injection,
/// its drainer): under Spin it says so and returns `true`, and the test returns.
pub fn gateway_only(what: &str) -> bool {
    let skip = host() == Host::Spin;
    if skip {
        eprintln!("gateway-only ({what}): not run on Spin");
    }
    skip
}

/// The Spin CLI: `spin` on `PATH`, else `../shared/tools/spin/spin` beside the
/// repository.
pub fn spin_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("spin"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        let beside = root().join("../shared/tools/spin/spin");
        beside.is_file().then_some(beside)
    })
}

/// Flags of `courier up` that Spin's `spin up` takes with the same meaning.
const SHARED_FLAGS: &[&str] = &["--runtime-config-file"];

/// A running app host (`courier up`, or `spin up` and its drain loop); killed when
/// dropped.
pub struct Gateway {
    pub base: String,
    pub host: Host,
    pub child: Child,
    /// Under Spin: the `courier drain` loop beside it.
    drain: Option<Child>,
    pub data: tempfile::TempDir,
    /// The PostgreSQL database this gateway stores into, if the tests run on one;
    /// dropped with the gateway if `owns_database` (unless its data directory was
    /// taken).
    postgres: Option<PgDatabase>,
    owns_database: bool,
    stderr: mpsc::Receiver<String>,
    seen: std::cell::RefCell<Vec<String>>,
}

/// A gateway's own database on the tests' PostgreSQL server.
#[derive(Debug, Clone)]
pub struct PgDatabase {
    /// The server URL of `COURIER_TEST_DATABASE_URL` (its database is the admin one).
    server: String,
    pub name: String,
    /// The URL the gateway uses (`SPIN_VARIABLE_DATABASE_URL`).
    pub url: String,
    /// `host:port` of the server (`SPIN_VARIABLE_DATABASE_HOST`).
    pub host: String,
}

impl PgDatabase {
    /// The database named in `data` (created before), or a new one named there.
    fn for_data_dir(server: &str, data: &Path) -> Self {
        let marker = data.join("e2e-postgres-database");
        let name = match std::fs::read_to_string(&marker) {
            Ok(name) => name.trim().to_string(),
            Err(_) => {
                let name = courier_store::testdb::unique_name("e2e_");
                NativePostgres::connect(server)
                    .and_then(|admin| admin.execute(&format!("CREATE DATABASE {name}"), &[]))
                    .unwrap_or_else(|e| panic!("creating database {name} on {server}: {e}"));
                std::fs::write(&marker, &name).expect("write the database marker");
                name
            }
        };
        let (url, host) = courier_store::testdb::on_database(server, &name)
            .unwrap_or_else(|e| panic!("COURIER_TEST_DATABASE_URL: {e}"));
        Self {
            server: server.to_string(),
            name,
            url,
            host,
        }
    }

    fn drop_database(&self) {
        if let Ok(admin) = NativePostgres::connect(&self.server) {
            let _ = admin.execute(
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
                &[],
            );
        }
    }
}

/// The store of a gateway's data directory, opened beside it (the gateway may be
/// stopped): its SQLite file, or the PostgreSQL database the harness named there.
pub fn store_at(data: &Path) -> Box<dyn Sql> {
    match courier_store::testdb::postgres_url() {
        Some(server) => {
            let pg = PgDatabase::for_data_dir(&server, data);
            Box::new(NativePostgres::connect(&pg.url).expect("connect to the gateway's database"))
        }
        None => Box::new(
            NativeSqlite::open(&data.join("sqlite_db.db")).expect("open the gateway's database"),
        ),
    }
}

impl Gateway {
    /// Starts `courier up` on `manifest` (relative to the root) with extra `env`.
    pub fn start(manifest: &str, env: &[(&str, &str)]) -> Self {
        Self::start_with(manifest, env, &[])
    }

    pub fn start_with(manifest: &str, env: &[(&str, &str)], args: &[&str]) -> Self {
        Self::start_in(manifest, tempfile::tempdir().expect("temp dir"), env, args)
    }

    /// Starts a gateway on an existing data directory (a restart after a crash).
    pub fn start_in(
        manifest: &str,
        data: tempfile::TempDir,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Self {
        let postgres = courier_store::testdb::postgres_url()
            .map(|server| PgDatabase::for_data_dir(&server, data.path()));
        Self::launch(manifest, data, postgres, true, env, args)
    }

    /// Starts a second gateway on the PostgreSQL database of `first` (a replica:
    /// two processes, one store). Needs `COURIER_TEST_DATABASE_URL`.
    pub fn start_replica(manifest: &str, first: &Gateway, env: &[(&str, &str)]) -> Self {
        let postgres = first.postgres.clone();
        assert!(postgres.is_some(), "replicas share a PostgreSQL database");
        let data = tempfile::tempdir().expect("temp dir");
        Self::launch(manifest, data, postgres, false, env, &[])
    }

    fn launch(
        manifest: &str,
        data: tempfile::TempDir,
        postgres: Option<PgDatabase>,
        owns_database: bool,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Self {
        let manifest = prepared_manifest(manifest, data.path());
        let mut env: Vec<(&str, &str)> = env.to_vec();
        if let Some(pg) = &postgres {
            env.push(("SPIN_VARIABLE_DATABASE_URL", &pg.url));
            env.push(("SPIN_VARIABLE_DATABASE_HOST", &pg.host));
        }
        let host = host();
        let mut child = match host {
            Host::Gateway => courier_command(&manifest, data.path(), &env, args),
            Host::Spin => spin_command(&manifest, data.path(), &env, args),
        }
        .spawn()
        .expect("start the app host");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if err_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // `courier: listening on http://…`; Spin: `Serving http://…`.
                let addr = line
                    .strip_prefix("courier: listening on ")
                    .or_else(|| line.trim_start().strip_prefix("Serving "));
                if let Some(addr) = addr {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(180)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                let log: Vec<String> = err_rx.try_iter().collect();
                panic!("{host:?} did not start:\n{}", log.join("\n"));
            }
        };
        let drain = (host == Host::Spin).then(|| drain_loop(&base, &env));
        Self {
            base,
            host,
            child,
            drain,
            data,
            postgres,
            owns_database,
            stderr: err_rx,
            seen: Default::default(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Takes the data directory out (to restart on it); the gateway keeps a fresh one.
    /// Its PostgreSQL database, if any, goes with it (a gateway started on the
    /// directory uses and later drops it).
    pub fn take_data(&mut self) -> tempfile::TempDir {
        self.postgres = None;
        std::mem::replace(&mut self.data, tempfile::tempdir().expect("temp dir"))
    }

    /// The gateway's store, opened beside it: its SQLite file, or its PostgreSQL
    /// database. Tests read it with portable SQL.
    pub fn db(&self) -> Box<dyn Sql> {
        match &self.postgres {
            Some(pg) => Box::new(
                NativePostgres::connect(&pg.url).expect("connect to the gateway's database"),
            ),
            None => Box::new(
                NativeSqlite::open(&self.data.path().join("sqlite_db.db"))
                    .expect("open the gateway's database"),
            ),
        }
    }

    /// Every row of every table of the gateway's store, each table's rows sorted.
    pub fn rows(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        let db = self.db();
        let list = match db.dialect() {
            courier_store::Dialect::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            }
            courier_store::Dialect::Postgres => {
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = current_schema() ORDER BY table_name"
            }
        };
        let names: Vec<String> = db
            .query(list, &[])
            .expect("list tables")
            .into_iter()
            .filter_map(|r| r.into_iter().next().and_then(|v| v.into_string()))
            .collect();
        names
            .into_iter()
            .map(|name| {
                let mut rows: Vec<String> = db
                    .query(&format!("SELECT * FROM \"{name}\""), &[])
                    .expect("select")
                    .into_iter()
                    .map(|values| format!("{values:?}"))
                    .collect();
                rows.sort();
                (name, rows)
            })
            .collect()
    }

    /// The gateway's log lines so far.
    pub fn log(&self) -> Vec<String> {
        let mut seen = self.seen.borrow_mut();
        seen.extend(self.stderr.try_iter());
        seen.clone()
    }

    /// Waits up to 5 s for a log line containing `text`.
    pub fn wait_for_log(&self, text: &str) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if self.log().iter().any(|l| l.contains(text)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Gateway {
    /// SIGKILLs the host and waits for it: under Spin its whole process group (`spin
    /// up` runs the app in a child process of its own, `spin trigger http`), and the
    /// drain loop with it.
    pub fn sigkill(&mut self) {
        if let Some(mut drain) = self.drain.take() {
            let _ = drain.kill();
            let _ = drain.wait();
        }
        if self.host == Host::Spin {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.sigkill();
        if let Some(pg) = self.postgres.take()
            && self.owns_database
        {
            pg.drop_database();
        }
    }
}

/// The `courier up` command for a prepared manifest, without starting it.
pub fn courier_command(
    manifest: &Path,
    data: &Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_courier"));
    if !args.contains(&"--listen") {
        cmd.args(["up", "--listen", "127.0.0.1:0"]);
    } else {
        cmd.arg("up");
    }
    cmd.arg("--manifest")
        .arg(manifest)
        .arg("--data")
        .arg(data)
        .arg("--no-build")
        .args(args)
        .env("COURIER_CACHE_DIR", root().join("target/e2e-cache"))
        .env("COURIER_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// `spin up` on a prepared manifest, its state in `data`, without starting it. Only
/// the flags both hosts share may be passed; a test that needs another is about the
/// gateway and must say so with [`gateway_only`].
fn spin_command(manifest: &Path, data: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let spin = spin_binary()
        .expect("COURIER_TEST_HOST=spin, but no `spin` on PATH nor ../shared/tools/spin/spin");
    let mut cmd = Command::new(spin);
    cmd.arg("up")
        .arg("--from")
        .arg(manifest)
        .args(["--listen", "127.0.0.1:0"])
        .arg("--state-dir")
        .arg(data);
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        assert!(
            SHARED_FLAGS.contains(flag),
            "`{flag}` is a flag of `courier up` only: the test is gateway-only"
        );
        cmd.arg(flag);
        if let Some(value) = rest.next() {
            cmd.arg(value);
        }
    }
    // A process group of its own, so that `sigkill` reaches `spin trigger http` too.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The drain loop that stands in for the gateway's drainer beside Spin: `courier
/// drain` against the app, with the app's internal secret, every 50 ms.
fn drain_loop(base: &str, env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_courier"));
    cmd.args(["drain", "--url", base, "--every", "50ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        if *k == "SPIN_VARIABLE_INTERNAL_SECRET" {
            cmd.env(k, v);
        }
    }
    cmd.spawn().expect("start `courier drain`")
}

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The API error code of an error reply.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .build()
    })
}

/// Sends a request; any status is a reply, only transport errors panic.
pub fn call(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
    let mut req = agent().request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(bytes) => req.send_bytes(bytes),
        None => req.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = response.status();
    let headers = response
        .headers_names()
        .into_iter()
        .filter_map(|name| {
            response
                .header(&name)
                .map(|v| (name.clone(), v.to_string()))
        })
        .collect();
    let body = response.into_string().unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

pub fn get(url: &str) -> Reply {
    call("GET", url, &[], None)
}
