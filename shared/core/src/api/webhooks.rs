//! Webhook subscriptions (admin token): `PUT`/`GET`/`DELETE /v1/webhooks/{id}`,
//! `GET /v1/webhooks?org=`; the URL rules and the allowed-origin patterns
//! (`webhook_allowed_origins`) a webhook URL must match.

use serde::{Deserialize, Serialize};

use super::query::{Seen, pairs};
use super::{RequestBody, dedup_in_order};
use crate::config::Config;
use crate::error::Error;
use crate::ids::{OrgId, WebhookId};

/// The longest webhook URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// The shortest and longest signing secret, in bytes.
pub const SECRET_BYTES: std::ops::RangeInclusive<usize> = 16..=256;

/// What a webhook can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WebhookEvent {
    /// A message was stored (the sender's org).
    #[serde(rename = "message.sent")]
    MessageSent,
    /// A message was recalled (the sender's org).
    #[serde(rename = "message.recalled")]
    MessageRecalled,
    /// Messages were marked read (the reader's org).
    #[serde(rename = "message.read")]
    MessageRead,
}

impl WebhookEvent {
    /// The event's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::MessageSent => "message.sent",
            WebhookEvent::MessageRecalled => "message.recalled",
            WebhookEvent::MessageRead => "message.read",
        }
    }
}

/// `PUT /v1/webhooks/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PutWebhook {
    /// Whose events: those of this org's users.
    pub org: OrgId,
    /// Where they are POSTed: an absolute `https://` (or allowed `http://`) URL.
    pub url: String,
    /// At least one; repeats are dropped.
    pub events: Vec<WebhookEvent>,
    /// The HMAC-SHA256 key of `X-Courier-Signature`, 16–256 bytes.
    pub secret: String,
}

impl RequestBody for PutWebhook {
    fn validate(mut self, _config: &Config) -> Result<Self, Error> {
        self.events = dedup_in_order(self.events);
        if self.events.is_empty() {
            return Err(Error::BadRequest(
                "events must name at least one of message.sent, message.recalled, message.read"
                    .into(),
            ));
        }
        if self.secret.contains('\0') {
            // PostgreSQL text cannot hold NUL: refused on every store alike.
            return Err(Error::BadRequest("secret must not contain NUL".into()));
        }
        if !SECRET_BYTES.contains(&self.secret.len()) {
            return Err(Error::BadRequest(format!(
                "secret must be {} to {} bytes",
                SECRET_BYTES.start(),
                SECRET_BYTES.end()
            )));
        }
        Origin::of_url(&self.url)?;
        Ok(self)
    }
}

/// A webhook as the admin routes show it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookResponse {
    pub id: WebhookId,
    pub org: OrgId,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    /// Unix ms of the first `PUT`.
    pub created_at: i64,
    /// Unix ms of the latest `PUT`.
    pub updated_at: i64,
}

/// `GET /v1/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhooksResponse {
    /// In id order.
    pub webhooks: Vec<WebhookResponse>,
}

/// `GET /v1/webhooks?org=<org>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebhooksQuery {
    /// Only this org's webhooks; `None`: all.
    pub org: Option<OrgId>,
}

impl WebhooksQuery {
    /// Parses the query string (unknown keys are ignored; `org` may be
    /// percent-encoded).
    pub fn parse(query: &str) -> Result<WebhooksQuery, Error> {
        let mut parsed = WebhooksQuery::default();
        let mut seen = Seen::default();
        for (key, value) in pairs(query) {
            if key == "org" {
                seen.first("org")?;
                parsed.org = Some(OrgId::parse(&percent_decoded(value)?)?);
            }
        }
        Ok(parsed)
    }
}

fn percent_decoded(value: &str) -> Result<String, Error> {
    let bad = || Error::BadRequest("org is not a valid org id".into());
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3).ok_or_else(bad)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// The origin of a webhook URL: scheme, host (lowercase) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// The origin of an absolute `http`/`https` URL without credentials or fragment;
    /// anything else is a bad request. Hosts of Spin's in-app service chaining
    /// (`*.spin.internal`) are refused: a webhook must not reach the app itself.
    pub fn of_url(url: &str) -> Result<Origin, Error> {
        let bad = |why: &str| Error::BadRequest(format!("url {why}"));
        if url.len() > MAX_URL_BYTES {
            return Err(bad(&format!("is over {MAX_URL_BYTES} bytes")));
        }
        if url.bytes().any(|b| b <= b' ' || b >= 0x7f) {
            return Err(bad("has spaces, control or non-ASCII characters"));
        }
        if url.contains('#') {
            return Err(bad("has a fragment"));
        }
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("must be absolute (https://…)"))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return Err(bad("must be http or https")),
        };
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(bad("must not carry credentials"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.starts_with('[') || host.ends_with(']') => {
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad("has an invalid port"))?;
                (host, port)
            }
            _ => (authority, default_port),
        };
        let valid_host = !host.is_empty()
            && (host.starts_with('[') && host.ends_with(']')
                || host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'));
        if !valid_host {
            return Err(bad("has an invalid host"));
        }
        let host = host.to_ascii_lowercase();
        if host.trim_end_matches('.').ends_with(".spin.internal") {
            return Err(bad("must not name a component of this app"));
        }
        Ok(Origin { scheme, host, port })
    }
}

