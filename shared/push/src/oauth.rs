//! OAuth 2.0 access tokens as FCM (JWT bearer grant) and HMS (client credentials) hand
//! them out: reading the token endpoint's answer (RFC 6749 §5.1/§5.2) and a cache that
//! keeps a token until a minute before it expires.
//!
//! Components are stateless, so the shell keeps the cache's [`AccessToken`] in the
//! key-value store between requests (it is `Serialize`/`Deserialize`).

use std::fmt;

use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Error;
use crate::outcome::{self, Outcome, is_transient, reason_text};

/// A cached token stops being used this long before its expiry.
pub const EXPIRY_MARGIN_MS: i64 = 60_000;
/// The longest lifetime believed, whatever `expires_in` says.
pub const MAX_LIFETIME_SECS: i64 = 24 * 3600;

/// A bearer access token and when it expires. `Debug` hides the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessToken {
    /// The token.
    pub token: String,
    /// Expiry, Unix ms.
    pub expires_at_ms: i64,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AccessToken(<secret>, expires_at_ms: {})",
            self.expires_at_ms
        )
    }
}

impl AccessToken {
    /// Whether the token may still be used at `now_ms`: until [`EXPIRY_MARGIN_MS`]
    /// before it expires.
    pub fn is_usable(&self, now_ms: i64) -> bool {
        now_ms < self.expires_at_ms.saturating_sub(EXPIRY_MARGIN_MS)
    }

    /// The `Authorization` header value: `Bearer <token>`.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.token)
    }
}

/// The access token of one vendor account, reused while usable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenCache {
    current: Option<AccessToken>,
}

impl TokenCache {
    /// A cache holding `token` (e.g. read back from the key-value store).
    pub fn with(token: Option<AccessToken>) -> TokenCache {
        TokenCache { current: token }
    }

    /// The cached token if it is usable at `now_ms`; `None`: fetch a new one.
    pub fn get(&self, now_ms: i64) -> Option<&AccessToken> {
        self.current.as_ref().filter(|t| t.is_usable(now_ms))
    }

    /// Keeps a freshly fetched token.
    pub fn store(&mut self, token: AccessToken) {
        self.current = Some(token);
    }

    /// Drops the token (the vendor refused it: [`Outcome::RefreshAuth`]).
    pub fn invalidate(&mut self) {
        self.current = None;
    }

    /// The token held, usable or not, to write back to the store.
    pub fn current(&self) -> Option<&AccessToken> {
        self.current.as_ref()
    }
}

/// A JSON `POST` to `url` authorized by `access`: the send request of FCM and HMS.
pub(crate) fn bearer_json_post(
    url: &str,
    access: &AccessToken,
    body: Vec<u8>,
) -> Result<Request<Vec<u8>>, Error> {
    Request::builder()
        .method(Method::POST)
        .uri(url)
        .header(AUTHORIZATION, access.authorization())
        .header(CONTENT_TYPE, "application/json; charset=UTF-8")
        .header(CONTENT_LENGTH, body.len())
        .body(body)
        .map_err(|e| Error::Config(format!("request to {url}: {e}")))
}

/// The token endpoint's error text: `error_description`, else `error` (a string for
/// Google, a number for Huawei), else the raw body.
fn error_reason(body: &[u8]) -> String {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|j| j.get(name))
            .filter(|v| !v.is_null())
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
    };
    let text = field("error_description")
        .or_else(|| field("error"))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    reason_text(&text)
}

