//! Firebase Cloud Messaging, HTTP v1 API.
//!
//! - [`ServiceAccount`]: the key file, the RS256 assertion and the token request; the
//!   answer goes through [`crate::oauth::parse_token_answer`] into a
//!   [`TokenCache`](crate::oauth::TokenCache).
//! - [`Client::request`]: `POST {base}/v1/projects/{project}/messages:send` with
//!   `{"message":{"token", "data", "android", "apns", "webpush"}}`.
//! - [`classify`]: 200 delivered; `UNREGISTERED` (404), or 400 `INVALID_ARGUMENT` about
//!   the registration token → token gone; 401 → refresh the access token; 429 / 5xx →
//!   retry (`Retry-After` honoured); anything else permanent. `SENDER_ID_MISMATCH` (403)
//!   stays permanent: it means the project is misconfigured, and deleting every token
//!   on a configuration slip would be worse.

mod account;

pub use account::{
    ASSERTION_TTL_SECS, AssertionClaims, CLOCK_SKEW_SECS, GRANT_TYPE, SCOPE, ServiceAccount,
    read_token_request, verify_assertion,
};

use http::{Request, Response};
use serde_json::{Value, json};

use crate::Error;
use crate::apns::{self, PushType};
use crate::base_url::check_base_url;
use crate::notification::Notification;
use crate::oauth::{AccessToken, bearer_json_post};
use crate::outcome::{self, Outcome, is_transient, reason_text};
use crate::token::RegistrationToken;

/// Google's FCM host.
pub const BASE: &str = "https://fcm.googleapis.com";
/// How long FCM keeps an undelivered message, in seconds.
pub const DEFAULT_TTL_SECS: u64 = 24 * 3600;
/// FCM's limit on a message's `data`, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// Checks a project id: it is a path segment of the send URL.
pub(crate) fn check_project_id(id: &str) -> Result<(), Error> {
    let ok = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(Error::Config(
            "FCM project_id has characters a project id cannot".into(),
        ))
    }
}

/// The `message` of `n` for `token`: `data` (every value a string), Android high
/// priority with the conversation as collapse key (the app draws the notification),
/// the APNs payload of [`apns::payload`] for iOS apps, and Web Push headers.
pub fn message(token: &RegistrationToken, n: &Notification) -> Value {
    let topic = n.topic();
    let ttl = format!("{DEFAULT_TTL_SECS}s");
    json!({
        "message": {
            "token": token.as_str(),
            "data": n.data_strings(),
            "android": {
                "priority": "high",
                "ttl": ttl,
                "collapse_key": topic,
            },
            "apns": {
                "headers": {
                    "apns-push-type": "alert",
                    "apns-priority": "10",
                    "apns-collapse-id": topic,
                },
                "payload": apns::payload(n, PushType::Alert),
            },
            "webpush": {
                "headers": {
                    "Urgency": "high",
                    "TTL": DEFAULT_TTL_SECS.to_string(),
                    "Topic": topic,
                },
            },
        }
    })
}

/// One Firebase project's send endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    send_url: String,
}

impl Client {
    /// `base` is [`BASE`] or a fake's URL.
    pub fn new(base: &str, project_id: &str) -> Result<Client, Error> {
        check_project_id(project_id)?;
        let base = check_base_url(base, "FCM base URL")?;
        Ok(Client {
            send_url: format!("{base}/v1/projects/{project_id}/messages:send"),
        })
    }

    /// The send URL.
    pub fn send_url(&self) -> &str {
        &self.send_url
    }

    /// The send of `n` to `token`, authorized by `access`.
    pub fn request(
        &self,
        access: &AccessToken,
        token: &RegistrationToken,
        n: &Notification,
    ) -> Result<Request<Vec<u8>>, Error> {
        let data_bytes = json!(n.data_strings()).to_string().len();
        if data_bytes > MAX_MESSAGE_BYTES {
            return Err(Error::TooLarge(format!(
                "FCM data is {data_bytes} bytes, at most {MAX_MESSAGE_BYTES}"
            )));
        }
        let body = message(token, n).to_string().into_bytes();
        bearer_json_post(&self.send_url, access, body)
    }
}

/// The parts of a Google API error body that decide the outcome.
struct GoogleError {
    /// `error.status`, e.g. `INVALID_ARGUMENT`.
    status: String,
    /// `error.message`.
    message: String,
    /// `errorCode` of the `FcmError` detail, e.g. `UNREGISTERED`.
    fcm_code: Option<String>,
    /// Whether a `BadRequest` field violation names `message.token`.
    token_field: bool,
}

fn google_error(body: &[u8]) -> Option<GoogleError> {
    let json: Value = serde_json::from_slice(body).ok()?;
    let error = json.get("error")?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    let details = error.get("details").and_then(Value::as_array);
    let details = details.map(Vec::as_slice).unwrap_or_default();
    let fcm_code = details
        .iter()
        .find_map(|d| d.get("errorCode").and_then(Value::as_str))
        .map(str::to_string);
    let token_field = details
        .iter()
        .filter_map(|d| d.get("fieldViolations").and_then(Value::as_array))
        .flatten()
        .any(|v| v.get("field").and_then(Value::as_str) == Some("message.token"));
    Some(GoogleError {
        status: text(error.get("status")),
        message: text(error.get("message")),
        fcm_code,
        token_field,
    })
}

/// What an FCM answer means.
pub fn classify<B: AsRef<[u8]>>(answer: &Response<B>, now_ms: i64) -> Outcome {
    let status = answer.status().as_u16();
    if status == 200 {
        return Outcome::Delivered;
    }
    if status == 401 {
        return Outcome::RefreshAuth;
    }
    let error = google_error(answer.body().as_ref());
    if let Some(e) = &error {
        let names_token = e.token_field
            || e.message
                .to_ascii_lowercase()
                .contains("registration token");
        if e.fcm_code.as_deref() == Some("UNREGISTERED") {
            return Outcome::TokenGone {
                reason: "UNREGISTERED".into(),
            };
        }
        if status == 400 && e.status == "INVALID_ARGUMENT" && names_token {
            return Outcome::TokenGone {
                reason: format!("INVALID_ARGUMENT: {}", reason_text(&e.message)),
            };
        }
    }
    if is_transient(status) {
        return outcome::retry(answer.headers(), now_ms);
    }
    let reason = match error {
        Some(e) => {
            let code = e.fcm_code.unwrap_or(e.status);
            reason_text(&format!("{code}: {}", e.message))
        }
        None => "no error body".into(),
    };
    Outcome::Permanent { status, reason }
}

#[cfg(test)]
mod tests;
