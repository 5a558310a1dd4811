//! Huawei Push Kit, server API v1.
//!
//! - [`Credentials::token_request`]: OAuth 2.0 client credentials, `POST
//!   {oauth_base}/oauth2/v3/token` with the form `grant_type=client_credentials&
//!   client_id=…&client_secret=…`; the answer goes through
//!   [`crate::oauth::parse_token_answer`] into a [`TokenCache`](crate::oauth::TokenCache).
//! - [`Client::request`]: `POST {base}/v1/{app_id}/messages:send` with
//!   `{"validate_only":false,"message":{"data":…,"token":[…],"android":{…}}}`. `data` is
//!   [`Notification::json`] as a string; with previews on an Android notification shows
//!   sender and text, with previews off the push is a data message only. `bi_tag` is
//!   the message id, so delivery receipts ([`crate::callbacks`]) can be matched to it.
//! - [`classify_batch`] / [`classify`]: the answer `{code, msg, requestId}`: `80000000`
//!   success; `80100000` partial success, the refused tokens in `msg` (a JSON text with
//!   `illegal_tokens`); `80300007` every token invalid → token gone; `80200003` or HTTP
//!   401 → the OAuth token expired, refresh it; HTTP 429 / 5xx → retry; anything else
//!   permanent.

use std::fmt;

use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Response};
use serde_json::{Value, json};

use crate::Error;
use crate::base_url::check_base_url;
use crate::notification::Notification;
use crate::oauth::{AccessToken, bearer_json_post};
use crate::outcome::{self, Outcome, is_transient, reason_text};
use crate::token::RegistrationToken;

/// Huawei's OAuth host.
pub const OAUTH_BASE: &str = "https://oauth-login.cloud.huawei.com";
/// Huawei's Push Kit host.
pub const BASE: &str = "https://push-api.cloud.huawei.com";
/// How long Push Kit keeps an undelivered message, in seconds.
pub const DEFAULT_TTL_SECS: u64 = 24 * 3600;
/// Push Kit takes at most this many tokens per send.
pub const MAX_TOKENS: usize = 1000;

/// Success.
pub const CODE_SUCCESS: &str = "80000000";
/// Some tokens were refused; the others were sent.
pub const CODE_PARTIAL: &str = "80100000";
/// The OAuth access token expired.
pub const CODE_TOKEN_EXPIRED: &str = "80200003";
/// Every token was invalid.
pub const CODE_ALL_TOKENS_INVALID: &str = "80300007";

fn check_app_id(id: &str) -> Result<(), Error> {
    if (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(Error::Config(
            "HMS app id must be 1-32 letters and digits".into(),
        ))
    }
}

/// The app's OAuth client: its app id and app secret. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    client_id: String,
    client_secret: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials(client {}, <secret>)", self.client_id)
    }
}

impl Credentials {
    /// `client_id` is the app id (AppGallery Connect), `client_secret` the app secret.
    pub fn new(client_id: &str, client_secret: &str) -> Result<Credentials, Error> {
        check_app_id(client_id)?;
        if client_secret.is_empty() || client_secret.chars().any(char::is_control) {
            return Err(Error::Config(
                "HMS client secret is empty or has control characters".into(),
            ));
        }
        Ok(Credentials {
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
        })
    }

    /// The app id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// `POST {oauth_base}/oauth2/v3/token` (`oauth_base`: [`OAUTH_BASE`] or a fake's).
    pub fn token_request(&self, oauth_base: &str) -> Result<Request<Vec<u8>>, Error> {
        let base = check_base_url(oauth_base, "HMS OAuth base URL")?;
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", &self.client_secret)
            .finish()
            .into_bytes();
        Request::builder()
            .method(Method::POST)
            .uri(format!("{base}/oauth2/v3/token"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(CONTENT_LENGTH, body.len())
            .body(body)
            .map_err(|e| Error::Config(format!("HMS token request: {e}")))
    }
}

/// The OAuth endpoint's reading of a token request, for the test suite's fake: the
/// `(client_id, client_secret)` of a `client_credentials` form.
pub fn read_token_request(body: &[u8]) -> Result<(String, String), Error> {
    let (mut grant, mut id, mut secret) = (None, None, None);
    for (name, value) in form_urlencoded::parse(body) {
        match name.as_ref() {
            "grant_type" => grant = Some(value.into_owned()),
            "client_id" => id = Some(value.into_owned()),
            "client_secret" => secret = Some(value.into_owned()),
            _ => {}
        }
    }
    if grant.as_deref() != Some("client_credentials") {
        return Err(Error::BadMessage(
            "grant_type is not client_credentials".into(),
        ));
    }
    match (id, secret) {
        (Some(id), Some(secret)) => Ok((id, secret)),
        _ => Err(Error::BadMessage(
            "client_id or client_secret missing".into(),
        )),
    }
}

/// The send body of `n` to `tokens`.
pub fn message(tokens: &[RegistrationToken], n: &Notification) -> Value {
    let mut android = json!({
        "urgency": "HIGH",
        "category": "IM",
        "ttl": DEFAULT_TTL_SECS.to_string(),
        "bi_tag": n.msg_id.as_str(),
        "collapse_key": -1,
    });
    if let (Some((sender, text)), Some(map)) = (n.clipped_preview(), android.as_object_mut()) {
        map.insert(
            "notification".into(),
            json!({"title": sender, "body": text, "click_action": {"type": 3}, "tag": n.topic()}),
        );
    }
    let tokens: Vec<&str> = tokens.iter().map(RegistrationToken::as_str).collect();
    json!({
        "validate_only": false,
        "message": {
            "data": n.json().to_string(),
            "token": tokens,
            "android": android,
        }
    })
}

/// One HMS app's send endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    send_url: String,
}

impl Client {
    /// `base` is [`BASE`] or a fake's URL; `app_id` the AppGallery app id.
    pub fn new(base: &str, app_id: &str) -> Result<Client, Error> {
        check_app_id(app_id)?;
        let base = check_base_url(base, "HMS base URL")?;
        Ok(Client {
            send_url: format!("{base}/v1/{app_id}/messages:send"),
        })
    }

