//! HMS (Huawei Push Kit) delivery receipts.
//!
//! Authentication, as Huawei documents it (Push Kit "message receipt" guide and API
//! reference): when a callback user name and key are configured in AppGallery Connect,
//! each receipt carries
//! `X-HUAWEI-CALLBACK-ID: timestamp=<ms>;nonce=<uuid>;value=<base64>` with
//! `value = Base64(HMAC-SHA256(key, timestamp + nonce + userName))` — the strings
//! concatenated as sent, no separators. The key is the configured secret *base64-decoded*
//! for current configurations ([`HmsCallbackKey::from_base64_secret`]) and its UTF-8
//! bytes for old ones ([`HmsCallbackKey::from_utf8_secret`]).
//!
//! Huawei's scheme does not sign the body, so the header proves only that Huawei sent
//! *a* receipt recently: `timestamp` must be within 5 minutes of now, and the shell
//! should remember nonces for that window ([`HmsCallbackAuth::nonce`]) so a captured
//! header cannot be replayed. A timestamp below 10^11 is read as seconds (one version of
//! the docs says "Unix timestamp"), anything else as milliseconds.
//!
//! Receipts: `{"statuses":[{"token","status","biTag","appid","timestamp","requestId"}]}`
//! (v1) or with `deliveryStatus: {result, timestamp}` in place of `status` (v2). Result
//! 0 is delivered; 2 (app uninstalled) and 5 (token does not match) mean the token is
//! invalid; everything else (6 notifications off, 10 inactive device, …) is kept as
//! `Other` with its code.

use std::fmt;

use hmac::{Hmac, Mac as _};
use serde_json::Value;
use sha2::Sha256;

use crate::{Error, b64};

/// The header Huawei sends.
pub const HMS_CALLBACK_HEADER: &str = "X-HUAWEI-CALLBACK-ID";
/// The body to answer a receipt with (HTTP 200).
pub const HMS_CALLBACK_REPLY: &str = r#"{"code":"0","message":"success"}"#;
/// How far `timestamp` may be from now, either way.
pub const HMS_REPLAY_WINDOW_MS: i64 = 5 * 60 * 1000;
/// The most receipts one body may hold (v1 merges up to 1000).
pub const MAX_RECEIPTS: usize = 1000;
/// The longest header parsed, in bytes.
const MAX_HEADER_BYTES: usize = 1024;

/// The callback user name and key configured in AppGallery Connect. `Debug` hides the
/// key.
#[derive(Clone)]
pub struct HmsCallbackKey {
    user_name: String,
    mac: Hmac<Sha256>,
}

impl fmt::Debug for HmsCallbackKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HmsCallbackKey(user {}, <secret>)", self.user_name)
    }
}

impl HmsCallbackKey {
    fn new(user_name: &str, key: &[u8]) -> Result<HmsCallbackKey, Error> {
        // Huawei sends the header only when both are configured, and API.md wants every
        // callback authenticated.
        if user_name.is_empty() || key.is_empty() {
            return Err(Error::Config(
                "HMS callback user name and secret must both be set".into(),
            ));
        }
        let mac = Hmac::<Sha256>::new_from_slice(key)
            .map_err(|_| Error::Config("HMS callback secret unusable as an HMAC key".into()))?;
        Ok(HmsCallbackKey {
            user_name: user_name.to_string(),
            mac,
        })
    }

    /// A current configuration: the secret as AppGallery Connect shows it, base64.
    pub fn from_base64_secret(user_name: &str, secret: &str) -> Result<HmsCallbackKey, Error> {
        let key = b64::std_decode(secret.trim())
            .ok_or_else(|| Error::Config("HMS callback secret is not base64".into()))?;
        HmsCallbackKey::new(user_name, &key)
    }

    /// An old configuration: the secret's UTF-8 bytes are the key.
    pub fn from_utf8_secret(user_name: &str, secret: &str) -> Result<HmsCallbackKey, Error> {
        HmsCallbackKey::new(user_name, secret.as_bytes())
    }

    fn mac_of(&self, timestamp: &str, nonce: &str) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(timestamp.as_bytes());
        mac.update(nonce.as_bytes());
        mac.update(self.user_name.as_bytes());
        mac
    }
}

/// A verified `X-HUAWEI-CALLBACK-ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmsCallbackAuth {
    /// The header's timestamp, Unix ms.
    pub timestamp_ms: i64,
    /// The header's nonce: remember it for the replay window and refuse a repeat.
    pub nonce: String,
}

/// The header value Huawei would send at `timestamp_ms` with `nonce` (for fakes).
pub fn sign_hms(key: &HmsCallbackKey, timestamp_ms: i64, nonce: &str) -> String {
    let timestamp = timestamp_ms.to_string();
    let value = b64::std_encode(&key.mac_of(&timestamp, nonce).finalize().into_bytes());
    format!("timestamp={timestamp};nonce={nonce};value={value}")
}

