//! VAPID (RFC 8292): the application server's P-256 key, the ES256 JWT it signs per
//! push service origin, and the `Authorization: vapid t=<jwt>, k=<key>` header — plus
//! [`verify_vapid`], the push service's check, for the test suite's fake.
//!
//! The key is the `vapid_private_key` variable: the 32-byte private scalar in base64url
//! (what `web-push generate-vapid-keys` prints), or a PEM (PKCS#8 `PRIVATE KEY` or SEC1
//! `EC PRIVATE KEY`). [`VapidKey::public_key`] is the `applicationServerKey` browsers
//! subscribe with (`GET /v1/push/config`).

use std::fmt;

use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::elliptic_curve::rand_core::CryptoRngCore;
use p256::pkcs8::DecodePrivateKey as _;
use p256::{PublicKey, SecretKey};
use serde_json::json;

use crate::jwt::{self, str_claim, u64_claim, unix_secs};
use crate::{Error, b64};

/// RFC 8292 §2: `exp` MUST NOT be more than 24 hours after the request.
pub const MAX_VAPID_TTL_SECS: u64 = 24 * 3600;
/// How long the JWTs this crate signs are valid: half the maximum, so a push service
/// whose clock runs ahead still accepts them.
pub const VAPID_TTL_SECS: u64 = 12 * 3600;

/// The application server's VAPID key pair. `Debug` never shows the private key.
#[derive(Clone)]
pub struct VapidKey {
    key: SigningKey,
}

impl fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VapidKey(public {})", self.public_key())
    }
}

/// The claims of a verified VAPID header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VapidClaims {
    /// `aud`: the push service origin.
    pub aud: String,
    /// `exp`, Unix seconds.
    pub exp: u64,
    /// `sub`: the contact (`mailto:` or `https:`), when present.
    pub sub: Option<String>,
    /// `k`: the application server key, base64url (65-byte uncompressed point).
    pub public_key: String,
}

impl VapidKey {
    /// Reads the configured key: a base64url 32-byte scalar or a PEM. Anything else is
    /// a `Config` error that never echoes the input.
    pub fn parse(text: &str) -> Result<VapidKey, Error> {
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            let secret = SecretKey::from_pkcs8_pem(text)
                .or_else(|_| SecretKey::from_sec1_pem(text))
                .map_err(|_| {
                    Error::Config("vapid_private_key PEM is not a P-256 private key".into())
                })?;
            return Ok(VapidKey {
                key: SigningKey::from(secret),
            });
        }
        let bytes = b64::decode_lenient(text)
            .ok_or_else(|| Error::Config("vapid_private_key is not base64url".into()))?;
        VapidKey::from_bytes(&bytes)
    }

    /// The key of a raw 32-byte private scalar.
    pub fn from_bytes(scalar: &[u8]) -> Result<VapidKey, Error> {
        if scalar.len() != 32 {
            return Err(Error::Config(format!(
                "vapid_private_key must be 32 bytes, not {}",
                scalar.len()
            )));
        }
        let key = SigningKey::from_slice(scalar)
            .map_err(|_| Error::Config("vapid_private_key is not a valid P-256 scalar".into()))?;
        Ok(VapidKey { key })
    }

    /// A new random key (for `courier` tooling that mints configuration).
    pub fn generate(rng: &mut impl CryptoRngCore) -> VapidKey {
        VapidKey {
            key: SigningKey::random(rng),
        }
    }

    /// The private scalar in base64url: the form [`VapidKey::parse`] reads.
    pub fn private_key_base64url(&self) -> String {
        b64::url_encode(&self.key.to_bytes())
    }

    /// The public key, base64url of the 65-byte uncompressed point: the browser's
    /// `applicationServerKey` and the header's `k`.
    pub fn public_key(&self) -> String {
        b64::url_encode(self.key.verifying_key().to_encoded_point(false).as_bytes())
    }

    /// The signed JWT for `aud` (a push service origin such as
    /// `https://fcm.googleapis.com`) with contact `subject`, expiring at `exp_secs`.
    pub fn jwt(&self, aud: &str, subject: &str, exp_secs: u64) -> String {
        let header = json!({"typ": "JWT", "alg": "ES256"});
        let claims = json!({"aud": aud, "exp": exp_secs, "sub": subject});
        jwt::sign_es256(&self.key, &header, &claims)
    }

    /// The `Authorization` value for a request to `aud` at `now_ms`: a JWT valid for
    /// [`VAPID_TTL_SECS`], as `vapid t=<jwt>, k=<public key>`.
    pub fn authorization(&self, aud: &str, subject: &str, now_ms: i64) -> String {
        let exp = unix_secs(now_ms).saturating_add(VAPID_TTL_SECS);
        format!(
            "vapid t={}, k={}",
            self.jwt(aud, subject, exp),
            self.public_key()
        )
    }
}

