//! RFC 8291 §5 / Appendix A to the byte, round trips, and refusals.

use super::*;
use crate::b64;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng as _;

const PLAINTEXT: &[u8] = b"When I grow up, I want to be a watermelon";
const UA_PUBLIC: &str =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
const AS_PUBLIC: &str =
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
const AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
const ECDH_SECRET: &str = "kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs";
const IKM: &str = "S4lYMb_L0FxCeq0WhDx813KgSYqU26kOyzWUdsXYyrg";
const CEK: &str = "oIhVW04MRdy2XN9CiKLxTg";
const NONCE: &str = "4h_95klXJ5E_qnoN";
/// The whole message body of the example: header then ciphertext.
const BODY: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";

fn bytes(text: &str) -> Vec<u8> {
    b64::url_decode(text).expect("test vector decodes")
}

fn rfc_subscription() -> Subscription {
    Subscription::parse(
        "https://push.example.net/p/JzLQ3raZJfFBR0aqvOMsLrt54w4rJUsV",
        UA_PUBLIC,
        AUTH,
    )
    .expect("the RFC's keys are valid")
}

fn secret(text: &str) -> SecretKey {
    SecretKey::from_slice(&bytes(text)).expect("valid scalar")
}

fn salt() -> [u8; 16] {
    bytes(SALT).try_into().expect("16 bytes")
}

fn auth() -> [u8; 16] {
    bytes(AUTH).try_into().expect("16 bytes")
}

/// The RFC example's ECDH secret and message keys, computed by this module.
fn rfc_keys() -> (Vec<u8>, MessageKeys) {
    let sub = rfc_subscription();
    let as_private = secret(AS_PRIVATE);
    let ecdh = p256::ecdh::diffie_hellman(as_private.to_nonzero_scalar(), sub.p256dh().as_affine());
    let keys = derive_keys(
        ecdh.raw_secret_bytes(),
        sub.auth(),
        sub.p256dh(),
        &as_private.public_key(),
        &salt(),
    )
    .expect("derives");
    (ecdh.raw_secret_bytes().to_vec(), keys)
}

#[test]
fn key_schedule_matches_rfc_8291_appendix_a() {
    let (ecdh, keys) = rfc_keys();
    assert_eq!(ecdh, bytes(ECDH_SECRET));
    let as_public = secret(AS_PRIVATE).public_key();
    assert_eq!(uncompressed(&as_public), bytes(AS_PUBLIC));
    assert_eq!(keys.ikm.to_vec(), bytes(IKM));
    assert_eq!(keys.cek.to_vec(), bytes(CEK));
    assert_eq!(keys.nonce.to_vec(), bytes(NONCE));
}

#[test]
fn encryption_matches_rfc_8291_example_byte_for_byte() {
    let body = encrypt_with_keys(&rfc_subscription(), PLAINTEXT, &secret(AS_PRIVATE), &salt())
        .expect("encrypts");
    assert_eq!(body, bytes(BODY));
    assert_eq!(body.len(), 144);
    let mut random = [0u8; RANDOM_BYTES];
    random[..16].copy_from_slice(&salt());
    random[16..].copy_from_slice(&bytes(AS_PRIVATE));
    assert_eq!(
        encrypt_with_random_bytes(&rfc_subscription(), PLAINTEXT, &random).expect("encrypts"),
        bytes(BODY),
        "the random-bytes form is the same schedule"
    );
}

#[test]
fn the_rfc_example_decrypts_with_the_user_agent_key() {
    let plaintext = decrypt(&secret(UA_PRIVATE), &auth(), &bytes(BODY)).expect("decrypts");
    assert_eq!(plaintext, PLAINTEXT);
}

