//! Service accounts, the OAuth assertion and token request, the send, and the answer
//! table.

use super::*;
use crate::b64;
use crate::jwt::tests::{RSA_KEY_A, RSA_KEY_B, tamper_claims};
use crate::notification::tests::sample;
use crate::outcome::tests::{answer, assert_classifies};
use http::Method;

const NOW_MS: i64 = 1_767_225_600_000;
const NOW: u64 = 1_767_225_600;
const TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

fn key_file(pem: &str) -> String {
    json!({
        "type": "service_account",
        "project_id": "courier-test",
        "private_key_id": "0123abcd",
        "private_key": pem,
        "client_email": "push@courier-test.iam.gserviceaccount.com",
        "client_id": "1234",
        "token_uri": TOKEN_URI,
    })
    .to_string()
}

fn account() -> ServiceAccount {
    ServiceAccount::from_json(&key_file(RSA_KEY_A)).expect("valid key file")
}

#[test]
fn a_key_file_gives_its_fields_and_hides_its_key() {
    let account = account();
    assert_eq!(
        account.client_email(),
        "push@courier-test.iam.gserviceaccount.com"
    );
    assert_eq!(account.project_id(), "courier-test");
    assert_eq!(account.token_uri(), TOKEN_URI);
    assert!(!format!("{account:?}").contains("PRIVATE KEY"));
}

#[test]
fn bad_key_files_are_config_errors() {
    let with = |field: &str, value: Value| {
        let mut file: Value = serde_json::from_str(&key_file(RSA_KEY_A)).expect("JSON");
        file[field] = value;
        file.to_string()
    };
    let ec_pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----";
    for text in [
        String::new(),
        "{}".into(),
        with("client_email", json!("not an email")),
        with("client_email", json!(5)),
        with("token_uri", json!("ftp://x.example/token")),
        with("token_uri", json!("/token")),
        with("project_id", json!("a/b")),
        with("private_key", json!("garbage")),
        with("private_key", json!(ec_pem)),
    ] {
        assert!(
            matches!(ServiceAccount::from_json(&text), Err(Error::Config(_))),
            "{text}"
        );
    }
}

#[test]
fn the_assertion_has_the_oauth_claims_and_verifies() {
    let assertion = account().assertion(NOW_MS).expect("signs");
    let claims =
        verify_assertion(&assertion, &account().public_key(), TOKEN_URI, NOW_MS).expect("verifies");
    assert_eq!(
        claims,
        AssertionClaims {
            iss: "push@courier-test.iam.gserviceaccount.com".into(),
            scope: SCOPE.into(),
            aud: TOKEN_URI.into(),
            iat: NOW,
            exp: NOW + 3600,
        }
    );
    let header: Value = serde_json::from_slice(
        &b64::url_decode(assertion.split('.').next().expect("header")).expect("decodes"),
    )
    .expect("JSON");
    assert_eq!(
        header,
        json!({"alg": "RS256", "typ": "JWT", "kid": "0123abcd"})
    );
}

#[test]
fn assertion_verification_refuses_tampering_other_keys_audiences_and_expiry() {
    let assertion = account().assertion(NOW_MS).expect("signs");
    let key = account().public_key();
    assert!(verify_assertion(&tamper_claims(&assertion), &key, TOKEN_URI, NOW_MS).is_err());
    let other = ServiceAccount::from_json(&key_file(RSA_KEY_B)).expect("valid");
    assert!(verify_assertion(&assertion, &other.public_key(), TOKEN_URI, NOW_MS).is_err());
    assert!(verify_assertion(&assertion, &key, "https://other.example/token", NOW_MS).is_err());
    assert!(verify_assertion(&assertion, &key, TOKEN_URI, NOW_MS + 3_600_000).is_err());
    assert!(verify_assertion(&assertion, &key, TOKEN_URI, NOW_MS - 120_000).is_err());
}

