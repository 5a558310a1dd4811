//! `courier up`: everything between the command line and a serving app. Every
//! configuration error surfaces here, before the port is bound.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use tokio::net::TcpListener;

use crate::manifest::Manifest;
use crate::server::{App, Limits};
use crate::variables::AppVariables;

/// Options of `courier up`.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub manifest: PathBuf,
    pub listen: String,
    pub data: PathBuf,
    /// Compiled-code cache; default `<data>/cache`.
    pub cache_dir: Option<PathBuf>,
    pub build: bool,
    pub dev_secrets: bool,
    pub limits: Limits,
}

impl Default for UpOptions {
    fn default() -> Self {
        Self {
            manifest: PathBuf::from("spin.toml"),
            listen: "127.0.0.1:3000".into(),
            data: PathBuf::from(".courier"),
            cache_dir: None,
            build: true,
            dev_secrets: true,
            limits: Limits::default(),
        }
    }
}

/// Resolves the application variables as `courier up` would, generating development
/// secrets when allowed.
pub fn resolve_variables(
    manifest: &Manifest,
    data: &std::path::Path,
    dev_secrets: bool,
) -> Result<AppVariables> {
    let env = |name: &str| std::env::var(name).ok();
    if dev_secrets {
        let generated = crate::secrets::ensure(manifest, data, env)?;
        if !generated.is_empty() {
            tracing::warn!(
                "generated development secrets for {} in {} (set SPIN_VARIABLE_<NAME> in production)",
                generated.join(", "),
                crate::secrets::path(data).display()
            );
        }
    }
    let dev = if dev_secrets {
        crate::secrets::read(data)?
    } else {
        Default::default()
    };
    AppVariables::resolve(manifest, env, &dev)
}

/// Loads, builds and binds: the app is ready to serve on the returned listener.
pub async fn prepare(opts: &UpOptions) -> Result<(Arc<App>, TcpListener)> {
    let manifest = Manifest::load(&opts.manifest)?;
    let variables = resolve_variables(&manifest, &opts.data, opts.dev_secrets)?;
    if opts.build {
        let manifest = manifest.clone();
        tokio::task::spawn_blocking(move || crate::builder::build_all(&manifest)).await??;
    }
    let started = std::time::Instant::now();
    let data = opts.data.clone();
    let cache_dir = opts.cache_dir.clone();
    let limits = opts.limits.clone();
    let app = tokio::task::spawn_blocking(move || {
        App::load(&manifest, &variables, &data, cache_dir.as_deref(), limits)
    })
    .await??;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "components loaded"
    );
    let listener = crate::listen::bind(&opts.listen).await?;
    Ok((app, listener))
}
