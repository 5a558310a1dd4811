//! Web Push (RFC 8030) with message encryption (RFC 8291) and VAPID (RFC 8292).
//!
//! - [`Subscription::parse`] validates what a browser registers: an `https://`
//!   endpoint, `p256dh` (a 65-byte uncompressed P-256 point) and `auth` (16 bytes).
//! - [`Sender::request`] builds the `POST` to the endpoint: `aes128gcm` body,
//!   `Authorization: vapid …`, `TTL`, `Urgency` and a `Topic` hashed from the
//!   conversation (a newer push of the same conversation replaces an undelivered one).
//! - [`classify`] reads the push service's answer: 2xx delivered; 404/410 the
//!   subscription is gone; 429/5xx retry (with `Retry-After`); anything else permanent.
//! - [`decrypt`] and [`verify_vapid`] are the push service's and user agent's side, for
//!   the test suite's fake vendor.

mod ece;
mod vapid;

pub use ece::{
    MAX_PLAINTEXT_BYTES, RANDOM_BYTES, RECORD_SIZE, decrypt, encrypt, encrypt_with_keys,
    encrypt_with_random_bytes,
};
pub use vapid::{
    MAX_VAPID_TTL_SECS, VAPID_TTL_SECS, VapidClaims, VapidKey, check_subject, verify_vapid,
};

use std::fmt;

use http::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Response, Uri};
use p256::PublicKey;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;

use crate::notification::{Notification, TOPIC_CHARS};
use crate::outcome::{self, Outcome, is_transient, reason_text};
use crate::{Error, b64};

/// The longest endpoint accepted, in bytes.
pub const MAX_ENDPOINT_BYTES: usize = 2048;
/// The `TTL` of notification pushes: a day, after which a message notice is stale.
pub const DEFAULT_TTL_SECS: u32 = 24 * 3600;

/// A validated Web Push subscription. `Debug` shows only the origin: the endpoint is a
/// capability URL and `auth` a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Subscription {
    endpoint: Uri,
    origin: String,
    p256dh: PublicKey,
    auth: [u8; 16],
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Subscription({}/…)", self.origin)
    }
}

fn invalid(what: &str) -> Error {
    Error::InvalidDevice(what.to_string())
}

impl Subscription {
    /// Validates a browser's `PushSubscription`: `endpoint` must be an `https://` URL
    /// (no user info, at most [`MAX_ENDPOINT_BYTES`]); `p256dh` and `auth` are
    /// base64url (padding and the standard alphabet tolerated).
    pub fn parse(endpoint: &str, p256dh: &str, auth: &str) -> Result<Subscription, Error> {
        Subscription::parse_with(endpoint, p256dh, auth, false)
    }

    /// [`Subscription::parse`] that also accepts `http://` endpoints: only for local
    /// fakes (a configuration switch of the test setup), never for production.
    pub fn parse_allowing_http(
        endpoint: &str,
        p256dh: &str,
        auth: &str,
    ) -> Result<Subscription, Error> {
        Subscription::parse_with(endpoint, p256dh, auth, true)
    }

    fn parse_with(
        endpoint: &str,
        p256dh: &str,
        auth: &str,
        allow_http: bool,
    ) -> Result<Subscription, Error> {
        let (endpoint, origin) = parse_endpoint(endpoint, allow_http)?;
        let key = b64::decode_lenient(p256dh).ok_or_else(|| invalid("p256dh is not base64url"))?;
        if key.len() != 65 || key[0] != 4 {
            return Err(invalid(
                "p256dh must be a 65-byte uncompressed P-256 public key",
            ));
        }
        let p256dh = PublicKey::from_sec1_bytes(&key)
            .map_err(|_| invalid("p256dh is not a point on P-256"))?;
        let auth = b64::decode_lenient(auth).ok_or_else(|| invalid("auth is not base64url"))?;
        let auth: [u8; 16] = auth
            .try_into()
            .map_err(|_| invalid("auth must decode to 16 bytes"))?;
        Ok(Subscription {
            endpoint,
            origin,
            p256dh,
            auth,
        })
    }

    /// The push resource URL.
    pub fn endpoint(&self) -> &Uri {
        &self.endpoint
    }

    /// The endpoint's origin (`https://host[:port]`, default port left out): the VAPID
    /// `aud`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The user agent's public key.
    pub fn p256dh(&self) -> &PublicKey {
        &self.p256dh
    }

    /// The authentication secret.
    pub fn auth(&self) -> &[u8; 16] {
        &self.auth
    }

    /// `p256dh` as stored: base64url of the uncompressed point.
    pub fn p256dh_base64url(&self) -> String {
        b64::url_encode(self.p256dh.to_encoded_point(false).as_bytes())
    }

    /// `auth` as stored: base64url.
    pub fn auth_base64url(&self) -> String {
        b64::url_encode(&self.auth)
    }
}

