//! `POST /v1/ack`: per-device, monotonic acknowledgement of the stream.

use courier_core::api::{AckRequest, AckResponse, parse_request};
use courier_core::auth::Identity;
use courier_core::{Config, Error, Seq};
use courier_store::{Sql, devices};

use crate::errors::from_store;
use crate::{Reply, body};

/// `POST /v1/ack` `{"seq": n}`.
/// - Records that the calling device has everything up to `n` → 200 `{"acked": n}`.
/// - A lower `n` than before is a no-op (the answer carries the device's ack).
/// - `n` above the stream head → 400.
pub fn ack<S: Sql + ?Sized>(
    sql: &S,
    config: &Config,
    caller: &Identity,
    raw: &[u8],
    now: i64,
) -> Result<Reply, Error> {
    let req: AckRequest = parse_request(raw, config)?;
    let acked = devices::ack(
        sql,
        caller.user.as_str(),
        caller.device.as_str(),
        req.seq.get(),
        now,
    )
    .map_err(from_store)?;
    Ok(Reply::ok(body(&AckResponse {
        acked: Seq::new(acked)?,
    })))
}
