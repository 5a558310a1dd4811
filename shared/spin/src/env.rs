//! The platform's clock, randomness and variables, behind plain functions so the core
//! gets them as arguments.

use courier_core::error::Error;

/// Milliseconds since the Unix epoch (wall clock, `wasi:clocks`).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// 64 random bits from the host (`wasi:random`).
pub fn random_u64() -> Result<u64, Error> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("random: {e}")))?;
    Ok(u64::from_le_bytes(bytes))
}

/// A component variable, `None` when undefined.
pub fn variable(name: &str) -> Option<String> {
    spin_sdk::variables::get(name).ok()
}

/// One integer setting of this component, by the rule of every setting (see
/// [`courier_core::config::setting`]): unset or blank → `default`; not an integer of
/// at least `min` → `Error::Config`.
pub fn setting<T: TryFrom<u64>>(name: &str, default: T, min: u64) -> Result<T, Error> {
    courier_core::config::setting(&variable, name, default, min)
}

/// The limits, from the component's variables (defaults where unset).
pub fn config() -> Result<courier_core::Config, Error> {
    courier_core::Config::from_lookup(variable)
}

/// The caller, from the request's bearer token, verified with `jwt_secret`.
pub fn identity(
    req: &spin_sdk::http::Request,
    now: i64,
) -> Result<courier_core::auth::Identity, Error> {
    let secret =
        variable("jwt_secret").ok_or_else(|| Error::Config("jwt_secret is not set".into()))?;
    let key = courier_core::auth::TokenKey::hs256(&secret)?;
    key.authenticate(crate::http::bearer(req), now)
}

/// The store, migrated: the `default` SQLite database, or the PostgreSQL server the
/// `database_url` variable names.
pub fn store() -> Result<crate::store::Store, Error> {
    let url = variable("database_url").unwrap_or_default();
    crate::store::Store::open(&url).map_err(courier_messaging::errors::from_sql)
}

/// What an authenticated API request needs: the time, the caller, the limits and
/// the store — read in the order that makes a bad token fail before any store work.
pub struct Ctx {
    pub now: i64,
    pub caller: courier_core::auth::Identity,
    pub config: courier_core::Config,
    pub db: crate::store::Store,
}

/// Authenticates the request and opens the store.
pub fn context(req: &spin_sdk::http::Request) -> Result<Ctx, Error> {
    let now = now_ms();
    let caller = identity(req, now)?;
    let config = config()?;
    let db = store()?;
    Ok(Ctx {
        now,
        caller,
        config,
        db,
    })
}

/// Checks `X-Internal-Secret` against the `internal_secret` variable (internal
/// routes: the queue drains); missing, wrong or unconfigured → 401.
pub fn check_internal_secret(req: &spin_sdk::http::Request) -> Result<(), Error> {
    let expected = variable("internal_secret").unwrap_or_default();
    let given = req
        .header("x-internal-secret")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if expected.is_empty() || !same_secret(given, expected.as_bytes()) {
        return Err(Error::Unauthorized(
            "missing or wrong X-Internal-Secret".into(),
        ));
    }
    Ok(())
}

/// Whether the request carries the local gateway's offer to park a long-poll: header
/// `courier-park` equal to the `internal_secret` variable, which clients never know
/// (the gateway also removes any `courier-park` a client sends). See the gateway's
/// `parking.rs`.
pub fn park_offered(req: &spin_sdk::http::Request) -> bool {
    let expected = variable("internal_secret").unwrap_or_default();
    let given = req
        .header("courier-park")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    !expected.is_empty() && same_secret(given, expected.as_bytes())
}

/// Compares in time independent of where the first difference is.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
