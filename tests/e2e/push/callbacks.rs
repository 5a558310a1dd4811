//! `POST /v1/push/callbacks/{vendor}`: delivery receipts, accepted only when signed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use courier_push::callbacks::signature::{SigningSecret, sign};
use courier_push::callbacks::{HmsCallbackKey, sign_hms};
use serde_json::json;

use super::{Delivery, Push, apns_token, start, token_registration};
use crate::client::{Expect, text_to_user};
use crate::harness::{Reply, call};
use crate::vendors::{
    HMS_APP_ID, HMS_CALLBACK_KEY, HMS_CALLBACK_USER, PUSH_CALLBACK_SECRET, now_ms,
};

/// A user `kr` with an FCM, an APNs, an HMS and a Web Push device, each pushed once;
/// returns the delivery records by vendor (fcm, apns, hms, webpush) and the message id.
fn delivered(p: &Push) -> ([Delivery; 4], String) {
    p.users("k", &["ks", "kr"]);
    p.registered(
        "kr",
        "kr-android",
        &token_registration("fcm", "fcm-token-kr"),
    );
    p.registered(
        "kr",
        "kr-ios",
        &token_registration("apns", &apns_token(0x6b)),
    );
    p.registered(
        "kr",
        "kr-huawei",
        &token_registration("hms", "hms-token-kr"),
    );
    p.registered("kr", "kr-web", &p.fake.webpush_registration("kr"));
    let sent = p
        .api
        .send_as("ks", &text_to_user("k-1", "kr", "receipt me"))
        .expect_json(201);
    p.settle("the pushes", || p.fake.pushes().len() >= 4);
    p.fake.assert_checks_passed();
    let by_vendor = |vendor: &str| {
        p.deliveries("kr")
            .into_iter()
            .find(|d| d.vendor == vendor)
            .unwrap_or_else(|| panic!("a {vendor} delivery"))
    };
    let deliveries = [
        by_vendor("fcm"),
        by_vendor("apns"),
        by_vendor("hms"),
        by_vendor("webpush"),
    ];
    for d in &deliveries {
        assert_eq!(d.state, "sent");
        assert!(d.vendor_id.is_some(), "the vendor's id is kept: {d:?}");
    }
    (deliveries, sent["msg_id"].as_str().unwrap().to_string())
}

fn secret() -> SigningSecret {
    SigningSecret::new(PUSH_CALLBACK_SECRET.as_bytes()).unwrap()
}

/// The key Huawei signs with: the configured secret (base64) decoded.
fn hms_key() -> HmsCallbackKey {
    HmsCallbackKey::from_base64_secret(HMS_CALLBACK_USER, &STANDARD.encode(HMS_CALLBACK_KEY))
        .unwrap()
}

/// `POST /v1/push/callbacks/{vendor}` with `headers`.
fn callback(p: &Push, vendor: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    call(
        "POST",
        &p.api.url(&format!("/v1/push/callbacks/{vendor}")),
        &all,
        Some(body.as_bytes()),
    )
}

/// The generic signature of `body` now.
fn signed(body: &str) -> String {
    sign(&secret(), now_ms() / 1000, body.as_bytes())
}

/// A Huawei receipt body for `token` with result `status`.
fn hms_receipt(d: &Delivery, msg_id: &str, status: i64) -> String {
    json!({"statuses": [{
        "biTag": msg_id,
        "appid": HMS_APP_ID,
        "token": d.token,
        "status": status,
        "timestamp": now_ms(),
        "requestId": d.vendor_id,
    }]})
    .to_string()
}

fn state_of(p: &Push, device: &str) -> String {
    p.deliveries("kr")
        .into_iter()
        .find(|d| d.device == device)
        .unwrap()
        .state
}

#[test]
fn signed_receipts_update_deliveries_and_invalid_tokens_lose_their_registration() {
    let p = start(&[("SPIN_VARIABLE_PUSH_DELAY_MS", "200")]);
    let ([fcm, apns, hms, web], msg_id) = delivered(&p);

    let body = json!({"receipts": [{
        "vendor_id": fcm.vendor_id,
        "token": fcm.token,
        "status": "delivered",
    }]})
    .to_string();
    let reply = callback(&p, "fcm", &[("x-courier-signature", &signed(&body))], &body);
    assert_eq!(
        reply.expect_json(200),
        json!({ "received": 1, "matched": 1 })
    );
    assert_eq!(state_of(&p, "kr-android"), "delivered");

    // A receipt may name only the vendor's id of the notification, or only the token.
    let body = json!({"receipts": [{
        "vendor_id": apns.vendor_id,
        "status": "token_invalid",
        "detail": "Unregistered",
    }]})
    .to_string();
    let reply = callback(
        &p,
        "apns",
        &[("x-courier-signature", &signed(&body))],
        &body,
    );
    assert_eq!(
        reply.expect_json(200),
        json!({ "received": 1, "matched": 1 })
    );
    assert_eq!(state_of(&p, "kr-ios"), "token_gone");
    let body = json!({"receipts": [{ "token": web.token, "status": "token_invalid" }]}).to_string();
    let reply = callback(
        &p,
        "webpush",
        &[("x-courier-signature", &signed(&body))],
        &body,
    );
    assert_eq!(
        reply.expect_json(200),
        json!({ "received": 1, "matched": 1 })
    );
    assert_eq!(state_of(&p, "kr-web"), "token_gone");

    let body = hms_receipt(&hms, &msg_id, 2);
    let header = sign_hms(&hms_key(), now_ms(), "0f0e0d0c-0001-4000-8000-e2e000000001");
    let reply = callback(&p, "hms", &[("x-huawei-callback-id", &header)], &body);
    assert_eq!(
        reply.expect_json(200),
        json!({ "code": "0", "message": "success" })
    );
    assert_eq!(state_of(&p, "kr-huawei"), "token_gone");

    let devices: Vec<String> = p.devices("kr").into_iter().map(|(d, _)| d).collect();
    assert_eq!(
        devices,
        ["kr-android"],
        "the invalid tokens' registrations are gone"
    );
}

