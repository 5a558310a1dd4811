//! What each fake vendor checks before it accepts a request, as the real one does, and
//! what it reads out of an accepted one. A refusal carries the vendor's own answer.

use courier_push::{apns, fcm, hms, webpush};
use serde_json::{Map, Value, json};

use super::wire::{Answer, WireRequest};
use super::{
    APNS_KEY_ID, APNS_TEAM, APNS_TOPIC, FCM_CLIENT_EMAIL, FCM_PROJECT, HMS_APP_ID,
    HMS_CLIENT_SECRET, Identities, State, Target,
};

/// An accepted request: its target, and for pushes the notification and body.
pub struct Checked {
    pub target: Target,
    pub notification: Value,
    pub body: Value,
}

/// A refused request: the vendor's answer and, for the test report, why.
pub struct Refusal {
    pub answer: Answer,
    pub why: String,
}

type Checking = Result<Checked, Refusal>;

fn refuse(answer: Answer, why: impl Into<String>) -> Refusal {
    Refusal {
        answer,
        why: why.into(),
    }
}

/// Routes `req` to its vendor's check.
pub fn check(ids: &Identities, state: &State, req: &WireRequest, now: i64) -> Checking {
    let path = req.path.as_str();
    if req.method != "POST" {
        return Err(refuse(Answer::status(405), "vendors take POST only"));
    }
    if let Some(id) = path.strip_prefix("/wp/") {
        return web_push(ids, state, req, id, now);
    }
    if let Some(token) = path.strip_prefix("/3/device/") {
        return apns_push(ids, req, token, now);
    }
    if path == "/token" {
        return fcm_token(ids, req, now);
    }
    if let Some(project) = path
        .strip_prefix("/v1/projects/")
        .and_then(|p| p.strip_suffix("/messages:send"))
    {
        return fcm_send(state, req, project);
    }
    if path == "/oauth2/v3/token" {
        return hms_token(req);
    }
    if let Some(app) = path
        .strip_prefix("/v1/")
        .and_then(|p| p.strip_suffix("/messages:send"))
    {
        return hms_send(state, req, app);
    }
    Err(refuse(Answer::status(404), "no such vendor route"))
}

/// The notification every vendor carries, checked: `type`, `uid`, `conv`, `msg_id`
/// strings, `unread` a count; `sender` and `text` only together.
fn notification(value: Value) -> Result<Value, String> {
    let text = |name: &str| value.get(name).and_then(Value::as_str).is_some();
    if value["type"] != "message" || !text("uid") || !text("conv") || !text("msg_id") {
        return Err(format!("notification lacks type/uid/conv/msg_id: {value}"));
    }
    if !value["unread"].is_u64() {
        return Err(format!("notification unread is not a count: {value}"));
    }
    if value.get("sender").is_some() != value.get("text").is_some() {
        return Err(format!("sender and text come together: {value}"));
    }
    Ok(value)
}

