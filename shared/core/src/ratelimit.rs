//! A token bucket as pure state: the store keeps a [`Bucket`] per key (user, org),
//! [`decide`] says whether a request may pass and what to store next.
//!
//! A bucket holds up to `burst` tokens and refills at `rate_per_sec`; a request takes
//! one. A limited request leaves the bucket as it was (a failed request changes nothing),
//! and its `retry_after_secs` is when one token will be there, rounded up, at least 1.

/// The stored state of one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Tokens left at `updated_ms` (fractional while refilling).
    pub tokens: f64,
    /// Unix ms of the last change.
    pub updated_ms: i64,
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Let it pass and store this bucket.
    Allow(Bucket),
    /// Refuse it with 429; store nothing.
    Limited {
        /// For `Retry-After`, at least 1.
        retry_after_secs: u64,
    },
}

impl Decision {
    /// `Allow` → the bucket to store; `Limited` → `Error::RateLimited`.
    pub fn into_result(self) -> Result<Bucket, crate::error::Error> {
        match self {
            Decision::Allow(bucket) => Ok(bucket),
            Decision::Limited { retry_after_secs } => {
                Err(crate::error::Error::RateLimited { retry_after_secs })
            }
        }
    }
}

/// Takes one token from `bucket` (`None`: a new key, starting full) at `now_ms`.
/// `rate_per_sec` and `burst` below 1 are treated as 1 (config rejects them anyway).
/// A clock that steps back refills nothing; a stored bucket with a non-finite or
/// out-of-range token count is treated as full.
pub fn decide(bucket: Option<Bucket>, rate_per_sec: u32, burst: u32, now_ms: i64) -> Decision {
    let rate = f64::from(rate_per_sec.max(1));
    let burst = f64::from(burst.max(1));
    let available = match bucket {
        None => burst,
        Some(b) if !b.tokens.is_finite() || !(0.0..=burst).contains(&b.tokens) => burst,
        Some(b) => {
            // i64 ms differences are exact in f64 up to 2^53 ms (285,000 years).
            let elapsed_secs = now_ms.saturating_sub(b.updated_ms).max(0) as f64 / 1000.0;
            (b.tokens + elapsed_secs * rate).min(burst)
        }
    };
    if available >= 1.0 {
        let updated_ms = bucket.map_or(now_ms, |b| b.updated_ms.max(now_ms));
        Decision::Allow(Bucket {
            tokens: available - 1.0,
            updated_ms,
        })
    } else {
        let wait_secs = ((1.0 - available) / rate).ceil();
        // wait_secs is within (0, 1] because rate >= 1; max(1) keeps the header useful.
        Decision::Limited {
            retry_after_secs: (wait_secs as u64).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_000_000_000;

    /// Runs `n` requests at `now_ms`, returning the last bucket and how many passed.
    fn burst_of(n: usize, start: Option<Bucket>, now_ms: i64) -> (Option<Bucket>, usize) {
        let mut bucket = start;
        let mut passed = 0;
        for _ in 0..n {
            if let Decision::Allow(next) = decide(bucket, 10, 20, now_ms) {
                bucket = Some(next);
                passed += 1;
            }
        }
        (bucket, passed)
    }

    #[test]
    fn a_new_key_gets_the_full_burst() {
        let (_, passed) = burst_of(25, None, NOW);
        assert_eq!(passed, 20);
    }

    #[test]
    fn the_request_after_the_burst_is_limited_for_at_least_a_second() {
        let (bucket, _) = burst_of(20, None, NOW);
        assert_eq!(
            decide(bucket, 10, 20, NOW),
            Decision::Limited {
                retry_after_secs: 1
            }
        );
    }

    #[test]
    fn tokens_refill_at_the_rate() {
        let (bucket, _) = burst_of(20, None, NOW);
        // 10/s: 100 ms brings exactly one token, 500 ms five.
        assert!(matches!(
            decide(bucket, 10, 20, NOW + 99),
            Decision::Limited { .. }
        ));
        assert!(matches!(
            decide(bucket, 10, 20, NOW + 100),
            Decision::Allow(_)
        ));
        let (_, passed) = burst_of(10, bucket, NOW + 500);
        assert_eq!(passed, 5);
    }

    #[test]
    fn refill_stops_at_the_burst() {
        let (bucket, _) = burst_of(20, None, NOW);
        let (_, passed) = burst_of(100, bucket, NOW + 3_600_000);
        assert_eq!(passed, 20);
    }

    #[test]
    fn a_limited_request_does_not_spend_tokens() {
        let (bucket, _) = burst_of(20, None, NOW);
        for _ in 0..50 {
            assert!(matches!(
                decide(bucket, 10, 20, NOW),
                Decision::Limited { .. }
            ));
        }
        assert!(matches!(
            decide(bucket, 10, 20, NOW + 100),
            Decision::Allow(_)
        ));
    }

    #[test]
    fn retry_after_is_the_time_to_one_token_rounded_up_to_whole_seconds() {
        let empty = Some(Bucket {
            tokens: 0.0,
            updated_ms: NOW,
        });
        assert_eq!(
            decide(empty, 1, 1, NOW),
            Decision::Limited {
                retry_after_secs: 1
            }
        );
        let half = Some(Bucket {
            tokens: 0.5,
            updated_ms: NOW,
        });
        assert_eq!(
            decide(half, 1, 1, NOW + 1),
            Decision::Limited {
                retry_after_secs: 1
            }
        );
    }

    #[test]
    fn a_clock_stepping_back_refills_nothing_and_keeps_the_latest_time() {
        let start = Some(Bucket {
            tokens: 1.0,
            updated_ms: NOW,
        });
        let Decision::Allow(after) = decide(start, 10, 20, NOW - 60_000) else {
            panic!("one token was there");
        };
        assert_eq!(
            after,
            Bucket {
                tokens: 0.0,
                updated_ms: NOW
            }
        );
    }

    #[test]
    fn a_corrupt_stored_bucket_counts_as_full() {
        for tokens in [f64::NAN, f64::INFINITY, -3.0, 1e9] {
            let bucket = Some(Bucket {
                tokens,
                updated_ms: NOW,
            });
            assert!(
                matches!(decide(bucket, 10, 20, NOW), Decision::Allow(b) if b.tokens == 19.0),
                "{tokens}"
            );
        }
    }

    #[test]
    fn limited_maps_to_rate_limited_with_retry_after() {
        let err = Decision::Limited {
            retry_after_secs: 2,
        }
        .into_result()
        .expect_err("limited");
        assert_eq!((err.code(), err.retry_after()), ("rate_limited", Some(2)));
    }
}