#[test]
fn the_token_request_is_a_jwt_bearer_form_the_fake_can_read() {
    let request = account().token_request(NOW_MS).expect("builds");
    assert_eq!(request.method(), Method::POST);
    assert_eq!(request.uri(), TOKEN_URI);
    assert_eq!(
        request.headers()["content-type"],
        "application/x-www-form-urlencoded"
    );
    let body = std::str::from_utf8(request.body()).expect("ASCII");
    assert!(body.starts_with(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="
    ));
    let assertion = read_token_request(request.body()).expect("reads");
    assert!(verify_assertion(&assertion, &account().public_key(), TOKEN_URI, NOW_MS).is_ok());
    assert!(read_token_request(b"grant_type=client_credentials&assertion=x").is_err());
    assert!(
        read_token_request(b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer")
            .is_err()
    );
}

fn access() -> AccessToken {
    AccessToken {
        token: "ya29.token".into(),
        expires_at_ms: NOW_MS + 3_600_000,
    }
}

fn device() -> RegistrationToken {
    RegistrationToken::parse("fcm-token:APA91b-xyz").expect("valid")
}

#[test]
fn the_send_request_carries_the_message_for_every_platform() {
    let client = Client::new("https://fcm.googleapis.com/", "courier-test").expect("valid");
    let n = sample(true);
    let request = client.request(&access(), &device(), &n).expect("builds");
    assert_eq!(
        request.uri(),
        "https://fcm.googleapis.com/v1/projects/courier-test/messages:send"
    );
    assert_eq!(request.headers()["authorization"], "Bearer ya29.token");
    let body: Value = serde_json::from_slice(request.body()).expect("JSON");
    let message = &body["message"];
    assert_eq!(message["token"], "fcm-token:APA91b-xyz");
    assert_eq!(message["data"]["unread"], "3", "data values are strings");
    assert_eq!(message["data"]["text"], "lunch?");
    assert_eq!(message["android"]["priority"], "high");
    assert_eq!(message["android"]["collapse_key"], n.topic());
    assert_eq!(message["apns"]["payload"]["aps"]["badge"], 3);
    assert_eq!(message["webpush"]["headers"]["Topic"], n.topic());
    let quiet = message_of(&sample(false));
    assert!(!quiet.to_string().contains("lunch") && !quiet.to_string().contains("Ann"));
}

fn message_of(n: &Notification) -> Value {
    message(&device(), n)
}

#[test]
fn bad_client_settings_are_config_errors() {
    assert!(Client::new("fcm.googleapis.com", "p").is_err());
    assert!(Client::new(BASE, "").is_err());
    assert!(Client::new(BASE, "a/b").is_err());
    assert_eq!(
        Client::new("http://127.0.0.1:9002", "p")
            .expect("valid")
            .send_url(),
        "http://127.0.0.1:9002/v1/projects/p/messages:send"
    );
}

fn google(code: u16, status: &str, message: &str, details: Value) -> String {
    json!({"error": {"code": code, "status": status, "message": message, "details": details}})
        .to_string()
}

fn fcm_error(code: &str) -> Value {
    json!([{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}])
}

#[test]
fn fcm_answers_are_classified() {
    let unregistered = google(
        404,
        "NOT_FOUND",
        "Requested entity was not found.",
        fcm_error("UNREGISTERED"),
    );
    let bad_token = google(
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
        fcm_error("INVALID_ARGUMENT"),
    );
    let token_field = google(
        400,
        "INVALID_ARGUMENT",
        "Invalid value",
        json!([{"@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "message.token", "description": "bad"}]}]),
    );
    let bad_data = google(
        400,
        "INVALID_ARGUMENT",
        "Invalid value at 'message.data[0].value' (TYPE_STRING), 12",
        json!([{"@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "message.data[0].value"}]}]),
    );
    let mismatch = google(
        403,
        "PERMISSION_DENIED",
        "SenderId mismatch",
        fcm_error("SENDER_ID_MISMATCH"),
    );
    let quota = google(
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded",
        fcm_error("QUOTA_EXCEEDED"),
    );
    let table = vec![
        (
            answer(200, r#"{"name":"projects/p/messages/1"}"#, None),
            Outcome::Delivered,
        ),
        (
            answer(404, &unregistered, None),
            Outcome::TokenGone {
                reason: "UNREGISTERED".into(),
            },
        ),
        (
            answer(400, &bad_token, None),
            Outcome::TokenGone {
                reason:
                    "INVALID_ARGUMENT: The registration token is not a valid FCM registration token"
                        .into(),
            },
        ),
        (
            answer(400, &token_field, None),
            Outcome::TokenGone {
                reason: "INVALID_ARGUMENT: Invalid value".into(),
            },
        ),
        (
            answer(400, &bad_data, None),
            Outcome::Permanent {
                status: 400,
                reason:
                    "INVALID_ARGUMENT: Invalid value at 'message.data[0].value' (TYPE_STRING), 12"
                        .into(),
            },
        ),
        (answer(401, "", None), Outcome::RefreshAuth),
        (
            answer(403, &mismatch, None),
            Outcome::Permanent {
                status: 403,
                reason: "SENDER_ID_MISMATCH: SenderId mismatch".into(),
            },
        ),
        (
            answer(429, &quota, Some("20")),
            Outcome::Retry {
                after_ms: Some(20_000),
            },
        ),
        (answer(500, "", None), Outcome::Retry { after_ms: None }),
        (
            answer(503, "<html>", Some("Thu, 01 Jan 2026 00:00:10 GMT")),
            Outcome::Retry {
                after_ms: Some(10_000),
            },
        ),
        (
            answer(404, "not json", None),
            Outcome::Permanent {
                status: 404,
                reason: "no error body".into(),
            },
        ),
    ];
    assert_classifies(classify, table, NOW_MS);
}
