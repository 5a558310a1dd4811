//! Prometheus metrics of the gateway, rendered in the text exposition format at
//! `GET /metrics`: requests by component and status, a latency histogram by
//! component, and the number of component instances in use.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0, 10.0, 30.0,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    instances_in_use: AtomicI64,
    /// The queue as the last drain saw it.
    jobs_remaining: AtomicI64,
    jobs_dead: AtomicI64,
    jobs_done: AtomicI64,
    drains: AtomicI64,
    /// Client connections open now (see `listen.rs`).
    connections_open: AtomicI64,
    /// Connections closed because no request head arrived in time (slow or idle).
    header_timeouts: AtomicI64,
    /// Connections refused because their address had too many open.
    connections_refused: AtomicI64,
    /// Requests whose client went away before the answer: their instance was stopped.
    requests_abandoned: AtomicI64,
}

/// Decrements the in-use gauge when the instance's store is gone.
#[derive(Debug)]
pub struct InstanceGuard<'a>(&'a Metrics);

impl Drop for InstanceGuard<'_> {
    fn drop(&mut self) {
        self.0.instances_in_use.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn instance_started(&self) -> InstanceGuard<'_> {
        self.instances_in_use.fetch_add(1, Ordering::Relaxed);
        InstanceGuard(self)
    }

    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn header_timed_out(&self) {
        self.header_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn request_abandoned(&self) {
        self.requests_abandoned.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one drain's report.
    pub fn drained(&self, done: i64, remaining: i64, dead: i64) {
        self.drains.fetch_add(1, Ordering::Relaxed);
        self.jobs_done.fetch_add(done, Ordering::Relaxed);
        self.jobs_remaining.store(remaining, Ordering::Relaxed);
        self.jobs_dead.store(dead, Ordering::Relaxed);
    }

    pub fn record(&self, component: &str, status: u16, latency: Duration) {
        let secs = latency.as_secs_f64();
        {
            let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            *requests.entry((component.to_string(), status)).or_default() += 1;
        }
        let mut latency = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let h = latency.entry(component.to_string()).or_default();
        for (bound, count) in BUCKETS.iter().zip(h.counts.iter_mut()) {
            if secs <= *bound {
                *count += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP courier_requests_total HTTP requests served, by component and status.\n",
        );
        out.push_str("# TYPE courier_requests_total counter\n");
        for ((component, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "courier_requests_total{{component=\"{component}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP courier_request_duration_seconds Time to the response head, by component.\n",
        );
        out.push_str("# TYPE courier_request_duration_seconds histogram\n");
        for (component, h) in self
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            for (bound, count) in BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(
                    out,
                    "courier_request_duration_seconds_bucket{{component=\"{component}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "courier_request_duration_seconds_bucket{{component=\"{component}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "courier_request_duration_seconds_sum{{component=\"{component}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "courier_request_duration_seconds_count{{component=\"{component}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP courier_instances_in_use Component instances currently running.\n");
        out.push_str("# TYPE courier_instances_in_use gauge\n");
        let _ = writeln!(
            out,
            "courier_instances_in_use {}",
            self.instances_in_use.load(Ordering::Relaxed)
        );
        for (name, help, kind, value) in [
            (
                "courier_drains_total",
                "Queue drains run by the gateway's timer.",
                "counter",
                &self.drains,
            ),
            (
                "courier_jobs_done_total",
                "Queue jobs finished by the gateway's drains.",
                "counter",
                &self.jobs_done,
            ),
            (
                "courier_jobs_remaining",
                "Due queue jobs after the last drain.",
                "gauge",
                &self.jobs_remaining,
            ),
            (
                "courier_jobs_dead",
                "Dead-lettered queue jobs (kept for inspection).",
                "gauge",
                &self.jobs_dead,
            ),
            (
                "courier_connections_open",
                "Client connections open now.",
                "gauge",
                &self.connections_open,
            ),
            (
                "courier_header_timeouts_total",
                "Connections closed by --header-timeout: a request head that did not arrive in time, or a keep-alive connection idle that long.",
                "counter",
                &self.header_timeouts,
            ),
            (
                "courier_connections_refused_total",
                "Connections answered 503 and closed: their address already had --max-connections-per-address open.",
                "counter",
                &self.connections_refused,
            ),
            (
                "courier_requests_abandoned_total",
                "Requests whose client went away before the answer; their instance was stopped.",
                "counter",
                &self.requests_abandoned,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauge() {
        let m = Metrics::default();
        m.record("health", 200, Duration::from_micros(700));
        m.record("health", 200, Duration::from_millis(3));
        m.record("(gateway)", 404, Duration::from_micros(10));
        let guard = m.instance_started();
        let text = m.render();
        assert!(text.contains("courier_requests_total{component=\"health\",status=\"200\"} 2"));
        assert!(text.contains("courier_requests_total{component=\"(gateway)\",status=\"404\"} 1"));
        assert!(text.contains(
            "courier_request_duration_seconds_bucket{component=\"health\",le=\"0.001\"} 1"
        ));
        assert!(text.contains(
            "courier_request_duration_seconds_bucket{component=\"health\",le=\"0.005\"} 2"
        ));
        assert!(text.contains("courier_request_duration_seconds_count{component=\"health\"} 2"));
        assert!(text.contains("courier_instances_in_use 1"));
        drop(guard);
        assert!(m.render().contains("courier_instances_in_use 0"));
    }
}
