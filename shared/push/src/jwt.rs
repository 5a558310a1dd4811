//! Compact JWS (RFC 7515) with ES256 and RS256, the two algorithms vendors ask for.
//!
//! Written over `p256` and `rsa` directly rather than jwt-simple (which courier-core
//! uses for HS256): jwt-simple's `Claims::create` reads the clock and its ES256 signer
//! draws from `thread_rng`, while this crate takes time and randomness as arguments.
//! ES256 here is deterministic (RFC 6979) and RS256 is PKCS#1 v1.5, so a signature is
//! a pure function of key and input. Time claims are checked by each caller, whose
//! rules differ (VAPID's 24 h cap, APNs' hour, OAuth's hour).

use p256::ecdsa::signature::{SignatureEncoding as _, Signer as _, Verifier as _};
use p256::ecdsa::{Signature as EcSignature, SigningKey as EcSigningKey, VerifyingKey};
use rsa::pkcs1v15::{
    Signature as RsaSignature, SigningKey as RsaSigningKey, VerifyingKey as RsaVerifyingKey,
};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::Value;
use sha2::Sha256;

use crate::Error;
use crate::b64;

/// The longest token parsed, in bytes: bounds the work a hostile header can cause.
pub(crate) const MAX_JWT_BYTES: usize = 8192;

/// `base64url(header) "." base64url(claims)`: the bytes that are signed.
fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64::url_encode(header.to_string().as_bytes()),
        b64::url_encode(claims.to_string().as_bytes())
    )
}

/// Signs `claims` with ES256 (`header` must name `"alg": "ES256"`).
pub(crate) fn sign_es256(key: &EcSigningKey, header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let signature: EcSignature = key.sign(input.as_bytes());
    format!("{input}.{}", b64::url_encode(&signature.to_bytes()))
}

/// Signs `claims` with RS256 (`header` must name `"alg": "RS256"`).
pub(crate) fn sign_rs256(
    key: &RsaPrivateKey,
    header: &Value,
    claims: &Value,
) -> Result<String, Error> {
    let input = signing_input(header, claims);
    let signer = RsaSigningKey::<Sha256>::new(key.clone());
    let signature = signer
        .try_sign(input.as_bytes())
        .map_err(|e| Error::Config(format!("RS256 signing failed: {e}")))?;
    Ok(format!("{input}.{}", b64::url_encode(&signature.to_vec())))
}

/// A token split into its parts, signature not yet checked.
struct Parts<'a> {
    header: Value,
    claims: Value,
    signed: &'a str,
    signature: Vec<u8>,
}

fn bad(what: &str) -> Error {
    Error::Unauthenticated(format!("malformed JWT: {what}"))
}

/// Splits and decodes a compact JWS whose header names `alg`.
fn parse<'a>(token: &'a str, alg: &str) -> Result<Parts<'a>, Error> {
    if token.len() > MAX_JWT_BYTES {
        return Err(bad("too long"));
    }
    let (signed, signature) = token.rsplit_once('.').ok_or_else(|| bad("no signature"))?;
    let (header, claims) = signed
        .split_once('.')
        .ok_or_else(|| bad("not three parts"))?;
    let decode_json = |part: &str, what: &str| -> Result<Value, Error> {
        let bytes = b64::url_decode(part).ok_or_else(|| bad(what))?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(value @ Value::Object(_)) => Ok(value),
            _ => Err(bad(what)),
        }
    };
    let header = decode_json(header, "header")?;
    let claims = decode_json(claims, "claims")?;
    if header.get("alg").and_then(Value::as_str) != Some(alg) {
        return Err(Error::Unauthenticated(format!("JWT alg is not {alg}")));
    }
    let signature = b64::url_decode(signature).ok_or_else(|| bad("signature encoding"))?;
    Ok(Parts {
        header,
        claims,
        signed,
        signature,
    })
}

/// Verifies an ES256 token; returns `(header, claims)`. Times are not checked.
pub(crate) fn verify_es256(token: &str, key: &VerifyingKey) -> Result<(Value, Value), Error> {
    let parts = parse(token, "ES256")?;
    let signature = EcSignature::from_slice(&parts.signature)
        .map_err(|_| bad("ES256 signature is not 64 bytes r||s"))?;
    key.verify(parts.signed.as_bytes(), &signature)
        .map_err(|_| Error::Unauthenticated("JWT signature does not verify".into()))?;
    Ok((parts.header, parts.claims))
}

/// Verifies an RS256 token; returns `(header, claims)`. Times are not checked.
pub(crate) fn verify_rs256(token: &str, key: &RsaPublicKey) -> Result<(Value, Value), Error> {
    let parts = parse(token, "RS256")?;
    let signature =
        RsaSignature::try_from(parts.signature.as_slice()).map_err(|_| bad("RS256 signature"))?;
    RsaVerifyingKey::<Sha256>::new(key.clone())
        .verify(parts.signed.as_bytes(), &signature)
        .map_err(|_| Error::Unauthenticated("JWT signature does not verify".into()))?;
    Ok((parts.header, parts.claims))
}

