//! [`Outcome`]: what a vendor's answer means for the push that caused it, and
//! `Retry-After` parsing (delta-seconds and HTTP-date, RFC 9110 §10.2.3).

use std::time::UNIX_EPOCH;

use http::HeaderMap;
use http::header::RETRY_AFTER;

/// What to do after a vendor answered a push request. Every vendor module's `classify`
/// returns one; the shell acts on it (done, requeue with backoff, delete the device, get
/// a new access token and try again, or give up and log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The vendor accepted the message.
    Delivered,
    /// A transient failure (429, 5xx): try again later; `after_ms` is the vendor's
    /// `Retry-After` when it sent one (else the shell's own backoff applies).
    Retry {
        /// Milliseconds to wait, from `Retry-After`.
        after_ms: Option<u64>,
    },
    /// The token or subscription is gone for good: delete the device registration.
    TokenGone {
        /// The vendor's reason, for the log.
        reason: String,
    },
    /// The access token (FCM, HMS) or provider token (APNs) was refused as expired: drop
    /// the cached one, get a new one and send again. A second `RefreshAuth` in a row
    /// means the credentials themselves are wrong: treat it as permanent.
    RefreshAuth,
    /// The request can never succeed as it is (bad payload, bad configuration): log it
    /// and drop the push.
    Permanent {
        /// The HTTP status of the answer.
        status: u16,
        /// The vendor's reason, for the log.
        reason: String,
    },
}

/// The longest vendor reason kept in an [`Outcome`], in characters: bodies are untrusted
/// and logs should stay small.
pub const MAX_REASON_CHARS: usize = 200;

/// `text` cut to [`MAX_REASON_CHARS`] characters (never inside a character).
pub(crate) fn reason_text(text: &str) -> String {
    crate::notification::clip(text, MAX_REASON_CHARS)
}

/// Whether a status is worth retrying as such: 429 and every 5xx.
pub(crate) fn is_transient(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// `Retry` with the answer's `Retry-After`, if any.
pub(crate) fn retry(headers: &HeaderMap, now_ms: i64) -> Outcome {
    Outcome::Retry {
        after_ms: retry_after_ms(headers, now_ms),
    }
}

/// The `Retry-After` header of an answer, in milliseconds from `now_ms`; `None` when it
/// is absent or unreadable. A date in the past gives `Some(0)`.
pub fn retry_after_ms(headers: &HeaderMap, now_ms: i64) -> Option<u64> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, now_ms)
}

/// Parses a `Retry-After` value: delta-seconds (`120`) or an HTTP-date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, also the obsolete RFC 850 and asctime forms).
/// Returns milliseconds from `now_ms`, saturating; `None` for anything else.
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<u64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: only overflow can fail, and a huge delay saturates.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(secs.saturating_mul(1000));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at_ms = at.duration_since(UNIX_EPOCH).ok()?.as_millis();
    let at_ms = i64::try_from(at_ms).unwrap_or(i64::MAX);
    Some(u64::try_from(at_ms.saturating_sub(now_ms)).unwrap_or(0))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use http::{HeaderValue, Response, StatusCode};

    /// A vendor answer for classification tables.
    pub(crate) fn answer(status: u16, body: &str, retry_after: Option<&str>) -> Response<Vec<u8>> {
        let mut response = Response::new(body.as_bytes().to_vec());
        *response.status_mut() = StatusCode::from_u16(status).expect("valid status");
        if let Some(value) = retry_after {
            let value = HeaderValue::from_str(value).expect("valid header");
            response.headers_mut().insert(RETRY_AFTER, value);
        }
        response
    }

    /// Checks a classification table: each answer gives its outcome at `now_ms`.
    pub(crate) fn assert_classifies(
        classify: impl Fn(&Response<Vec<u8>>, i64) -> Outcome,
        table: Vec<(Response<Vec<u8>>, Outcome)>,
        now_ms: i64,
    ) {
        for (response, expected) in table {
            let body = String::from_utf8_lossy(response.body()).into_owned();
            assert_eq!(
                classify(&response, now_ms),
                expected,
                "{} {body}",
                response.status()
            );
        }
    }

    /// 2015-10-21T07:28:00Z.
    const DATE_MS: i64 = 1_445_412_480_000;

    #[test]
    fn delta_seconds_become_milliseconds() {
        assert_eq!(parse_retry_after("120", 0), Some(120_000));
        assert_eq!(parse_retry_after(" 0 ", 0), Some(0));
        assert_eq!(
            parse_retry_after("99999999999999999999999", 0),
            Some(u64::MAX),
            "overflow saturates"
        );
    }

    #[test]
    fn http_dates_count_from_now_in_all_three_formats() {
        for text in [
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Wednesday, 21-Oct-15 07:28:00 GMT",
            "Wed Oct 21 07:28:00 2015",
        ] {
            assert_eq!(
                parse_retry_after(text, DATE_MS - 30_000),
                Some(30_000),
                "{text}"
            );
        }
    }

    #[test]
    fn a_date_in_the_past_means_now() {
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", DATE_MS + 5_000),
            Some(0)
        );
    }

    #[test]
    fn garbage_is_no_retry_after() {
        for text in [
            "",
            "-5",
            "1.5",
            "soon",
            "Wed, 32 Oct 2015 07:28:00 GMT",
            "12 s",
        ] {
            assert_eq!(parse_retry_after(text, 0), None, "{text:?}");
        }
    }

    #[test]
    fn the_header_is_read_from_a_header_map() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after_ms(&headers, 0), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after_ms(&headers, 0), Some(7_000));
        assert_eq!(
            retry(&headers, 0),
            Outcome::Retry {
                after_ms: Some(7_000)
            }
        );
    }

    #[test]
    fn reasons_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_REASON_CHARS + 10);
        let cut = reason_text(&long);
        assert_eq!(cut.chars().count(), MAX_REASON_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(reason_text("short"), "short");
    }

    #[test]
    fn transient_statuses_are_429_and_5xx() {
        assert!(is_transient(429) && is_transient(500) && is_transient(503) && is_transient(599));
        assert!(!is_transient(400) && !is_transient(404) && !is_transient(200));
    }
}