/// One entry of `webhook_allowed_origins`: `scheme://host[:port]`, where host may be
/// `*` or `*.domain` and port `*` (no port: the scheme's default) — the syntax of
/// Spin's `allowed_outbound_hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl OriginPattern {
    /// Parses a comma-separated list; a malformed entry is a configuration error.
    pub fn parse_list(list: &str) -> Result<Vec<OriginPattern>, Error> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(OriginPattern::parse)
            .collect()
    }

    fn parse(entry: &str) -> Result<OriginPattern, Error> {
        let bad = || Error::Config(format!("webhook_allowed_origins: invalid entry {entry:?}"));
        let (scheme, rest) = entry.split_once("://").ok_or_else(bad)?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return Err(bad()),
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, "*")) => (host, None),
            Some((host, port)) => (host, Some(port.parse::<u16>().map_err(|_| bad())?)),
            None => (rest, Some(default_port)),
        };
        // One leading `*.` at most: `*.*.example` is no pattern Spin documents.
        let wildcard_ok = host == "*" || !host.strip_prefix("*.").unwrap_or(host).contains('*');
        if host.is_empty() || host.contains('/') || !wildcard_ok {
            return Err(bad());
        }
        Ok(OriginPattern {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// Whether `origin` matches this entry.
    pub fn allows(&self, origin: &Origin) -> bool {
        let host = match self.host.strip_prefix('*') {
            None => self.host == origin.host,
            Some("") => true,
            Some(suffix) => origin.host.ends_with(suffix) && origin.host.len() > suffix.len(),
        };
        self.scheme == origin.scheme && host && self.port.is_none_or(|p| p == origin.port)
    }
}

/// Checks a webhook URL against the allowed origins (400 if none allows it).
pub fn check_url(url: &str, allowed: &[OriginPattern]) -> Result<Origin, Error> {
    let origin = Origin::of_url(url)?;
    if allowed.iter().any(|p| p.allows(&origin)) {
        Ok(origin)
    } else {
        Err(Error::BadRequest(format!(
            "url: {}://{}:{} is not an allowed webhook origin (webhook_allowed_origins)",
            origin.scheme, origin.host, origin.port
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::parse_request;
    use serde_json::json;

    fn put(body: serde_json::Value) -> Result<PutWebhook, Error> {
        parse_request(body.to_string().as_bytes(), &Config::default())
    }

    fn good() -> serde_json::Value {
        json!({"org": "acme", "url": "https://crm.example/hook?x=1",
               "events": ["message.sent", "message.read", "message.sent"],
               "secret": "0123456789abcdef"})
    }

    #[test]
    fn a_webhook_needs_an_org_a_url_known_events_and_a_long_enough_secret() {
        let hook = put(good()).expect("valid");
        assert_eq!(
            hook.events,
            [WebhookEvent::MessageSent, WebhookEvent::MessageRead],
            "repeats dropped"
        );
        for (field, value) in [
            ("org", json!("a cme")),
            ("url", json!("ftp://crm.example")),
            ("url", json!("crm.example/hook")),
            ("url", json!("https://user:pw@crm.example/")),
            ("url", json!("https://crm.example/#frag")),
            ("url", json!("https://crm example/")),
            ("url", json!("https://worker.spin.internal/internal/drain")),
            ("url", json!("https://crm.example:0/")),
            ("url", json!("https://crm.example:70000/")),
            ("events", json!([])),
            ("events", json!(["message.deleted"])),
            ("secret", json!("short")),
            ("secret", json!("x".repeat(257))),
            ("secret", json!("0123456789abcdef\u{0}")),
        ] {
            let mut body = good();
            body[field] = value.clone();
            assert_eq!(
                put(body).map(|_| ()).map_err(|e| e.code()),
                Err("bad_request"),
                "{field}: {value}"
            );
        }
        for missing in ["org", "url", "events", "secret"] {
            let mut body = good();
            body.as_object_mut().unwrap().remove(missing);
            assert!(put(body).is_err(), "{missing}");
        }
    }

    #[test]
    fn origins_follow_the_allowed_outbound_hosts_syntax() {
        let allowed =
            OriginPattern::parse_list("https://*:*, http://127.0.0.1:*, https://*.corp.example")
                .expect("valid");
        for (url, ok) in [
            ("https://crm.example/hook", true),
            ("https://crm.example:8443/hook", true),
            ("http://127.0.0.1:9000/hook", true),
            ("http://127.0.0.1/hook", true),
            ("http://crm.example/hook", false),
            ("http://localhost:9000/", false),
        ] {
            assert_eq!(check_url(url, &allowed).is_ok(), ok, "{url}");
        }
        let https_only = OriginPattern::parse_list("https://*").expect("valid");
        assert!(check_url("https://a.example/", &https_only).is_ok());
        assert!(check_url("https://a.example:8443/", &https_only).is_err());
        let corp = OriginPattern::parse_list("https://*.corp.example").expect("valid");
        assert!(check_url("https://crm.corp.example/", &corp).is_ok());
        assert!(check_url("https://corp.example/", &corp).is_err());
        assert!(check_url("https://evilcorp.example/", &corp).is_err());
        for bad in [
            "crm.example",
            "ftp://x",
            "https://a*b.example",
            "https://*.*.example",
            "https://*.a.*.example",
            "https://x:port",
        ] {
            assert!(OriginPattern::parse_list(bad).is_err(), "{bad}");
        }
        assert_eq!(OriginPattern::parse_list(" , ").expect("empty"), vec![]);
    }

    #[test]
    fn the_list_query_takes_an_optional_org() {
        assert_eq!(WebhooksQuery::parse("").expect("valid").org, None);
        let q = WebhooksQuery::parse("org=a%3Ab&_=1").expect("valid");
        assert_eq!(q.org.map(OrgId::into_string).as_deref(), Some("a:b"));
        for bad in ["org=a%2", "org=a%20b", "org=", "org=a&org=b"] {
            assert!(WebhooksQuery::parse(bad).is_err(), "{bad}");
        }
    }
}