fn is_base64url(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A Web Push service (RFC 8030/8291/8292).
fn web_push(ids: &Identities, state: &State, req: &WireRequest, id: &str, now: i64) -> Checking {
    let Some(keys) = state.subscriptions.get(id) else {
        return Err(refuse(Answer::status(404), "no such subscription"));
    };
    let bad = |why: &str| refuse(Answer::status(400).body(why.to_string()), why);
    if req.header("content-encoding") != Some("aes128gcm") {
        return Err(bad("Content-Encoding is not aes128gcm"));
    }
    let ttl = req.header("ttl").unwrap_or_default();
    if ttl.is_empty() || !ttl.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("TTL is missing or not delta-seconds"));
    }
    if let Some(urgency) = req.header("urgency")
        && !["very-low", "low", "normal", "high"].contains(&urgency)
    {
        return Err(bad("unknown Urgency"));
    }
    if let Some(topic) = req.header("topic")
        && (topic.is_empty() || topic.len() > 32 || !is_base64url(topic))
    {
        return Err(bad("Topic is not 1-32 base64url characters"));
    }
    let authorization = req.header("authorization").unwrap_or_default();
    let claims = webpush::verify_vapid(authorization, &ids.origin, now)
        .map_err(|e| refuse(Answer::status(401), format!("VAPID: {e}")))?;
    if claims.public_key != ids.vapid.public_key() {
        return Err(refuse(
            Answer::status(403),
            "VAPID key is not the subscribed one",
        ));
    }
    let contact_ok = claims
        .sub
        .as_deref()
        .is_some_and(|s| s.starts_with("mailto:") || s.starts_with("https:"));
    if !contact_ok {
        return Err(refuse(
            Answer::status(403),
            "VAPID sub is not a mailto:/https: contact",
        ));
    }
    if req.body.len() > 4096 {
        return Err(refuse(Answer::status(413), "payload over 4096 bytes"));
    }
    let plaintext = webpush::decrypt(&keys.private, &keys.auth, &req.body)
        .map_err(|e| bad(&format!("does not decrypt: {e}")))?;
    let payload = serde_json::from_slice(&plaintext)
        .map_err(|_| bad("the decrypted payload is not JSON"))
        .and_then(|v| notification(v).map_err(|e| bad(&e)))?;
    Ok(Checked {
        target: Target::WebPush(id.to_string()),
        notification: payload,
        body: Value::Null,
    })
}

fn apns_refusal(status: u16, reason: &str) -> Refusal {
    refuse(Answer::json(status, &json!({"reason": reason})), reason)
}

/// APNs with token-based authentication.
fn apns_push(ids: &Identities, req: &WireRequest, token: &str, now: i64) -> Checking {
    let hex = token.len() >= 64 && token.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex {
        return Err(apns_refusal(400, "BadDeviceToken"));
    }
    let jwt = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("bearer "))
        .ok_or_else(|| apns_refusal(403, "MissingProviderToken"))?;
    let claims = apns::verify_provider_token(jwt, &ids.apns.verifying_key(), now)
        .map_err(|e| apns_refusal(403, &format!("InvalidProviderToken ({e})")))?;
    if claims.key_id != APNS_KEY_ID || claims.team_id != APNS_TEAM {
        return Err(apns_refusal(403, "InvalidProviderToken (kid/iss)"));
    }
    match req.header("apns-topic") {
        None => return Err(apns_refusal(400, "MissingTopic")),
        Some(topic) if topic != APNS_TOPIC => return Err(apns_refusal(400, "TopicDisallowed")),
        Some(_) => {}
    }
    let push_type = req.header("apns-push-type").unwrap_or_default();
    if !["alert", "background"].contains(&push_type) {
        return Err(apns_refusal(400, "InvalidPushType"));
    }
    match (push_type, req.header("apns-priority")) {
        ("alert", Some("10" | "5" | "1")) | ("background", Some("5" | "1")) => {}
        _ => return Err(apns_refusal(400, "BadPriority")),
    }
    let expiration = req.header("apns-expiration").unwrap_or("0");
    if !expiration.bytes().all(|b| b.is_ascii_digit()) {
        return Err(apns_refusal(400, "BadExpirationDate"));
    }
    if req.header("apns-collapse-id").is_some_and(|c| c.len() > 64) {
        return Err(apns_refusal(400, "BadCollapseId"));
    }
    if req.body.len() > apns::MAX_PAYLOAD_BYTES {
        return Err(apns_refusal(413, "PayloadTooLarge"));
    }
    let mut body: Map<String, Value> =
        serde_json::from_slice(&req.body).map_err(|_| apns_refusal(400, "PayloadEmpty"))?;
    let aps = body.remove("aps").unwrap_or_default();
    let visible = ["alert", "badge", "sound"]
        .iter()
        .any(|k| aps.get(k).is_some());
    if !aps.is_object() || (push_type == "alert" && !visible) {
        return Err(apns_refusal(400, "PayloadEmpty"));
    }
    let payload = notification(Value::Object(body.clone())).map_err(|e| {
        let mut refusal = apns_refusal(400, "BadPayload");
        refusal.why = e;
        refusal
    })?;
    body.insert("aps".into(), aps);
    Ok(Checked {
        target: Target::Apns(token.to_string()),
        notification: payload,
        body: Value::Object(body),
    })
}

