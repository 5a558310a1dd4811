//! Authenticating vendor callbacks (`POST /v1/push/callbacks/{vendor}`, API.md: 401
//! unless authenticated) and reading what they report. Both sides are here: the route
//! verifies, the test suite's fakes sign.
//!
//! - [`hms`]: Huawei's `X-HUAWEI-CALLBACK-ID` and its delivery receipts.
//! - [`signature`]: the generic `X-Courier-Signature: t=…,v1=…` for other senders.

pub mod hms;
pub mod signature;

pub use hms::{
    HMS_CALLBACK_HEADER, HMS_CALLBACK_REPLY, HmsCallbackAuth, HmsCallbackKey, Receipt,
    ReceiptStatus, parse_hms_receipts, sign_hms, verify_hms,
};
pub use signature::{SIGNATURE_HEADER, SigningSecret};
