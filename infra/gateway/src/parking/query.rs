//! The sync query's `wait` and `after`, and a parked poll's deadline.

use std::time::{Duration, Instant};

/// A parked poll is answered this long before `wait` would reach the platform's 30 s
/// request limit, as the component's own loop does.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);
const REQUEST_LIMIT: Duration = Duration::from_secs(30);

/// The deadline of a parked poll that arrived at `started` asking to wait `wait_secs`.
pub fn deadline(started: Instant, wait_secs: u64) -> Instant {
    started + Duration::from_secs(wait_secs).min(REQUEST_LIMIT - DEADLINE_MARGIN)
}

/// `wait` of a sync query string, if it asks to wait (`wait=<1..>`).
pub fn wait_secs(query: &str) -> Option<u64> {
    query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("wait="))
        .next_back()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&w| w > 0)
}

/// `after` of a sync query string (0 when absent).
pub fn after(query: &str) -> i64 {
    query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("after="))
        .next_back()
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0)
}

/// The query string with `wait=0`, for the answering run.
pub fn without_wait(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("wait="))
        .chain(std::iter::once("wait=0"))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_helpers_read_wait_and_after_and_drop_wait() {
        assert_eq!(wait_secs("after=3&wait=25"), Some(25));
        assert_eq!(wait_secs("wait=0"), None);
        assert_eq!(wait_secs("after=3"), None);
        assert_eq!(wait_secs("wait=x"), None);
        assert_eq!(after("after=3&wait=25"), 3);
        assert_eq!(after("wait=25"), 0);
        assert_eq!(
            without_wait("after=3&wait=25&limit=10"),
            "after=3&limit=10&wait=0"
        );
        assert_eq!(without_wait(""), "wait=0");
    }
}
