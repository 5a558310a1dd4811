//! Development tokens: HS256 JWTs with the claims of API.md (`sub`, `exp`, `iat`,
//! `dev`, `role`), signed with the app's `jwt_secret`.

use std::time::Duration;

use anyhow::{Result, anyhow};
use jwt_simple::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CourierClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// Signs a token for `uid` valid for `ttl`.
pub fn mint(
    secret: &str,
    uid: &str,
    device: Option<&str>,
    admin: bool,
    ttl: Duration,
) -> Result<String> {
    let key = HS256Key::from_bytes(secret.as_bytes());
    let custom = CourierClaims {
        dev: device.map(str::to_string),
        role: admin.then(|| "admin".to_string()),
    };
    let claims = Claims::with_custom_claims(
        custom,
        jwt_simple::prelude::Duration::from_secs(ttl.as_secs()),
    )
    .with_subject(uid);
    key.authenticate(claims)
        .map_err(|e| anyhow!("cannot sign token: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_token_verifies_with_the_same_secret_only() {
        let token = mint(
            "a-long-enough-test-secret",
            "u1",
            Some("phone"),
            true,
            Duration::from_secs(60),
        )
        .unwrap();
        let key = HS256Key::from_bytes(b"a-long-enough-test-secret");
        let claims = key.verify_token::<CourierClaims>(&token, None).unwrap();
        assert_eq!(claims.subject.as_deref(), Some("u1"));
        assert_eq!(claims.custom.dev.as_deref(), Some("phone"));
        assert_eq!(claims.custom.role.as_deref(), Some("admin"));
        assert!(claims.expires_at.is_some());
        assert!(
            HS256Key::from_bytes(b"another-long-enough-secret")
                .verify_token::<CourierClaims>(&token, None)
                .is_err()
        );
    }
}
