//! The WASM side: builds the `health` component, starts the gateway in-process with
//! the library `courier up` uses, and measures the instantiation cost alone.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use courier_gateway::server::App;
use courier_gateway::up::UpOptions;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Builds the `health` component as its manifest build command does, in the
/// workspace's own target directory (where `spin.toml` looks for it). Cargo makes
/// this a no-op when the component is fresh.
pub fn build_health(workspace: &Path) -> Result<()> {
    let status = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
        .args([
            "build",
            "--target",
            "wasm32-wasip2",
            "--release",
            "-p",
            "health",
        ])
        .current_dir(workspace)
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .context("cannot run cargo to build the health component")?;
    if !status.success() {
        bail!("building the health component failed ({status})");
    }
    Ok(())
}

/// A gateway serving on a local port.
pub struct Gateway {
    pub app: Arc<App>,
    pub addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    serving: JoinHandle<Result<()>>,
}

impl Gateway {
    /// Loads the manifest's components (no build: [`build_health`] did it) with the
    /// defaults of `courier up` (limits, code cache in the data directory) and
    /// development secrets, and serves on `127.0.0.1:0`. Must run
    /// on the runtime that is to serve.
    pub async fn start(manifest: &Path, data: &Path) -> Result<Self> {
        let opts = UpOptions {
            manifest: manifest.to_path_buf(),
            listen: "127.0.0.1:0".into(),
            data: data.to_path_buf(),
            build: false,
            dev_secrets: true,
            ..UpOptions::default()
        };
        let (app, listener) = courier_gateway::up::prepare(&opts).await?;
        let addr = listener.local_addr()?;
        let (shutdown, stop) = oneshot::channel::<()>();
        let serving = tokio::spawn(courier_gateway::listen::serve(
            Arc::clone(&app),
            listener,
            async move {
                let _ = stop.await;
            },
        ));
        Ok(Self {
            app,
            addr,
            shutdown,
            serving,
        })
    }

    /// Stops accepting and waits for the listener to drain.
    pub async fn stop(self) -> Result<()> {
        let _ = self.shutdown.send(());
        self.serving.await.context("gateway task panicked")?
    }
}

/// Instantiates `component` `count` times in a row after `warmup` unmeasured ones
/// and returns the durations, sorted, in nanoseconds.
pub async fn instantiation(
    app: Arc<App>,
    component: &str,
    warmup: usize,
    count: usize,
) -> Result<Vec<u64>> {
    for _ in 0..warmup {
        app.instantiate_only(component).await?;
    }
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let took: Duration = app.instantiate_only(component).await?;
        samples.push(took.as_nanos().try_into().unwrap_or(u64::MAX));
    }
    samples.sort_unstable();
    Ok(samples)
}
