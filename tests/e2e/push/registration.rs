//! `PUT`/`DELETE /v1/push/devices/{device}` and `GET /v1/push/config`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::{Push, apns_token, start, token_registration};
use crate::client::{Api, Expect, user_token};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A Web Push registration with these keys and a good endpoint.
fn webpush_with(p: &Push, p256dh: &str, auth: &str) -> Value {
    json!({
        "vendor": "webpush",
        "endpoint": format!("{}/wp/bad", p.fake.origin()),
        "keys": { "p256dh": p256dh, "auth": auth },
    })
}

#[test]
fn invalid_registrations_are_400_and_store_nothing() {
    let p = start(&[]);
    p.users("v", &["va"]);
    let good = p.fake.webpush_registration("va");
    let (p256dh, auth) = (
        good["keys"]["p256dh"].as_str().unwrap().to_string(),
        good["keys"]["auth"].as_str().unwrap().to_string(),
    );
    let off_curve = {
        let mut point = vec![4u8];
        point.extend([1u8; 64]);
        b64(&point)
    };
    let compressed = {
        let mut point = URL_SAFE_NO_PAD.decode(&p256dh).unwrap();
        point[0] = 2 + (point[64] & 1);
        b64(&point[..33])
    };
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        (
            "p256dh not a P-256 point",
            webpush_with(&p, &off_curve, &auth),
        ),
        ("p256dh compressed", webpush_with(&p, &compressed, &auth)),
        ("p256dh not base64", webpush_with(&p, "not base64!", &auth)),
        (
            "auth of 15 bytes",
            webpush_with(&p, &p256dh, &b64(&[7; 15])),
        ),
        (
            "auth of 17 bytes",
            webpush_with(&p, &p256dh, &b64(&[7; 17])),
        ),
        ("endpoint not http(s)", {
            let mut body = good.clone();
            body["endpoint"] = json!("ftp://127.0.0.1/wp/va");
            body
        }),
        ("endpoint with user info", {
            let mut body = good.clone();
            body["endpoint"] = json!("https://user@push.example/wp/va");
            body
        }),
        (
            "webpush without keys",
            json!({ "vendor": "webpush", "endpoint": good["endpoint"] }),
        ),
        (
            "webpush without endpoint",
            json!({ "vendor": "webpush", "keys": good["keys"] }),
        ),
        ("webpush with a token", {
            let mut body = good.clone();
            body["token"] = json!("x");
            body
        }),
        (
            "apns token not hex",
            token_registration("apns", &"zz".repeat(32)),
        ),
        (
            "apns token too short",
            token_registration("apns", &apns_token(1)[..62]),
        ),
        ("apns without token", json!({ "vendor": "apns" })),
        ("apns with an endpoint", {
            let mut body = token_registration("apns", &apns_token(1));
            body["endpoint"] = good["endpoint"].clone();
            body
        }),
        ("fcm empty token", token_registration("fcm", "")),
        (
            "fcm token with a space",
            token_registration("fcm", "two words"),
        ),
        ("hms without token", json!({ "vendor": "hms" })),
        ("unknown vendor", token_registration("mpns", "abc")),
        ("no vendor", json!({ "token": "abc" })),
        (
            "vendor not a string",
            json!({ "vendor": 7, "token": "abc" }),
        ),
        ("not an object", json!(["webpush"])),
    ]
    .into_iter()
    .map(|(why, body)| (why, body.to_string().into_bytes()))
    .chain([("not JSON", b"{vendor: apns".to_vec())])
    .collect();
    let token = user_token("va");
    p.api.unchanged(&["va"], || {
        for (why, body) in &bodies {
            let reply = p
                .api
                .call("PUT", "/v1/push/devices/phone", Some(&token), Some(body));
            reply.expect_error(400, "bad_request");
            assert!(
                !reply.body.contains(&auth),
                "{why}: the reply echoes a secret"
            );
        }
        let long_device = format!("/v1/push/devices/{}", "d".repeat(65));
        let body = token_registration("fcm", "fcm-token").to_string();
        p.api
            .call("PUT", &long_device, Some(&token), Some(body.as_bytes()))
            .expect_error(400, "bad_request");
    });
    assert!(p.devices("va").is_empty());
}

