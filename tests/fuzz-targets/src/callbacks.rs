//! `push_callbacks`: the authentication of vendor delivery receipts and the HMS
//! receipt parser (`courier_push::callbacks`).
//!
//! The first byte picks a mode; the first line is a header value, the rest a body.
//! 0. `X-Courier-Signature` as given: accepted only within the replay window and only
//!    if one `v1` is the HMAC-SHA256 of `"<t>.<body>"` under the secret (recomputed
//!    here with `hmac`, not with the code under test);
//! 1. a correct signature of the body, then changed at input-chosen places: if it
//!    still verifies it names the same time, and the oracle above still holds;
//! 2. `X-HUAWEI-CALLBACK-ID` as given: accepted only within 5 minutes of now and if
//!    `value` is the base64 HMAC-SHA256 of `timestamp ‖ nonce ‖ user` (recomputed);
//! 3. a correct HMS header changed at input-chosen places: the same oracle;
//! 4. the body as HMS receipts: at most 1000, each with a token and the status of its
//!    code.

use base64::Engine as _;
use courier_push::Error;
use courier_push::callbacks::hms::HMS_REPLAY_WINDOW_MS;
use courier_push::callbacks::signature::{self, REPLAY_WINDOW_SECS, SigningSecret};
use courier_push::callbacks::{
    HmsCallbackKey, ReceiptStatus, parse_hms_receipts, sign_hms, verify_hms,
};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::NOW_MS;
use crate::bytes::{Bytes, text};

pub(crate) const CALLBACK_SECRET: &str = "fuzz-callback-secret-0123456789";
pub(crate) const HMS_USER: &str = "courier";
/// The HMS secret as configured: base64 of the key bytes.
pub(crate) const HMS_SECRET_BASE64: &str = "ZnV6ei1obXMtY2FsbGJhY2sta2V5";
const HMS_KEY: &[u8] = b"fuzz-hms-callback-key";

pub(crate) fn signing_secret() -> SigningSecret {
    SigningSecret::new(CALLBACK_SECRET.as_bytes()).expect("a long secret")
}

pub(crate) fn hms_key() -> HmsCallbackKey {
    HmsCallbackKey::from_base64_secret(HMS_USER, HMS_SECRET_BASE64).expect("base64")
}

pub fn push_callbacks(data: &[u8]) {
    let mut input = Bytes::new(data);
    let mode = input.u8() % 5;
    let edits = input.take(4).to_vec();
    let header = text(input.line());
    let body = input.rest();
    match mode {
        0 => {
            generic(&header, body);
        }
        1 => {
            let signed = signature::sign(&signing_secret(), NOW_MS / 1000, body);
            let changed = edit(&signed, &edits, &header);
            if let Some(t) = generic(&changed, body) {
                assert_eq!(t, NOW_MS / 1000, "{changed:?}");
            }
        }
        2 => hms(&header),
        3 => {
            let signed = sign_hms(&hms_key(), NOW_MS, "4f1c6c8e-nonce");
            hms(&edit(&signed, &edits, &header));
        }
        _ => receipts(body),
    }
}

/// `value` with `edits` applied: pairs of (place, byte from `pool`).
pub(crate) fn edit(value: &str, edits: &[u8], pool: &str) -> String {
    let mut bytes = value.as_bytes().to_vec();
    let pool = pool.as_bytes();
    for (i, pair) in edits.chunks(2).enumerate() {
        let at = usize::from(pair[0]) % (bytes.len() + 1);
        match pool.get(i) {
            Some(&b) if pair.len() == 2 && pair[1] % 2 == 0 => bytes.insert(at, b),
            Some(&b) if at < bytes.len() => bytes[at] = b,
            _ if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Verifies a generic signature and checks the oracle; the signed time if accepted.
pub(crate) fn generic(header: &str, body: &[u8]) -> Option<i64> {
    match signature::verify(&signing_secret(), header, body, NOW_MS) {
        Ok(t) => {
            assert!((t - NOW_MS / 1000).abs() <= REPLAY_WINDOW_SECS, "t={t}");
            let mut mac =
                Hmac::<Sha256>::new_from_slice(CALLBACK_SECRET.as_bytes()).expect("any key length");
            mac.update(format!("{t}.").as_bytes());
            mac.update(body);
            let expected = mac.finalize().into_bytes();
            let tags: Vec<Vec<u8>> = header
                .split(',')
                .filter_map(|part| part.trim().strip_prefix("v1="))
                .filter_map(|hex_tag| hex::decode(hex_tag).ok())
                .collect();
            assert!(
                tags.iter().any(|tag| tag[..] == expected[..]),
                "accepted {header:?} without the body's signature"
            );
            Some(t)
        }
        Err(e) => {
            assert!(matches!(e, Error::Unauthenticated(_)), "{e:?}");
            None
        }
    }
}

pub(crate) fn hms(header: &str) {
    let Ok(auth) = verify_hms(&hms_key(), header, NOW_MS) else {
        return;
    };
    assert!(
        (auth.timestamp_ms - NOW_MS).abs() <= HMS_REPLAY_WINDOW_MS,
        "{header:?}"
    );
    let field = |name: &str| {
        header
            .split(';')
            .filter_map(|part| part.trim().split_once('='))
            .find(|(n, _)| n.trim() == name)
            .map(|(_, v)| v.trim())
            .expect("an accepted header has the field")
    };
    assert_eq!(field("nonce"), auth.nonce);
    let mut mac = Hmac::<Sha256>::new_from_slice(HMS_KEY).expect("any key length");
    mac.update(field("timestamp").as_bytes());
    mac.update(auth.nonce.as_bytes());
    mac.update(HMS_USER.as_bytes());
    let expected = mac.finalize().into_bytes();
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let value = lenient.decode(field("value")).expect("value is base64");
    assert_eq!(
        value[..],
        expected[..],
        "accepted {header:?} without the key's MAC"
    );
}

fn receipts(body: &[u8]) {
    let Ok(receipts) = parse_hms_receipts(body) else {
        return;
    };
    assert!(receipts.len() <= courier_push::callbacks::hms::MAX_RECEIPTS);
    for receipt in receipts {
        assert!(!receipt.token.is_empty());
        assert_eq!(receipt.status, ReceiptStatus::of_code(receipt.code));
        for field in [&receipt.bi_tag, &receipt.request_id, &receipt.app_id] {
            assert!(field.as_ref().is_none_or(|s| !s.is_empty()));
        }
    }
}
