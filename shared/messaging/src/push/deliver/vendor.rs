//! One device's vendor request, and what the vendor's answer means.

use courier_core::Vendor;
use courier_push::token::RegistrationToken;
use courier_push::webpush::{self, RANDOM_BYTES, Subscription};
use courier_push::{Notification, Outcome, apns, fcm, hms};
use courier_store::push::Registration;
use http::{Request, Response};

use super::Vendors;
use super::auth::Auth;

/// A request the vendor library refused to build: a permanent failure of the device.
pub(super) fn permanent(e: courier_push::Error) -> Outcome {
    Outcome::Permanent {
        status: 0,
        reason: e.to_string(),
    }
}

/// The vendor request for one device (`vendor`: its registration's, parsed), with the
/// vendor it goes to.
pub(super) fn request(
    vendors: &Vendors,
    auth: &mut Auth,
    vendor: Option<Vendor>,
    reg: &Registration,
    n: &Notification,
    now: i64,
    random: &mut dyn FnMut() -> u64,
) -> Result<(Vendor, Request<Vec<u8>>), Outcome> {
    let unconfigured = || Outcome::Permanent {
        status: 0,
        reason: format!("push vendor {} is no longer configured", reg.vendor),
    };
    let Some(vendor) = vendor else {
        return Err(permanent(courier_push::Error::Config(format!(
            "vendor {}",
            reg.vendor
        ))));
    };
    let result = match vendor {
        Vendor::WebPush => {
            let sender = vendors.webpush.as_ref().ok_or_else(unconfigured)?;
            let keys: serde_json::Value =
                serde_json::from_str(reg.keys.as_deref().unwrap_or("{}")).unwrap_or_default();
            let key = |name: &str| keys.get(name).and_then(|v| v.as_str()).unwrap_or_default();
            let sub = if vendors.allow_http {
                Subscription::parse_allowing_http(&reg.token, key("p256dh"), key("auth"))
            } else {
                Subscription::parse(&reg.token, key("p256dh"), key("auth"))
            };
            let mut bytes = [0u8; RANDOM_BYTES];
            for chunk in bytes.chunks_mut(8) {
                let word = random().to_le_bytes();
                chunk.copy_from_slice(&word[..chunk.len()]);
            }
            sub.and_then(|sub| sender.request(&sub, n, now, &bytes))
        }
        Vendor::Apns => {
            let apns = vendors.apns.as_ref().ok_or_else(unconfigured)?;
            let (token, _) = auth.apns.token(&apns.key, now);
            apns::DeviceToken::parse(&reg.token).and_then(|device| {
                apns.client
                    .request(token, &device, n, apns::PushType::Alert, now)
            })
        }
        Vendor::Fcm => {
            let fcm = vendors.fcm.as_ref().ok_or_else(unconfigured)?;
            if let Some(refused) = &auth.fcm_refused {
                return Err(refused.clone());
            }
            let access = auth.fcm.get(now).ok_or(Outcome::RefreshAuth)?;
            RegistrationToken::parse(&reg.token)
                .and_then(|token| fcm.client.request(access, &token, n))
        }
        Vendor::Hms => {
            let hms = vendors.hms.as_ref().ok_or_else(unconfigured)?;
            if let Some(refused) = &auth.hms_refused {
                return Err(refused.clone());
            }
            let access = auth.hms.get(now).ok_or(Outcome::RefreshAuth)?;
            RegistrationToken::parse(&reg.token)
                .and_then(|token| hms.client.request(access, &[token], n))
        }
    };
    result.map(|req| (vendor, req)).map_err(permanent)
}

/// What the vendor answer means, and the vendor's id of the notification.
pub(super) fn classify(
    vendor: Vendor,
    answer: &Response<Vec<u8>>,
    now: i64,
) -> (Outcome, Option<String>) {
    let header = |name: &str| {
        answer
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let field = |name: &str| {
        serde_json::from_slice::<serde_json::Value>(answer.body())
            .ok()
            .and_then(|j| j.get(name).and_then(|v| v.as_str()).map(str::to_string))
    };
    match vendor {
        Vendor::WebPush => (webpush::classify(answer, now), header("location")),
        Vendor::Apns => (apns::classify(answer, now), header("apns-id")),
        Vendor::Fcm => (fcm::classify(answer, now), field("name")),
        Vendor::Hms => (hms::classify(answer, now), field("requestId")),
    }
}
