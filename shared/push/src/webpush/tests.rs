//! Subscriptions, the push request end to end (through the fake's checks), and the
//! classification table.

use super::*;
use crate::notification::tests::sample;
use crate::outcome::tests::answer;
use p256::SecretKey;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore as _, SeedableRng as _};

const P256DH: &str =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
const NOW_MS: i64 = 1_767_225_600_000;

fn parse(endpoint: &str) -> Result<Subscription, Error> {
    Subscription::parse(endpoint, P256DH, AUTH)
}

#[test]
fn valid_subscriptions_keep_their_keys_and_origin() {
    let sub = parse("https://fcm.googleapis.com/fcm/send/abc:def").expect("valid");
    assert_eq!(sub.origin(), "https://fcm.googleapis.com");
    assert_eq!(sub.p256dh_base64url(), P256DH);
    assert_eq!(sub.auth_base64url(), AUTH);
    let debug = format!("{sub:?}");
    assert!(
        !debug.contains(AUTH) && !debug.contains("abc:def"),
        "{debug}"
    );
    let padded = Subscription::parse(
        "https://a.example/x",
        &format!("{P256DH}="),
        "BTBZMqHH6r4Tts7J/aSIgg==",
    )
    .expect("padding and the standard alphabet are tolerated");
    assert_eq!(padded.auth_base64url(), AUTH);
}

#[test]
fn origins_drop_default_ports_and_keep_others() {
    for (endpoint, origin) in [
        ("https://Push.Example:443/x", "https://push.example"),
        (
            "https://push.example:8443/x?y=1",
            "https://push.example:8443",
        ),
        ("https://push.example", "https://push.example"),
    ] {
        assert_eq!(
            parse(endpoint).expect("valid").origin(),
            origin,
            "{endpoint}"
        );
    }
    assert_eq!(
        origin_of("http://127.0.0.1:9000/push/1").expect("valid"),
        "http://127.0.0.1:9000"
    );
    assert_eq!(
        origin_of("http://localhost:80/p").expect("valid"),
        "http://localhost"
    );
}

#[test]
fn endpoints_must_be_https_urls_with_a_host() {
    for endpoint in [
        "",
        "push.example/x",
        "http://push.example/x",
        "ftp://push.example/x",
        "https:///x",
        "https://user:pw@push.example/x",
        "/relative/path",
        "https://push example/x",
        &format!("https://push.example/{}", "a".repeat(MAX_ENDPOINT_BYTES)),
    ] {
        match parse(endpoint) {
            Err(Error::InvalidDevice(_)) => {}
            other => panic!("{endpoint:?} gave {other:?}"),
        }
    }
    assert!(Subscription::parse_allowing_http("http://127.0.0.1:1/x", P256DH, AUTH).is_ok());
}

#[test]
fn keys_must_be_an_uncompressed_point_and_16_bytes() {
    let compressed = {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let key = SecretKey::random(&mut rng).public_key();
        b64::url_encode(key.to_encoded_point(true).as_bytes())
    };
    let not_on_curve = {
        let mut bytes = b64::url_decode(P256DH).expect("decodes");
        bytes[64] ^= 1;
        b64::url_encode(&bytes)
    };
    let cases = [
        ("", AUTH, "p256dh"),
        ("!!!", AUTH, "p256dh"),
        (&compressed[..], AUTH, "65-byte"),
        (&not_on_curve[..], AUTH, "point"),
        (&P256DH[..40], AUTH, "65-byte"),
        (P256DH, "", "16 bytes"),
        (P256DH, "AAAA", "16 bytes"),
        (P256DH, "*", "auth"),
    ];
    for (p256dh, auth, needle) in cases {
        match Subscription::parse("https://push.example/x", p256dh, auth) {
            Err(Error::InvalidDevice(m)) => assert!(m.contains(needle), "{m} lacks {needle}"),
            other => panic!("{p256dh:?}/{auth:?} gave {other:?}"),
        }
    }
}

/// A user agent's key pair and a subscription for it.
fn user_agent(seed: u64) -> (SecretKey, [u8; 16], Subscription) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let private = SecretKey::random(&mut rng);
    let mut auth = [0u8; 16];
    rng.fill_bytes(&mut auth);
    let p256dh = b64::url_encode(private.public_key().to_encoded_point(false).as_bytes());
    let sub = Subscription::parse(
        "https://push.example:8443/s/1",
        &p256dh,
        &b64::url_encode(&auth),
    )
    .expect("valid");
    (private, auth, sub)
}

fn sender(seed: u64) -> Sender {
    let key = VapidKey::generate(&mut ChaCha20Rng::seed_from_u64(seed));
    Sender::new(key, "mailto:ops@courier.example").expect("valid subject")
}

