//! The fixed keys and credentials of the fake vendors (made from constant bytes, or
//! the push crate's RSA test key), and the gateway variables that name them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use courier_push::apns::ProviderKey;
use courier_push::fcm::ServiceAccount;
use courier_push::p256::SecretKey;
use courier_push::p256::pkcs8::{EncodePrivateKey as _, LineEnding};
use courier_push::webpush::VapidKey;
use serde_json::json;

/// The VAPID contact configured on the gateway.
pub const VAPID_SUBJECT: &str = "mailto:push-e2e@courier.test";
/// APNs team id, key id and topic (bundle id).
pub const APNS_TEAM: &str = "TEAM4E2E01";
pub const APNS_KEY_ID: &str = "KEY4E2E001";
pub const APNS_TOPIC: &str = "test.courier.e2e";
/// The Firebase project of the service account.
pub const FCM_PROJECT: &str = "courier-e2e";
pub const FCM_CLIENT_EMAIL: &str = "push@courier-e2e.iam.gserviceaccount.com";
/// Huawei app id and app secret.
pub const HMS_APP_ID: &str = "104712345";
pub const HMS_CLIENT_SECRET: &str = "hms-app-secret-e2e";
/// Huawei's callback user name and key bytes (configured base64, as AppGallery shows
/// the key).
pub const HMS_CALLBACK_USER: &str = "courier-e2e";
pub const HMS_CALLBACK_KEY: &[u8] = b"hms-callback-key-bytes-e2e";
/// The generic callback signing secret (`push_callback_secret`).
pub const PUSH_CALLBACK_SECRET: &str = "e2e-push-callback-secret-0123456789";

/// The service account's RSA key.
const RSA_KEY_PEM: &str = include_str!("../../../shared/push/src/testdata/rsa_key_a.pem");

/// The credentials the gateway is configured with, and what the fake verifies with.
pub struct Identities {
    pub(super) origin: String,
    pub(super) vapid: VapidKey,
    pub(super) apns: ProviderKey,
    pub(super) apns_pem: String,
    pub(super) fcm_json: String,
    pub(super) fcm: ServiceAccount,
}

impl Identities {
    pub(super) fn new(origin: &str) -> Identities {
        let apns_pem = SecretKey::from_slice(&[0x22; 32])
            .expect("valid scalar")
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PEM")
            .to_string();
        let fcm_json = json!({
            "type": "service_account",
            "project_id": FCM_PROJECT,
            "private_key_id": "e2e-key-1",
            "private_key": RSA_KEY_PEM,
            "client_email": FCM_CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            "token_uri": format!("{origin}/token"),
        })
        .to_string();
        Identities {
            origin: origin.to_string(),
            vapid: VapidKey::from_bytes(&[0x11; 32]).expect("valid scalar"),
            apns: ProviderKey::new(APNS_TEAM, APNS_KEY_ID, &apns_pem).expect("valid key"),
            apns_pem,
            fcm: ServiceAccount::from_json(&fcm_json).expect("valid service account"),
            fcm_json,
        }
    }

    /// The gateway variables (`SPIN_VARIABLE_*`) that configure every vendor to be
    /// this fake, with both callback secrets.
    pub fn env(&self) -> Vec<(String, String)> {
        let origin = self.origin.as_str();
        [
            ("VAPID_PRIVATE_KEY", self.vapid.private_key_base64url()),
            ("VAPID_SUBJECT", VAPID_SUBJECT.into()),
            ("WEBPUSH_ALLOW_HTTP", "true".into()),
            ("WEBPUSH_EXTRA_ORIGIN", origin.into()),
            ("APNS_BASE_URL", origin.into()),
            ("APNS_KEY", self.apns_pem.clone()),
            ("APNS_KEY_ID", APNS_KEY_ID.into()),
            ("APNS_TEAM_ID", APNS_TEAM.into()),
            ("APNS_TOPIC", APNS_TOPIC.into()),
            ("FCM_BASE_URL", origin.into()),
            ("FCM_OAUTH_URL", origin.into()),
            ("FCM_SERVICE_ACCOUNT", self.fcm_json.clone()),
            ("HMS_BASE_URL", origin.into()),
            ("HMS_OAUTH_URL", origin.into()),
            ("HMS_APP_ID", HMS_APP_ID.into()),
            ("HMS_CLIENT_SECRET", HMS_CLIENT_SECRET.into()),
            ("HMS_CALLBACK_USER", HMS_CALLBACK_USER.into()),
            ("HMS_CALLBACK_SECRET", STANDARD.encode(HMS_CALLBACK_KEY)),
            ("PUSH_CALLBACK_SECRET", PUSH_CALLBACK_SECRET.into()),
        ]
        .into_iter()
        .map(|(name, value)| (format!("SPIN_VARIABLE_{name}"), value))
        .collect()
    }
}
