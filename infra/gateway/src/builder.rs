//! Runs each component's `[component.<id>.build]` command, like `spin build`: with
//! `sh -c`, in the component's `workdir` (relative to the manifest), stopping at the
//! first failure. Identical commands in the same directory run once.
//!
//! Before them, [`ensure_wasm_target`] makes sure the Rust toolchain can build for
//! `wasm32-wasip2`: rustup installs the targets of `rust-toolchain.toml` only when it
//! installs the toolchain itself, and not at all where it does not install by itself
//! (`RUSTUP_AUTO_INSTALL=0`); without the target the first build fails after minutes
//! with "can't find crate for `core`".

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::manifest::Manifest;

/// The target of courier's components.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// If a build command compiles for [`WASM_TARGET`] and the toolchain of the manifest's
/// directory lacks it, adds it with `rustup target add`; if that fails, stops with
/// the command to run. Without rustup, cargo says what is missing.
pub fn ensure_wasm_target(manifest: &Manifest) -> Result<()> {
    let needed = manifest
        .components
        .values()
        .filter_map(|c| c.build.as_ref())
        .any(|b| b.command.contains(WASM_TARGET));
    if !needed {
        return Ok(());
    }
    let rustup = |args: &[&str]| {
        let mut cmd = Command::new("rustup");
        cmd.args(args)
            .current_dir(&manifest.dir)
            .stdin(Stdio::null());
        cmd
    };
    let Ok(listed) = rustup(&["target", "list", "--installed"]).output() else {
        return Ok(());
    };
    let installed = String::from_utf8_lossy(&listed.stdout);
    if listed.status.success() && installed.lines().any(|t| t.trim() == WASM_TARGET) {
        return Ok(());
    }
    tracing::warn!(
        "the Rust toolchain lacks the {WASM_TARGET} target the components build for: running `rustup target add {WASM_TARGET}`"
    );
    let added = rustup(&["target", "add", WASM_TARGET])
        .stdout(std::io::stderr())
        .status()
        .is_ok_and(|s| s.success());
    if !added {
        bail!(
            "the components build for {WASM_TARGET}, which this Rust toolchain lacks, and \
             `rustup target add {WASM_TARGET}` failed: run it in {} and start again",
            manifest.dir.display()
        );
    }
    Ok(())
}

pub fn build_all(manifest: &Manifest) -> Result<()> {
    ensure_wasm_target(manifest)?;
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
