//! The generic callback signature, for vendors (and relays) without a scheme of their
//! own: `X-Courier-Signature: t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//! The body is signed, `t` must be within 5 minutes of now (replays of a captured
//! request die with the window), several `v1` values may be sent while a secret is
//! rotated, and unknown parameters are ignored. Compares are constant-time.

use std::fmt;

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::Error;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Courier-Signature";
/// How far `t` may be from now, either way.
pub const REPLAY_WINDOW_SECS: i64 = 300;
/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;
/// The longest header parsed, in bytes.
const MAX_HEADER_BYTES: usize = 1024;

/// A callback signing secret, ready to MAC with. `Debug` hides it.
#[derive(Clone)]
pub struct SigningSecret {
    mac: Hmac<Sha256>,
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(<secret>)")
    }
}

impl SigningSecret {
    /// A secret of at least [`MIN_SECRET_BYTES`] bytes (the variable's UTF-8 bytes).
    pub fn new(secret: &[u8]) -> Result<SigningSecret, Error> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(Error::Config(format!(
                "callback secret must be at least {MIN_SECRET_BYTES} bytes"
            )));
        }
        let mac = Hmac::<Sha256>::new_from_slice(secret)
            .map_err(|_| Error::Config("callback secret unusable as an HMAC key".into()))?;
        Ok(SigningSecret { mac })
    }

    fn mac_of(&self, t: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

/// The header value signing `body` at `t_secs` (Unix seconds).
pub fn sign(secret: &SigningSecret, t_secs: i64, body: &[u8]) -> String {
    let tag = secret.mac_of(t_secs, body).finalize().into_bytes();
    format!("t={t_secs},v1={}", hex::encode(tag))
}

/// Checks `header` against `body` at `now_ms`; returns the signed `t` (Unix seconds).
pub fn verify(
    secret: &SigningSecret,
    header: &str,
    body: &[u8],
    now_ms: i64,
) -> Result<i64, Error> {
    let refuse = |why: &str| Error::Unauthenticated(format!("{SIGNATURE_HEADER}: {why}"));
    if header.len() > MAX_HEADER_BYTES {
        return Err(refuse("too long"));
    }
    let mut t = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) if t.is_none() => {
                let digits =
                    !v.is_empty() && v.len() <= 12 && v.bytes().all(|b| b.is_ascii_digit());
                t = digits.then(|| v.parse::<i64>().ok()).flatten();
                if t.is_none() {
                    return Err(refuse("t is not a Unix time"));
                }
            }
            Some(("t", _)) => return Err(refuse("t given twice")),
            Some(("v1", v)) => tags.push(hex::decode(v).map_err(|_| refuse("v1 is not hex"))?),
            _ => {}
        }
    }
    let t = t.ok_or_else(|| refuse("no t"))?;
    if tags.is_empty() {
        return Err(refuse("no v1"));
    }
    if now_ms.div_euclid(1000).abs_diff(t) > REPLAY_WINDOW_SECS.unsigned_abs() {
        return Err(refuse("t is outside the replay window"));
    }
    let expected = secret.mac_of(t, body);
    if tags
        .iter()
        .any(|tag| expected.clone().verify_slice(tag).is_ok())
    {
        Ok(t)
    } else {
        Err(refuse("signature does not match"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: i64 = 1_767_225_600_000;
    const T: i64 = 1_767_225_600;
    const BODY: &[u8] = br#"{"receipts":[]}"#;

    fn secret() -> SigningSecret {
        SigningSecret::new(b"0123456789abcdef-callback").expect("long enough")
    }

    #[test]
    fn a_signature_verifies_and_names_its_time() {
        let header = sign(&secret(), T, BODY);
        assert!(header.starts_with(&format!("t={T},v1=")));
        assert_eq!(header.len(), format!("t={T},v1=").len() + 64);
        assert_eq!(verify(&secret(), &header, BODY, NOW_MS), Ok(T));
        assert_eq!(
            verify(&secret(), &format!(" {header} , x=1"), BODY, NOW_MS),
            Ok(T)
        );
    }

    #[test]
    fn tampered_bodies_other_secrets_and_other_times_are_refused() {
        let header = sign(&secret(), T, BODY);
        assert!(verify(&secret(), &header, b"{}", NOW_MS).is_err());
        let other = SigningSecret::new(b"another-secret-of-16+").expect("valid");
        assert!(verify(&other, &header, BODY, NOW_MS).is_err());
        let moved = header.replace(&T.to_string(), &(T + 1).to_string());
        assert!(verify(&secret(), &moved, BODY, NOW_MS).is_err());
    }

    #[test]
    fn the_replay_window_is_five_minutes_either_way() {
        for (offset, ok) in [
            (0, true),
            (300, true),
            (-300, true),
            (301, false),
            (-301, false),
        ] {
            let header = sign(&secret(), T + offset, BODY);
            assert_eq!(
                verify(&secret(), &header, BODY, NOW_MS).is_ok(),
                ok,
                "offset {offset}"
            );
        }
    }

    #[test]
    fn any_of_several_v1_values_may_match_during_rotation() {
        let old = SigningSecret::new(b"the-old-secret-16b").expect("valid");
        let header = format!(
            "{},v1={}",
            sign(&old, T, BODY),
            &sign(&secret(), T, BODY)[format!("t={T},v1=").len()..]
        );
        assert_eq!(verify(&secret(), &header, BODY, NOW_MS), Ok(T));
        assert_eq!(verify(&old, &header, BODY, NOW_MS), Ok(T));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let good = sign(&secret(), T, BODY);
        let tag = &good[format!("t={T},v1=").len()..];
        for header in [
            String::new(),
            format!("v1={tag}"),
            format!("t={T}"),
            format!("t=-{T},v1={tag}"),
            format!("t={T}.5,v1={tag}"),
            format!("t={T},t={T},v1={tag}"),
            format!("t={T},v1=zz"),
            format!("t={T},v1={}", &tag[..10]),
            format!("t=99999999999999999999,v1={tag}"),
            "x".repeat(MAX_HEADER_BYTES + 1),
        ] {
            assert!(
                verify(&secret(), &header, BODY, NOW_MS).is_err(),
                "{header}"
            );
        }
    }

    #[test]
    fn short_secrets_are_config_errors() {
        assert!(matches!(
            SigningSecret::new(b"short"),
            Err(Error::Config(_))
        ));
        assert!(!format!("{:?}", secret()).contains("0123"));
    }
}
