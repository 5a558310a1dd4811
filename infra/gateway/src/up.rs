//! `courier up`: everything between the command line and a serving app. Every
//! configuration error surfaces here, before the port is bound.

use std::collections::BTreeMap;
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
    /// `--runtime-config-file`: Spin's runtime config (see `runtime_config.rs`).
    pub runtime_config: Option<PathBuf>,
    pub dev_secrets: bool,
    pub limits: Limits,
    /// Application variable values by name, ahead of `SPIN_VARIABLE_<NAME>` (as
    /// `spin up --variable name=value`); lets one process run gateways with
    /// different stores or shared secrets.
    pub variables: BTreeMap<String, String>,
    /// Fault injection (`--faults`, see `faults.rs`); `None`, the default, is off.
    pub faults: Option<crate::faults::FaultConfig>,
}

impl Default for UpOptions {
    fn default() -> Self {
        Self {
            manifest: PathBuf::from("spin.toml"),
            listen: "127.0.0.1:3000".into(),
            data: PathBuf::from(".courier"),
            cache_dir: None,
            build: true,
            runtime_config: None,
            dev_secrets: true,
            limits: Limits::default(),
            variables: BTreeMap::new(),
            faults: None,
        }
    }
}

/// Resolves the application variables as `courier up` would, generating development
/// secrets when allowed; `overrides` (by variable name) come before the environment.
pub fn resolve_variables(
    manifest: &Manifest,
    data: &std::path::Path,
    dev_secrets: bool,
    overrides: &BTreeMap<String, String>,
) -> Result<AppVariables> {
    if let Some(name) = overrides
        .keys()
        .find(|name| !manifest.variables.contains_key(*name))
    {
        anyhow::bail!("variable `{name}` is not declared in the manifest's [variables]");
    }
    let by_env_name: BTreeMap<String, &String> = overrides
        .iter()
        .map(|(name, value)| (crate::variables::env_name(name), value))
        .collect();
    let env = |name: &str| {
        by_env_name
            .get(name)
            .map(|value| value.to_string())
            .or_else(|| std::env::var(name).ok())
    };
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
    let runtime = match &opts.runtime_config {
        Some(path) => crate::runtime_config::RuntimeConfig::load(path)?,
        None => Default::default(),
    };
    let variables = resolve_variables(&manifest, &opts.data, opts.dev_secrets, &opts.variables)?;
    if opts.build {
        let manifest = manifest.clone();
        tokio::task::spawn_blocking(move || crate::builder::build_all(&manifest)).await??;
    }
    let started = std::time::Instant::now();
    let data = opts.data.clone();
    let cache_dir = opts.cache_dir.clone();
    let limits = opts.limits.clone();
    let faults = opts.faults.clone();
    if let Some(faults) = &faults {
        tracing::warn!(%faults, "fault injection is ON: SQL calls and outbound HTTP fail on purpose (never use this in production)");
    }
    let app = tokio::task::spawn_blocking(move || {
        App::load(
            &manifest,
            &variables,
            &data,
            cache_dir.as_deref(),
            limits,
            faults,
            &runtime,
        )
    })
    .await??;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "components loaded"
    );
    let listener = crate::listen::bind(&opts.listen).await?;
    Ok((app, listener))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::parse(
            r#"
spin_manifest_version = 2
[application]
name = "app"
[variables]
jwt_secret = { required = true, secret = true }
internal_secret = { required = true, secret = true }
database_url = { default = "" }
[component.c]
source = "c.wasm"
"#,
            PathBuf::from("/"),
        )
        .expect("manifest")
    }

    #[test]
    fn overrides_come_first_and_are_not_generated() {
        let data = tempfile::tempdir().expect("tempdir");
        let overrides = BTreeMap::from([
            ("jwt_secret".to_string(), "given".to_string()),
            ("database_url".to_string(), "postgres://h/db".to_string()),
        ]);
        let vars = resolve_variables(&manifest(), data.path(), true, &overrides).expect("ok");
        assert_eq!(vars.get("jwt_secret"), Some("given"));
        assert_eq!(vars.get("database_url"), Some("postgres://h/db"));
        let generated = crate::secrets::read(data.path()).expect("secrets");
        assert!(generated.contains_key("internal_secret"));
        assert!(!generated.contains_key("jwt_secret"));
    }

    #[test]
    fn an_override_of_an_undeclared_variable_is_refused() {
        let data = tempfile::tempdir().expect("tempdir");
        let overrides = BTreeMap::from([("databse_url".to_string(), "x".to_string())]);
        let err = resolve_variables(&manifest(), data.path(), true, &overrides)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("databse_url"), "{err}");
    }
}
