//! Vendor access tokens for one round, read from and written back to the cache.

use courier_core::Vendor;
use courier_push::oauth::{AccessToken, TokenCache, parse_token_answer};
use courier_push::{Outcome, apns};
use http::Request;

use super::vendor::permanent;
use super::{Cache, Transport, Vendors};

pub(super) const APNS_TOKEN_KEY: &str = "push:apns:provider-token";
pub(super) const FCM_TOKEN_KEY: &str = "push:fcm:access-token";
pub(super) const HMS_TOKEN_KEY: &str = "push:hms:access-token";

/// Vendor access tokens for one round, read from and written back to the cache.
pub(super) struct Auth {
    pub(super) apns: apns::ProviderTokenCache,
    pub(super) fcm: TokenCache,
    pub(super) hms: TokenCache,
    /// Outcomes for vendors whose token could not be had this round.
    pub(super) fcm_refused: Option<Outcome>,
    pub(super) hms_refused: Option<Outcome>,
}

fn cached<T: serde::de::DeserializeOwned>(cache: &mut dyn Cache, key: &str) -> Option<T> {
    cache.get(key).and_then(|v| serde_json::from_str(&v).ok())
}

pub(super) fn store_cached<T: serde::Serialize>(
    cache: &mut dyn Cache,
    key: &str,
    value: Option<&T>,
) {
    let text = value
        .and_then(|v| serde_json::to_string(v).ok())
        .unwrap_or_default();
    cache.set(key, &text);
}

/// Makes sure the OAuth vendors in `needed` have access tokens, fetching missing
/// ones (all at once).
pub(super) fn authenticate(
    vendors: &Vendors,
    transport: &mut dyn Transport,
    cache: &mut dyn Cache,
    needed: &[Vendor],
    now: i64,
) -> Auth {
    let mut auth = Auth {
        apns: apns::ProviderTokenCache::with(cached(cache, APNS_TOKEN_KEY)),
        fcm: TokenCache::with(cached::<AccessToken>(cache, FCM_TOKEN_KEY)),
        hms: TokenCache::with(cached::<AccessToken>(cache, HMS_TOKEN_KEY)),
        fcm_refused: None,
        hms_refused: None,
    };
    let mut fetch: Vec<(Vendor, Request<Vec<u8>>)> = Vec::new();
    if needed.contains(&Vendor::Fcm)
        && auth.fcm.get(now).is_none()
        && let Some(fcm) = &vendors.fcm
    {
        match fcm.account.token_request(now) {
            Ok(req) => fetch.push((Vendor::Fcm, req)),
            Err(e) => auth.fcm_refused = Some(permanent(e)),
        }
    }
    if needed.contains(&Vendor::Hms)
        && auth.hms.get(now).is_none()
        && let Some(hms) = &vendors.hms
    {
        match hms.credentials.token_request(&hms.oauth_base) {
            Ok(req) => fetch.push((Vendor::Hms, req)),
            Err(e) => auth.hms_refused = Some(permanent(e)),
        }
    }
    if fetch.is_empty() {
        return auth;
    }
    let (names, requests): (Vec<Vendor>, Vec<Request<Vec<u8>>>) = fetch.into_iter().unzip();
    for (name, answer) in names.into_iter().zip(transport.send_all(requests)) {
        let token = match answer {
            Ok(answer) => parse_token_answer(&answer, now),
            Err(e) => Err(Outcome::Retry { after_ms: None }).inspect_err(|_| {
                eprintln!("courier: push: {name} token endpoint unreachable: {e}");
            }),
        };
        // Only the OAuth vendors fetch tokens.
        let (slot, refused, key) = if name == Vendor::Fcm {
            (&mut auth.fcm, &mut auth.fcm_refused, FCM_TOKEN_KEY)
        } else {
            (&mut auth.hms, &mut auth.hms_refused, HMS_TOKEN_KEY)
        };
        match token {
            Ok(token) => {
                slot.store(token);
                store_cached(cache, key, slot.current());
            }
            Err(outcome) => *refused = Some(outcome),
        }
    }
    auth
}