/// `expires_in`: a number of seconds, or (some servers) a numeric string.
fn expires_in(json: &Value) -> Option<i64> {
    match json.get("expires_in")? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Reads a token endpoint's answer at `now_ms`. `Ok`: the token (lifetime capped at
/// [`MAX_LIFETIME_SECS`]). `Err`: what to do with the push that needed it — `Retry` on
/// 429/5xx, `Permanent` when the credentials are refused (400/401: `invalid_grant`,
/// `invalid_client`) or the answer is malformed.
pub fn parse_token_answer<B: AsRef<[u8]>>(
    answer: &Response<B>,
    now_ms: i64,
) -> Result<AccessToken, Outcome> {
    let status = answer.status().as_u16();
    let body = answer.body().as_ref();
    if is_transient(status) {
        return Err(outcome::retry(answer.headers(), now_ms));
    }
    if status != 200 {
        return Err(Outcome::Permanent {
            status,
            reason: format!("token endpoint refused: {}", error_reason(body)),
        });
    }
    let malformed = |what: &str| Outcome::Permanent {
        status,
        reason: format!("malformed token answer: {what}"),
    };
    let json: Value = serde_json::from_slice(body).map_err(|_| malformed("not JSON"))?;
    let token = json
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| malformed("no access_token"))?;
    if HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
        return Err(malformed("access_token is not a header value"));
    }
    if let Some(kind) = json.get("token_type").and_then(Value::as_str)
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(malformed("token_type is not Bearer"));
    }
    let lifetime = expires_in(&json)
        .filter(|secs| *secs > 0)
        .ok_or_else(|| malformed("no positive expires_in"))?
        .min(MAX_LIFETIME_SECS);
    Ok(AccessToken {
        token: token.to_string(),
        expires_at_ms: now_ms.saturating_add(lifetime * 1000),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn answer(status: u16, body: &str) -> Response<Vec<u8>> {
        crate::outcome::tests::answer(status, body, None)
    }

    #[test]
    fn google_and_huawei_answers_give_a_token() {
        let google = r#"{"access_token":"ya29.c.b0Aa","expires_in":3599,"token_type":"Bearer"}"#;
        let token = parse_token_answer(&answer(200, google), NOW).expect("token");
        assert_eq!(token.token, "ya29.c.b0Aa");
        assert_eq!(token.expires_at_ms, NOW + 3_599_000);
        assert_eq!(token.authorization(), "Bearer ya29.c.b0Aa");
        let huawei = r#"{"access_token":"CV0k+/x=","expires_in":"3600","token_type":"Bearer"}"#;
        let token = parse_token_answer(&answer(200, huawei), NOW).expect("token");
        assert_eq!(token.expires_at_ms, NOW + 3_600_000);
        let capped = r#"{"access_token":"t","expires_in":99999999}"#;
        let token = parse_token_answer(&answer(200, capped), NOW).expect("token");
        assert_eq!(token.expires_at_ms, NOW + MAX_LIFETIME_SECS * 1000);
    }

    #[test]
    fn refusals_are_permanent_with_the_reason_and_overloads_retry() {
        let refused = answer(
            400,
            r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
        );
        assert_eq!(
            parse_token_answer(&refused, NOW),
            Err(Outcome::Permanent {
                status: 400,
                reason: "token endpoint refused: Invalid JWT Signature.".into()
            })
        );
        let huawei = answer(401, r#"{"error":1101,"sub_error":20400}"#);
        assert!(matches!(
            parse_token_answer(&huawei, NOW),
            Err(Outcome::Permanent { status: 401, reason }) if reason.ends_with("1101")
        ));
        assert_eq!(
            parse_token_answer(&answer(503, ""), NOW),
            Err(Outcome::Retry { after_ms: None })
        );
    }

    #[test]
    fn malformed_answers_are_permanent() {
        for body in [
            "",
            "[]",
            r#"{"expires_in":3600}"#,
            r#"{"access_token":"","expires_in":3600}"#,
            r#"{"access_token":"a\nb","expires_in":3600}"#,
            r#"{"access_token":"t"}"#,
            r#"{"access_token":"t","expires_in":0}"#,
            r#"{"access_token":"t","expires_in":"soon"}"#,
            r#"{"access_token":"t","expires_in":60,"token_type":"mac"}"#,
        ] {
            assert!(
                matches!(
                    parse_token_answer(&answer(200, body), NOW),
                    Err(Outcome::Permanent { status: 200, .. })
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn the_cache_reuses_a_token_until_a_minute_before_expiry() {
        let token = AccessToken {
            token: "secret-token".into(),
            expires_at_ms: NOW + 3_600_000,
        };
        let mut cache = TokenCache::default();
        assert_eq!(cache.get(NOW), None);
        cache.store(token.clone());
        assert_eq!(cache.get(NOW), Some(&token));
        assert_eq!(cache.get(NOW + 3_540_000 - 1), Some(&token));
        assert_eq!(cache.get(NOW + 3_540_000), None, "60 s margin");
        assert_eq!(cache.current(), Some(&token), "kept for writing back");
        cache.invalidate();
        assert_eq!(cache.get(NOW), None);
        assert_eq!(TokenCache::with(Some(token.clone())).get(NOW), Some(&token));
        assert!(!format!("{token:?}").contains("secret-token"));
    }

    #[test]
    fn tokens_round_trip_through_json_for_the_key_value_store() {
        let token = AccessToken {
            token: "t".into(),
            expires_at_ms: 5,
        };
        let text = serde_json::to_string(&token).expect("serializes");
        assert_eq!(
            serde_json::from_str::<AccessToken>(&text).expect("parses"),
            token
        );
    }
}
