//! What the numbers were measured on, and where the CPU time went: per-thread CPU
//! time from `/proc/self/task`, grouped by thread name (each runtime of the bench
//! names its threads, blocking pool included).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};

/// Thread names of the bench's runtimes; a `/proc` thread name holds 15 bytes.
pub const LOAD_THREADS: &str = "bench-load";
pub const NATIVE_THREADS: &str = "bench-native";
pub const GATEWAY_THREADS: &str = "bench-gateway";

/// `/proc` reports CPU time in USER_HZ ticks, which Linux fixes at 100 a second.
const TICK: Duration = Duration::from_millis(10);

/// Facts about the machine, for the report.
#[derive(Debug)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory: String,
    pub kernel: String,
    pub date: String,
}

impl Machine {
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = field(&meminfo, "MemTotal")
            .and_then(|kb| kb.trim_end_matches(" kB").parse::<u64>().ok())
            .map(|kb| format!("{:.1} GiB", kb as f64 / (1024.0 * 1024.0)))
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let date = std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            memory,
            kernel,
            date,
        }
    }
}

/// The value of the first `name : value` line of a `/proc` file.
fn field(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim().to_string())
    })
}

/// CPU time (user + system) used so far by this process's live threads, by thread name.
pub fn cpu_by_thread() -> Result<HashMap<String, Duration>> {
    let mut out: HashMap<String, Duration> = HashMap::new();
    for entry in std::fs::read_dir("/proc/self/task").context("cannot list /proc/self/task")? {
        let path = entry?.path().join("stat");
        // A thread may have exited since the listing.
        let Ok(stat) = std::fs::read_to_string(&path) else {
            continue;
        };
        if let Some((name, cpu)) = parse_stat(&stat) {
            *out.entry(name).or_default() += cpu;
        }
    }
    Ok(out)
}

/// User + system CPU time of the process or thread whose `stat` file is `path` (zero
/// if it is gone).
pub fn process_cpu(path: &str) -> Duration {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|stat| parse_stat(&stat))
        .map_or(Duration::ZERO, |(_, cpu)| cpu)
}

/// The thread name and CPU time of a `stat` line: `pid (comm) state … utime stime …`.
fn parse_stat(stat: &str) -> Option<(String, Duration)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u32 = rest.nth(11)?.parse().ok()?;
    let stime: u32 = rest.next()?.parse().ok()?;
    Some((name, TICK * (utime + stime)))
}

/// CPU time all processes of the machine have used so far (user, nice and system
/// time of every CPU, from `/proc/stat`): with [`cpu_by_thread`] it shows how much
/// of the machine something else took during a measurement.
pub fn machine_cpu() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").context("cannot read /proc/stat")?;
    let ticks: u64 = stat
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("cpu "))
        .map(|fields| {
            fields
                .split_whitespace()
                .take(3)
                .filter_map(|t| t.parse::<u64>().ok())
                .sum()
        })
        .context("unexpected /proc/stat")?;
    Ok(Duration::from_millis(ticks * TICK.as_millis() as u64))
}

/// CPU time used so far by the processes named `name` (e.g. `postgres`: the server
/// and its backends), from `/proc/<pid>/stat`, with the time of their children that
/// have exited and been reaped (a PostgreSQL backend that closes is counted in the
/// postmaster's); the time of a process that exits unreaped is lost.
pub fn processes_cpu(name: &str) -> Duration {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            entry.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (comm, own, children) = parse_stat_with_children(&stat)?;
            (comm == name).then_some(own + children)
        })
        .sum()
}

/// `parse_stat`, and the CPU time of the reaped children (`cutime`, `cstime`).
fn parse_stat_with_children(stat: &str) -> Option<(String, Duration, Duration)> {
    let (name, own) = parse_stat(stat)?;
    let close = stat.rfind(')')?;
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    // cutime is field 16, cstime field 17.
    let cutime: u32 = rest.nth(13)?.parse().ok()?;
    let cstime: u32 = rest.next()?.parse().ok()?;
    Some((name, own, TICK * (cutime + cstime)))
}

/// The 1-, 5- and 15-minute load averages, as `/proc/loadavg` shows them.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// CPU time the hypervisor gave other guests while this machine wanted to run
/// (`steal` in `/proc/stat`) so far: on a virtual machine, the disturbance no
/// process of this machine shows.
pub fn steal_cpu() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").context("cannot read /proc/stat")?;
    let ticks: u64 = stat
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("cpu "))
        .and_then(|fields| fields.split_whitespace().nth(7))
        .and_then(|t| t.parse().ok())
        .context("unexpected /proc/stat")?;
    Ok(Duration::from_millis(ticks * TICK.as_millis() as u64))
}

/// CPU time used between two [`cpu_by_thread`] samples by the threads named `name`.
pub fn cpu_delta(
    before: &HashMap<String, Duration>,
    after: &HashMap<String, Duration>,
    name: &str,
) -> Duration {
    let at = |m: &HashMap<String, Duration>| m.get(name).copied().unwrap_or_default();
    at(after).saturating_sub(at(before))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_spaces_in_the_name_parses() {
        let stat = "42 (bench load) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
        let (name, cpu) = parse_stat(stat).unwrap();
        assert_eq!(name, "bench load");
        assert_eq!(cpu, Duration::from_secs(3));
    }

    #[test]
    fn stat_line_gives_the_reaped_children_time() {
        let stat = "42 (postgres) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 700 300 20 0 1 0";
        let (name, own, children) = parse_stat_with_children(stat).unwrap();
        assert_eq!(name, "postgres");
        assert_eq!(own, Duration::from_secs(3));
        assert_eq!(children, Duration::from_secs(10));
    }

    #[test]
    fn own_threads_are_listed() {
        let cpu = cpu_by_thread().unwrap();
        assert!(!cpu.is_empty());
        assert!(machine_cpu().unwrap() >= cpu.values().copied().max().unwrap());
    }
}
