use jwt_simple::prelude::{HS256Key, HS512Key, JWTClaims, MACLike};
use serde_json::{Map, Value, json};

use super::*;

const SECRET: &str = "test-secret-0123456789";
/// A fake clock: all times below are relative to this second.
const T: u64 = 1_764_000_000;

fn ms(secs: u64) -> i64 {
    i64::try_from(secs * 1000).expect("fits")
}

fn key() -> TokenKey {
    TokenKey::hs256(SECRET).expect("long enough")
}

fn uid(s: &str) -> UserId {
    UserId::parse(s).expect("valid")
}

fn claims(exp: u64) -> TokenClaims {
    TokenClaims {
        user: uid("u1"),
        expires_at_secs: exp,
        not_before_secs: None,
        issued_at_secs: None,
        device: None,
        role: Role::User,
    }
}

fn issue(claims: &TokenClaims) -> String {
    key().issue(claims).expect("issues")
}

/// Signs arbitrary claims JSON with `secret`, bypassing [`TokenClaims`].
fn raw_token(secret: &str, claims: Value) -> String {
    let custom: Map<String, Value> = claims.as_object().cloned().expect("an object");
    let jwt = JWTClaims {
        issued_at: None,
        expires_at: None,
        invalid_before: None,
        audiences: None,
        issuer: None,
        jwt_id: None,
        subject: None,
        nonce: None,
        custom,
    };
    HS256Key::from_bytes(secret.as_bytes())
        .authenticate(jwt)
        .expect("signs")
}

