//! The `X-HUAWEI-CALLBACK-ID` scheme and receipt parsing.

use super::*;

const NOW_MS: i64 = 1_767_225_600_000;
const NONCE: &str = "a07bfa17-6d82-4b53-a9a2-07cfef5ceef1";

fn key() -> HmsCallbackKey {
    HmsCallbackKey::from_base64_secret("courier", "c2VjcmV0LWtleS1ieXRlcw==").expect("valid")
}

#[test]
fn the_value_is_base64_hmac_of_timestamp_nonce_and_user_name() {
    // Computed independently: HMAC-SHA256(key = b"secret-key-bytes",
    // "1767225600000" + NONCE + "courier"), standard base64.
    let mut mac = Hmac::<Sha256>::new_from_slice(b"secret-key-bytes").expect("any length");
    mac.update(format!("{NOW_MS}{NONCE}courier").as_bytes());
    let expected = b64::std_encode(&mac.finalize().into_bytes());
    assert_eq!(
        sign_hms(&key(), NOW_MS, NONCE),
        format!("timestamp={NOW_MS};nonce={NONCE};value={expected}")
    );
}

#[test]
fn a_signed_header_verifies_with_its_timestamp_and_nonce() {
    let header = sign_hms(&key(), NOW_MS - 1_000, NONCE);
    let auth = verify_hms(&key(), &header, NOW_MS).expect("verifies");
    assert_eq!(
        auth,
        HmsCallbackAuth {
            timestamp_ms: NOW_MS - 1_000,
            nonce: NONCE.into()
        }
    );
    let spaced = header.replace(';', "; ");
    assert!(
        verify_hms(&key(), &spaced, NOW_MS).is_ok(),
        "the documented sample has spaces"
    );
}

#[test]
fn old_utf8_secrets_and_second_timestamps_work() {
    let old = HmsCallbackKey::from_utf8_secret("courier", "plain secret").expect("valid");
    let mut mac = Hmac::<Sha256>::new_from_slice(b"plain secret").expect("any length");
    mac.update(format!("1767225600{NONCE}courier").as_bytes());
    let value = b64::std_encode(&mac.finalize().into_bytes());
    let header = format!("timestamp=1767225600;nonce={NONCE};value={value}");
    assert_eq!(
        verify_hms(&old, &header, NOW_MS)
            .expect("verifies")
            .timestamp_ms,
        NOW_MS
    );
    assert!(verify_hms(&key(), &header, NOW_MS).is_err(), "another key");
}

#[test]
fn tampering_other_users_and_stale_timestamps_are_refused() {
    let header = sign_hms(&key(), NOW_MS, NONCE);
    let other_nonce = header.replace("a07bfa17", "b07bfa17");
    assert!(verify_hms(&key(), &other_nonce, NOW_MS).is_err());
    let other_user =
        HmsCallbackKey::from_base64_secret("someone", "c2VjcmV0LWtleS1ieXRlcw==").expect("valid");
    assert!(verify_hms(&other_user, &header, NOW_MS).is_err());
    assert!(verify_hms(&key(), &header, NOW_MS + HMS_REPLAY_WINDOW_MS).is_ok());
    assert!(verify_hms(&key(), &header, NOW_MS + HMS_REPLAY_WINDOW_MS + 1).is_err());
    assert!(verify_hms(&key(), &header, NOW_MS - HMS_REPLAY_WINDOW_MS - 1).is_err());
}

#[test]
fn malformed_headers_are_refused() {
    let good = sign_hms(&key(), NOW_MS, NONCE);
    let value = good.rsplit_once("value=").expect("has value").1;
    for header in [
        String::new(),
        "garbage".into(),
        format!("timestamp={NOW_MS};nonce={NONCE}"),
        format!("timestamp=soon;nonce={NONCE};value={value}"),
        format!("timestamp=-5;nonce={NONCE};value={value}"),
        format!("timestamp={NOW_MS};nonce=;value={value}"),
        format!("timestamp={NOW_MS};nonce={NONCE};value=***"),
        format!("timestamp={NOW_MS};timestamp={NOW_MS};nonce={NONCE};value={value}"),
        format!("timestamp=9999999999999999999999;nonce={NONCE};value={value}"),
        "x=".repeat(600),
    ] {
        assert!(
            matches!(
                verify_hms(&key(), &header, NOW_MS),
                Err(Error::Unauthenticated(_))
            ),
            "{header}"
        );
    }
}

#[test]
fn bad_secrets_are_config_errors() {
    assert!(HmsCallbackKey::from_base64_secret("u", "not base64!").is_err());
    assert!(HmsCallbackKey::from_base64_secret("u", "").is_err());
    assert!(HmsCallbackKey::from_utf8_secret("u", "").is_err());
    assert!(HmsCallbackKey::from_utf8_secret("", "secret").is_err());
    assert!(!format!("{:?}", key()).contains("c2Vj"));
}

#[test]
fn v1_and_v2_receipts_are_parsed_and_mapped() {
    let body = br#"{"statuses":[
        {"biTag":"m-42","appid":"104712345","token":"tok-1","status":0,"timestamp":1767225600000,"requestId":"r1"},
        {"biTag":"m-43","appid":"104712345","token":"tok-2","status":2,"timestamp":1767225600001,"requestId":"r2"},
        {"token":"tok-3","pushType":0,"requestId":"r3","deliveryStatus":{"result":5,"timestamp":1767225600002}},
        {"token":"tok-4","deliveryStatus":{"result":6,"timestamp":1}},
        {"token":"tok-5","status":10}
    ]}"#;
    let receipts = parse_hms_receipts(body).expect("parses");
    let summary: Vec<_> = receipts
        .iter()
        .map(|r| (r.token.as_str(), r.status, r.code))
        .collect();
    assert_eq!(
        summary,
        [
            ("tok-1", ReceiptStatus::Delivered, 0),
            ("tok-2", ReceiptStatus::TokenInvalid, 2),
            ("tok-3", ReceiptStatus::TokenInvalid, 5),
            ("tok-4", ReceiptStatus::Other, 6),
            ("tok-5", ReceiptStatus::Other, 10),
        ]
    );
    assert_eq!(
        receipts[0],
        Receipt {
            token: "tok-1".into(),
            status: ReceiptStatus::Delivered,
            code: 0,
            bi_tag: Some("m-42".into()),
            request_id: Some("r1".into()),
            app_id: Some("104712345".into()),
            timestamp_ms: Some(1_767_225_600_000),
        }
    );
    assert_eq!(receipts[2].timestamp_ms, Some(1_767_225_600_002));
    assert_eq!(receipts[4].bi_tag, None);
}

#[test]
fn malformed_receipt_bodies_are_refused() {
    let too_many = format!(
        r#"{{"statuses":[{}]}}"#,
        vec![r#"{"token":"t","status":0}"#; MAX_RECEIPTS + 1].join(",")
    );
    for body in [
        "",
        "[]",
        "{}",
        r#"{"statuses":{}}"#,
        r#"{"statuses":[{"status":0}]}"#,
        r#"{"statuses":[{"token":"t"}]}"#,
        r#"{"statuses":[{"token":"t","status":"0"}]}"#,
        &too_many,
    ] {
        assert!(
            matches!(
                parse_hms_receipts(body.as_bytes()),
                Err(Error::BadMessage(_))
            ),
            "{body:.60}"
        );
    }
    assert_eq!(parse_hms_receipts(br#"{"statuses":[]}"#), Ok(vec![]));
}