/// Google's OAuth token endpoint, JWT bearer grant.
fn fcm_token(ids: &Identities, req: &WireRequest, now: i64) -> Checking {
    let oauth = |error: &str, why: String| {
        refuse(
            Answer::json(400, &json!({"error": error, "error_description": why})),
            why,
        )
    };
    if req.header("content-type") != Some("application/x-www-form-urlencoded") {
        return Err(oauth("invalid_request", "not a form".into()));
    }
    let assertion = fcm::read_token_request(&req.body)
        .map_err(|e| oauth("unsupported_grant_type", e.to_string()))?;
    let token_uri = format!("{}/token", ids.origin);
    let claims = fcm::verify_assertion(&assertion, &ids.fcm.public_key(), &token_uri, now)
        .map_err(|e| oauth("invalid_grant", e.to_string()))?;
    if claims.iss != FCM_CLIENT_EMAIL {
        return Err(oauth(
            "invalid_grant",
            "iss is not the service account".into(),
        ));
    }
    if !claims.scope.split(' ').any(|s| s == fcm::SCOPE) {
        return Err(oauth("invalid_scope", format!("scope {}", claims.scope)));
    }
    Ok(Checked {
        target: Target::FcmOAuth,
        notification: Value::Null,
        body: Value::Null,
    })
}

/// The bearer token of `req` if the fake issued it to `issuer`.
fn bearer<'a>(state: &State, req: &'a WireRequest, issuer: &Target) -> Option<&'a str> {
    let token = req.header("authorization")?.strip_prefix("Bearer ")?;
    (state.access_tokens.get(token) == Some(issuer)).then_some(token)
}

fn is_json(req: &WireRequest) -> bool {
    req.header("content-type")
        .is_some_and(|t| t.starts_with("application/json"))
}

/// FCM HTTP v1 `messages:send`.
fn fcm_send(state: &State, req: &WireRequest, project: &str) -> Checking {
    let google = |status: u16, code: &str, why: String| {
        let body = json!({"error": {"code": status, "message": why, "status": code}});
        refuse(Answer::json(status, &body), why)
    };
    if project != FCM_PROJECT {
        return Err(google(
            403,
            "PERMISSION_DENIED",
            format!("project {project}"),
        ));
    }
    if bearer(state, req, &Target::FcmOAuth).is_none() {
        return Err(google(
            401,
            "UNAUTHENTICATED",
            "no valid access token".into(),
        ));
    }
    let invalid = |why: &str| google(400, "INVALID_ARGUMENT", why.to_string());
    if !is_json(req) {
        return Err(invalid("not JSON"));
    }
    let body: Value = serde_json::from_slice(&req.body).map_err(|_| invalid("not JSON"))?;
    let message = &body["message"];
    let token = message["token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("message.token is required"))?;
    if message.get("topic").is_some() || message.get("condition").is_some() {
        return Err(invalid("one of token, topic, condition"));
    }
    let data = message["data"]
        .as_object()
        .ok_or_else(|| invalid("message.data is not a map"))?;
    if !data.values().all(Value::is_string) || message["data"].to_string().len() > 4096 {
        return Err(invalid("message.data values must be strings, 4 KiB in all"));
    }
    let android = &message["android"];
    if !["normal", "high"].contains(&android["priority"].as_str().unwrap_or("normal")) {
        return Err(invalid("android.priority"));
    }
    if let Some(ttl) = android.get("ttl") {
        let secs = ttl.as_str().and_then(|t| t.strip_suffix('s'));
        if !secs.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())) {
            return Err(invalid("android.ttl is not a duration like 86400s"));
        }
    }
    for headers in [&message["apns"]["headers"], &message["webpush"]["headers"]] {
        if !headers
            .as_object()
            .is_none_or(|h| h.values().all(Value::is_string))
        {
            return Err(invalid("header values must be strings"));
        }
    }
    let mut fields = data.clone();
    if let Some(unread) = fields.get("unread").and_then(Value::as_str) {
        let unread: u64 = unread
            .parse()
            .map_err(|_| invalid("unread is not a count"))?;
        fields.insert("unread".into(), unread.into());
    }
    let payload = notification(Value::Object(fields)).map_err(|e| invalid(&e))?;
    Ok(Checked {
        target: Target::Fcm(token.to_string()),
        notification: payload,
        body,
    })
}

