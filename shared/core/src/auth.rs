//! Bearer tokens: HS256 JWTs signed with the app variable `jwt_secret`.
//!
//! - Claims: `sub` (required, a valid [`UserId`]), `exp` (required, seconds),
//!   `nbf`/`iat` (optional, checked), `dev` (a [`DeviceId`], default `"default"`),
//!   `role` (`"admin"` for directory routes; any other value is an ordinary user).
//! - A clock skew of 60 s is allowed each way. `now` is an argument: jwt-simple's
//!   `VerificationOptions::artificial_time` takes it, so no clock is read here.
//! - Missing, malformed, expired, not-yet-valid or badly signed → `Unauthorized`; a
//!   valid token without the admin role on an admin route → `Forbidden`.
//! - The secret is the variable's UTF-8 bytes as is (no base64). jwt-simple refuses keys
//!   under 96 bits (12 bytes): such a secret is a server `Config` error, found when the
//!   key is made, never blamed on the client.

use std::fmt;

use jwt_simple::JWTError;
use jwt_simple::prelude::{
    Duration, HS256Key, JWTClaims, MACLike, UnixTimeStamp, VerificationOptions,
};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::ids::{DeviceId, UserId};

/// The clock skew allowed on `exp`, `nbf` and `iat`.
pub const CLOCK_SKEW_SECS: u64 = 60;
/// The shortest `jwt_secret`, in bytes (jwt-simple's minimum for HMAC keys).
pub const MIN_SECRET_BYTES: usize = 12;
/// The longest token accepted, in bytes; bounds the work of a hostile header.
pub const MAX_TOKEN_BYTES: usize = 8192;
/// jwt-simple saturates timestamps at 2^32 - 1 s (and wraps negative ones there), so an
/// `exp` at or past it is not a real expiry.
const SATURATED_SECS: u64 = u32::MAX as u64;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Messaging routes only.
    User,
    /// Also the directory routes.
    Admin,
}

/// Who is calling, from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `sub`.
    pub user: UserId,
    /// `dev`, or `"default"`.
    pub device: DeviceId,
    /// `role`.
    pub role: Role,
    /// `exp`, Unix seconds.
    pub expires_at_secs: u64,
}

impl Identity {
    /// Admin routes call this first: a user token is `Forbidden`.
    pub fn require_admin(&self) -> Result<(), Error> {
        match self.role {
            Role::Admin => Ok(()),
            Role::User => Err(Error::Forbidden("this route needs an admin token".into())),
        }
    }
}

/// The claims of a token to issue (dev tokens, tests). Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// `sub`.
    pub user: UserId,
    /// `exp`.
    pub expires_at_secs: u64,
    /// `nbf`, if any.
    pub not_before_secs: Option<u64>,
    /// `iat`, if any.
    pub issued_at_secs: Option<u64>,
    /// `dev`, if any.
    pub device: Option<DeviceId>,
    /// `role`: `Admin` writes `"admin"`, `User` writes nothing.
    pub role: Role,
}

/// The claims besides the registered ones; unknown claims are ignored.
#[derive(Serialize, Deserialize)]
struct ExtraClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dev: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
}

/// The HS256 key made from `jwt_secret`: make it once per request (it is cheap) or once
/// per instance. `Debug` never shows the secret.
#[derive(Clone)]
pub struct TokenKey {
    key: HS256Key,
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(HS256, <secret>)")
    }
}