#[test]
fn unsigned_badly_signed_stale_or_replayed_receipts_are_401_and_change_nothing() {
    let p = start(&[("SPIN_VARIABLE_PUSH_DELAY_MS", "200")]);
    let ([fcm, _, hms, _], msg_id) = delivered(&p);
    let invalid = json!({"receipts": [{ "vendor_id": fcm.vendor_id, "token": fcm.token, "status": "token_invalid" }]})
        .to_string();
    let delivered =
        json!({"receipts": [{ "vendor_id": fcm.vendor_id, "status": "delivered" }]}).to_string();
    // Accepted once, so that its replay can be tried.
    let accepted = signed(&delivered);
    callback(&p, "fcm", &[("x-courier-signature", &accepted)], &delivered).expect_json(200);
    let hms_body = hms_receipt(&hms, &msg_id, 2);
    let hms_accepted = sign_hms(&hms_key(), now_ms(), "0f0e0d0c-0002-4000-8000-e2e000000002");
    let hms_ok = hms_receipt(&hms, &msg_id, 0);
    callback(
        &p,
        "hms",
        &[("x-huawei-callback-id", &hms_accepted)],
        &hms_ok,
    )
    .expect_json(200);

    let other = SigningSecret::new(b"not-the-configured-secret-0123").unwrap();
    let now = now_ms();
    let other_hms = HmsCallbackKey::from_utf8_secret(HMS_CALLBACK_USER, "some-other-key").unwrap();
    let generic: Vec<(&str, Option<String>, &str)> = vec![
        ("unsigned", None, &invalid),
        (
            "another secret",
            Some(sign(&other, now / 1000, invalid.as_bytes())),
            &invalid,
        ),
        (
            "signature of another body",
            Some(signed(&delivered)),
            &invalid,
        ),
        (
            "stale",
            Some(sign(&secret(), now / 1000 - 600, invalid.as_bytes())),
            &invalid,
        ),
        (
            "from the future",
            Some(sign(&secret(), now / 1000 + 600, invalid.as_bytes())),
            &invalid,
        ),
        ("garbage", Some("t=1,v1=zz".into()), &invalid),
        ("replayed", Some(accepted.clone()), &delivered),
    ];
    let huawei: Vec<(&str, Option<String>)> = vec![
        ("unsigned", None),
        (
            "another key",
            Some(sign_hms(
                &other_hms,
                now,
                "0f0e0d0c-0003-4000-8000-e2e000000003",
            )),
        ),
        (
            "stale",
            Some(sign_hms(
                &hms_key(),
                now - 600_000,
                "0f0e0d0c-0004-4000-8000-e2e000000004",
            )),
        ),
        ("replayed", Some(hms_accepted.clone())),
    ];
    p.api.unchanged(&[], || {
        for (why, header, body) in &generic {
            for vendor in ["fcm", "apns", "webpush"] {
                let headers: Vec<(&str, &str)> = header
                    .iter()
                    .map(|h| ("x-courier-signature", h.as_str()))
                    .collect();
                let reply = callback(&p, vendor, &headers, body);
                assert_eq!(reply.status, 401, "{vendor} {why}: {}", reply.body);
                reply.expect_error(401, "unauthorized");
            }
        }
        for (why, header) in &huawei {
            let headers: Vec<(&str, &str)> = header
                .iter()
                .map(|h| ("x-huawei-callback-id", h.as_str()))
                .collect();
            let reply = callback(&p, "hms", &headers, &hms_body);
            assert_eq!(reply.status, 401, "hms {why}: {}", reply.body);
            reply.expect_error(401, "unauthorized");
        }
        // The generic signature is not Huawei's, and the other way round.
        let signed_generic = signed(&hms_body);
        callback(
            &p,
            "hms",
            &[("x-courier-signature", &signed_generic)],
            &hms_body,
        )
        .expect_error(401, "unauthorized");
        let body = invalid.as_str();
        let huawei_signed = sign_hms(&hms_key(), now, "0f0e0d0c-0005-4000-8000-e2e000000005");
        callback(&p, "fcm", &[("x-huawei-callback-id", &huawei_signed)], body)
            .expect_error(401, "unauthorized");
        callback(&p, "mpns", &[], "{}").expect_error(404, "not_found");
    });
    assert_eq!(p.devices("kr").len(), 4, "no registration was dropped");
}