#[test]
fn messages_from_a_seeded_rng_round_trip_and_differ() {
    let mut rng = ChaCha20Rng::seed_from_u64(8291);
    let ua_private = SecretKey::random(&mut rng);
    let ua_public = b64::url_encode(&uncompressed(&ua_private.public_key()));
    let auth = [9u8; 16];
    let sub = Subscription::parse(
        "https://push.example/x",
        &ua_public,
        &b64::url_encode(&auth),
    )
    .expect("valid");
    for plaintext in [&b""[..], b"hi", &[0u8; 64], &[7u8; MAX_PLAINTEXT_BYTES]] {
        let one = encrypt(&sub, plaintext, &mut rng).expect("encrypts");
        let two = encrypt(&sub, plaintext, &mut rng).expect("encrypts");
        assert_ne!(one, two, "fresh salt and key each time");
        assert!(one.len() <= RECORD_SIZE as usize);
        assert_eq!(
            decrypt(&ua_private, &auth, &one).expect("decrypts"),
            plaintext
        );
        assert_eq!(
            decrypt(&ua_private, &auth, &two).expect("decrypts"),
            plaintext
        );
    }
}

#[test]
fn payloads_over_the_limit_are_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let err = encrypt(
        &rfc_subscription(),
        &[0u8; MAX_PLAINTEXT_BYTES + 1],
        &mut rng,
    )
    .expect_err("too large");
    assert!(matches!(err, Error::TooLarge(_)), "{err}");
}

#[test]
fn random_bytes_that_are_no_scalar_are_refused() {
    let mut random = [0u8; RANDOM_BYTES];
    assert!(matches!(
        encrypt_with_random_bytes(&rfc_subscription(), b"x", &random),
        Err(Error::Config(_))
    ));
    random[16..].fill(0xff);
    assert!(encrypt_with_random_bytes(&rfc_subscription(), b"x", &random).is_err());
}

#[test]
fn tampered_or_misaddressed_bodies_do_not_decrypt() {
    let body = bytes(BODY);
    let ua = secret(UA_PRIVATE);
    let mut flipped = body.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(decrypt(&ua, &auth(), &flipped).is_err(), "tag");
    let mut flipped_salt = body.clone();
    flipped_salt[0] ^= 1;
    assert!(decrypt(&ua, &auth(), &flipped_salt).is_err(), "salt");
    assert!(decrypt(&ua, &[0u8; 16], &body).is_err(), "wrong auth");
    assert!(
        decrypt(&secret(AS_PRIVATE), &auth(), &body).is_err(),
        "wrong key"
    );
}

#[test]
fn malformed_headers_are_errors_not_panics() {
    let ua = secret(UA_PRIVATE);
    let body = bytes(BODY);
    let mut cases: Vec<Vec<u8>> = vec![vec![], vec![0; 20], body[..HEADER_BYTES].to_vec()];
    let mut short_id = body.clone();
    short_id[20] = 64;
    cases.push(short_id);
    let mut small_rs = body.clone();
    small_rs[16..20].copy_from_slice(&17u32.to_be_bytes());
    cases.push(small_rs);
    let mut two_records = body.clone();
    two_records[16..20].copy_from_slice(&18u32.to_be_bytes());
    cases.push(two_records);
    let mut bad_point = body.clone();
    bad_point[22] ^= 0xff;
    cases.push(bad_point);
    for case in cases {
        assert!(matches!(
            decrypt(&ua, &auth(), &case),
            Err(Error::Decrypt(_))
        ));
    }
}

#[test]
fn a_record_without_the_final_delimiter_is_refused() {
    // Encrypt by hand a record that ends in 0x01 (a non-final record's delimiter).
    let (_, keys) = rfc_keys();
    let sealed = cipher(&keys)
        .expect("cipher")
        .encrypt(&Nonce::from(keys.nonce), &b"data\x01\0\0"[..])
        .expect("encrypts");
    let mut body = bytes(BODY)[..HEADER_BYTES].to_vec();
    body.extend_from_slice(&sealed);
    assert!(matches!(
        decrypt(&secret(UA_PRIVATE), &auth(), &body),
        Err(Error::Decrypt(_))
    ));
}
