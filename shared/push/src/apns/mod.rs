//! Apple Push Notification service over HTTP/2 with token-based authentication.
//!
//! - [`DeviceToken::parse`]: hex, at least 64 characters (32 bytes today; Apple says
//!   tokens may grow, so up to 200).
//! - [`Client::request`]: `POST {base}/3/device/<token>` with `authorization: bearer
//!   <jwt>`, `apns-topic` (the bundle id), `apns-push-type` (alert or background),
//!   `apns-priority` (10 or 5), `apns-expiration`, `apns-collapse-id` (the
//!   conversation topic). The JWT comes from [`ProviderTokenCache`].
//! - [`classify`]: 200 delivered; 410 (`Unregistered`, with a `timestamp`:
//!   [`unregistered_at_ms`]) and 400 `BadDeviceToken` / `DeviceTokenNotForTopic` → token
//!   gone; 403 `ExpiredProviderToken` → refresh the provider token; 429 / 5xx → retry
//!   (`Retry-After` honoured); any other 4xx → permanent with the JSON `reason`.

mod provider;

pub use provider::{
    CLOCK_SKEW_SECS, ProviderClaims, ProviderKey, ProviderToken, ProviderTokenCache,
    TOKEN_MAX_AGE_MS, TOKEN_REUSE_MS, TokenDecision, verify_provider_token,
};

use std::fmt;

use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Response};
use serde_json::{Value, json};

use crate::Error;
use crate::base_url::check_base_url;
use crate::jwt::unix_secs;
use crate::notification::Notification;
use crate::outcome::{self, Outcome, is_transient, reason_text};
use crate::token::redact;

/// Apple's production host.
pub const PRODUCTION_BASE: &str = "https://api.push.apple.com";
/// Apple's development host.
pub const SANDBOX_BASE: &str = "https://api.sandbox.push.apple.com";
/// The largest payload APNs takes for a remote notification, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 4096;
/// How long APNs keeps trying an undelivered notification.
pub const DEFAULT_TTL_SECS: u64 = 24 * 3600;
/// The `loc-key` of the alert shown when previews are off; the app's
/// `Localizable.strings` holds its text.
pub const GENERIC_ALERT_LOC_KEY: &str = "COURIER_NEW_MESSAGE";
/// The longest device token accepted, in hex characters.
pub const MAX_DEVICE_TOKEN_CHARS: usize = 200;

/// A validated APNs device token: lowercase hex, 64–200 characters, even length.
/// `Debug` shows a prefix only.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DeviceToken(String);

impl DeviceToken {
    /// Validates a token a client registered (upper-case hex is lowered).
    pub fn parse(text: &str) -> Result<DeviceToken, Error> {
        let ok = (64..=MAX_DEVICE_TOKEN_CHARS).contains(&text.len())
            && text.len().is_multiple_of(2)
            && text.bytes().all(|b| b.is_ascii_hexdigit());
        if ok {
            Ok(DeviceToken(text.to_ascii_lowercase()))
        } else {
            Err(Error::InvalidDevice(format!(
                "APNs token must be 64-{MAX_DEVICE_TOKEN_CHARS} hex characters"
            )))
        }
    }

    /// The token as sent in the path.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 8 characters and `…`, for logs.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

impl fmt::Debug for DeviceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceToken({})", self.redacted())
    }
}

/// `apns-push-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushType {
    /// A visible notification (badge, sound, text): priority 10.
    Alert,
    /// `content-available` only, wakes the app to sync: priority 5, as Apple requires.
    Background,
}

impl PushType {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            PushType::Alert => "alert",
            PushType::Background => "background",
        }
    }

    /// `apns-priority`: 10 immediately, 5 when power allows.
    pub fn priority(self) -> u16 {
        match self {
            PushType::Alert => 10,
            PushType::Background => 5,
        }
    }
}

