//! The `courier` command: `courier up` serves the app, `courier token` mints a
//! development JWT.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use courier_gateway::faults::FaultConfig;
use courier_gateway::server::Limits;
use courier_gateway::up::{UpOptions, prepare, resolve_variables};

#[derive(Parser)]
#[command(
    name = "courier",
    version,
    about = "courier's local gateway: serves a Spin app on wasmtime"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the components, load them and serve the manifest's routes.
    Up {
        /// The Spin manifest.
        #[arg(long, default_value = "spin.toml")]
        manifest: PathBuf,
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: String,
        /// Data directory: SQLite files, key-value store, compiled-code cache, dev secrets.
        #[arg(long, default_value = ".courier")]
        data: PathBuf,
        /// Compiled-code cache directory [default: <data>/cache].
        #[arg(long, env = "COURIER_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
        /// Skip the components' build commands.
        #[arg(long)]
        no_build: bool,
        /// Spin's runtime-config file, read as `spin up` reads it: the gateway
        /// honours `[[client_tls]]` (the roots and client certificate of outbound
        /// HTTPS per component and host) and refuses the keys of Spin-only services.
        #[arg(long)]
        runtime_config_file: Option<PathBuf>,
        /// Never generate development secrets: a required variable must be set.
        #[arg(long)]
        no_dev_secrets: bool,
        /// Wall-clock limit of one request, in seconds.
        #[arg(long, default_value_t = 30)]
        request_timeout: u64,
        /// Largest request body accepted, in bytes.
        #[arg(long, default_value_t = 1 << 20)]
        max_body_bytes: usize,
        /// Component instances that may run at once.
        #[arg(long, default_value_t = 1000)]
        max_instances: u32,
        /// Long-polls the gateway may hold parked at once, with no instance each
        /// (past it, a poll that would wait gets 503 and `Retry-After`; 0 turns
        /// parking off) [default: 20000, less if the open-file limit is lower].
        #[arg(long)]
        max_parked: Option<usize>,
        /// How long a client has to send a request head; a keep-alive connection
        /// idle this long is closed too.
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        header_timeout: Duration,
        /// Connections one client address may hold open at once (past it, a new
        /// one gets 503 and is closed; 0: no cap). Raise it behind a reverse proxy.
        #[arg(long, default_value_t = courier_gateway::listen::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS)]
        max_connections_per_address: usize,
        /// Pooled database connections unused this long are closed (a few per
        /// database stay open).
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        pool_idle: Duration,
        /// Fault injection for proof tests [default: off], e.g.
        /// `sql=0.05,latency=0-20ms,outbound=0.3,seed=42` (see README, "Fault injection").
        #[arg(long, env = "COURIER_FAULTS", value_parser = parse_faults)]
        faults: Option<FaultConfig>,
    },
    /// Drain the app's queue over HTTP (`POST <url>/internal/drain`) until nothing is
    /// due; with `--every`, forever. For Spin, which has no drainer of its own: run it
    /// beside `spin up`, as a sidecar, a systemd timer or a CronJob.
    Drain {
        /// The app's base URL, e.g. `http://127.0.0.1:3000`.
        #[arg(long)]
        url: String,
        /// Keep draining, this long apart while the queue is idle (`1s`, `250ms`)
        /// [default: drain until nothing is due, then exit].
        #[arg(long, value_parser = humantime::parse_duration)]
        every: Option<Duration>,
        /// The app's `internal_secret` [default: the development secret of `--data`].
        #[arg(long, env = "SPIN_VARIABLE_INTERNAL_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// Limit of one drain request, in seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// The Spin manifest (for development secrets).
        #[arg(long, default_value = "spin.toml")]
        manifest: PathBuf,
        /// Data directory (for development secrets).
        #[arg(long, default_value = ".courier")]
        data: PathBuf,
    },
    /// Print a development JWT signed with the app's `jwt_secret`.
    Token {
        /// The user id (`sub` claim).
        uid: String,
        /// Add `"role": "admin"` (directory routes).
        #[arg(long)]
        admin: bool,
        /// Device id (`dev` claim); API default is "default".
        #[arg(long)]
        device: Option<String>,
        /// Lifetime, in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// The Spin manifest.
        #[arg(long, default_value = "spin.toml")]
        manifest: PathBuf,
        /// Data directory (for development secrets).
        #[arg(long, default_value = ".courier")]
        data: PathBuf,
    },
}

/// `--faults` as clap wants it: the whole error chain in one message.
fn parse_faults(text: &str) -> Result<FaultConfig, String> {
    FaultConfig::parse(text).map_err(|e| format!("{e:#}"))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COURIER_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,wasmtime=warn,cranelift=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("courier: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Up {
            manifest,
            listen,
            data,
            cache_dir,
            no_build,
            runtime_config_file,
            no_dev_secrets,
            request_timeout,
            max_body_bytes,
            max_instances,
            max_parked,
            header_timeout,
            max_connections_per_address,
            pool_idle,
            faults,
        } => {
            let open_files = courier_gateway::listen::raise_open_file_limit();
            let opts = UpOptions {
                manifest,
                listen,
                data,
                cache_dir,
                build: !no_build,
                runtime_config: runtime_config_file,
                dev_secrets: !no_dev_secrets,
                limits: Limits {
                    request_timeout: Duration::from_secs(request_timeout),
                    max_body_bytes,
                    max_instances,
                    max_parked: max_parked
                        .unwrap_or_else(|| courier_gateway::listen::default_max_parked(open_files)),
                    header_timeout,
                    max_connections_per_address,
                    pool_idle,
                    ..Limits::default()
                },
                variables: Default::default(),
                faults,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let (app, listener) = prepare(&opts).await?;
                let addr = listener.local_addr()?;
                println!("courier: listening on http://{addr}");
                courier_gateway::listen::serve(
                    app,
                    listener,
                    courier_gateway::listen::shutdown_signal(),
                )
                .await
            })
        }
        Command::Drain {
            url,
            every,
            secret,
            timeout,
            manifest,
            data,
        } => {
            let secret = match secret {
                Some(secret) => secret,
                None => dev_variable(&manifest, &data, "internal_secret")?,
            };
            courier_gateway::drain::run(&courier_gateway::drain::DrainOptions {
                url,
                secret,
                every,
                timeout: Duration::from_secs(timeout),
            })
        }
        Command::Token {
            uid,
            admin,
            device,
            ttl,
            manifest,
            data,
        } => {
            let secret = dev_variable(&manifest, &data, "jwt_secret")?;
            let token = courier_gateway::token::mint(
                &secret,
                &uid,
                device.as_deref(),
                admin,
                Duration::from_secs(ttl),
            )?;
            println!("{token}");
            Ok(())
        }
    }
}

/// A variable of the app as `courier up` would resolve it on `data` (its environment,
/// else the development secrets there).
fn dev_variable(manifest: &Path, data: &Path, name: &str) -> Result<String> {
    let manifest = courier_gateway::manifest::Manifest::load(manifest)?;
    let variables = resolve_variables(&manifest, data, true, &Default::default())?;
    variables
        .get(name)
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("the manifest has no `{name}` variable"))
}
