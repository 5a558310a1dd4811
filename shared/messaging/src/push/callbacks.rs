//! `POST /v1/push/callbacks/{vendor}`: vendor delivery receipts.
//!
//! - `hms`: Huawei's receipt format (`{"statuses": [...]}`), authenticated by the
//!   `X-HUAWEI-CALLBACK-ID` header (HMAC-SHA256 with `hms_callback_secret`; see
//!   `courier_push::callbacks`), nonces refused on repeat within 5 minutes.
//! - `webpush`, `apns`, `fcm`: courier's generic signed format, for relays that
//!   collect a vendor's delivery data:
//!   `{"receipts": [{"vendor_id"?, "token"?, "status": "delivered" | "token_invalid" |
//!   "failed", "detail"?}]}` with `X-Courier-Signature: t=<unix s>,v1=<hex
//!   HMAC-SHA256(push_callback_secret, "<t>.<body>")>`; a signature is accepted once,
//!   on whichever of these routes comes first.
//!
//! Unsigned, badly signed, stale or replayed → 401 and nothing recorded. A receipt
//! updates the matching delivery records; a token reported invalid loses its
//! registrations.

use courier_core::{Error, Vendor};
use courier_push::callbacks::hms::HMS_REPLAY_WINDOW_MS;
use courier_push::callbacks::signature::{self, REPLAY_WINDOW_SECS};
use courier_push::callbacks::{
    HMS_CALLBACK_HEADER, HMS_CALLBACK_REPLY, ReceiptStatus, parse_hms_receipts, verify_hms,
};
use courier_store::Sql;
use courier_store::push::{self as store, Receipt};
use serde::Deserialize;
use serde_json::json;

use super::Vendors;
use crate::Reply;
use crate::errors::from_store;

/// The largest callback body: 1,000 receipts.
pub const MAX_CALLBACK_BYTES: usize = 512 * 1024;

/// Most receipts in one generic callback.
pub const MAX_RECEIPTS: usize = 1000;

