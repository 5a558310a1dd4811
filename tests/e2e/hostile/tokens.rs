//! Credentials: hostile tokens (minted byte by byte, so any header or claim can be
//! wrong), and the valid credentials of each kind of route.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use courier_push::callbacks::signature::{SigningSecret, sign};
use courier_push::callbacks::{HmsCallbackKey, sign_hms};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::wire::Wire;
use super::world::{Auth, Route};
use crate::client::{INTERNAL_SECRET, JWT_SECRET, admin_token, now_secs, user_token};
use crate::vendors::{HMS_CALLBACK_KEY, HMS_CALLBACK_USER, PUSH_CALLBACK_SECRET, now_ms};

/// A JWT with any header and claims, HMAC-SHA256 signed with `secret`.
pub(super) fn jwt(secret: &str, header: &Value, claims: &Value) -> String {
    let head = URL_SAFE_NO_PAD.encode(header.to_string());
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{head}.{body}").as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{head}.{body}.{tag}")
}

/// The `Authorization` values that must be refused on every route needing a token:
/// `(case, value)`. Each claims the admin role, so none is refused for its role.
pub(super) fn bad_tokens() -> Vec<(&'static str, Option<String>)> {
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    let exp = now_secs() + 3600;
    let admin = json!({"sub": "ann", "exp": exp, "role": "admin"});
    let valid = jwt(JWT_SECRET, &hs256, &admin);
    let mut parts = valid.split('.');
    let (head, _, tag) = (parts.next().unwrap(), parts.next(), parts.next().unwrap());
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let bearer = |t: String| Some(format!("Bearer {t}"));
    vec![
        ("no token", None),
        (
            "expired",
            bearer(jwt(
                JWT_SECRET,
                &hs256,
                &json!({"sub": "ann", "exp": now_secs() - 3600, "role": "admin"}),
            )),
        ),
        (
            "not yet valid",
            bearer(jwt(
                JWT_SECRET,
                &hs256,
                &json!({"sub": "ann", "exp": exp, "nbf": now_secs() + 3600, "role": "admin"}),
            )),
        ),
        (
            "signed with another secret",
            bearer(jwt("another-secret-0123456789", &hs256, &admin)),
        ),
        ("two parts", bearer(format!("{head}.{}", b64(&admin)))),
        ("four parts", bearer(format!("{valid}.{tag}"))),
        ("not base64", bearer("!!!.@@@.###".into())),
        (
            "alg none, no signature",
            bearer(format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&admin))),
        ),
        (
            "alg none, signed",
            bearer(jwt(JWT_SECRET, &json!({"alg": "none"}), &admin)),
        ),
        (
            "alg HS512 header",
            bearer(jwt(JWT_SECRET, &json!({"alg": "HS512"}), &admin)),
        ),
        (
            "claims swapped under a valid signature",
            bearer(format!(
                "{head}.{}.{tag}",
                b64(&json!({"sub": "eve", "exp": exp, "role": "admin"}))
            )),
        ),
        (
            "claims not JSON",
            bearer(format!(
                "{head}.{}.{tag}",
                URL_SAFE_NO_PAD.encode("not json")
            )),
        ),
        (
            "no exp",
            bearer(jwt(
                JWT_SECRET,
                &hs256,
                &json!({"sub": "ann", "role": "admin"}),
            )),
        ),
        (
            "exp as a string",
            bearer(jwt(
                JWT_SECRET,
                &hs256,
                &json!({"sub": "ann", "exp": exp.to_string(), "role": "admin"}),
            )),
        ),
        (
            "sub not an id",
            bearer(jwt(
                JWT_SECRET,
                &hs256,
                &json!({"sub": "ann' OR '1'='1", "exp": exp, "role": "admin"}),
            )),
        ),
        (
            "role not a string",
            bearer(jwt(
                JWT_SECRET,
                &hs256,
                &json!({"sub": "ann", "exp": exp, "role": ["admin"]}),
            )),
        ),
        ("Basic scheme", Some(format!("Basic {valid}"))),
        ("no scheme", Some(valid.clone())),
        (
            "over 8 KiB",
            bearer(jwt(
                JWT_SECRET,
                &hs256,
                &json!({"sub": "ann", "exp": exp, "role": "admin", "pad": "x".repeat(9000)}),
            )),
        ),
    ]
}

/// Valid tokens without the admin role: `(case, value)`, each 403 on admin routes.
pub(super) fn non_admin_tokens() -> Vec<(&'static str, String)> {
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    let exp = now_secs() + 3600;
    let with_role = |role: Value| {
        format!(
            "Bearer {}",
            jwt(
                JWT_SECRET,
                &hs256,
                &json!({"sub": "ann", "exp": exp, "role": role}),
            )
        )
    };
    vec![
        ("a user token", format!("Bearer {}", user_token("ann"))),
        ("role ADMIN", with_role(json!("ADMIN"))),
        ("role admin with a space", with_role(json!("admin "))),
    ]
}

/// The credentials of `route`'s valid request, for `body` (a signature covers it).
pub(super) fn credentials(route: &Route, body: &[u8]) -> Vec<(String, String)> {
    let header = |k: &str, v: String| vec![(k.to_string(), v)];
    match route.auth {
        Auth::Public => Vec::new(),
        Auth::User => header("authorization", format!("Bearer {}", user_token(route.who))),
        Auth::Admin => header("authorization", format!("Bearer {}", admin_token())),
        Auth::Internal => header("x-internal-secret", INTERNAL_SECRET.to_string()),
        Auth::Signed => {
            let secret = SigningSecret::new(PUSH_CALLBACK_SECRET.as_bytes()).expect("secret");
            header("x-courier-signature", sign(&secret, now_ms() / 1000, body))
        }
        Auth::Huawei => {
            let key = HmsCallbackKey::from_base64_secret(
                HMS_CALLBACK_USER,
                &STANDARD.encode(HMS_CALLBACK_KEY),
            )
            .expect("key");
            let nonce = format!("hostile-{}", now_ms());
            header("x-huawei-callback-id", sign_hms(&key, now_ms(), &nonce))
        }
    }
}

/// `route`'s valid request with `path` and `body`, and its credentials.
pub(super) fn valid(route: &Route, path: &str, body: Vec<u8>) -> Wire {
    let mut wire = Wire::new(route.method, path).header("content-type", "application/json");
    for (k, v) in credentials(route, &body) {
        wire = wire.header(&k, &v);
    }
    wire.body(body)
}