impl TokenKey {
    /// The key of `secret` (its UTF-8 bytes). Under [`MIN_SECRET_BYTES`] → `Config`.
    pub fn hs256(secret: &str) -> Result<TokenKey, Error> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(Error::Config(format!(
                "jwt_secret must be at least {MIN_SECRET_BYTES} bytes"
            )));
        }
        Ok(TokenKey {
            key: HS256Key::from_bytes(secret.as_bytes()),
        })
    }

    /// Verifies `token` at `now_ms` (Unix ms) and returns who it names.
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<Identity, Error> {
        let now_ms = u64::try_from(now_ms).unwrap_or(0);
        let options = VerificationOptions {
            time_tolerance: Some(Duration::from_secs(CLOCK_SKEW_SECS)),
            artificial_time: Some(UnixTimeStamp::from_millis(now_ms)),
            max_token_length: Some(MAX_TOKEN_BYTES),
            ..VerificationOptions::default()
        };
        let claims: JWTClaims<ExtraClaims> = self
            .key
            .verify_token(token, Some(options))
            .map_err(|e| unauthorized(&e))?;
        let expires_at_secs = claims
            .expires_at
            .map(|exp| exp.as_secs())
            .ok_or_else(|| Error::Unauthorized("token has no exp claim".into()))?;
        if expires_at_secs >= SATURATED_SECS {
            return Err(Error::Unauthorized("token exp is out of range".into()));
        }
        let user = claims
            .subject
            .as_deref()
            .ok_or_else(|| Error::Unauthorized("token has no sub claim".into()))
            .and_then(|sub| {
                UserId::parse(sub)
                    .map_err(|_| Error::Unauthorized("token sub is not a valid user id".into()))
            })?;
        let device = match claims.custom.dev.as_deref() {
            None => DeviceId::default_device(),
            Some(dev) => DeviceId::parse(dev)
                .map_err(|_| Error::Unauthorized("token dev is not a valid device id".into()))?,
        };
        let role = match claims.custom.role.as_deref() {
            Some("admin") => Role::Admin,
            _ => Role::User,
        };
        Ok(Identity {
            user,
            device,
            role,
            expires_at_secs,
        })
    }

    /// Verifies the `Authorization` header value (`None`: header absent).
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        now_ms: i64,
    ) -> Result<Identity, Error> {
        self.verify(bearer_token(authorization)?, now_ms)
    }

    /// Issues a token with exactly `claims` (no clock is read).
    pub fn issue(&self, claims: &TokenClaims) -> Result<String, Error> {
        let jwt = JWTClaims {
            issued_at: claims.issued_at_secs.map(UnixTimeStamp::from_secs),
            expires_at: Some(UnixTimeStamp::from_secs(claims.expires_at_secs)),
            invalid_before: claims.not_before_secs.map(UnixTimeStamp::from_secs),
            audiences: None,
            issuer: None,
            jwt_id: None,
            subject: Some(claims.user.to_string()),
            nonce: None,
            custom: ExtraClaims {
                dev: claims.device.as_ref().map(DeviceId::to_string),
                role: (claims.role == Role::Admin).then(|| "admin".to_string()),
            },
        };
        self.key
            .authenticate(jwt)
            .map_err(|e| Error::Internal(format!("issuing a token failed: {e}")))
    }
}

/// The token of an `Authorization: Bearer <token>` header value. The scheme is
/// case-insensitive; absent, another scheme, or an empty token → `Unauthorized`.
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, Error> {
    let value = authorization
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::Unauthorized("missing bearer token".into()))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || token.contains(char::is_whitespace)
    {
        return Err(Error::Unauthorized(
            "expected Authorization: Bearer <token>".into(),
        ));
    }
    Ok(token)
}

/// A client-facing reason for a rejected token; never the token or the secret.
fn unauthorized(error: &jwt_simple::Error) -> Error {
    let reason = match error.downcast_ref::<JWTError>() {
        Some(JWTError::TokenHasExpired) => "token has expired",
        Some(JWTError::TokenNotValidYet) => "token is not valid yet",
        Some(JWTError::ClockDrift) => "token was issued in the future",
        Some(JWTError::InvalidAuthenticationTag) => "bad token signature",
        Some(JWTError::AlgorithmMismatch) => "token algorithm must be HS256",
        Some(JWTError::TokenTooLong) => "token is too long",
        _ => "malformed token",
    };
    Error::Unauthorized(reason.into())
}

#[cfg(test)]
mod tests;
