//! The base64 flavours vendors use: base64url without padding (JWTs, Web Push keys),
//! a lenient reader for keys typed or pasted by people and clients, and standard
//! base64 (HMS callback signatures).

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{self, GeneralPurpose, GeneralPurposeConfig};

/// base64url, padding optional on input: what browsers hand out for subscription keys.
const URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// base64url without padding (RFC 7515 §2, RFC 8292 §3.2).
pub(crate) fn url_encode(bytes: &[u8]) -> String {
    general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict base64url without padding: JWT segments.
pub(crate) fn url_decode(text: &str) -> Option<Vec<u8>> {
    general_purpose::URL_SAFE_NO_PAD.decode(text).ok()
}

/// base64url or standard base64, padded or not: subscription keys and configured
/// secrets, which some clients and consoles hand out in the standard alphabet.
pub(crate) fn decode_lenient(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    let url: String = text
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect();
    URL_LENIENT.decode(url).ok()
}

/// Standard base64 with padding.
pub(crate) fn std_encode(bytes: &[u8]) -> String {
    general_purpose::STANDARD.encode(bytes)
}

/// Standard base64; padding optional.
pub(crate) fn std_decode(text: &str) -> Option<Vec<u8>> {
    GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    )
    .decode(text)
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_decoding_accepts_both_alphabets_with_or_without_padding() {
        let bytes = [0xfb, 0xff, 0xbf, 0x01];
        for text in ["-_-_AQ", "-_-_AQ==", "+/+/AQ", "+/+/AQ=="] {
            assert_eq!(decode_lenient(text).as_deref(), Some(&bytes[..]), "{text}");
        }
        assert_eq!(decode_lenient("not base64!"), None);
    }

    #[test]
    fn strict_url_decoding_refuses_padding_and_the_standard_alphabet() {
        assert_eq!(url_decode("AQ").as_deref(), Some(&[1u8][..]));
        assert_eq!(url_decode("AQ=="), None);
        assert_eq!(url_decode("+/8"), None);
        assert_eq!(url_encode(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn standard_base64_round_trips() {
        let text = std_encode(b"courier");
        assert_eq!(text, "Y291cmllcg==");
        assert_eq!(std_decode(&text).as_deref(), Some(&b"courier"[..]));
        assert_eq!(std_decode("Y291cmllcg").as_deref(), Some(&b"courier"[..]));
    }
}
