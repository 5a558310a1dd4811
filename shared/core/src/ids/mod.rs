//! Validated identifiers: once a value has one of these types, it obeys API.md's id rule.
//!
//! - [`UserId`], [`GroupId`], [`MsgId`], [`ClientMsgId`], [`DeviceId`], [`OrgId`],
//!   [`WebhookId`]: strings
//!   of 1–64 characters from `[A-Za-z0-9_.:-]`. Deserializing one validates it, so a
//!   request type holding them is valid as soon as it parses.
//! - [`Seq`] (in `seq.rs`): a position in a user's stream, never negative.
//! - [`ConvId`] (in `conv.rs`): `dm:<a>:<b>` or `g:<gid>`.

mod conv;
mod seq;

pub use conv::ConvId;
pub use seq::Seq;

use std::fmt;
use std::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// The longest id API.md allows, in characters (all allowed characters are ASCII).
pub const MAX_ID_LEN: usize = 64;

/// The id rule, worded for error messages.
const ID_RULE: &str = "must be 1-64 characters from [A-Za-z0-9_.:-]";

/// Whether `s` obeys the id rule of API.md.
fn is_valid_id(s: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// Defines a validated string id newtype. The invalid input is never echoed back in
/// the error: it may be long or hold anything.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validates `s` against the id rule.
            pub fn parse(s: &str) -> Result<Self, Error> {
                Self::try_from(s.to_owned())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned `String`.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;

            fn try_from(s: String) -> Result<Self, Error> {
                if is_valid_id(&s) {
                    Ok(Self(s))
                } else {
                    Err(Error::BadRequest(format!(concat!("invalid ", $what, ": {}"), ID_RULE)))
                }
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Self::try_from(s).map_err(|_| {
                    D::Error::custom(format!(concat!("invalid ", $what, ": {}"), ID_RULE))
                })
            }
        }
    };
}

string_id!(
    /// A user (`sub` of a token, `{uid}` of the directory).
    UserId,
    "user id"
);
string_id!(
    /// A group (`{gid}` of the directory).
    GroupId,
    "group id"
);
string_id!(
    /// A message, assigned by the server ([`MsgId::generate`]).
    MsgId,
    "message id"
);
string_id!(
    /// The sender's idempotency key for a send.
    ClientMsgId,
    "client_msg_id"
);
string_id!(
    /// One device of a user (`dev` claim, default `"default"`).
    DeviceId,
    "device id"
);
string_id!(
    /// An organisation (`org` of a user). API.md does not name its format; it is held
    /// to the same id rule as every other id.
    OrgId,
    "org id"
);
string_id!(
    /// A webhook (`{id}` of `/v1/webhooks/{id}`).
    WebhookId,
    "webhook id"
);

impl MsgId {
    /// A new message id, `m` + 13 decimal digits of `now_ms` + 16 hex digits of `random`
    /// (30 characters). Ids made later sort after earlier ones as plain strings (until
    /// the year 2286); `random` comes from the caller so this stays free of I/O.
    /// A negative `now_ms` (a broken clock) counts as 0.
    pub fn generate(now_ms: i64, random: u64) -> MsgId {
        MsgId(format!("m{:013}{random:016x}", now_ms.max(0)))
    }
}

impl DeviceId {
    /// The device of a token without a `dev` claim.
    pub fn default_device() -> DeviceId {
        DeviceId("default".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_every_allowed_character_class() {
        for ok in ["u1", "A-Z_a.z:0-9", "x", &"a".repeat(64), "org:user"] {
            assert!(UserId::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn ids_reject_empty_too_long_and_foreign_characters() {
        for bad in [
            "",
            &"a".repeat(65),
            "a b",
            "a/b",
            "é",
            "a\n",
            "a%20",
            "\u{0}",
        ] {
            let err = GroupId::parse(bad).expect_err(bad);
            assert_eq!(err.code(), "bad_request");
        }
    }

    #[test]
    fn id_error_does_not_echo_the_input() {
        let err = UserId::parse("<script>").expect_err("invalid");
        assert!(!err.public_message().contains("<script>"));
        assert!(err.public_message().contains("user id"));
    }

    #[test]
    fn ids_serialize_as_plain_strings() {
        let id = ClientMsgId::parse("c-1").expect("valid");
        assert_eq!(serde_json::to_string(&id).expect("serializes"), r#""c-1""#);
        assert_eq!(id.to_string(), "c-1");
        assert_eq!(id.as_str(), "c-1");
    }

    #[test]
    fn deserializing_an_id_validates_it() {
        assert!(serde_json::from_str::<UserId>(r#""u1""#).is_ok());
        let err = serde_json::from_str::<UserId>(r#""a b""#).expect_err("space");
        assert!(err.to_string().contains("invalid user id"), "{err}");
        assert!(serde_json::from_str::<UserId>("17").is_err());
    }

    #[test]
    fn generated_msg_ids_are_valid_and_sort_by_time() {
        let early = MsgId::generate(1_764_000_000_000, u64::MAX);
        let late = MsgId::generate(1_764_000_000_001, 0);
        assert_eq!(early.as_str(), "m1764000000000ffffffffffffffff");
        assert!(MsgId::parse(early.as_str()).is_ok());
        assert!(early < late);
        assert_eq!(late.as_str().len(), 30);
    }

    #[test]
    fn generated_msg_id_treats_a_negative_clock_as_zero() {
        assert_eq!(
            MsgId::generate(-5, 1).as_str(),
            "m00000000000000000000000000001"
        );
    }

    #[test]
    fn default_device_is_named_default() {
        assert_eq!(DeviceId::default_device().as_str(), "default");
    }
}