/// A non-negative integer claim (NumericDate), or an `Unauthenticated` naming it.
pub(crate) fn u64_claim(claims: &Value, name: &str) -> Result<u64, Error> {
    claims
        .get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::Unauthenticated(format!("JWT claim {name} missing or not a number")))
}

/// A string claim, or an `Unauthenticated` naming it.
pub(crate) fn str_claim<'a>(claims: &'a Value, name: &str) -> Result<&'a str, Error> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Unauthenticated(format!("JWT claim {name} missing or not a string")))
}

/// `now_ms` as whole Unix seconds (0 before the epoch).
pub(crate) fn unix_secs(now_ms: i64) -> u64 {
    u64::try_from(now_ms.div_euclid(1000)).unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rsa::pkcs8::DecodePrivateKey as _;
    use serde_json::json;

    pub(crate) const RSA_KEY_A: &str = include_str!("testdata/rsa_key_a.pem");
    pub(crate) const RSA_KEY_B: &str = include_str!("testdata/rsa_key_b.pem");

    pub(crate) fn rsa_key(pem: &str) -> RsaPrivateKey {
        RsaPrivateKey::from_pkcs8_pem(pem).expect("test key parses")
    }

    pub(crate) fn ec_key(byte: u8) -> EcSigningKey {
        EcSigningKey::from_slice(&[byte; 32]).expect("valid scalar")
    }

    /// `token` with one character of its claims segment changed.
    pub(crate) fn tamper_claims(token: &str) -> String {
        let (header, rest) = token.split_once('.').expect("three parts");
        let (claims, signature) = rest.split_once('.').expect("three parts");
        let mut bytes = b64::url_decode(claims).expect("claims decode");
        if let Some(last_digit) = bytes.iter_mut().rev().find(|b| b.is_ascii_digit()) {
            *last_digit = if *last_digit == b'9' {
                b'8'
            } else {
                *last_digit + 1
            };
        }
        format!("{header}.{}.{signature}", b64::url_encode(&bytes))
    }

    #[test]
    fn es256_signs_deterministically_and_verifies() {
        let key = ec_key(7);
        let header = json!({"alg": "ES256", "typ": "JWT"});
        let claims = json!({"aud": "https://push.example", "exp": 100});
        let token = sign_es256(&key, &header, &claims);
        assert_eq!(token, sign_es256(&key, &header, &claims), "RFC 6979");
        let (h, c) = verify_es256(&token, key.verifying_key()).expect("verifies");
        assert_eq!((h, c), (header, claims));
    }

    #[test]
    fn es256_rejects_tampering_other_keys_and_other_algorithms() {
        let key = ec_key(7);
        let token = sign_es256(&key, &json!({"alg": "ES256"}), &json!({"exp": 100}));
        assert!(verify_es256(&tamper_claims(&token), key.verifying_key()).is_err());
        assert!(verify_es256(&token, ec_key(8).verifying_key()).is_err());
        let none = sign_es256(&key, &json!({"alg": "none"}), &json!({"exp": 100}));
        assert!(verify_es256(&none, key.verifying_key()).is_err());
        for junk in [
            "",
            ".",
            "a.b",
            "a.b.c",
            "..",
            &"x".repeat(MAX_JWT_BYTES + 1),
        ] {
            assert!(verify_es256(junk, key.verifying_key()).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn rs256_signs_and_verifies_and_rejects_tampering() {
        let key = rsa_key(RSA_KEY_A);
        let header = json!({"alg": "RS256", "typ": "JWT"});
        let token = sign_rs256(&key, &header, &json!({"iat": 5})).expect("signs");
        let (_, claims) = verify_rs256(&token, &key.to_public_key()).expect("verifies");
        assert_eq!(claims["iat"], 5);
        assert!(verify_rs256(&tamper_claims(&token), &key.to_public_key()).is_err());
        assert!(verify_rs256(&token, &rsa_key(RSA_KEY_B).to_public_key()).is_err());
        assert!(
            verify_es256(&token, ec_key(1).verifying_key()).is_err(),
            "alg mismatch"
        );
    }

    #[test]
    fn claims_are_read_with_their_types() {
        let claims = json!({"exp": 10, "sub": "x", "neg": -1});
        assert_eq!(u64_claim(&claims, "exp"), Ok(10));
        assert!(u64_claim(&claims, "neg").is_err() && u64_claim(&claims, "sub").is_err());
        assert_eq!(str_claim(&claims, "sub"), Ok("x"));
        assert!(str_claim(&claims, "exp").is_err());
        assert_eq!(unix_secs(1_999), 1);
        assert_eq!(unix_secs(-5), 0);
    }
}
