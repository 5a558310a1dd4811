//! The push vendors, as registrations, vendor callbacks and stored devices name them.

use std::fmt;

/// A push vendor. Its name (`webpush`, `apns`, `fcm`, `hms`) is what clients send on
/// registration, what callback routes carry and what the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vendor {
    /// Web Push (RFC 8030) with VAPID.
    WebPush,
    /// Apple Push Notification service.
    Apns,
    /// Firebase Cloud Messaging.
    Fcm,
    /// Huawei Push Kit.
    Hms,
}

impl Vendor {
    /// Every vendor, in the order the API lists them.
    pub const ALL: [Vendor; 4] = [Vendor::WebPush, Vendor::Apns, Vendor::Fcm, Vendor::Hms];

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::WebPush => "webpush",
            Vendor::Apns => "apns",
            Vendor::Fcm => "fcm",
            Vendor::Hms => "hms",
        }
    }

    /// The vendor of a name (exact, lower case), if any.
    pub fn parse(name: &str) -> Option<Vendor> {
        Vendor::ALL.into_iter().find(|v| v.as_str() == name)
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        for v in Vendor::ALL {
            assert_eq!(Vendor::parse(v.as_str()), Some(v));
            assert_eq!(v.to_string(), v.as_str());
        }
        for other in ["", "WebPush", "APNS", "gcm", "fcm ", "huawei"] {
            assert_eq!(Vendor::parse(other), None, "{other:?}");
        }
    }
}
