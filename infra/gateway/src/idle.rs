//! Idle pooled resources (SQLite connections, PostgreSQL sessions) that shrink back
//! after a burst: the most recently used is reused first, so the ones at the bottom
//! age, and [`Idle::shrink`] closes those unused for longer than `--pool-idle`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `--pool-idle`: how long a pooled connection may sit unused before it is closed.
pub const DEFAULT_POOL_IDLE: Duration = Duration::from_secs(30);

/// How often the gateway shrinks its pools for a `--pool-idle` of `ttl` (see
/// `App::start_housekeeping`): a third of it, between 100 ms and 10 s.
pub fn shrink_every(ttl: Duration) -> Duration {
    (ttl / 3).clamp(Duration::from_millis(100), Duration::from_secs(10))
}

/// A stack of idle resources, each with when it was last returned.
#[derive(Debug)]
pub struct Idle<T> {
    max: usize,
    keep: usize,
    items: Mutex<Vec<(T, Instant)>>,
}

impl<T> Idle<T> {
    /// At most `max` kept idle; `keep` of them survive any shrink.
    pub const fn new(max: usize, keep: usize) -> Self {
        Self {
            max,
            keep,
            items: Mutex::new(Vec::new()),
        }
    }

    /// The most recently returned one, if any.
    pub fn pop(&self) -> Option<T> {
        self.lock().pop().map(|(item, _)| item)
    }

    /// Keeps `item` for reuse (drops it if `max` are idle already).
    pub fn push(&self, item: T) {
        let mut items = self.lock();
        if items.len() < self.max {
            items.push((item, Instant::now()));
        }
    }

    /// Drops those unused for longer than `ttl`, keeping the `keep` most recent;
    /// returns how many it dropped. They are dropped after the lock is released.
    pub fn shrink(&self, ttl: Duration) -> usize {
        let stale: Vec<(T, Instant)> = {
            let mut items = self.lock();
            let fresh_from = items
                .iter()
                .position(|(_, at)| at.elapsed() <= ttl)
                .unwrap_or(items.len());
            let n = fresh_from.min(items.len().saturating_sub(self.keep));
            items.drain(..n).collect()
        };
        stale.len()
    }

    /// Takes every idle one (to close them all).
    pub fn take_all(&self) -> Vec<T> {
        std::mem::take(&mut *self.lock())
            .into_iter()
            .map(|(item, _)| item)
            .collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(T, Instant)>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_the_newest_and_shrinks_the_stale_down_to_keep() {
        let idle = Idle::new(3, 1);
        for i in 0..5 {
            idle.push(i);
        }
        assert_eq!(idle.len(), 3, "at most max are kept");
        assert_eq!(idle.pop(), Some(2));
        idle.push(7);
        assert_eq!(
            idle.shrink(Duration::from_secs(60)),
            0,
            "nothing is stale yet"
        );
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(idle.shrink(Duration::from_millis(10)), 2);
        assert_eq!(idle.pop(), Some(7), "the newest is the one kept");
        assert!(idle.is_empty());
    }
}
