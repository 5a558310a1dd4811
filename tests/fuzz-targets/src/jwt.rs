//! `jwt`: HS256 bearer tokens (`TokenKey::verify`, what every component calls).
//!
//! Mode byte even: the rest is a token. Whatever it is, verification may accept it only
//! if its signature is the HMAC-SHA256 of its first two segments under the server's
//! secret (recomputed here with `hmac`, not with jwt-simple), it has not expired, and
//! the identity is the token's `sub`/`dev`/`role`; another key never accepts it.
//!
//! Mode byte odd: claims built from the input are issued, verified (the identity comes
//! back; a clearly valid token is accepted) and then tampered with at an input-chosen
//! place: a tampered token is refused, or (the change fell in bits base64 ignores)
//! gives exactly the original identity.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use courier_core::auth::{CLOCK_SKEW_SECS, Identity, Role, TokenClaims, TokenKey};
use courier_core::{DeviceId, UserId};
use hmac::{Hmac, Mac as _};
use serde_json::Value;
use sha2::Sha256;

use crate::NOW_MS;
use crate::bytes::{Bytes, text};

const SECRET: &str = "fuzzing-jwt-secret-0123456789";
const OTHER_SECRET: &str = "another-jwt-secret-0123456789";

pub fn jwt(data: &[u8]) {
    let key = TokenKey::hs256(SECRET).expect("a long secret");
    let mut input = Bytes::new(data);
    if input.u8().is_multiple_of(2) {
        any_token(&key, &text(input.rest()));
    } else {
        issued_token(&key, &mut input);
    }
}

fn any_token(key: &TokenKey, token: &str) {
    let verified = key.verify(token, NOW_MS);
    // The header form gives the same answer.
    let header = format!("Bearer {token}");
    if !token.is_empty() && !token.contains(char::is_whitespace) {
        assert_eq!(key.authenticate(Some(&header), NOW_MS), verified);
    }
    match verified {
        Ok(identity) => {
            signed_with_secret(token);
            claims_name(token, &identity);
            let other = TokenKey::hs256(OTHER_SECRET).expect("a long secret");
            assert!(other.verify(token, NOW_MS).is_err(), "another key accepted");
        }
        Err(e) => assert_eq!(e.code(), "unauthorized", "{e:?}"),
    }
}

/// base64url as lenient as a decoder might be (padding, unused trailing bits).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The oracle: `token` is `h.p.s` with `s` the HMAC-SHA256 of `h.p` under `SECRET`.
fn signed_with_secret(token: &str) {
    let (signed, signature) = token.rsplit_once('.').expect("three segments");
    assert_eq!(signed.matches('.').count(), 1, "three segments: {token:?}");
    let signature = LENIENT.decode(signature).expect("signature is base64url");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(signed.as_bytes());
    assert!(
        mac.verify_slice(&signature).is_ok(),
        "accepted a token not signed with the secret: {token:?}"
    );
}

/// The identity is what the token's claims say, and the token is current.
fn claims_name(token: &str, identity: &Identity) {
    let payload = token.split('.').nth(1).expect("three segments");
    let bytes = LENIENT.decode(payload).expect("claims are base64url");
    let claims: Value = serde_json::from_slice(&bytes).expect("claims are JSON");
    assert_eq!(claims["sub"].as_str(), Some(identity.user.as_str()));
    let device = claims["dev"].as_str().unwrap_or("default");
    assert_eq!(device, identity.device.as_str());
    let admin = claims["role"].as_str() == Some("admin");
    assert_eq!(admin, identity.role == Role::Admin);
    let now_secs = (NOW_MS / 1000) as u64;
    assert!(
        identity.expires_at_secs + CLOCK_SKEW_SECS >= now_secs,
        "expired"
    );
}

/// An id from input bytes, mapped into the id alphabet.
fn id_from(bytes: &[u8], fallback: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-";
    let id: String = bytes
        .iter()
        .take(64)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    if id.is_empty() {
        fallback.to_string()
    } else {
        id
    }
}

fn issued_token(key: &TokenKey, input: &mut Bytes<'_>) {
    let now_secs = (NOW_MS / 1000) as u64;
    let flags = input.u8();
    // Offsets of up to ±9 hours around now.
    let offset = |input: &mut Bytes<'_>| now_secs - 32_768 + u64::from(input.u16());
    let expires_at_secs = offset(input);
    let not_before_secs = (flags & 1 != 0).then(|| offset(input));
    let issued_at_secs = (flags & 2 != 0).then(|| offset(input));
    let user_len = usize::from(input.u8() % 65);
    let user = UserId::parse(&id_from(input.take(user_len), "u1")).expect("an id");
    let device_len = usize::from(input.u8() % 65);
    let device = (flags & 4 != 0)
        .then(|| DeviceId::parse(&id_from(input.take(device_len), "d1")).expect("an id"));
    let role = if flags & 8 != 0 {
        Role::Admin
    } else {
        Role::User
    };
    let claims = TokenClaims {
        user,
        expires_at_secs,
        not_before_secs,
        issued_at_secs,
        device,
        role,
    };
    let token = key.issue(&claims).expect("issues");
    let verified = key.verify(&token, NOW_MS);
    let skew = CLOCK_SKEW_SECS;
    let clearly_valid = expires_at_secs > now_secs + skew + 1
        && not_before_secs.is_none_or(|nbf| nbf + skew + 1 < now_secs)
        && issued_at_secs.is_none_or(|iat| iat + skew + 1 < now_secs);
    let clearly_invalid = expires_at_secs + skew + 1 < now_secs
        || not_before_secs.is_some_and(|nbf| nbf > now_secs + skew + 1)
        || issued_at_secs.is_some_and(|iat| iat > now_secs + skew + 1);
    if clearly_valid {
        assert!(verified.is_ok(), "{claims:?}: {verified:?}");
    }
    if clearly_invalid {
        assert!(verified.is_err(), "{claims:?} accepted");
    }
    let Ok(identity) = verified else {
        return;
    };
    assert_eq!(identity.user, claims.user);
    assert_eq!(
        identity.device,
        claims
            .device
            .clone()
            .unwrap_or_else(DeviceId::default_device)
    );
    assert_eq!(identity.role, claims.role);
    assert_eq!(identity.expires_at_secs, claims.expires_at_secs);

    // Tamper: change the byte at an input-chosen place.
    let mut bytes = token.clone().into_bytes();
    let at = usize::from(input.u16()) % bytes.len();
    let replacement = input.u8();
    if bytes[at] == replacement {
        return;
    }
    bytes[at] = replacement;
    let tampered = String::from_utf8_lossy(&bytes).into_owned();
    if let Ok(again) = key.verify(&tampered, NOW_MS) {
        assert_eq!(again, identity, "tampering changed the identity");
        signed_with_secret(&tampered);
    }
}
