//! OAuth client credentials, the send, and the result-code table.

use super::*;
use crate::notification::tests::sample;
use crate::outcome::tests::{answer, assert_classifies};

const NOW_MS: i64 = 1_767_225_600_000;

fn credentials() -> Credentials {
    Credentials::new("104712345", "s3cr3t&=+").expect("valid")
}

#[test]
fn the_token_request_is_a_client_credentials_form() {
    let request = credentials()
        .token_request("https://oauth-login.cloud.huawei.com/")
        .expect("builds");
    assert_eq!(request.method(), Method::POST);
    assert_eq!(
        request.uri(),
        "https://oauth-login.cloud.huawei.com/oauth2/v3/token"
    );
    assert_eq!(
        request.headers()["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        std::str::from_utf8(request.body()).expect("ASCII"),
        "grant_type=client_credentials&client_id=104712345&client_secret=s3cr3t%26%3D%2B"
    );
    assert_eq!(
        read_token_request(request.body()).expect("the fake reads it"),
        ("104712345".to_string(), "s3cr3t&=+".to_string())
    );
    assert!(!format!("{:?}", credentials()).contains("s3cr3t"));
}

#[test]
fn bad_credentials_and_forms_are_refused() {
    assert!(Credentials::new("", "x").is_err());
    assert!(Credentials::new("12/3", "x").is_err());
    assert!(Credentials::new("123", "").is_err());
    assert!(Credentials::new("123", "a\nb").is_err());
    assert!(
        credentials()
            .token_request("oauth-login.cloud.huawei.com")
            .is_err()
    );
    assert!(read_token_request(b"grant_type=password&client_id=1&client_secret=2").is_err());
    assert!(read_token_request(b"grant_type=client_credentials&client_id=1").is_err());
}

fn access() -> AccessToken {
    AccessToken {
        token: "CV0k+token".into(),
        expires_at_ms: NOW_MS + 3_600_000,
    }
}

fn tokens(n: usize) -> Vec<RegistrationToken> {
    (0..n)
        .map(|i| RegistrationToken::parse(&format!("IQAAAACy0kYk{i}")).expect("valid"))
        .collect()
}

#[test]
fn the_send_carries_data_tokens_and_a_preview_notification() {
    let client = Client::new(BASE, "104712345").expect("valid");
    let n = sample(true);
    let request = client.request(&access(), &tokens(2), &n).expect("builds");
    assert_eq!(
        request.uri(),
        "https://push-api.cloud.huawei.com/v1/104712345/messages:send"
    );
    assert_eq!(request.headers()["authorization"], "Bearer CV0k+token");
    let body: Value = serde_json::from_slice(request.body()).expect("JSON");
    assert_eq!(body["validate_only"], false);
    assert_eq!(
        body["message"]["token"],
        json!(["IQAAAACy0kYk0", "IQAAAACy0kYk1"])
    );
    let data: Value = serde_json::from_str(body["message"]["data"].as_str().expect("a string"))
        .expect("data is JSON text");
    assert_eq!(data, n.json());
    let android = &body["message"]["android"];
    assert_eq!(android["urgency"], "HIGH");
    assert_eq!(android["bi_tag"], "m-42");
    assert_eq!(android["notification"]["title"], "Ann");
    assert_eq!(android["notification"]["body"], "lunch?");
}

#[test]
fn preview_off_sends_a_data_message_only() {
    let body = message(&tokens(1), &sample(false));
    assert!(body["message"]["android"].get("notification").is_none());
    assert!(!body.to_string().contains("lunch"));
}

#[test]
fn sends_take_one_to_a_thousand_tokens() {
    let client = Client::new("http://127.0.0.1:9003", "1").expect("valid");
    assert!(client.request(&access(), &[], &sample(false)).is_err());
    assert!(
        client
            .request(&access(), &tokens(MAX_TOKENS + 1), &sample(false))
            .is_err()
    );
    assert!(
        client
            .request(&access(), &tokens(MAX_TOKENS), &sample(false))
            .is_ok()
    );
    assert!(Client::new(BASE, "").is_err());
}

fn hms(code: &str, msg: &str) -> String {
    json!({"code": code, "msg": msg, "requestId": "157440955549500001002006"}).to_string()
}

#[test]
fn result_codes_are_classified() {
    let partial = hms(
        CODE_PARTIAL,
        r#"{"success":1,"failure":2,"illegal_tokens":["tok-a","tok-b"]}"#,
    );
    let verdict = classify_batch(&answer(200, &partial, None), NOW_MS);
    assert_eq!(
        verdict,
        Verdict {
            outcome: Outcome::Delivered,
            illegal_tokens: vec!["tok-a".into(), "tok-b".into()],
        }
    );
    let table = vec![
        (
            answer(200, &hms(CODE_SUCCESS, "Success"), None),
            Outcome::Delivered,
        ),
        (
            answer(200, r#"{"code":80000000,"msg":"Success"}"#, None),
            Outcome::Delivered,
        ),
        (
            answer(200, &partial, None),
            Outcome::TokenGone {
                reason: "80100000: token refused".into(),
            },
        ),
        (
            answer(
                400,
                &hms(CODE_ALL_TOKENS_INVALID, "Token invalid error"),
                None,
            ),
            Outcome::TokenGone {
                reason: "80300007: Token invalid error".into(),
            },
        ),
        (
            answer(401, &hms(CODE_TOKEN_EXPIRED, "Oauth Token expired"), None),
            Outcome::RefreshAuth,
        ),
        (
            answer(200, &hms(CODE_TOKEN_EXPIRED, "Oauth Token expired"), None),
            Outcome::RefreshAuth,
        ),
        (answer(401, "", None), Outcome::RefreshAuth),
        (
            answer(503, &hms("81000001", "flow control"), Some("3")),
            Outcome::Retry {
                after_ms: Some(3_000),
            },
        ),
        (answer(500, "", None), Outcome::Retry { after_ms: None }),
        (answer(429, "", None), Outcome::Retry { after_ms: None }),
        (
            answer(400, &hms("80100003", "Illegal payload"), None),
            Outcome::Permanent {
                status: 400,
                reason: "80100003: Illegal payload".into(),
            },
        ),
        (
            answer(401, &hms("80200001", "Oauth authentication error"), None),
            Outcome::RefreshAuth,
        ),
        (
            answer(200, "not json", None),
            Outcome::Permanent {
                status: 200,
                reason: "no result code".into(),
            },
        ),
    ];
    assert_classifies(classify, table, NOW_MS);
}

#[test]
fn partial_success_lists_are_read_leniently() {
    assert_eq!(
        illegal_tokens(r#"{"illegalTokens":["x"]}"#),
        vec!["x".to_string()]
    );
    assert!(illegal_tokens(r#"{"illegalTokens":{"noRight":["x"]}}"#).is_empty());
    assert!(illegal_tokens("not json").is_empty());
    assert!(illegal_tokens(r#"{"illegal_tokens":[1,2]}"#).is_empty());
}