/// Checks a VAPID contact: RFC 8292 §2.1 wants a `mailto:` or `https:` URI.
pub fn check_subject(subject: &str) -> Result<(), Error> {
    let ok = (subject.starts_with("mailto:") && subject.len() > "mailto:".len())
        || (subject.starts_with("https://") && subject.len() > "https://".len());
    if ok && !subject.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(Error::Config(
            "vapid_subject must be a mailto: or https: URI".into(),
        ))
    }
}

/// Splits `vapid t=<jwt>, k=<key>` (scheme case-insensitive, parameters in any order).
fn header_params(value: &str) -> Result<(&str, &str), Error> {
    let bad = || Error::Unauthenticated("Authorization is not `vapid t=…, k=…`".into());
    let value = value.trim();
    let (scheme, params) = value.split_once(char::is_whitespace).ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("vapid") {
        return Err(bad());
    }
    let (mut t, mut k) = (None, None);
    for param in params.split(',') {
        match param.trim().split_once('=') {
            Some(("t", v)) if t.is_none() => t = Some(v.trim()),
            Some(("k", v)) if k.is_none() => k = Some(v.trim()),
            _ => return Err(bad()),
        }
    }
    Ok((t.ok_or_else(bad)?, k.ok_or_else(bad)?))
}

/// The push service's check of an `Authorization` header (RFC 8292 §2–3): the JWT is
/// ES256-signed by the key `k`, `aud` equals `expected_aud` (the endpoint's origin, see
/// [`Subscription::origin`](super::Subscription::origin)), and `now < exp ≤ now + 24 h`.
pub fn verify_vapid(
    header_value: &str,
    expected_aud: &str,
    now_ms: i64,
) -> Result<VapidClaims, Error> {
    let (token, key_text) = header_params(header_value)?;
    let key_bytes = b64::url_decode(key_text)
        .ok_or_else(|| Error::Unauthenticated("VAPID k is not base64url".into()))?;
    if key_bytes.len() != 65 {
        return Err(Error::Unauthenticated(
            "VAPID k is not a 65-byte uncompressed P-256 key".into(),
        ));
    }
    let public = PublicKey::from_sec1_bytes(&key_bytes)
        .map_err(|_| Error::Unauthenticated("VAPID k is not a P-256 point".into()))?;
    let (_, claims) = jwt::verify_es256(token, &VerifyingKey::from(public))?;
    let aud = str_claim(&claims, "aud")?;
    if aud != expected_aud {
        return Err(Error::Unauthenticated(format!(
            "VAPID aud {aud:?} is not {expected_aud:?}"
        )));
    }
    let exp = u64_claim(&claims, "exp")?;
    let now = unix_secs(now_ms);
    if exp <= now {
        return Err(Error::Unauthenticated("VAPID JWT expired".into()));
    }
    if exp > now.saturating_add(MAX_VAPID_TTL_SECS) {
        return Err(Error::Unauthenticated(
            "VAPID exp is more than 24 hours ahead".into(),
        ));
    }
    let sub = match claims.get("sub") {
        None => None,
        Some(_) => Some(str_claim(&claims, "sub")?.to_string()),
    };
    Ok(VapidClaims {
        aud: aud.to_string(),
        exp,
        sub,
        public_key: key_text.to_string(),
    })
}

#[cfg(test)]
#[path = "vapid_tests.rs"]
mod tests;
