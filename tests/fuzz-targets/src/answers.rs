//! `push_answers`: what the push vendors answer, through every classifier the
//! `push-notify` component calls. Two bytes give the status, the first line the
//! `Retry-After` value, the rest the body.
//!
//! Properties: each vendor's documented table holds (Web Push 2xx delivered, 404/410
//! gone; only APNs/FCM 200 is delivered; only 429/5xx retry, with exactly the parsed
//! `Retry-After`; FCM 401 and APNs `ExpiredProviderToken` refresh the token; HMS
//! illegal tokens only on a delivered batch); reasons from untrusted bodies stay short;
//! an OAuth token answer gives a usable, bounded token.

use courier_push::outcome::{MAX_REASON_CHARS, parse_retry_after, retry_after_ms};
use courier_push::{Outcome, apns, fcm, hms, oauth, webpush};
use http::{HeaderValue, Response, StatusCode};

use crate::NOW_MS;
use crate::bytes::{Bytes, text};

/// The longest reason an outcome may carry: the clipped vendor text and a short prefix.
const MAX_OUTCOME_REASON_CHARS: usize = MAX_REASON_CHARS + 64;

pub fn push_answers(data: &[u8]) {
    let mut input = Bytes::new(data);
    let status = 100 + input.u16() % 900;
    let retry_after = input.line();
    let body = input.rest().to_vec();
    let mut answer = Response::new(body);
    *answer.status_mut() = StatusCode::from_u16(status).expect("100-999 is a status");
    if !retry_after.is_empty()
        && let Ok(value) = HeaderValue::from_bytes(retry_after)
    {
        answer
            .headers_mut()
            .insert(http::header::RETRY_AFTER, value);
    }
    let expected_retry = retry_after_ms(answer.headers(), NOW_MS);
    let transient = status == 429 || (500..=599).contains(&status);
    let check_retry = |outcome: &Outcome, vendor: &str| {
        if let Outcome::Retry { after_ms } = outcome {
            assert!(transient, "{vendor}: retry on {status}");
            assert_eq!(*after_ms, expected_retry, "{vendor}: Retry-After");
        }
        short_reason(outcome, vendor);
    };

    let web = webpush::classify(&answer, NOW_MS);
    check_retry(&web, "webpush");
    match status {
        200..=299 => assert_eq!(web, Outcome::Delivered),
        404 | 410 => assert!(matches!(web, Outcome::TokenGone { .. }), "{web:?}"),
        s if transient => assert!(matches!(web, Outcome::Retry { .. }), "{s}"),
        s => assert!(matches!(web, Outcome::Permanent { status, .. } if status == s)),
    }

    let apple = apns::classify(&answer, NOW_MS);
    check_retry(&apple, "apns");
    assert_eq!(apple == Outcome::Delivered, status == 200, "apns {apple:?}");
    if apple == Outcome::RefreshAuth {
        assert_eq!(status, 403);
    }
    if let Outcome::TokenGone { .. } = apple {
        assert!(status == 410 || status == 400, "apns gone on {status}");
    }
    if apns::unregistered_at_ms(&answer).is_some() {
        assert_eq!(status, 410);
    }

    let google = fcm::classify(&answer, NOW_MS);
    check_retry(&google, "fcm");
    assert_eq!(
        google == Outcome::Delivered,
        status == 200,
        "fcm {google:?}"
    );
    if status == 401 {
        assert_eq!(google, Outcome::RefreshAuth);
    }

    let verdict = hms::classify_batch(&answer, NOW_MS);
    check_retry(&verdict.outcome, "hms");
    if !verdict.illegal_tokens.is_empty() {
        assert_eq!(verdict.outcome, Outcome::Delivered);
    }
    if verdict.outcome == Outcome::Delivered {
        assert!(!transient && status != 401, "hms delivered on {status}");
    }
    if status == 401 {
        assert_eq!(verdict.outcome, Outcome::RefreshAuth);
    }
    let single = hms::classify(&answer, NOW_MS);
    if verdict.illegal_tokens.is_empty() {
        assert_eq!(single, verdict.outcome);
    } else {
        assert!(matches!(single, Outcome::TokenGone { .. }));
    }

    token_answer(&answer, status, transient, expected_retry);
    retry_after_values(retry_after, answer.body());
}

fn short_reason(outcome: &Outcome, vendor: &str) {
    if let Outcome::TokenGone { reason } | Outcome::Permanent { reason, .. } = outcome {
        let chars = reason.chars().count();
        assert!(
            chars <= MAX_OUTCOME_REASON_CHARS,
            "{vendor}: a {chars}-character reason"
        );
    }
}

fn token_answer(answer: &Response<Vec<u8>>, status: u16, transient: bool, retry: Option<u64>) {
    match oauth::parse_token_answer(answer, NOW_MS) {
        Ok(token) => {
            assert_eq!(status, 200);
            assert!(!token.token.is_empty());
            assert!(token.expires_at_ms > NOW_MS);
            assert!(token.expires_at_ms <= NOW_MS + oauth::MAX_LIFETIME_SECS * 1000);
            assert!(token.is_usable(NOW_MS) || token.expires_at_ms <= NOW_MS + 60_000);
            assert!(HeaderValue::from_str(&token.authorization()).is_ok());
        }
        Err(Outcome::Retry { after_ms }) => {
            assert!(transient);
            assert_eq!(after_ms, retry);
        }
        Err(outcome @ Outcome::Permanent { .. }) => {
            assert!(!transient);
            short_reason(&outcome, "oauth");
        }
        Err(other) => panic!("token answer gave {other:?}"),
    }
}

fn retry_after_values(header: &[u8], body: &[u8]) {
    for value in [text(header), text(body)] {
        let parsed = parse_retry_after(&value, NOW_MS);
        let trimmed = value.trim();
        if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            let secs = trimmed.parse::<u64>().unwrap_or(u64::MAX);
            assert_eq!(parsed, Some(secs.saturating_mul(1000)), "{value:?}");
        }
    }
}