/// The APNs payload of `n`: `aps` plus the notification's fields as custom keys. An
/// alert shows the sender and text, or [`GENERIC_ALERT_LOC_KEY`] when previews are off;
/// `badge` is the unread total; `thread-id` groups by conversation.
pub fn payload(n: &Notification, push_type: PushType) -> Value {
    let aps = match push_type {
        PushType::Alert => {
            let alert = match n.clipped_preview() {
                Some((sender, text)) => json!({"title": sender, "body": text}),
                None => json!({"loc-key": GENERIC_ALERT_LOC_KEY}),
            };
            json!({
                "alert": alert,
                "badge": n.unread,
                "sound": "default",
                "thread-id": n.topic(),
            })
        }
        PushType::Background => json!({"content-available": 1}),
    };
    let mut payload = n.json();
    if let Some(map) = payload.as_object_mut() {
        map.insert("aps".into(), aps);
    }
    payload
}

/// One app's APNs settings: the host and the topic (bundle id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    base: String,
    topic: String,
}

impl Client {
    /// `base` is [`PRODUCTION_BASE`], [`SANDBOX_BASE`] or a fake's URL; `topic` the
    /// app's bundle id.
    pub fn new(base: &str, topic: &str) -> Result<Client, Error> {
        let topic_ok = !topic.is_empty()
            && topic.len() <= 255
            && topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !topic_ok {
            return Err(Error::Config("APNs topic must be a bundle id".into()));
        }
        Ok(Client {
            base: check_base_url(base, "APNs base URL")?,
            topic: topic.to_string(),
        })
    }

    /// The push of `n` to `device`, authenticated with `token`, expiring
    /// [`DEFAULT_TTL_SECS`] after `now_ms`.
    pub fn request(
        &self,
        token: &ProviderToken,
        device: &DeviceToken,
        n: &Notification,
        push_type: PushType,
        now_ms: i64,
    ) -> Result<Request<Vec<u8>>, Error> {
        let body = payload(n, push_type).to_string().into_bytes();
        if body.len() > MAX_PAYLOAD_BYTES {
            return Err(Error::TooLarge(format!(
                "APNs payload is {} bytes, at most {MAX_PAYLOAD_BYTES}",
                body.len()
            )));
        }
        let expiration = unix_secs(now_ms).saturating_add(DEFAULT_TTL_SECS);
        Request::builder()
            .method(Method::POST)
            .uri(format!("{}/3/device/{}", self.base, device.as_str()))
            .header(AUTHORIZATION, format!("bearer {}", token.jwt))
            .header("apns-topic", &self.topic)
            .header("apns-push-type", push_type.as_str())
            .header("apns-priority", push_type.priority())
            .header("apns-expiration", expiration)
            .header("apns-collapse-id", n.topic())
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_LENGTH, body.len())
            .body(body)
            .map_err(|e| Error::Config(format!("APNs request: {e}")))
    }
}

/// The JSON `reason` of an APNs error body, if any.
fn reason_of(body: &[u8]) -> Option<String> {
    let json: Value = serde_json::from_slice(body).ok()?;
    json.get("reason")?.as_str().map(reason_text)
}

/// For a 410 answer, the JSON `timestamp` (Unix ms): when APNs last knew the token was
/// invalid. Delete the device only if it has not registered again since.
pub fn unregistered_at_ms<B: AsRef<[u8]>>(answer: &Response<B>) -> Option<i64> {
    if answer.status().as_u16() != 410 {
        return None;
    }
    let json: Value = serde_json::from_slice(answer.body().as_ref()).ok()?;
    json.get("timestamp")?.as_i64()
}

/// What an APNs answer means.
pub fn classify<B: AsRef<[u8]>>(answer: &Response<B>, now_ms: i64) -> Outcome {
    let status = answer.status().as_u16();
    let reason = reason_of(answer.body().as_ref());
    match (status, reason.as_deref()) {
        (200, _) => Outcome::Delivered,
        (410, r) => Outcome::TokenGone {
            reason: match unregistered_at_ms(answer) {
                Some(at) => format!("{} since {at}", r.unwrap_or("Unregistered")),
                None => r.unwrap_or("Unregistered").to_string(),
            },
        },
        (400, Some(r @ ("BadDeviceToken" | "DeviceTokenNotForTopic"))) => {
            Outcome::TokenGone { reason: r.into() }
        }
        (403, Some("ExpiredProviderToken")) => Outcome::RefreshAuth,
        (s, _) if is_transient(s) => outcome::retry(answer.headers(), now_ms),
        (s, r) => Outcome::Permanent {
            status: s,
            reason: r.unwrap_or("no reason given").to_string(),
        },
    }
}

#[cfg(test)]
mod tests;