/// Checks an `X-HUAWEI-CALLBACK-ID` value at `now_ms`.
pub fn verify_hms(
    key: &HmsCallbackKey,
    header: &str,
    now_ms: i64,
) -> Result<HmsCallbackAuth, Error> {
    let refuse = |why: &str| Error::Unauthenticated(format!("{HMS_CALLBACK_HEADER}: {why}"));
    if header.len() > MAX_HEADER_BYTES {
        return Err(refuse("too long"));
    }
    let (mut timestamp, mut nonce, mut value) = (None, None, None);
    for part in header.split(';') {
        let (name, v) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| refuse("malformed"))?;
        let slot = match name.trim() {
            "timestamp" => &mut timestamp,
            "nonce" => &mut nonce,
            "value" => &mut value,
            _ => continue,
        };
        if slot.replace(v.trim()).is_some() {
            return Err(refuse("a parameter is given twice"));
        }
    }
    let (timestamp, nonce, value) = match (timestamp, nonce, value) {
        (Some(t), Some(n), Some(v)) => (t, n, v),
        _ => return Err(refuse("timestamp, nonce and value are required")),
    };
    let digits = !timestamp.is_empty()
        && timestamp.len() <= 15
        && timestamp.bytes().all(|b| b.is_ascii_digit());
    let stamp: i64 = match digits.then(|| timestamp.parse().ok()).flatten() {
        Some(stamp) => stamp,
        None => return Err(refuse("timestamp is not a Unix time")),
    };
    let timestamp_ms = if stamp < 100_000_000_000 {
        stamp * 1000
    } else {
        stamp
    };
    if nonce.is_empty() || nonce.len() > 128 || nonce.chars().any(char::is_control) {
        return Err(refuse("bad nonce"));
    }
    if now_ms.abs_diff(timestamp_ms) > HMS_REPLAY_WINDOW_MS.unsigned_abs() {
        return Err(refuse("timestamp is outside the replay window"));
    }
    let tag = b64::std_decode(value).ok_or_else(|| refuse("value is not base64"))?;
    key.mac_of(timestamp, nonce)
        .verify_slice(&tag)
        .map_err(|_| refuse("signature does not match"))?;
    Ok(HmsCallbackAuth {
        timestamp_ms,
        nonce: nonce.to_string(),
    })
}

/// What a receipt says about the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptStatus {
    /// Result 0: on the device.
    Delivered,
    /// Results 2 (uninstalled) and 5 (token mismatch): delete the token.
    TokenInvalid,
    /// Anything else (notifications off, inactive device, flow control, …).
    Other,
}

impl ReceiptStatus {
    /// The status of a Huawei result code.
    pub fn of_code(code: i64) -> ReceiptStatus {
        match code {
            0 => ReceiptStatus::Delivered,
            2 | 5 => ReceiptStatus::TokenInvalid,
            _ => ReceiptStatus::Other,
        }
    }
}

/// One delivery receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The push token it is about.
    pub token: String,
    /// [`ReceiptStatus::of_code`] of `code`.
    pub status: ReceiptStatus,
    /// Huawei's result code.
    pub code: i64,
    /// `biTag`: the message id the push carried.
    pub bi_tag: Option<String>,
    /// `requestId` of the send.
    pub request_id: Option<String>,
    /// `appid` (v1 only).
    pub app_id: Option<String>,
    /// When it reached the device (or the receipt was made), Unix ms.
    pub timestamp_ms: Option<i64>,
}

/// Parses a receipt body, v1 or v2.
pub fn parse_hms_receipts(body: &[u8]) -> Result<Vec<Receipt>, Error> {
    let bad = |why: &str| Error::BadMessage(format!("HMS receipt: {why}"));
    let json: Value = serde_json::from_slice(body).map_err(|_| bad("not JSON"))?;
    let statuses = json
        .get("statuses")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no statuses list"))?;
    if statuses.len() > MAX_RECEIPTS {
        return Err(bad("more than 1000 statuses"));
    }
    let text = |v: &Value, name: &str| {
        v.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    statuses
        .iter()
        .map(|entry| {
            let token = text(entry, "token").ok_or_else(|| bad("a status without token"))?;
            let delivery = entry.get("deliveryStatus");
            let code = entry
                .get("status")
                .or_else(|| delivery.and_then(|d| d.get("result")))
                .and_then(Value::as_i64)
                .ok_or_else(|| bad("a status without a result code"))?;
            let timestamp_ms = entry
                .get("timestamp")
                .or_else(|| delivery.and_then(|d| d.get("timestamp")))
                .and_then(Value::as_i64);
            Ok(Receipt {
                token,
                status: ReceiptStatus::of_code(code),
                code,
                bi_tag: text(entry, "biTag"),
                request_id: text(entry, "requestId"),
                app_id: text(entry, "appid"),
                timestamp_ms,
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "hms_tests.rs"]
mod tests;
