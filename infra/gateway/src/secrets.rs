//! Development secrets: when a required secret variable has no value, `courier up`
//! generates one once into the data directory, so the run command works out of the
//! box. Production deployments set `SPIN_VARIABLE_<NAME>` (or Spin's providers) instead.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::manifest::Manifest;
use crate::variables::env_name;

pub const FILE_NAME: &str = "dev-secrets.json";

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// Reads the development secrets file, if there is one.
pub fn read(data_dir: &Path) -> Result<BTreeMap<String, String>> {
    let path = path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("invalid {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Makes sure every required secret variable without an environment value has a
/// development value; returns the names it generated now.
pub fn ensure(
    manifest: &Manifest,
    data_dir: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>> {
    let mut secrets = read(data_dir)?;
    let mut generated = Vec::new();
    for (name, var) in &manifest.variables {
        if var.required
            && var.secret
            && env(&env_name(name)).is_none()
            && !secrets.contains_key(name)
        {
            secrets.insert(name.clone(), hex::encode(rand::random::<[u8; 32]>()));
            generated.push(name.clone());
        }
    }
    if !generated.is_empty() {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
        let path = path(data_dir);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        file.write_all(serde_json::to_string_pretty(&secrets)?.as_bytes())?;
    }
    Ok(generated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_only_for_unset_required_secrets() {
        let manifest = Manifest::parse(
            r#"
spin_manifest_version = 2
[application]
name = "a"
[variables]
jwt_secret = { required = true, secret = true }
internal_secret = { required = true, secret = true }
region = { required = true }
"#,
            PathBuf::from("/"),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let env = |n: &str| (n == "SPIN_VARIABLE_INTERNAL_SECRET").then(|| "x".to_string());
        assert_eq!(ensure(&manifest, dir.path(), env).unwrap(), ["jwt_secret"]);
        let first = read(dir.path()).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first["jwt_secret"].len(), 64);
        assert!(ensure(&manifest, dir.path(), env).unwrap().is_empty());
        assert_eq!(read(dir.path()).unwrap(), first);
    }
}