/// Huawei's OAuth endpoint, client credentials.
fn hms_token(req: &WireRequest) -> Checking {
    let refused = |why: String| {
        let body = json!({"error": 1101, "sub_error": 20400, "error_description": why});
        refuse(Answer::json(400, &body), why)
    };
    if req.header("content-type") != Some("application/x-www-form-urlencoded") {
        return Err(refused("not a form".into()));
    }
    let (id, secret) = hms::read_token_request(&req.body).map_err(|e| refused(e.to_string()))?;
    if id != HMS_APP_ID || secret != HMS_CLIENT_SECRET {
        return Err(refused("invalid client".into()));
    }
    Ok(Checked {
        target: Target::HmsOAuth,
        notification: Value::Null,
        body: Value::Null,
    })
}

/// Huawei Push Kit `messages:send`.
fn hms_send(state: &State, req: &WireRequest, app: &str) -> Checking {
    let code = |status: u16, code: &str, why: String| {
        let body = json!({"code": code, "msg": why, "requestId": "refused"});
        refuse(Answer::json(status, &body), why)
    };
    if app != HMS_APP_ID {
        return Err(code(
            400,
            "80300002",
            format!("app {app} is not authorized"),
        ));
    }
    if bearer(state, req, &Target::HmsOAuth).is_none() {
        return Err(code(401, "80200003", "OAuth token expired".into()));
    }
    let invalid = |why: &str| code(400, "80100003", why.to_string());
    if !is_json(req) {
        return Err(invalid("not JSON"));
    }
    let body: Value = serde_json::from_slice(&req.body).map_err(|_| invalid("not JSON"))?;
    if body["validate_only"] != false {
        return Err(invalid("validate_only must be false to send"));
    }
    let message = &body["message"];
    let tokens: Vec<&str> = message["token"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let count = message["token"].as_array().map_or(0, Vec::len);
    if tokens.is_empty() || tokens.len() != count || count > hms::MAX_TOKENS {
        return Err(invalid("message.token must list 1-1000 tokens"));
    }
    let android = &message["android"];
    if !["HIGH", "NORMAL"].contains(&android["urgency"].as_str().unwrap_or("NORMAL")) {
        return Err(invalid("android.urgency"));
    }
    if android.get("ttl").is_some_and(|t| {
        !t.as_str()
            .is_some_and(|t| t.trim_end_matches('s').bytes().all(|b| b.is_ascii_digit()))
    }) {
        return Err(invalid("android.ttl"));
    }
    if let Some(collapse) = android.get("collapse_key")
        && !collapse.as_i64().is_some_and(|c| (-1..=100).contains(&c))
    {
        return Err(invalid("android.collapse_key"));
    }
    let data = message["data"]
        .as_str()
        .ok_or_else(|| invalid("message.data must be a string"))?;
    let data: Value = serde_json::from_str(data).map_err(|_| invalid("data is not JSON"))?;
    let payload = notification(data).map_err(|e| invalid(&e))?;
    Ok(Checked {
        target: Target::Hms(tokens[0].to_string()),
        notification: payload,
        body,
    })
}
