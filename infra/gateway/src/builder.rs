//! Runs each component's `[component.<id>.build]` command, like `spin build`: with
//! `sh -c`, in the component's `workdir` (relative to the manifest), stopping at the
//! first failure. Identical commands in the same directory run once.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::manifest::Manifest;

pub fn build_all(manifest: &Manifest) -> Result<()> {
    let mut done = BTreeSet::new();
    for (id, component) in &manifest.components {
        let Some(build) = &component.build else {
            continue;
        };
        let workdir = manifest.dir.join(build.workdir.as_deref().unwrap_or("."));
        if !done.insert((build.command.clone(), workdir.clone())) {
            continue;
        }
        tracing::info!(component = id, command = build.command, "building");
        let status = Command::new("sh")
            .arg("-c")
            .arg(&build.command)
            .current_dir(&workdir)
            .stdin(Stdio::null())
            // Keep stdout for the gateway's own messages.
            .stdout(std::io::stderr())
            .status()
            .with_context(|| {
                format!(
                    "component `{id}`: cannot run build command in {}",
                    workdir.display()
                )
            })?;
        if !status.success() {
            bail!(
                "component `{id}`: build command `{}` failed ({status})",
                build.command
            );
        }
    }
    Ok(())
}