#[test]
fn registration_needs_a_user_token_replaces_moves_and_deletes() {
    let p = start(&[]);
    p.users("v", &["va", "vb"]);
    let web = p.fake.webpush_registration("va");
    let body = web.to_string();
    p.api.unchanged(&["va"], || {
        for token in [None, Some("not-a-jwt")] {
            for (method, path, body) in [
                ("PUT", "/v1/push/devices/phone", Some(body.as_bytes())),
                ("DELETE", "/v1/push/devices/phone", None),
                ("GET", "/v1/push/config", None),
            ] {
                p.api
                    .call(method, path, token, body)
                    .expect_error(401, "unauthorized");
            }
        }
    });

    let config = p
        .api
        .call("GET", "/v1/push/config", Some(&user_token("va")), None)
        .expect_json(200);
    assert_eq!(
        config,
        json!({
            "vendors": ["webpush", "apns", "fcm", "hms"],
            "webpush": { "vapid_public_key": p.fake.vapid_public_key() },
        })
    );

    p.registered("va", "phone", &web);
    p.registered("va", "phone", &web);
    assert_eq!(
        p.devices("va"),
        [("phone".to_string(), "webpush".to_string())]
    );
    p.registered(
        "va",
        "phone",
        &token_registration("apns", &apns_token(0xab).to_uppercase()),
    );
    let token = super::text(
        &p.db()
            .query("SELECT token FROM push_devices WHERE uid = 'va'", &[])
            .unwrap()[0][0],
    );
    assert_eq!(
        token,
        apns_token(0xab),
        "one registration per device, token lowered"
    );

    // A token signed in as someone else moves with the phone.
    p.registered("va", "tablet", &token_registration("fcm", "fcm-shared"));
    p.registered("vb", "tablet", &token_registration("fcm", "fcm-shared"));
    assert_eq!(p.devices("va"), [("phone".to_string(), "apns".to_string())]);
    assert_eq!(p.devices("vb"), [("tablet".to_string(), "fcm".to_string())]);

    let va = user_token("va");
    for _ in 0..2 {
        let reply = p
            .api
            .call("DELETE", "/v1/push/devices/phone", Some(&va), None);
        assert_eq!((reply.status, reply.body.as_str()), (204, ""));
    }
    assert!(p.devices("va").is_empty());
    assert_eq!(
        p.devices("vb").len(),
        1,
        "another user's device is untouched"
    );
    p.api
        .call("POST", "/v1/push/devices/phone", Some(&va), Some(b"{}"))
        .expect_error(405, "method_not_allowed");
}

#[test]
fn vendors_without_credentials_are_refused_and_left_out_of_the_config() {
    let api = Api::start();
    api.user("vn", "v");
    let token = user_token("vn");
    let config = api
        .call("GET", "/v1/push/config", Some(&token), None)
        .expect_json(200);
    assert_eq!(config, json!({ "vendors": [], "webpush": null }));
    let bodies = [
        json!({
            "vendor": "webpush",
            "endpoint": "https://push.example/wp/1",
            "keys": { "p256dh": b64(&[4; 65]), "auth": b64(&[1; 16]) },
        }),
        token_registration("apns", &apns_token(1)),
        token_registration("fcm", "fcm-token"),
        token_registration("hms", "hms-token"),
    ];
    api.unchanged(&["vn"], || {
        for body in &bodies {
            let reply = api.call(
                "PUT",
                "/v1/push/devices/phone",
                Some(&token),
                Some(body.to_string().as_bytes()),
            );
            reply.expect_error(400, "bad_request");
            assert!(reply.body.contains("not configured"), "{}", reply.body);
        }
    });
}