#[test]
fn a_notification_request_passes_the_fake_push_services_checks() {
    let (ua_private, auth, sub) = user_agent(1);
    let sender = sender(2);
    let mut random = [0u8; RANDOM_BYTES];
    ChaCha20Rng::seed_from_u64(3).fill_bytes(&mut random);
    let n = sample(true);
    let request = sender.request(&sub, &n, NOW_MS, &random).expect("builds");

    assert_eq!(request.method(), Method::POST);
    assert_eq!(request.uri(), "https://push.example:8443/s/1");
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    assert_eq!(header("ttl"), Some("86400"));
    assert_eq!(header("urgency"), Some("high"));
    assert_eq!(header("topic"), Some(n.topic().as_str()));
    assert_eq!(header("content-encoding"), Some("aes128gcm"));
    assert_eq!(header("content-type"), Some("application/octet-stream"));
    assert_eq!(
        header("content-length"),
        Some(request.body().len().to_string().as_str())
    );

    let claims = verify_vapid(
        header("authorization").expect("set"),
        &origin_of(&request.uri().to_string()).expect("origin"),
        NOW_MS,
    )
    .expect("the fake accepts the VAPID header");
    assert_eq!(claims.aud, "https://push.example:8443");
    assert_eq!(claims.public_key, sender.public_key());
    assert_eq!(claims.sub.as_deref(), Some("mailto:ops@courier.example"));

    let plaintext = decrypt(&ua_private, &auth, request.body()).expect("the fake UA decrypts");
    let json: serde_json::Value = serde_json::from_slice(&plaintext).expect("JSON payload");
    assert_eq!(json, n.json());
}

#[test]
fn bad_options_and_subjects_are_config_errors() {
    let (_, _, sub) = user_agent(1);
    let options = Options {
        ttl_secs: 60,
        urgency: Urgency::Low,
        topic: Some("not a topic!".into()),
    };
    assert!(matches!(
        sender(2).request_with_body(&sub, vec![1], &options, NOW_MS),
        Err(Error::Config(_))
    ));
    let long = Options {
        topic: Some("a".repeat(33)),
        ..options.clone()
    };
    assert!(
        sender(2)
            .request_with_body(&sub, vec![1], &long, NOW_MS)
            .is_err()
    );
    let none = Options {
        topic: None,
        ..options
    };
    let request = sender(2)
        .request_with_body(&sub, vec![1], &none, NOW_MS)
        .expect("builds");
    assert!(request.headers().get("topic").is_none());
    assert_eq!(request.headers()["urgency"], "low");
    let key = VapidKey::generate(&mut ChaCha20Rng::seed_from_u64(1));
    assert!(matches!(
        Sender::new(key, "ops@courier.example"),
        Err(Error::Config(_))
    ));
}

#[test]
fn urgencies_have_their_rfc_8030_names() {
    let names: Vec<_> = [
        Urgency::VeryLow,
        Urgency::Low,
        Urgency::Normal,
        Urgency::High,
    ]
    .map(Urgency::as_str)
    .to_vec();
    assert_eq!(names, ["very-low", "low", "normal", "high"]);
}

#[test]
fn push_service_answers_are_classified() {
    let gone = |o: &Outcome| matches!(o, Outcome::TokenGone { .. });
    let permanent =
        |o: &Outcome, s: u16| matches!(o, Outcome::Permanent { status, .. } if *status == s);
    assert_eq!(classify(&answer(201, "", None), NOW_MS), Outcome::Delivered);
    assert_eq!(classify(&answer(202, "", None), NOW_MS), Outcome::Delivered);
    assert!(gone(&classify(&answer(404, "", None), NOW_MS)));
    assert!(gone(&classify(&answer(410, "expired", None), NOW_MS)));
    assert_eq!(
        classify(&answer(429, "", Some("30")), NOW_MS),
        Outcome::Retry {
            after_ms: Some(30_000)
        }
    );
    assert_eq!(
        classify(&answer(503, "", None), NOW_MS),
        Outcome::Retry { after_ms: None }
    );
    assert_eq!(
        classify(&answer(500, "", Some("soon")), NOW_MS),
        Outcome::Retry { after_ms: None }
    );
    assert!(permanent(&classify(&answer(413, "", None), NOW_MS), 413));
    for status in [400, 401, 403] {
        let outcome = classify(&answer(status, "bad VAPID", None), NOW_MS);
        assert_eq!(
            outcome,
            Outcome::Permanent {
                status,
                reason: "bad VAPID".into()
            }
        );
    }
    let mut binary = answer(400, "", None);
    *binary.body_mut() = vec![0xff, 0xfe];
    assert!(
        permanent(&classify(&binary, NOW_MS), 400),
        "non-UTF-8 bodies are fine"
    );
}
