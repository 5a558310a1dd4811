//! Bodies over one field's documented limit (or holding what the store cannot keep),
//! everything else valid.

use serde_json::{Value, json};

use super::world::Auth;
use crate::vendors::{HMS_APP_ID, now_ms};

/// A body over one field's documented limit: `(case, method, path, auth, body,
/// status, code)`, sent with valid credentials (a signature over the body).
pub(super) type FieldLimit = (
    &'static str,
    &'static str,
    &'static str,
    Auth,
    Vec<u8>,
    u16,
    &'static str,
);

pub(super) fn field_limits(ann_head: i64) -> Vec<FieldLimit> {
    use Auth::*;
    let send = |content: Value| {
        json!({"client_msg_id": "f1", "to": {"user": "bob"}, "content": content})
            .to_string()
            .into_bytes()
    };
    let hook = |url: &str, events: Value, secret: &str| {
        json!({"org": "other", "url": url, "events": events, "secret": secret})
            .to_string()
            .into_bytes()
    };
    let secret = "0123456789abcdef";
    let sent = json!(["message.sent"]);
    let members: Vec<String> = (0..10_001).map(|i| format!("m{i}")).collect();
    let ids: Vec<String> = (0..101).map(|i| format!("m{i}")).collect();
    let receipts: Vec<Value> = (0..1001)
        .map(|_| json!({"token": "t", "status": "delivered"}))
        .collect();
    let bytes = |v: Value| v.to_string().into_bytes();
    let huawei = |token: &str, request: &str| {
        bytes(
            json!({"statuses": [{"biTag": "x", "appid": HMS_APP_ID, "token": token,
                                   "status": 0, "timestamp": now_ms(), "requestId": request}]}),
        )
    };
    let nul = |v: &str| format!("{v}\u{0}{v}");
    vec![
        // PostgreSQL text cannot hold NUL; these were 500s there (200 on SQLite).
        (
            "NUL in a user's name",
            "PUT",
            "/v1/users/u9",
            Admin,
            bytes(json!({"name": nul("x"), "org": "acme"})),
            400,
            "bad_request",
        ),
        (
            "NUL in a group's name",
            "PUT",
            "/v1/groups/g9",
            Admin,
            bytes(json!({"name": nul("x"), "owner": "ann", "members": []})),
            400,
            "bad_request",
        ),
        (
            "NUL in a webhook secret",
            "PUT",
            "/v1/webhooks/w9",
            Admin,
            hook("https://crm.example/h", sent.clone(), &nul(secret)),
            400,
            "bad_request",
        ),
        (
            "NUL in a receipt's token",
            "POST",
            "/v1/push/callbacks/fcm",
            Signed,
            bytes(json!({"receipts": [{"token": nul("t"), "status": "delivered"}]})),
            400,
            "bad_request",
        ),
        (
            "NUL in a receipt's vendor id",
            "POST",
            "/v1/push/callbacks/apns",
            Signed,
            bytes(json!({"receipts": [{"vendor_id": nul("v"), "status": "delivered"}]})),
            400,
            "bad_request",
        ),
        (
            "NUL in a receipt's detail",
            "POST",
            "/v1/push/callbacks/webpush",
            Signed,
            bytes(json!({"receipts": [{"token": "t", "status": "failed", "detail": nul("d")}]})),
            400,
            "bad_request",
        ),
        (
            "NUL in a Huawei receipt's token",
            "POST",
            "/v1/push/callbacks/hms",
            Huawei,
            huawei(&nul("t"), "r-2"),
            400,
            "bad_request",
        ),
        (
            "NUL in a Huawei receipt's request id",
            "POST",
            "/v1/push/callbacks/hms",
            Huawei,
            huawei("t", &nul("r")),
            400,
            "bad_request",
        ),
        (
            "text over max_text_bytes",
            "POST",
            "/v1/messages",
            User,
            send(json!({"type": "text", "text": "a".repeat(4097)})),
            413,
            "too_large",
        ),
        (
            "multi-byte text over max_text_bytes",
            "POST",
            "/v1/messages",
            User,
            send(json!({"type": "text", "text": "é".repeat(2049)})),
            413,
            "too_large",
        ),
        (
            "custom data over 16 KiB",
            "POST",
            "/v1/messages",
            User,
            send(json!({"type": "custom", "data": {"k": "x".repeat(16 * 1024)}})),
            413,
            "too_large",
        ),
        (
            "client_msg_id of 65 characters",
            "POST",
            "/v1/messages",
            User,
            bytes(
                json!({"client_msg_id": "c".repeat(65), "to": {"user": "bob"},
                      "content": {"type": "text", "text": "hi"}}),
            ),
            400,
            "bad_request",
        ),
        (
            "recipient id of 65 characters",
            "POST",
            "/v1/messages",
            User,
            bytes(
                json!({"client_msg_id": "f2", "to": {"user": "b".repeat(65)},
                      "content": {"type": "text", "text": "hi"}}),
            ),
            400,
            "bad_request",
        ),
        (
            "ack beyond the head",
            "POST",
            "/v1/ack",
            User,
            bytes(json!({"seq": ann_head + 1})),
            400,
            "bad_request",
        ),
        (
            "101 receipt ids",
            "POST",
            "/v1/receipts",
            User,
            bytes(json!({"msg_ids": ids})),
            400,
            "bad_request",
        ),
        (
            "no receipt ids",
            "POST",
            "/v1/receipts",
            User,
            bytes(json!({"msg_ids": []})),
            400,
            "bad_request",
        ),
        (
            "a name over 256 bytes",
            "PUT",
            "/v1/users/u9",
            Admin,
            bytes(json!({"name": "x".repeat(257), "org": "acme"})),
            400,
            "bad_request",
        ),
        (
            "an org of 65 characters",
            "PUT",
            "/v1/users/u9",
            Admin,
            bytes(json!({"name": "x", "org": "o".repeat(65)})),
            400,
            "bad_request",
        ),
        (
            "10,001 members",
            "PUT",
            "/v1/groups/g9",
            Admin,
            bytes(json!({"name": "x", "owner": "ann", "members": members})),
            400,
            "bad_request",
        ),
        (
            "a webhook secret of 15 bytes",
            "PUT",
            "/v1/webhooks/w9",
            Admin,
            hook("https://crm.example/h", sent.clone(), &secret[..15]),
            400,
            "bad_request",
        ),
        (
            "a webhook secret of 257 bytes",
            "PUT",
            "/v1/webhooks/w9",
            Admin,
            hook("https://crm.example/h", sent.clone(), &"s".repeat(257)),
            400,
            "bad_request",
        ),
        (
            "a webhook URL over 2048 bytes",
            "PUT",
            "/v1/webhooks/w9",
            Admin,
            hook(
                &format!("https://crm.example/{}", "p".repeat(2048)),
                sent.clone(),
                secret,
            ),
            400,
            "bad_request",
        ),
        (
            "a plain-http webhook URL",
            "PUT",
            "/v1/webhooks/w9",
            Admin,
            hook("http://crm.example/h", sent.clone(), secret),
            400,
            "bad_request",
        ),
        (
            "a webhook URL of the app itself",
            "PUT",
            "/v1/webhooks/w9",
            Admin,
            hook(
                "https://worker.spin.internal/internal/drain",
                sent.clone(),
                secret,
            ),
            400,
            "bad_request",
        ),
        (
            "a webhook URL with credentials",
            "PUT",
            "/v1/webhooks/w9",
            Admin,
            hook("https://user:pass@crm.example/h", sent.clone(), secret),
            400,
            "bad_request",
        ),
        (
            "no webhook events",
            "PUT",
            "/v1/webhooks/w9",
            Admin,
            hook("https://crm.example/h", json!([]), secret),
            400,
            "bad_request",
        ),
        (
            "an unknown webhook event",
            "PUT",
            "/v1/webhooks/w9",
            Admin,
            hook("https://crm.example/h", json!(["message.deleted"]), secret),
            400,
            "bad_request",
        ),
        (
            "a push token over 4096 bytes",
            "PUT",
            "/v1/push/devices/d9",
            User,
            bytes(json!({"vendor": "hms", "token": "t".repeat(4097)})),
            400,
            "bad_request",
        ),
        (
            "an unknown push vendor",
            "PUT",
            "/v1/push/devices/d9",
            User,
            bytes(json!({"vendor": "mpns", "token": "t"})),
            400,
            "bad_request",
        ),
        (
            "an APNs token that is not hex",
            "PUT",
            "/v1/push/devices/d9",
            User,
            bytes(json!({"vendor": "apns", "token": "zz".repeat(32)})),
            400,
            "bad_request",
        ),
        (
            "a push token with keys",
            "PUT",
            "/v1/push/devices/d9",
            User,
            bytes(json!({"vendor": "fcm", "token": "t", "keys": {"p256dh": "x", "auth": "y"}})),
            400,
            "bad_request",
        ),
        (
            "1,001 receipts in a callback",
            "POST",
            "/v1/push/callbacks/fcm",
            Signed,
            bytes(json!({"receipts": receipts})),
            400,
            "bad_request",
        ),
        (
            "an unknown receipt status",
            "POST",
            "/v1/push/callbacks/fcm",
            Signed,
            bytes(json!({"receipts": [{"token": "t", "status": "lost"}]})),
            400,
            "bad_request",
        ),
        (
            "a receipt naming nothing",
            "POST",
            "/v1/push/callbacks/apns",
            Signed,
            bytes(json!({"receipts": [{"status": "delivered"}]})),
            400,
            "bad_request",
        ),
        (
            "an unknown receipt field",
            "POST",
            "/v1/push/callbacks/webpush",
            Signed,
            bytes(json!({"receipts": [{"token": "t", "status": "delivered", "uid": "ann"}]})),
            400,
            "bad_request",
        ),
    ]
}