/// Parses an endpoint; returns it with its origin.
fn parse_endpoint(endpoint: &str, allow_http: bool) -> Result<(Uri, String), Error> {
    if endpoint.len() > MAX_ENDPOINT_BYTES {
        return Err(invalid("endpoint is longer than 2048 bytes"));
    }
    let uri: Uri = endpoint
        .parse()
        .map_err(|_| invalid("endpoint is not a URL"))?;
    let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" if allow_http => 80,
        _ => return Err(invalid("endpoint must be an https:// URL")),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| invalid("endpoint has no host"))?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(invalid("endpoint must name a host and no user info"));
    }
    let host = authority.host().to_ascii_lowercase();
    let origin = match authority.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    };
    Ok((uri, origin))
}

/// The origin of an endpoint URL (what [`verify_vapid`] expects as `aud`), for fakes
/// that know only the URL they were called on. `http://` is accepted here.
pub fn origin_of(endpoint: &str) -> Result<String, Error> {
    parse_endpoint(endpoint, true).map(|(_, origin)| origin)
}

/// RFC 8030 §5.3 urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// `very-low`: on power and Wi-Fi only.
    VeryLow,
    /// `low`.
    Low,
    /// `normal`.
    Normal,
    /// `high`: wakes the device (messages).
    High,
}

impl Urgency {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::VeryLow => "very-low",
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }
}

/// Per-message headers of a Web Push request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `TTL` in seconds: how long the push service keeps an undelivered message.
    pub ttl_secs: u32,
    /// `Urgency`.
    pub urgency: Urgency,
    /// `Topic`: at most 32 base64url characters (RFC 8030 §5.4).
    pub topic: Option<String>,
}

/// Checks a `Topic` value.
fn check_topic(topic: &str) -> Result<(), Error> {
    let ok = !topic.is_empty()
        && topic.len() <= TOPIC_CHARS
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::Config(
            "Web Push Topic must be 1-32 base64url characters".into(),
        ))
    }
}

/// The server's Web Push identity: its VAPID key and contact.
#[derive(Debug, Clone)]
pub struct Sender {
    vapid: VapidKey,
    subject: String,
}

impl Sender {
    /// A sender signing with `vapid` and naming `subject` (the `vapid_subject`
    /// variable: `mailto:` or `https:`).
    pub fn new(vapid: VapidKey, subject: &str) -> Result<Sender, Error> {
        check_subject(subject)?;
        Ok(Sender {
            vapid,
            subject: subject.to_string(),
        })
    }

    /// The public key browsers subscribe with.
    pub fn public_key(&self) -> String {
        self.vapid.public_key()
    }

    /// The push of `n` to `sub`: [`Notification::json`] encrypted, `TTL` a day,
    /// `Urgency: high`, `Topic` of the conversation. `random` is the salt and ephemeral
    /// key ([`encrypt_with_random_bytes`]).
    pub fn request(
        &self,
        sub: &Subscription,
        n: &Notification,
        now_ms: i64,
        random: &[u8; RANDOM_BYTES],
    ) -> Result<Request<Vec<u8>>, Error> {
        let options = Options {
            ttl_secs: DEFAULT_TTL_SECS,
            urgency: Urgency::High,
            topic: Some(n.topic()),
        };
        let body = encrypt_with_random_bytes(sub, n.json().to_string().as_bytes(), random)?;
        self.request_with_body(sub, body, &options, now_ms)
    }

    /// A push request around an already encrypted `body` (from [`encrypt`] or
    /// [`encrypt_with_keys`]).
    pub fn request_with_body(
        &self,
        sub: &Subscription,
        body: Vec<u8>,
        options: &Options,
        now_ms: i64,
    ) -> Result<Request<Vec<u8>>, Error> {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(sub.endpoint().clone())
            .header("TTL", options.ttl_secs)
            .header("Urgency", options.urgency.as_str())
            .header(CONTENT_ENCODING, "aes128gcm")
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, body.len())
            .header(
                AUTHORIZATION,
                self.vapid
                    .authorization(sub.origin(), &self.subject, now_ms),
            );
        if let Some(topic) = &options.topic {
            check_topic(topic)?;
            builder = builder.header("Topic", topic);
        }
        builder
            .body(body)
            .map_err(|e| Error::Config(format!("Web Push request: {e}")))
    }
}

/// What a push service's answer means (RFC 8030 §5, §6.2, §8.3).
pub fn classify<B: AsRef<[u8]>>(answer: &Response<B>, now_ms: i64) -> Outcome {
    let status = answer.status().as_u16();
    let text = || reason_text(String::from_utf8_lossy(answer.body().as_ref()).trim());
    match status {
        200..=299 => Outcome::Delivered,
        404 | 410 => Outcome::TokenGone {
            reason: format!("push service answered {status}: subscription expired or removed"),
        },
        s if is_transient(s) => outcome::retry(answer.headers(), now_ms),
        413 => Outcome::Permanent {
            status,
            reason: "payload too large for the push service".into(),
        },
        _ => Outcome::Permanent {
            status,
            reason: text(),
        },
    }
}

#[cfg(test)]
mod tests;
