//! The `courier` command: `courier up` serves the app, `courier token` mints a
//! development JWT.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
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
    },
    /// Benchmark an in-process gateway on the embedded store (build with --release).
    Bench {
        /// `messaging` (sends/s, polls/s, long-poll wake) or `queue` (10,000-member
        /// fan-out, isolation, receipt merging).
        #[arg(value_parser = ["messaging", "queue"])]
        scenario: String,
        /// The Spin manifest.
        #[arg(long, default_value = "spin.toml")]
        manifest: PathBuf,
        /// Skip the components' build commands.
        #[arg(long)]
        no_build: bool,
        /// Users for the messaging scenario.
        #[arg(long, default_value_t = 2000)]
        users: usize,
        /// Concurrent connections of the closed loops.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Measured seconds of each closed loop.
        #[arg(long, default_value_t = 10)]
        duration: u64,
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
            no_dev_secrets,
            request_timeout,
            max_body_bytes,
            max_instances,
        } => {
            let opts = UpOptions {
                manifest,
                listen,
                data,
                cache_dir,
                build: !no_build,
                dev_secrets: !no_dev_secrets,
                limits: Limits {
                    request_timeout: Duration::from_secs(request_timeout),
                    max_body_bytes,
                    max_instances,
                    ..Limits::default()
                },
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
        Command::Bench {
            scenario,
            manifest,
            no_build,
            users,
            connections,
            duration,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let fixture = courier_gateway::bench::Fixture::start(manifest, !no_build).await?;
                let rows = match scenario.as_str() {
                    "messaging" => {
                        let opts = courier_gateway::bench::messaging::Options {
                            users,
                            connections,
                            duration: Duration::from_secs(duration),
                        };
                        courier_gateway::bench::messaging::run(&fixture, &opts).await?
                    }
                    _ => courier_gateway::bench::queue::run(&fixture).await?,
                };
                let title = format!(
                    "courier bench {scenario} — {} — {}",
                    courier_gateway::bench::machine(),
                    std::process::Command::new("date")
                        .output()
                        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                        .unwrap_or_default()
                );
                courier_gateway::bench::print_report(&title, &rows);
                anyhow::Ok(())
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
            let manifest = courier_gateway::manifest::Manifest::load(&manifest)?;
            let variables = resolve_variables(&manifest, &data, true)?;
            let secret = variables
                .get("jwt_secret")
                .ok_or_else(|| anyhow::anyhow!("the manifest has no `jwt_secret` variable"))?;
            let token = courier_gateway::token::mint(
                secret,
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
