//! The fakes are no rubber stamps: requests a real vendor refuses — the wrong key, the
//! wrong audience, a foreign subscription, an unknown access token — are refused with
//! the vendor's status and counted as check failures.

use courier_core::{ConvId, MsgId, UserId};
use courier_push::Notification;
use courier_push::apns::{self, DeviceToken, ProviderKey};
use courier_push::fcm::{self, ServiceAccount};
use courier_push::hms;
use courier_push::oauth::AccessToken;
use courier_push::p256::SecretKey;
use courier_push::p256::pkcs8::{EncodePrivateKey as _, LineEnding};
use courier_push::token::RegistrationToken;
use courier_push::webpush::{Sender, Subscription, VapidKey};
use serde_json::{Value, json};

use super::{APNS_KEY_ID, APNS_TEAM, APNS_TOPIC, FCM_PROJECT, FakeVendors, HMS_APP_ID, now_ms};
use crate::harness::call;

/// Sends a request built by the push crate; returns the status.
fn send(request: http::Request<Vec<u8>>) -> u16 {
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter(|(name, _)| *name != http::header::CONTENT_LENGTH)
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    call(
        request.method().as_str(),
        &request.uri().to_string(),
        &headers,
        Some(request.body()),
    )
    .status
}

fn notification() -> Notification {
    Notification {
        user: UserId::parse("u2").unwrap(),
        unread: 1,
        conv: ConvId::parse("dm:u1:u2").unwrap(),
        msg_id: MsgId::parse("m-1").unwrap(),
        preview: None,
    }
}

fn subscription(registration: &Value) -> Subscription {
    let keys = &registration["keys"];
    Subscription::parse_allowing_http(
        registration["endpoint"].as_str().unwrap(),
        keys["p256dh"].as_str().unwrap(),
        keys["auth"].as_str().unwrap(),
    )
    .unwrap()
}

#[test]
fn the_fake_vendors_refuse_what_the_real_ones_refuse() {
    let fake = FakeVendors::start();
    let now = now_ms();
    let n = notification();
    let random = [7u8; 48];

    // Web Push: another server's VAPID key; an audience of another origin; a body
    // encrypted for another subscription.
    let sub = subscription(&fake.webpush_registration("a"));
    let other_sub = subscription(&fake.webpush_registration("b"));
    let stranger = Sender::new(VapidKey::from_bytes(&[0x12; 32]).unwrap(), "mailto:x@y.z").unwrap();
    assert_eq!(send(stranger.request(&sub, &n, now, &random).unwrap()), 403);
    let elsewhere = Subscription::parse(
        "https://push.example/wp/a",
        &other_sub.p256dh_base64url(),
        &other_sub.auth_base64url(),
    )
    .unwrap();
    let ours = Sender::new(VapidKey::from_bytes(&[0x11; 32]).unwrap(), "mailto:x@y.z").unwrap();
    let mut wrong_aud = ours.request(&elsewhere, &n, now, &random).unwrap();
    *wrong_aud.uri_mut() = sub.endpoint().clone();
    assert_eq!(send(wrong_aud), 401);
    let mut foreign = ours.request(&other_sub, &n, now, &random).unwrap();
    *foreign.uri_mut() = sub.endpoint().clone();
    assert_eq!(send(foreign), 400);

    // APNs: a provider token of another key; the wrong topic.
    let other_p8 = SecretKey::from_slice(&[0x23; 32])
        .unwrap()
        .to_pkcs8_pem(LineEnding::LF)
        .unwrap();
    let forged = ProviderKey::new(APNS_TEAM, APNS_KEY_ID, &other_p8).unwrap();
    let device = DeviceToken::parse(&"ab".repeat(32)).unwrap();
    let client = apns::Client::new(fake.origin(), APNS_TOPIC).unwrap();
    let request = client.request(&forged.sign(now), &device, &n, apns::PushType::Alert, now);
    assert_eq!(send(request.unwrap()), 403);
    let ours = ProviderKey::new(APNS_TEAM, APNS_KEY_ID, &fake.shared.ids.apns_pem).unwrap();
    let wrong_topic = apns::Client::new(fake.origin(), "some.other.app").unwrap();
    let request = wrong_topic.request(&ours.sign(now), &device, &n, apns::PushType::Alert, now);
    assert_eq!(send(request.unwrap()), 400);

    // FCM: an access token it never issued; an assertion signed by another key.
    let never_issued = AccessToken {
        token: "made-up".into(),
        expires_at_ms: now + 3_600_000,
    };
    let token = RegistrationToken::parse("fcm-token").unwrap();
    let client = fcm::Client::new(fake.origin(), FCM_PROJECT).unwrap();
    assert_eq!(
        send(client.request(&never_issued, &token, &n).unwrap()),
        401
    );
    let mut account: Value = serde_json::from_str(&fake.shared.ids.fcm_json).unwrap();
    account["private_key"] = json!(include_str!(
        "../../../shared/push/src/testdata/rsa_key_b.pem"
    ));
    let forged = ServiceAccount::from_json(&account.to_string()).unwrap();
    assert_eq!(send(forged.token_request(now).unwrap()), 400);

    // HMS: the wrong app secret.
    let wrong = hms::Credentials::new(HMS_APP_ID, "not-the-secret").unwrap();
    assert_eq!(send(wrong.token_request(fake.origin()).unwrap()), 400);

    assert_eq!(fake.failures().len(), 8, "{:#?}", fake.failures());
    assert!(
        fake.pushes().is_empty(),
        "nothing refused was recorded as delivered"
    );
}