fn reason(result: Result<Identity, Error>) -> String {
    match result {
        Err(Error::Unauthorized(reason)) => reason,
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

#[test]
fn valid_token_names_the_user_with_default_device_and_user_role() {
    let identity = key()
        .verify(&issue(&claims(T + 3600)), ms(T))
        .expect("valid");
    assert_eq!(identity.user, uid("u1"));
    assert_eq!(identity.device.as_str(), "default");
    assert_eq!(identity.role, Role::User);
    assert_eq!(identity.expires_at_secs, T + 3600);
}

#[test]
fn dev_and_admin_role_claims_are_read() {
    let token = issue(&TokenClaims {
        device: Some(DeviceId::parse("phone-1").expect("valid")),
        role: Role::Admin,
        ..claims(T + 60)
    });
    let identity = key().verify(&token, ms(T)).expect("valid");
    assert_eq!(identity.device.as_str(), "phone-1");
    assert_eq!(identity.role, Role::Admin);
    assert_eq!(identity.require_admin(), Ok(()));
}

#[test]
fn expired_token_is_accepted_within_skew() {
    let token = issue(&claims(T));
    assert!(key().verify(&token, ms(T + CLOCK_SKEW_SECS)).is_ok());
}

#[test]
fn expired_token_is_unauthorized_after_skew() {
    let token = issue(&claims(T));
    let late = ms(T + CLOCK_SKEW_SECS) + 1;
    assert_eq!(reason(key().verify(&token, late)), "token has expired");
}

#[test]
fn not_yet_valid_token_is_unauthorized_beyond_skew() {
    let token = issue(&TokenClaims {
        not_before_secs: Some(T + 100),
        ..claims(T + 3600)
    });
    assert_eq!(
        reason(key().verify(&token, ms(T + 39))),
        "token is not valid yet"
    );
    assert!(key().verify(&token, ms(T + 40)).is_ok());
}

#[test]
fn token_issued_in_the_future_is_unauthorized_beyond_skew() {
    let token = issue(&TokenClaims {
        issued_at_secs: Some(T + 100),
        ..claims(T + 3600)
    });
    assert_eq!(
        reason(key().verify(&token, ms(T + 39))),
        "token was issued in the future"
    );
    assert!(key().verify(&token, ms(T + 40)).is_ok());
}

#[test]
fn token_without_exp_is_unauthorized() {
    let token = raw_token(SECRET, json!({"sub": "u1"}));
    assert_eq!(
        reason(key().verify(&token, ms(T))),
        "token has no exp claim"
    );
}

#[test]
fn negative_or_absurd_exp_is_unauthorized() {
    for exp in [json!(-1), json!(i64::MIN), json!(1e30), json!(u64::MAX)] {
        let token = raw_token(SECRET, json!({"sub": "u1", "exp": exp}));
        assert!(key().verify(&token, ms(T)).is_err(), "{exp}");
    }
    let token = raw_token(SECRET, json!({"sub": "u1", "exp": "soon"}));
    assert_eq!(reason(key().verify(&token, ms(T))), "malformed token");
}

#[test]
fn token_without_a_valid_sub_is_unauthorized() {
    let missing = raw_token(SECRET, json!({"exp": T + 60}));
    assert_eq!(
        reason(key().verify(&missing, ms(T))),
        "token has no sub claim"
    );
    let invalid = raw_token(SECRET, json!({"exp": T + 60, "sub": "not valid"}));
    assert_eq!(
        reason(key().verify(&invalid, ms(T))),
        "token sub is not a valid user id"
    );
    let number = raw_token(SECRET, json!({"exp": T + 60, "sub": 7}));
    assert!(key().verify(&number, ms(T)).is_err());
}

#[test]
fn invalid_dev_or_non_string_role_is_unauthorized() {
    let dev = raw_token(SECRET, json!({"exp": T + 60, "sub": "u1", "dev": "a b"}));
    assert_eq!(
        reason(key().verify(&dev, ms(T))),
        "token dev is not a valid device id"
    );
    let role = raw_token(
        SECRET,
        json!({"exp": T + 60, "sub": "u1", "role": ["admin"]}),
    );
    assert!(key().verify(&role, ms(T)).is_err());
}

#[test]
fn other_roles_are_ordinary_users_and_forbidden_on_admin_routes() {
    let token = raw_token(
        SECRET,
        json!({"exp": T + 60, "sub": "u1", "role": "Admin", "extra": 1}),
    );
    let identity = key().verify(&token, ms(T)).expect("valid");
    assert_eq!(identity.role, Role::User);
    assert_eq!(
        identity.require_admin().map_err(|e| e.code()),
        Err("forbidden")
    );
}

#[test]
fn token_signed_with_another_secret_is_unauthorized() {
    let token = raw_token(
        "another-secret-0123456789",
        json!({"exp": T + 60, "sub": "u1"}),
    );
    assert_eq!(reason(key().verify(&token, ms(T))), "bad token signature");
}

#[test]
fn tampered_payload_is_unauthorized() {
    let token = issue(&claims(T + 60));
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged = raw_token(SECRET, json!({"exp": T + 60, "sub": "admin"}));
    let forged_payload = forged.split('.').nth(1).expect("payload");
    parts[1] = forged_payload;
    let spliced = parts.join(".");
    assert_eq!(reason(key().verify(&spliced, ms(T))), "bad token signature");
}

#[test]
fn other_algorithms_and_alg_none_are_unauthorized() {
    let jwt = JWTClaims {
        issued_at: None,
        expires_at: Some(UnixTimeStamp::from_secs(T + 60)),
        invalid_before: None,
        audiences: None,
        issuer: None,
        jwt_id: None,
        subject: Some("u1".to_string()),
        nonce: None,
        custom: Map::new(),
    };
    let hs512 = HS512Key::from_bytes(SECRET.as_bytes())
        .authenticate(jwt)
        .expect("signs");
    assert_eq!(
        reason(key().verify(&hs512, ms(T))),
        "token algorithm must be HS256"
    );

    let b64 = |v: Value| {
        use jwt_simple::reexports::ct_codecs::{Base64UrlSafeNoPadding, Encoder as _};
        Base64UrlSafeNoPadding::encode_to_string(v.to_string()).expect("encodes")
    };
    let none = format!(
        "{}.{}.",
        b64(json!({"alg": "none"})),
        b64(json!({"sub": "u1", "exp": T + 60}))
    );
    assert!(key().verify(&none, ms(T)).is_err());
}

#[test]
fn garbage_and_oversize_tokens_are_unauthorized() {
    for token in [
        "",
        "abc",
        "a.b.c",
        "a.b.c.d",
        "..",
        &"a".repeat(MAX_TOKEN_BYTES + 1),
    ] {
        assert_eq!(
            key().verify(token, ms(T)).map_err(|e| e.code()),
            Err("unauthorized"),
            "{token:.20}"
        );
    }
}

#[test]
fn short_secret_is_a_config_error_not_a_client_error() {
    let err = TokenKey::hs256("eleven-byte").expect_err("11 bytes");
    assert!(matches!(err, Error::Config(_)));
    assert_eq!(err.status(), 500);
    assert!(TokenKey::hs256("twelve-bytes").is_ok());
}

#[test]
fn key_debug_hides_the_secret() {
    assert!(!format!("{:?}", key()).contains(SECRET));
}

#[test]
fn bearer_header_is_parsed_case_insensitively() {
    assert_eq!(bearer_token(Some("Bearer abc.def.ghi")), Ok("abc.def.ghi"));
    assert_eq!(bearer_token(Some("bearer   abc ")), Ok("abc"));
    assert_eq!(bearer_token(Some("BEARER abc")), Ok("abc"));
}

#[test]
fn missing_or_malformed_bearer_header_is_unauthorized() {
    for header in [
        None,
        Some(""),
        Some("Bearer"),
        Some("Bearer "),
        Some("Basic abc"),
        Some("abc"),
        Some("Bearer a b"),
    ] {
        assert_eq!(
            bearer_token(header).map_err(|e| e.code()),
            Err("unauthorized"),
            "{header:?}"
        );
    }
}

#[test]
fn authenticate_reads_the_header_and_verifies() {
    let header = format!("Bearer {}", issue(&claims(T + 60)));
    assert_eq!(
        key().authenticate(Some(&header), ms(T)).map(|i| i.user),
        Ok(uid("u1"))
    );
    assert_eq!(
        key().authenticate(None, ms(T)).map_err(|e| e.code()),
        Err("unauthorized")
    );
}
