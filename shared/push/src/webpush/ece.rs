//! Message encryption for Web Push (RFC 8291) in the `aes128gcm` content coding
//! (RFC 8188): one record of record size 4096, the sender's ephemeral public key as the
//! key id. Both sides are here: the server encrypts, the test suite's fake user agent
//! decrypts.
//!
//! Key schedule (RFC 8291 §3.3–3.4, RFC 8188 §2.2):
//! `IKM = HKDF(salt = auth, ikm = ECDH(as, ua), info = "WebPush: info\0" ‖ ua_pub ‖ as_pub, 32)`,
//! then `CEK = HKDF(salt, IKM, "Content-Encoding: aes128gcm\0", 16)` and
//! `NONCE = HKDF(salt, IKM, "Content-Encoding: nonce\0", 12)`.

use aes_gcm::aead::{Aead as _, KeyInit as _};
use aes_gcm::{Aes128Gcm, Nonce};
use hkdf::Hkdf;
use p256::elliptic_curve::rand_core::CryptoRngCore;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;

use super::Subscription;
use crate::Error;

/// The record size written in the header: the RFC's example value, and the largest
/// body push services must accept (RFC 8291 §4).
pub const RECORD_SIZE: u32 = 4096;
/// Salt, record size, key id length and the 65-byte key id.
pub const HEADER_BYTES: usize = 16 + 4 + 1 + 65;
const TAG_BYTES: usize = 16;
/// The largest plaintext that fits one 4096-byte body: 4096 − 86 (header) − 16 (tag) −
/// 1 (padding delimiter) = 3993 bytes (RFC 8291 §4).
pub const MAX_PLAINTEXT_BYTES: usize = RECORD_SIZE as usize - HEADER_BYTES - TAG_BYTES - 1;
/// Random bytes [`encrypt_with_random_bytes`] takes: a 16-byte salt, then the 32-byte
/// scalar of the ephemeral key.
pub const RANDOM_BYTES: usize = 16 + 32;

/// The keys of one message, and the IKM they come from (kept for the RFC's test values).
pub(crate) struct MessageKeys {
    pub(crate) ikm: [u8; 32],
    pub(crate) cek: [u8; 16],
    pub(crate) nonce: [u8; 12],
}

fn uncompressed(key: &PublicKey) -> Vec<u8> {
    key.to_encoded_point(false).as_bytes().to_vec()
}

/// The key schedule of RFC 8291 §3.3–3.4.
pub(crate) fn derive_keys(
    ecdh_secret: &[u8],
    auth: &[u8; 16],
    ua_public: &PublicKey,
    as_public: &PublicKey,
    salt: &[u8; 16],
) -> Result<MessageKeys, Error> {
    let expand_failed = |_| Error::Config("HKDF output length out of range".into());
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(&uncompressed(ua_public));
    key_info.extend_from_slice(&uncompressed(as_public));
    let mut keys = MessageKeys {
        ikm: [0; 32],
        cek: [0; 16],
        nonce: [0; 12],
    };
    Hkdf::<Sha256>::new(Some(auth), ecdh_secret)
        .expand(&key_info, &mut keys.ikm)
        .map_err(expand_failed)?;
    let prk = Hkdf::<Sha256>::new(Some(salt), &keys.ikm);
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut keys.cek)
        .map_err(expand_failed)?;
    prk.expand(b"Content-Encoding: nonce\0", &mut keys.nonce)
        .map_err(expand_failed)?;
    Ok(keys)
}

fn cipher(keys: &MessageKeys) -> Result<Aes128Gcm, Error> {
    Aes128Gcm::new_from_slice(&keys.cek).map_err(|_| Error::Config("bad AES key length".into()))
}