    /// The send URL.
    pub fn send_url(&self) -> &str {
        &self.send_url
    }

    /// The send of `n` to 1–[`MAX_TOKENS`] `tokens`, authorized by `access`.
    pub fn request(
        &self,
        access: &AccessToken,
        tokens: &[RegistrationToken],
        n: &Notification,
    ) -> Result<Request<Vec<u8>>, Error> {
        if tokens.is_empty() || tokens.len() > MAX_TOKENS {
            return Err(Error::Config(format!(
                "an HMS send takes 1-{MAX_TOKENS} tokens, not {}",
                tokens.len()
            )));
        }
        let body = message(tokens, n).to_string().into_bytes();
        bearer_json_post(&self.send_url, access, body)
    }
}

/// The meaning of an answer to a send to several tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// For the send as a whole (`Delivered` also on partial success).
    pub outcome: Outcome,
    /// Tokens Push Kit refused on partial success: delete them.
    pub illegal_tokens: Vec<String>,
}

/// The tokens named in a partial-success `msg`: the list `illegal_tokens` of the v1
/// API (or `illegalTokens`). The v3 API's object of lists by cause (`{"noRight": […]}`)
/// is ignored on purpose: such causes are permissions, not dead tokens.
fn illegal_tokens(msg: &str) -> Vec<String> {
    let Ok(json) = serde_json::from_str::<Value>(msg) else {
        return Vec::new();
    };
    json.get("illegal_tokens")
        .or_else(|| json.get("illegalTokens"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// What a Push Kit answer means for a send to any number of tokens.
pub fn classify_batch<B: AsRef<[u8]>>(answer: &Response<B>, now_ms: i64) -> Verdict {
    let status = answer.status().as_u16();
    let json: Option<Value> = serde_json::from_slice(answer.body().as_ref()).ok();
    let field = |name: &str| -> Option<String> {
        match json.as_ref()?.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let (code, msg) = (field("code"), field("msg").unwrap_or_default());
    let verdict = |outcome| Verdict {
        outcome,
        illegal_tokens: Vec::new(),
    };
    match code.as_deref() {
        Some(CODE_TOKEN_EXPIRED) => verdict(Outcome::RefreshAuth),
        _ if status == 401 => verdict(Outcome::RefreshAuth),
        _ if is_transient(status) => verdict(outcome::retry(answer.headers(), now_ms)),
        Some(CODE_SUCCESS) if status == 200 => verdict(Outcome::Delivered),
        Some(CODE_PARTIAL) => Verdict {
            outcome: Outcome::Delivered,
            illegal_tokens: illegal_tokens(&msg),
        },
        Some(CODE_ALL_TOKENS_INVALID) => verdict(Outcome::TokenGone {
            reason: format!("{CODE_ALL_TOKENS_INVALID}: {}", reason_text(&msg)),
        }),
        Some(code) => verdict(Outcome::Permanent {
            status,
            reason: reason_text(&format!("{code}: {msg}")),
        }),
        None => verdict(Outcome::Permanent {
            status,
            reason: "no result code".into(),
        }),
    }
}

/// What a Push Kit answer means for a send to one token: a partial success that
/// refused it is [`Outcome::TokenGone`].
pub fn classify<B: AsRef<[u8]>>(answer: &Response<B>, now_ms: i64) -> Outcome {
    let verdict = classify_batch(answer, now_ms);
    if verdict.outcome == Outcome::Delivered && !verdict.illegal_tokens.is_empty() {
        return Outcome::TokenGone {
            reason: format!("{CODE_PARTIAL}: token refused"),
        };
    }
    verdict.outcome
}

#[cfg(test)]
mod tests;
