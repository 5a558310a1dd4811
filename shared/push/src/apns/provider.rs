//! APNs token-based authentication: the provider JWT (ES256, header `kid`, claims `iss`
//! = team id and `iat`), and [`ProviderTokenCache`], which reuses a token while it is
//! younger than 20 minutes and otherwise signs a new one — Apple refuses updates more
//! often than every 20 minutes (`TooManyProviderTokenUpdates`) and tokens older than 60
//! (`ExpiredProviderToken`).

use std::fmt;

use p256::SecretKey;
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::DecodePrivateKey as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Error;
use crate::jwt::{self, str_claim, u64_claim, unix_secs};

/// A token is reused while younger than this.
pub const TOKEN_REUSE_MS: i64 = 20 * 60 * 1000;
/// APNs refuses a token older than this.
pub const TOKEN_MAX_AGE_MS: i64 = 60 * 60 * 1000;
/// The clock skew [`verify_provider_token`] allows on `iat` in the future.
pub const CLOCK_SKEW_SECS: u64 = 60;

/// Team and key ids are 10-character alphanumeric strings; any 1–32 are accepted.
fn check_id(id: &str, what: &str) -> Result<(), Error> {
    if (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{what} must be 1-32 letters and digits"
        )))
    }
}

/// The provider's signing key (a `.p8` file), its key id and team id. `Debug` hides the
/// key.
#[derive(Clone)]
pub struct ProviderKey {
    team_id: String,
    key_id: String,
    key: SigningKey,
}

impl fmt::Debug for ProviderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProviderKey(team {}, key {})", self.team_id, self.key_id)
    }
}

impl ProviderKey {
    /// The key of an APNs `.p8` file (PKCS#8 PEM of a P-256 key; a SEC1 `EC PRIVATE KEY`
    /// PEM works too).
    pub fn new(team_id: &str, key_id: &str, p8_pem: &str) -> Result<ProviderKey, Error> {
        check_id(team_id, "APNs team id")?;
        check_id(key_id, "APNs key id")?;
        let pem = p8_pem.trim();
        let secret = SecretKey::from_pkcs8_pem(pem)
            .or_else(|_| SecretKey::from_sec1_pem(pem))
            .map_err(|_| Error::Config("APNs key is not a P-256 private key PEM".into()))?;
        Ok(ProviderKey {
            team_id: team_id.to_string(),
            key_id: key_id.to_string(),
            key: SigningKey::from(secret),
        })
    }

    /// The public half, for a fake APNs to verify tokens with.
    pub fn verifying_key(&self) -> VerifyingKey {
        *self.key.verifying_key()
    }

    /// A new provider token issued at `now_ms`.
    pub fn sign(&self, now_ms: i64) -> ProviderToken {
        let header = json!({"alg": "ES256", "kid": self.key_id});
        let claims = json!({"iss": self.team_id, "iat": unix_secs(now_ms)});
        ProviderToken {
            jwt: jwt::sign_es256(&self.key, &header, &claims),
            issued_at_ms: now_ms,
        }
    }
}

/// A signed provider token and when it was issued. `Debug` hides the JWT;
/// `Serialize`/`Deserialize` let the shell keep it in the key-value store.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderToken {
    /// The JWT (`authorization: bearer <jwt>`).
    pub jwt: String,
    /// Unix ms.
    pub issued_at_ms: i64,
}

impl fmt::Debug for ProviderToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ProviderToken(<jwt>, issued_at_ms: {})",
            self.issued_at_ms
        )
    }
}

/// What to do with a cached provider token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenDecision {
    /// Younger than 20 minutes: use it (refreshing now would be too frequent).
    Reuse,
    /// None cached, 20 minutes old or more, or issued "in the future" (the clock went
    /// back): sign a new one.
    Refresh,
}

/// The provider token of one key, reused for 20 minutes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderTokenCache {
    current: Option<ProviderToken>,
}

impl ProviderTokenCache {
    /// A cache holding `token` (read back from the key-value store).
    pub fn with(token: Option<ProviderToken>) -> ProviderTokenCache {
        ProviderTokenCache { current: token }
    }

    /// Reuse or refresh at `now_ms`.
    pub fn decide(&self, now_ms: i64) -> TokenDecision {
        match &self.current {
            Some(t) if (0..TOKEN_REUSE_MS).contains(&now_ms.saturating_sub(t.issued_at_ms)) => {
                TokenDecision::Reuse
            }
            _ => TokenDecision::Refresh,
        }
    }

    /// The token to send at `now_ms`, signing a new one with `key` when
    /// [`decide`](Self::decide) says so. Returns whether it is new (write it back).
    pub fn token(&mut self, key: &ProviderKey, now_ms: i64) -> (&ProviderToken, bool) {
        let refreshed = self.decide(now_ms) == TokenDecision::Refresh;
        if refreshed {
            self.current = None;
        }
        (
            self.current.get_or_insert_with(|| key.sign(now_ms)),
            refreshed,
        )
    }

    /// Drops the token (APNs answered `ExpiredProviderToken`).
    pub fn invalidate(&mut self) {
        self.current = None;
    }

    /// The token held, to write back to the store.
    pub fn current(&self) -> Option<&ProviderToken> {
        self.current.as_ref()
    }
}

/// The claims of a verified provider token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderClaims {
    /// `iss`.
    pub team_id: String,
    /// The header's `kid`.
    pub key_id: String,
    /// `iat`, Unix seconds.
    pub issued_at_secs: u64,
}

/// APNs' check of an `authorization: bearer <jwt>` token, for the test suite's fake:
/// ES256 by `key`, a `kid`, an `iss`, and an `iat` no older than 60 minutes and at most
/// [`CLOCK_SKEW_SECS`] ahead of `now_ms`.
pub fn verify_provider_token(
    jwt_text: &str,
    key: &VerifyingKey,
    now_ms: i64,
) -> Result<ProviderClaims, Error> {
    let (header, claims) = jwt::verify_es256(jwt_text, key)?;
    let key_id = str_claim(&header, "kid")?.to_string();
    let team_id = str_claim(&claims, "iss")?.to_string();
    let iat = u64_claim(&claims, "iat")?;
    let now = unix_secs(now_ms);
    if iat > now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(Error::Unauthenticated(
            "provider token issued in the future".into(),
        ));
    }
    if now.saturating_sub(iat) >= (TOKEN_MAX_AGE_MS / 1000) as u64 {
        return Err(Error::Unauthenticated("ExpiredProviderToken".into()));
    }
    Ok(ProviderClaims {
        team_id,
        key_id,
        issued_at_secs: iat,
    })
}