/// Encrypts `plaintext` for `sub` with the given ephemeral key and salt: deterministic,
/// for tests and for callers that draw their own randomness. Never reuse a salt.
pub fn encrypt_with_keys(
    sub: &Subscription,
    plaintext: &[u8],
    ephemeral: &SecretKey,
    salt: &[u8; 16],
) -> Result<Vec<u8>, Error> {
    if plaintext.len() > MAX_PLAINTEXT_BYTES {
        return Err(Error::TooLarge(format!(
            "Web Push payload is {} bytes, at most {MAX_PLAINTEXT_BYTES} fit",
            plaintext.len()
        )));
    }
    let as_public = ephemeral.public_key();
    let ecdh = p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), sub.p256dh().as_affine());
    let keys = derive_keys(
        ecdh.raw_secret_bytes(),
        sub.auth(),
        sub.p256dh(),
        &as_public,
        salt,
    )?;
    // One record, the last: the data then the 0x02 delimiter, no padding.
    let mut record = Vec::with_capacity(plaintext.len() + 1);
    record.extend_from_slice(plaintext);
    record.push(2);
    let sealed = cipher(&keys)?
        .encrypt(&Nonce::from(keys.nonce), record.as_slice())
        .map_err(|_| Error::Config("AES-GCM encryption failed".into()))?;

    let mut body = Vec::with_capacity(HEADER_BYTES + sealed.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    let key_id = uncompressed(&as_public);
    body.push(65);
    body.extend_from_slice(&key_id);
    body.extend_from_slice(&sealed);
    Ok(body)
}

/// Encrypts `plaintext` for `sub` with a fresh ephemeral key and salt from `rng`.
pub fn encrypt(
    sub: &Subscription,
    plaintext: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<u8>, Error> {
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let ephemeral = SecretKey::random(rng);
    encrypt_with_keys(sub, plaintext, &ephemeral, &salt)
}

/// Encrypts `plaintext` for `sub` with caller-drawn random bytes: the first 16 are the
/// salt, the last 32 the ephemeral private key. Bytes that are not a valid P-256 scalar
/// (zero or above the group order: chance about 2^-32) give a `Config` error: draw again.
pub fn encrypt_with_random_bytes(
    sub: &Subscription,
    plaintext: &[u8],
    random: &[u8; RANDOM_BYTES],
) -> Result<Vec<u8>, Error> {
    let (salt, scalar) = random.split_at(16);
    let mut salt_bytes = [0u8; 16];
    salt_bytes.copy_from_slice(salt);
    let ephemeral = SecretKey::from_slice(scalar)
        .map_err(|_| Error::Config("random bytes are not a P-256 scalar; draw again".into()))?;
    encrypt_with_keys(sub, plaintext, &ephemeral, &salt_bytes)
}

fn undecryptable(why: &str) -> Error {
    Error::Decrypt(why.to_string())
}

/// Decrypts an `aes128gcm` Web Push body as the user agent: `ua_private` is the key
/// behind the subscription's `p256dh`, `auth` its auth secret. Checks the header (record
/// size, a 65-byte sender key), that the body is one record, the tag, and the final
/// record's padding; returns the plaintext.
pub fn decrypt(ua_private: &SecretKey, auth: &[u8; 16], body: &[u8]) -> Result<Vec<u8>, Error> {
    if body.len() < HEADER_BYTES {
        return Err(undecryptable("body shorter than the aes128gcm header"));
    }
    let (header, sealed) = body.split_at(HEADER_BYTES);
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&header[..16]);
    let record_size = u32::from_be_bytes([header[16], header[17], header[18], header[19]]);
    if header[20] != 65 {
        return Err(undecryptable("key id is not a 65-byte P-256 key"));
    }
    let as_public = PublicKey::from_sec1_bytes(&header[21..])
        .map_err(|_| undecryptable("key id is not a valid P-256 point"))?;
    if record_size < 18 {
        return Err(undecryptable("record size under 18"));
    }
    if sealed.len() > record_size as usize {
        return Err(undecryptable("more than one record (RFC 8291 allows one)"));
    }
    if sealed.len() < TAG_BYTES + 1 {
        return Err(undecryptable("record shorter than tag and delimiter"));
    }
    let ua_public = ua_private.public_key();
    let ecdh = p256::ecdh::diffie_hellman(ua_private.to_nonzero_scalar(), as_public.as_affine());
    let keys = derive_keys(ecdh.raw_secret_bytes(), auth, &ua_public, &as_public, &salt)?;
    let mut record = cipher(&keys)?
        .decrypt(&Nonce::from(keys.nonce), sealed)
        .map_err(|_| undecryptable("authentication tag does not verify"))?;
    // Padding: the delimiter then zeros; the last (only) record's delimiter is 0x02.
    while record.last() == Some(&0) {
        record.pop();
    }
    match record.pop() {
        Some(2) => Ok(record),
        _ => Err(undecryptable("missing the final-record delimiter 0x02")),
    }
}

#[cfg(test)]
#[path = "ece_tests.rs"]
mod tests;
