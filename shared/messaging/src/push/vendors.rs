//! The push vendors this deployment is configured for, read from variables once per
//! request. A vendor is on when its credentials are set; half a configuration (a
//! key without its subject, a team id without a key) is a configuration error, not a
//! silently disabled vendor.

use courier_core::{Error, Vendor};
use courier_push::callbacks::{HmsCallbackKey, signature::SigningSecret};
use courier_push::webpush::{Sender, VapidKey};
use courier_push::{apns, fcm, hms};

/// APNs: where to send and the key to sign provider tokens with.
pub struct Apns {
    pub client: apns::Client,
    pub key: apns::ProviderKey,
}

/// FCM: where to send and the service account to get access tokens with.
pub struct Fcm {
    pub client: fcm::Client,
    pub account: fcm::ServiceAccount,
}

/// Huawei Push Kit: where to send, and the OAuth client.
pub struct Hms {
    pub client: hms::Client,
    pub credentials: hms::Credentials,
    pub oauth_base: String,
}

/// The configured vendors and push options.
pub struct Vendors {
    /// Notifications carry the sender's name and the text (`push_preview`).
    pub preview: bool,
    /// Web Push endpoints may be plain `http://` (`webpush_allow_http`): for private
    /// push services on a closed network and for local test vendors only.
    pub allow_http: bool,
    pub webpush: Option<Sender>,
    pub apns: Option<Apns>,
    pub fcm: Option<Fcm>,
    pub hms: Option<Hms>,
    /// Verifies HMS delivery receipts.
    pub hms_callback: Option<HmsCallbackKey>,
    /// Verifies the generic signed delivery receipts.
    pub callback_secret: Option<SigningSecret>,
}

fn flag(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> Result<bool, Error> {
    match lookup(name).as_deref().map(str::trim) {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(Error::Config(format!(
            "variable {name}: {other:?} is neither true nor false"
        ))),
    }
}

/// The set (non-blank) values of `names`, all or none; some but not all is an error.
fn all_or_none<const N: usize>(
    lookup: &impl Fn(&str) -> Option<String>,
    names: [&str; N],
) -> Result<Option<[String; N]>, Error> {
    let values = names.map(|n| lookup(n).filter(|v| !v.trim().is_empty()));
    let set = values.iter().filter(|v| v.is_some()).count();
    if set == 0 {
        return Ok(None);
    }
    if set < N {
        let missing: Vec<&str> = names
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| *n)
            .collect();
        return Err(Error::Config(format!(
            "push: {} set but {} missing",
            names.join(", "),
            missing.join(", ")
        )));
    }
    Ok(Some(values.map(Option::unwrap_or_default)))
}

fn or_default(lookup: &impl Fn(&str) -> Option<String>, name: &str, default: &str) -> String {
    lookup(name)
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

impl Vendors {
    /// Reads the push variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Vendors, Error> {
        let lookup = &lookup;
        let webpush = all_or_none(lookup, ["vapid_private_key", "vapid_subject"])?
            .map(|[key, subject]| Sender::new(VapidKey::parse(key.trim())?, subject.trim()))
            .transpose()?;
        let apns = all_or_none(
            lookup,
            ["apns_key", "apns_key_id", "apns_team_id", "apns_topic"],
        )?
        .map(|[key, key_id, team, topic]| -> Result<Apns, Error> {
            let base = or_default(lookup, "apns_base_url", apns::PRODUCTION_BASE);
            Ok(Apns {
                client: apns::Client::new(&base, topic.trim())?,
                key: apns::ProviderKey::new(team.trim(), key_id.trim(), &key)?,
            })
        })
        .transpose()?;
        let fcm = all_or_none(lookup, ["fcm_service_account"])?
            .map(|[account]| -> Result<Fcm, Error> {
                let account = fcm::ServiceAccount::from_json(&account)?;
                let base = or_default(lookup, "fcm_base_url", fcm::BASE);
                Ok(Fcm {
                    client: fcm::Client::new(&base, account.project_id())?,
                    account,
                })
            })
            .transpose()?;
        let hms = all_or_none(lookup, ["hms_app_id", "hms_client_secret"])?
            .map(|[app_id, secret]| -> Result<Hms, Error> {
                let base = or_default(lookup, "hms_base_url", hms::BASE);
                Ok(Hms {
                    client: hms::Client::new(&base, app_id.trim())?,
                    credentials: hms::Credentials::new(app_id.trim(), secret.trim())?,
                    oauth_base: or_default(lookup, "hms_oauth_url", hms::OAUTH_BASE),
                })
            })
            .transpose()?;
        let hms_callback = all_or_none(lookup, ["hms_callback_user", "hms_callback_secret"])?
            .map(|[user, secret]| HmsCallbackKey::from_base64_secret(user.trim(), secret.trim()))
            .transpose()?;
        let callback_secret = all_or_none(lookup, ["push_callback_secret"])?
            .map(|[secret]| SigningSecret::new(secret.as_bytes()))
            .transpose()?;
        Ok(Vendors {
            preview: flag(lookup, "push_preview")?,
            allow_http: flag(lookup, "webpush_allow_http")?,
            webpush,
            apns,
            fcm,
            hms,
            hms_callback,
            callback_secret,
        })
    }

    /// Whether `vendor` is configured (can be registered with and delivered to).
    pub fn configured(&self, vendor: Vendor) -> bool {
        match vendor {
            Vendor::WebPush => self.webpush.is_some(),
            Vendor::Apns => self.apns.is_some(),
            Vendor::Fcm => self.fcm.is_some(),
            Vendor::Hms => self.hms.is_some(),
        }
    }

    /// The vendor names that can be delivered to.
    pub fn enabled(&self) -> Vec<&'static str> {
        Vendor::ALL
            .into_iter()
            .filter(|v| self.configured(*v))
            .map(Vendor::as_str)
            .collect()
    }
}
