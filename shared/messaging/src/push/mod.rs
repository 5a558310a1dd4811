//! Push: device registration, the push configuration clients ask for, vendor
//! delivery receipts, and the delivery of push jobs.
//!
//! - `PUT /v1/push/devices/{device}` → [`register`]; `DELETE` → [`unregister`].
//! - `GET /v1/push/config` → [`client_config`].
//! - `POST /v1/push/callbacks/{vendor}` → [`callbacks::receive`].
//! - `POST /internal/push/drain` → [`deliver::deliver`].

pub mod callbacks;
pub mod deliver;
pub mod vendors;

use courier_core::api::{RequestBody, parse_request};
use courier_core::auth::Identity;
use courier_core::{Config, DeviceId, Error, Vendor};
use courier_push::{apns, token::RegistrationToken, webpush};
use courier_store::Sql;
use courier_store::push::{self as store, Policy, Registration};
use serde::Deserialize;
use serde_json::json;

use crate::Reply;
use crate::errors::from_store;
pub use vendors::Vendors;

/// The store's push policy from the shared limits.
pub fn policy(config: &Config) -> Policy {
    Policy {
        presence_ttl_ms: (config.presence_ttl_secs as i64).saturating_mul(1000),
        delay_ms: config.push_delay_ms as i64,
        interval_ms: config.push_interval_ms as i64,
    }
}

/// `keys` of a Web Push subscription (as `PushSubscription.toJSON()` gives them).
#[derive(Debug, Deserialize)]
struct WebPushKeys {
    p256dh: String,
    auth: String,
}

/// `PUT /v1/push/devices/{device}`.
#[derive(Debug, Deserialize)]
struct RegisterRequest {
    vendor: String,
    token: Option<String>,
    endpoint: Option<String>,
    keys: Option<WebPushKeys>,
}

impl RequestBody for RegisterRequest {
    fn validate(self, _config: &Config) -> Result<Self, Error> {
        Ok(self)
    }
}

/// Checks a registration against its vendor's rules; returns what the store keeps.
fn registration(
    vendors: &Vendors,
    device: &DeviceId,
    req: RegisterRequest,
) -> Result<Registration, Error> {
    let token_only = |token: &Option<String>| match (token, &req.endpoint, &req.keys) {
        (Some(token), None, None) => Ok(token.clone()),
        (None, _, _) => Err(Error::BadRequest(format!(
            "a {} registration needs a token",
            req.vendor
        ))),
        _ => Err(Error::BadRequest(format!(
            "a {} registration has a token only (no endpoint or keys)",
            req.vendor
        ))),
    };
    let vendor = Vendor::parse(&req.vendor);
    if let Some(vendor) = vendor
        && !vendors.configured(vendor)
    {
        return Err(Error::BadRequest(format!(
            "push vendor {vendor} is not configured on this server"
        )));
    }
    let (token, keys) = match vendor {
        Some(Vendor::WebPush) => {
            let (Some(endpoint), Some(keys), None) = (&req.endpoint, &req.keys, &req.token) else {
                return Err(Error::BadRequest(
                    "a webpush registration needs endpoint and keys {p256dh, auth}, no token"
                        .into(),
                ));
            };
            let sub = if vendors.allow_http {
                webpush::Subscription::parse_allowing_http(endpoint, &keys.p256dh, &keys.auth)
            } else {
                webpush::Subscription::parse(endpoint, &keys.p256dh, &keys.auth)
            }?;
            let keys = json!({"p256dh": sub.p256dh_base64url(), "auth": sub.auth_base64url()});
            (endpoint.clone(), Some(keys.to_string()))
        }
        Some(Vendor::Apns) => {
            let token = apns::DeviceToken::parse(&token_only(&req.token)?)?;
            (token.as_str().to_string(), None)
        }
        Some(Vendor::Fcm | Vendor::Hms) => {
            let token = RegistrationToken::parse(&token_only(&req.token)?)?;
            (token.as_str().to_string(), None)
        }
        None => {
            return Err(Error::BadRequest(format!(
                "unknown push vendor {:?}: one of webpush, apns, fcm, hms",
                req.vendor
            )));
        }
    };
    Ok(Registration {
        device: device.as_str().to_string(),
        vendor: req.vendor,
        token,
        keys,
    })
}

/// `PUT /v1/push/devices/{device}`: registers (or replaces) the caller's device for
/// vendor push → 200 `{"device", "vendor"}`. The registration is validated first
/// (a Web Push endpoint must be https and its keys a P-256 point and a 16-byte
/// secret; tokens must look like the vendor's); a vendor this server is not
/// configured for is refused (400).
pub fn register<S: Sql + ?Sized>(
    sql: &S,
    config: &Config,
    vendors: &Vendors,
    caller: &Identity,
    device: &str,
    raw: &[u8],
    now: i64,
) -> Result<Reply, Error> {
    let device = DeviceId::parse(device)?;
    let req: RegisterRequest = parse_request(raw, config)?;
    let reg = registration(vendors, &device, req)?;
    store::register(sql, caller.user.as_str(), &reg, now).map_err(from_store)?;
    Ok(Reply::ok(
        json!({"device": reg.device, "vendor": reg.vendor}),
    ))
}

/// `DELETE /v1/push/devices/{device}` → 204, whether or not it was registered.
pub fn unregister<S: Sql + ?Sized>(
    sql: &S,
    caller: &Identity,
    device: &str,
) -> Result<Reply, Error> {
    let device = DeviceId::parse(device)?;
    store::unregister(sql, caller.user.as_str(), device.as_str()).map_err(from_store)?;
    Ok(Reply::no_content())
}

/// `GET /v1/push/config` → 200 `{"vendors": [...], "webpush": {"vapid_public_key"}
/// | null}`: what a client needs to subscribe (the VAPID key for
/// `pushManager.subscribe`).
pub fn client_config(vendors: &Vendors) -> Reply {
    let webpush = vendors
        .webpush
        .as_ref()
        .map(|sender| json!({"vapid_public_key": sender.public_key()}));
    Reply::ok(json!({"vendors": vendors.enabled(), "webpush": webpush}))
}
