//! courier-push: vendor push notifications, sans I/O.
//!
//! Builds the `http::Request<Vec<u8>>` each vendor wants and classifies its answer into
//! an [`Outcome`]; the `push-notify` component's shell sends the requests and stores
//! what must be stored (cached tokens, deleted devices). Nothing here reads a clock or
//! the OS's randomness: `now_ms` (Unix ms) and random bytes are arguments. Pure-Rust
//! crypto only, so it builds for `wasm32-wasip2`.
//!
//! # Layout
//! - [`outcome`]: [`Outcome`] (delivered / retry after / token gone / refresh auth /
//!   permanent) and `Retry-After` parsing.
//! - [`notification`]: the vendor-neutral [`Notification`] and its payload shapes; the
//!   conversation topic / collapse id.
//! - [`webpush`]: subscriptions, RFC 8291 `aes128gcm` encryption and decryption, RFC 8292
//!   VAPID signing and verification, the push request and its classification.
//! - [`apns`]: device tokens, the ES256 provider token and its cache, the HTTP/2 request
//!   and its classification.
//! - [`fcm`]: service accounts, the RS256 OAuth assertion and token request, the v1
//!   `messages:send` request and its classification.
//! - [`hms`]: Huawei Push Kit: client-credentials OAuth, `messages:send`, result codes.
//! - [`oauth`]: the access-token answer and cache FCM and HMS share.
//! - [`callbacks`]: delivery-receipt authentication (HMS `X-HUAWEI-CALLBACK-ID`, the
//!   generic `X-Courier-Signature`) and HMS receipt parsing.
//! - [`token`]: the opaque registration tokens of FCM and HMS.
//! - private: `jwt` (compact ES256/RS256 JWS), `b64` (base64 flavours), `base_url`
//!   (configured vendor hosts).

pub mod apns;
mod b64;
mod base_url;
pub mod callbacks;
pub mod error;
pub mod fcm;
pub mod hms;
mod jwt;
pub mod notification;
pub mod oauth;
pub mod outcome;
#[cfg(test)]
mod robustness_tests;
pub mod token;
pub mod webpush;

pub use error::Error;
pub use notification::{Notification, Preview};
pub use outcome::Outcome;
/// The curve crate whose key types the Web Push API takes (`SecretKey`, `PublicKey`).
pub use p256;
/// The RNG traits [`webpush::encrypt`] takes (rand_core 0.6, as `p256` uses).
pub use p256::elliptic_curve::rand_core;
/// The RSA crate whose public key type [`fcm::ServiceAccount::public_key`] returns.
pub use rsa;
