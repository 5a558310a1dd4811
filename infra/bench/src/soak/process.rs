//! The gateway under soak: the real `courier` binary as a child process (`courier
//! up` on `spin.toml`, port 0, a fresh data directory), so that its memory is its
//! own, and the figures `/proc` keeps about it and about the machine.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::machine::process_cpu;

/// How long `courier up` may take to build and load the components.
const START_TIMEOUT: Duration = Duration::from_secs(900);

/// Builds the `courier` binary in the workspace's target directory with the profile
/// of this benchmark (a no-op when it is fresh) and returns its path.
pub fn build_courier(workspace: &Path) -> Result<PathBuf> {
    let release = !cfg!(debug_assertions);
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or("cargo".into()));
    cargo.args(["build", "-p", "courier-gateway", "--bin", "courier"]);
    if release {
        cargo.arg("--release");
    }
    let status = cargo
        .current_dir(workspace)
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .context("cannot run cargo to build courier")?;
    if !status.success() {
        bail!("building courier failed ({status})");
    }
    let profile = if release { "release" } else { "debug" };
    Ok(workspace.join("target").join(profile).join("courier"))
}

/// A running `courier up`; killed when dropped.
pub struct Courier {
    child: Child,
    pub addr: SocketAddr,
    pub data: tempfile::TempDir,
    log: PathBuf,
}

impl Courier {
    /// Starts `binary up` on the workspace's `spin.toml` (building the components
    /// unless `!build`; compiled code cached in `.courier/cache`) and waits until it
    /// listens. Its log (stderr, the default `info` level) goes to a file.
    /// `variables` are application variable values by name (`SPIN_VARIABLE_*`).
    pub fn start(
        binary: &Path,
        workspace: &Path,
        build: bool,
        variables: &BTreeMap<String, String>,
    ) -> Result<Self> {
        let data = tempfile::Builder::new().prefix("courier-soak-").tempdir()?;
        let log = data.path().join("courier.log");
        let mut command = Command::new(binary);
        command
            .arg("up")
            .arg("--manifest")
            .arg(workspace.join("spin.toml"))
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(data.path())
            .arg("--cache-dir")
            .arg(workspace.join(".courier/cache"));
        if !build {
            command.arg("--no-build");
        }
        for (name, value) in variables {
            command.env(courier_gateway::variables::env_name(name), value);
        }
        let mut child = command
            .current_dir(workspace)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = mpsc::channel();
        // Reads stdout to its end, so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("courier: listening on http://") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let started = Instant::now();
        let addr = loop {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(addr) => break addr.parse()?,
                Err(mpsc::RecvTimeoutError::Timeout) if started.elapsed() < START_TIMEOUT => {
                    if let Some(status) = child.try_wait()? {
                        bail!("courier exited ({status}):\n{}", tail(&log, 20));
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    bail!("courier did not start:\n{}", tail(&log, 20));
                }
            }
        };
        Ok(Self {
            child,
            addr,
            data,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A development secret the gateway generated in its data directory.
    pub fn secret(&self, name: &str) -> Result<String> {
        courier_gateway::secrets::read(self.data.path())?
            .remove(name)
            .with_context(|| format!("no development {name}"))
    }

    /// `Some(status)` once the child has exited.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// The log's `WARN` lines, its number of `ERROR` lines, and its last `n` lines.
    pub fn log_summary(&self, n: usize) -> (Vec<String>, usize, String) {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let warnings = text
            .lines()
            .filter(|l| l.contains(" WARN "))
            .map(str::to_string)
            .collect();
        let errors = text.lines().filter(|l| l.contains(" ERROR ")).count();
        (warnings, errors, tail(&self.log, n))
    }

    /// Stops the gateway as `Ctrl-C` would (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(mut self) -> Result<ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill()?;
        Ok(self.child.wait()?)
    }
}

impl Drop for Courier {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One look at the gateway and the machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Seconds since the load started.
    pub at: f64,
    /// The gateway's resident set (`VmRSS`) and its peak (`VmHWM`), KiB.
    pub rss_kib: u64,
    pub hwm_kib: u64,
    /// The part of `VmRSS` that is anonymous memory (heap, stacks, instance memory),
    /// KiB; the rest maps files (the binary, SQLite's shared-memory index) or shmem.
    pub anon_kib: u64,
    /// The most requests of the load open at once since the previous sample (filled
    /// in by the load).
    pub peak_in_flight: u64,
    /// CPU time (user + system) of the gateway and of this process so far.
    pub gateway_cpu: Duration,
    pub own_cpu: Duration,
    /// The machine's busy and total CPU ticks so far (`/proc/stat`).
    pub machine_busy: u64,
    pub machine_total: u64,
}

impl Sample {
    pub fn take(pid: u32, at: f64) -> Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .context("the gateway is gone")?;
        let kib = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
                .unwrap_or(0)
        };
        let (machine_busy, machine_total) = machine_ticks();
        Ok(Self {
            at,
            rss_kib: kib("VmRSS:"),
            hwm_kib: kib("VmHWM:"),
            anon_kib: kib("RssAnon:"),
            peak_in_flight: 0,
            gateway_cpu: process_cpu(&format!("/proc/{pid}/stat")),
            own_cpu: process_cpu("/proc/self/stat"),
            machine_busy,
            machine_total,
        })
    }
}

/// Busy (everything but idle and iowait) and total ticks of all CPUs.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|t| t.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// The least-squares slope of `ys` over `xs`; `None` for fewer than two distinct xs.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    (points.len() >= 2 && sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_fits_a_line_and_needs_two_points() {
        let line: Vec<(f64, f64)> = (0..5).map(|x| (x as f64, 3.0 + 2.0 * x as f64)).collect();
        assert!((slope(&line).expect("slope") - 2.0).abs() < 1e-9);
        assert_eq!(slope(&line[..1]), None);
        assert_eq!(slope(&[]), None);
    }

    #[test]
    fn this_process_has_a_resident_set_and_cpu_time() {
        let sample = Sample::take(std::process::id(), 0.0).expect("sample");
        assert!(sample.rss_kib > 0 && sample.hwm_kib >= sample.rss_kib);
        assert!(sample.anon_kib > 0 && sample.anon_kib <= sample.rss_kib);
        assert!(sample.machine_total >= sample.machine_busy && sample.machine_total > 0);
    }
}
