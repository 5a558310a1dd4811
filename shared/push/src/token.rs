//! [`RegistrationToken`]: the opaque device token FCM and HMS hand a client app (APNs
//! tokens are hex: [`crate::apns::DeviceToken`]). Tokens address a device, so `Debug`
//! and [`RegistrationToken::redacted`] show only a prefix — logs never hold one whole.

use std::fmt;

use crate::Error;

/// The longest token accepted, in bytes (FCM tokens are about 160–250, HMS about 130).
pub const MAX_TOKEN_BYTES: usize = 4096;

/// A validated FCM or HMS registration token: 1–4096 visible ASCII characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RegistrationToken(String);

impl RegistrationToken {
    /// Validates a token a client registered.
    pub fn parse(text: &str) -> Result<RegistrationToken, Error> {
        if text.is_empty() || text.len() > MAX_TOKEN_BYTES {
            return Err(Error::InvalidDevice(format!(
                "token must be 1-{MAX_TOKEN_BYTES} characters"
            )));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidDevice(
                "token must be visible ASCII without spaces".into(),
            ));
        }
        Ok(RegistrationToken(text.to_string()))
    }

    /// The token as sent to the vendor.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 8 characters and `…`: enough to tell tokens apart in a log.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

/// The first 8 characters of a token and `…`.
pub(crate) fn redact(token: &str) -> String {
    let prefix: String = token.chars().take(8).collect();
    format!("{prefix}…")
}

impl fmt::Debug for RegistrationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegistrationToken({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_ascii_tokens_are_accepted() {
        let fcm = "dQw4w9WgXcQ:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx";
        let token = RegistrationToken::parse(fcm).expect("valid");
        assert_eq!(token.as_str(), fcm);
        assert_eq!(token.redacted(), "dQw4w9Wg…");
        assert!(!format!("{token:?}").contains(fcm), "Debug redacts");
        assert!(
            RegistrationToken::parse("IQAAAACy0kYkAAB+/=").is_ok(),
            "HMS-style characters"
        );
    }

    #[test]
    fn empty_long_spaced_or_control_tokens_are_refused() {
        for text in [
            String::new(),
            "a".repeat(MAX_TOKEN_BYTES + 1),
            "two words".into(),
            "tab\there".into(),
            "nul\0".into(),
            "ünïcode".into(),
        ] {
            assert!(
                matches!(
                    RegistrationToken::parse(&text),
                    Err(Error::InvalidDevice(_))
                ),
                "{text:?}"
            );
        }
        assert!(RegistrationToken::parse(&"a".repeat(MAX_TOKEN_BYTES)).is_ok());
    }
}