/// The nonce namespace of the generic signed callbacks (`webpush`, `apns`, `fcm`
/// share one: a signature covers the body, not the route).
const SIGNED_NONCES: &str = "signed";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericReceipt {
    vendor_id: Option<String>,
    token: Option<String>,
    status: String,
    detail: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericCallback {
    receipts: Vec<GenericReceipt>,
}

/// A receipt's strings are looked up and stored as text, which PostgreSQL cannot hold
/// with NUL in it: such a receipt is a bad request on every store alike.
fn no_nul<const N: usize>(fields: [Option<&str>; N]) -> Result<(), Error> {
    if fields.iter().flatten().any(|f| f.contains('\0')) {
        return Err(Error::BadRequest(
            "a receipt field must not contain NUL".into(),
        ));
    }
    Ok(())
}

fn unauthorized(why: impl std::fmt::Display) -> Error {
    Error::Unauthorized(format!("callback not authenticated: {why}"))
}

/// Handles one callback. `header` reads a request header by (lowercase) name.
pub fn receive<S: Sql + ?Sized>(
    sql: &S,
    vendors: &Vendors,
    vendor: &str,
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
    now: i64,
) -> Result<Reply, Error> {
    let Some(vendor) = Vendor::parse(vendor) else {
        return Err(Error::NotFound(format!("push vendor {vendor}")));
    };
    if body.len() > MAX_CALLBACK_BYTES {
        return Err(Error::TooLarge(format!(
            "callback body is over {MAX_CALLBACK_BYTES} bytes"
        )));
    }
    if vendor == Vendor::Hms {
        return receive_hms(sql, vendors, header, body, now);
    }
    let secret = vendors
        .callback_secret
        .as_ref()
        .ok_or_else(|| unauthorized("no push_callback_secret is configured"))?;
    let signed = header(&signature::SIGNATURE_HEADER.to_ascii_lowercase())
        .ok_or_else(|| unauthorized(format!("no {} header", signature::SIGNATURE_HEADER)))?;
    let t = signature::verify(secret, &signed, body, now).map_err(unauthorized)?;
    let text = std::str::from_utf8(body)
        .map_err(|_| Error::BadRequest("callback body is not valid UTF-8".into()))?;
    let callback: GenericCallback = serde_json::from_str(text)
        .map_err(|e| Error::BadRequest(format!("invalid callback body: {e}")))?;
    if callback.receipts.len() > MAX_RECEIPTS {
        return Err(Error::BadRequest(format!(
            "at most {MAX_RECEIPTS} receipts per callback"
        )));
    }
    let mut receipts = Vec::with_capacity(callback.receipts.len());
    for r in &callback.receipts {
        let state = match r.status.as_str() {
            "delivered" => "delivered",
            "token_invalid" => "token_gone",
            "failed" => "failed",
            other => {
                return Err(Error::BadRequest(format!(
                    "receipt status {other:?}: one of delivered, token_invalid, failed"
                )));
            }
        };
        no_nul([
            r.vendor_id.as_deref(),
            r.token.as_deref(),
            r.detail.as_deref(),
        ])?;
        if r.vendor_id.is_none() && r.token.is_none() {
            return Err(Error::BadRequest(
                "a receipt names a vendor_id or a token".into(),
            ));
        }
        receipts.push(Receipt {
            vendor: vendor.as_str(),
            vendor_id: r.vendor_id.as_deref(),
            token: r.token.as_deref(),
            state,
            detail: r.detail.as_deref(),
        });
    }
    // A signature is accepted once: its canonical form (what we sign for this `t` and
    // body) is the nonce, not the header text, which can be rewritten and still verify
    // (blanks, upper-case hex, extra parameters). It is remembered for every generic
    // route together — the route's vendor is not signed, so a receipt captured on one
    // must not be accepted once more on another.
    let nonce = signature::sign(secret, t, body);
    let window_ms = REPLAY_WINDOW_SECS * 2 * 1000;
    let matched = store::apply_callback(sql, SIGNED_NONCES, &nonce, window_ms, &receipts, now)
        .map_err(from_store)?
        .ok_or_else(|| unauthorized("this signature was used before"))?;
    Ok(Reply::ok(
        json!({"received": receipts.len(), "matched": matched}),
    ))
}

fn receive_hms<S: Sql + ?Sized>(
    sql: &S,
    vendors: &Vendors,
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
    now: i64,
) -> Result<Reply, Error> {
    let key = vendors
        .hms_callback
        .as_ref()
        .ok_or_else(|| unauthorized("no hms_callback_user/hms_callback_secret configured"))?;
    let signed = header(&HMS_CALLBACK_HEADER.to_ascii_lowercase())
        .ok_or_else(|| unauthorized(format!("no {HMS_CALLBACK_HEADER} header")))?;
    let auth = verify_hms(key, &signed, now).map_err(unauthorized)?;
    let parsed = parse_hms_receipts(body).map_err(|e| Error::BadRequest(e.to_string()))?;
    for r in &parsed {
        no_nul([Some(r.token.as_str()), r.request_id.as_deref()])?;
    }
    let details: Vec<String> = parsed.iter().map(|r| format!("code {}", r.code)).collect();
    let receipts: Vec<Receipt> = parsed
        .iter()
        .zip(&details)
        .map(|(r, detail)| Receipt {
            vendor: Vendor::Hms.as_str(),
            vendor_id: r.request_id.as_deref(),
            token: Some(r.token.as_str()),
            state: match r.status {
                ReceiptStatus::Delivered => "delivered",
                ReceiptStatus::TokenInvalid => "token_gone",
                ReceiptStatus::Other => "failed",
            },
            detail: Some(detail.as_str()),
        })
        .collect();
    store::apply_callback(
        sql,
        "hms",
        &auth.nonce,
        HMS_REPLAY_WINDOW_MS * 2,
        &receipts,
        now,
    )
    .map_err(from_store)?
    .ok_or_else(|| unauthorized("this nonce was used before"))?;
    let reply = serde_json::from_str(HMS_CALLBACK_REPLY).unwrap_or(serde_json::Value::Null);
    Ok(Reply::ok(reply))
}
