//! A Google service account and its OAuth 2.0 JWT bearer grant (RFC 7523): the RS256
//! assertion (`iss` = client email, `scope` = FCM, `aud` = `token_uri`, `iat`, `exp` =
//! `iat` + 3600) and the form-encoded token request. The answer is read by
//! [`crate::oauth::parse_token_answer`].
//!
//! [`verify_assertion`] and [`read_token_request`] are the token endpoint's side, for the
//! test suite's fake.

use std::fmt;

use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Uri};
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::Deserialize;
use serde_json::json;

use crate::Error;
use crate::jwt::{self, str_claim, u64_claim, unix_secs};

/// The OAuth scope of FCM sends.
pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// The JWT bearer grant type (RFC 7523 §2.1).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime of an assertion: Google's maximum, one hour.
pub const ASSERTION_TTL_SECS: u64 = 3600;
/// The clock skew [`verify_assertion`] allows on `iat` in the future.
pub const CLOCK_SKEW_SECS: u64 = 60;

/// The fields of a service-account key file this crate reads.
#[derive(Deserialize)]
struct KeyFile {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    token_uri: String,
    project_id: String,
}

/// A parsed service account. `Debug` hides the private key.
#[derive(Clone)]
pub struct ServiceAccount {
    client_email: String,
    private_key_id: Option<String>,
    token_uri: String,
    project_id: String,
    key: RsaPrivateKey,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ServiceAccount({} in {}, <private key>)",
            self.client_email, self.project_id
        )
    }
}

fn config(what: &str) -> Error {
    Error::Config(format!("FCM service account: {what}"))
}

impl ServiceAccount {
    /// Reads a service-account JSON key file (`client_email`, `private_key` as a PKCS#8
    /// RSA PEM, `token_uri`, `project_id`; `private_key_id` becomes the JWT `kid`).
    pub fn from_json(text: &str) -> Result<ServiceAccount, Error> {
        let file: KeyFile =
            serde_json::from_str(text).map_err(|e| config(&format!("not a key file ({e})")))?;
        let email_ok = file.client_email.contains('@')
            && !file
                .client_email
                .chars()
                .any(|c| c.is_whitespace() || c.is_control());
        if !email_ok {
            return Err(config("client_email is not an email address"));
        }
        let token_uri: Uri = file
            .token_uri
            .parse()
            .map_err(|_| config("token_uri is not a URL"))?;
        if !matches!(token_uri.scheme_str(), Some("https" | "http")) || token_uri.host().is_none() {
            return Err(config("token_uri must be an http(s) URL"));
        }
        super::check_project_id(&file.project_id)?;
        let pem = file.private_key.trim();
        let key = RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|_| config("private_key is not an RSA private key PEM"))?;
        Ok(ServiceAccount {
            client_email: file.client_email,
            private_key_id: file.private_key_id.filter(|k| !k.is_empty()),
            token_uri: file.token_uri,
            project_id: file.project_id,
            key,
        })
    }

    /// `client_email`.
    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    /// `project_id`: the project of `messages:send`.
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    /// `token_uri`: where the token request goes, and the assertion's `aud`.
    pub fn token_uri(&self) -> &str {
        &self.token_uri
    }

    /// The public key, for a fake token endpoint to verify assertions with.
    pub fn public_key(&self) -> RsaPublicKey {
        self.key.to_public_key()
    }

    /// The signed assertion at `now_ms`.
    pub fn assertion(&self, now_ms: i64) -> Result<String, Error> {
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let (Some(kid), Some(map)) = (&self.private_key_id, header.as_object_mut()) {
            map.insert("kid".into(), kid.as_str().into());
        }
        let iat = unix_secs(now_ms);
        let claims = json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": iat,
            "exp": iat.saturating_add(ASSERTION_TTL_SECS),
        });
        jwt::sign_rs256(&self.key, &header, &claims)
    }

    /// `POST {token_uri}` with the form `grant_type=…&assertion=…`.
    pub fn token_request(&self, now_ms: i64) -> Result<Request<Vec<u8>>, Error> {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", GRANT_TYPE)
            .append_pair("assertion", &self.assertion(now_ms)?)
            .finish()
            .into_bytes();
        Request::builder()
            .method(Method::POST)
            .uri(&self.token_uri)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(CONTENT_LENGTH, body.len())
            .body(body)
            .map_err(|e| config(&format!("token request: {e}")))
    }
}

/// The claims of a verified assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionClaims {
    /// `iss`: the client email.
    pub iss: String,
    /// `scope`.
    pub scope: String,
    /// `aud`.
    pub aud: String,
    /// `iat`, Unix seconds.
    pub iat: u64,
    /// `exp`, Unix seconds.
    pub exp: u64,
}

/// The token endpoint's check of an assertion: RS256 by `key`, `aud` equal to
/// `expected_aud`, `iat ≤ now + skew < …`, `now < exp ≤ iat + 3600`.
pub fn verify_assertion(
    assertion: &str,
    key: &RsaPublicKey,
    expected_aud: &str,
    now_ms: i64,
) -> Result<AssertionClaims, Error> {
    let (_, claims) = jwt::verify_rs256(assertion, key)?;
    let claims = AssertionClaims {
        iss: str_claim(&claims, "iss")?.to_string(),
        scope: str_claim(&claims, "scope")?.to_string(),
        aud: str_claim(&claims, "aud")?.to_string(),
        iat: u64_claim(&claims, "iat")?,
        exp: u64_claim(&claims, "exp")?,
    };
    let now = unix_secs(now_ms);
    let refuse = |why: &str| Err(Error::Unauthenticated(format!("assertion {why}")));
    if claims.aud != expected_aud {
        return refuse("aud does not name this token endpoint");
    }
    if claims.iat > now.saturating_add(CLOCK_SKEW_SECS) {
        return refuse("issued in the future");
    }
    if claims.exp <= now {
        return refuse("expired");
    }
    if claims.exp > claims.iat.saturating_add(ASSERTION_TTL_SECS) {
        return refuse("valid for more than an hour");
    }
    Ok(claims)
}

/// The token endpoint's reading of a token request body: the `assertion` of a
/// `grant_type` = [`GRANT_TYPE`] form.
pub fn read_token_request(body: &[u8]) -> Result<String, Error> {
    let (mut grant, mut assertion) = (None, None);
    for (name, value) in form_urlencoded::parse(body) {
        match name.as_ref() {
            "grant_type" => grant = Some(value.into_owned()),
            "assertion" => assertion = Some(value.into_owned()),
            _ => {}
        }
    }
    if grant.as_deref() != Some(GRANT_TYPE) {
        return Err(Error::BadMessage(
            "grant_type is not the JWT bearer grant".into(),
        ));
    }
    assertion.ok_or_else(|| Error::BadMessage("no assertion".into()))
}
