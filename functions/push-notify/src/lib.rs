//! The `push-notify` component: vendor push for offline users.
//!
//! # Layout
//! One handler, [`push_notify`], routing to `courier_messaging::push`; the shell pieces
//! the service needs from Spin: outbound HTTP (`courier_spin::outbound::Outbound`,
//! every request of a round at once) and the key-value store as the vendor-token
//! cache ([`KvCache`]).

#![allow(
    unsafe_code,
    reason = "#[http_component] expands to the export shims of the component ABI"
)]

use courier_core::Error;
use courier_messaging::push::deliver::{Cache, DeliverConfig, deliver};
use courier_messaging::push::{self, Vendors, callbacks};
use courier_spin::env::{
    Ctx, check_internal_secret, config, context, now_ms, random_u64, setting, store, variable,
};
use courier_spin::http::{check_method, json, reply, serve};
use courier_spin::outbound::Outbound;
use courier_spin::route::{Route, resolve};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;

/// # `PUT /v1/push/devices/{device}`
/// Registers the caller's device: `{"vendor": "webpush", "endpoint", "keys": {"p256dh",
/// "auth"}}` or `{"vendor": "apns" | "fcm" | "hms", "token"}` → 200 `{"device",
/// "vendor"}`. Invalid registration or unconfigured vendor → 400.
/// # `DELETE /v1/push/devices/{device}` → 204.
/// # `GET /v1/push/config` → 200 `{"vendors": [...], "webpush": {"vapid_public_key"} | null}`.
/// # `POST /v1/push/callbacks/{vendor}`
/// Vendor delivery receipts (`hms`: Huawei's signed format; `webpush`, `apns`, `fcm`:
/// `X-Courier-Signature`) → 200; not authenticated → 401, nothing recorded.
/// # `POST /internal/push/drain`
/// Delivers due push jobs (`X-Internal-Secret`) → 200 `{"done", "sent", "skipped",
/// "retried", "tokens_removed", "failed", "dead_lettered", "remaining"}`.
#[http_component]
fn push_notify(req: Request) -> Response {
    serve(req, handle)
}

fn vendors() -> Result<Vendors, Error> {
    Vendors::from_lookup(variable)
}

fn handle(req: &Request) -> Result<Response, Error> {
    let path = req.path();
    if path == "/internal/push/drain" {
        check_internal_secret(req)?;
        if let Err(refused) = check_method(req, &[Method::Post]) {
            return Ok(refused);
        }
        return drain();
    }
    let (op, at) = match resolve(ROUTES, req.method(), path) {
        Ok(found) => found,
        Err(refused) => return Ok(refused),
    };
    match op {
        Op::Config => {
            let Ctx { .. } = context(req)?;
            Ok(reply(push::client_config(&vendors()?)))
        }
        Op::Register | Op::Unregister => {
            let Ctx {
                now,
                caller,
                config,
                db,
            } = context(req)?;
            let device = at.get("device");
            if matches!(op, Op::Unregister) {
                return Ok(reply(push::unregister(&db, &caller, device)?));
            }
            Ok(reply(push::register(
                &db,
                &config,
                &vendors()?,
                &caller,
                device,
                req.body(),
                now,
            )?))
        }
        Op::Callback => {
            let header = |name: &str| {
                req.header(name)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            };
            let db = store()?;
            Ok(reply(callbacks::receive(
                &db,
                &vendors()?,
                at.get("vendor"),
                &header,
                req.body(),
                now_ms(),
            )?))
        }
    }
}

/// What a push request asks for. (The internal drain is answered before the table:
/// its secret is checked before its method.)
#[derive(Clone, Copy)]
enum Op {
    Config,
    Register,
    Unregister,
    Callback,
}

const ROUTES: &[Route<Op>] = &[
    Route::new(Method::Get, "/v1/push/config", Op::Config),
    Route::new(Method::Put, "/v1/push/devices/{device}", Op::Register),
    Route::new(Method::Delete, "/v1/push/devices/{device}", Op::Unregister),
    Route::new(Method::Post, "/v1/push/callbacks/{vendor}", Op::Callback),
];

fn drain() -> Result<Response, Error> {
    let vendors = vendors()?;
    let defaults = DeliverConfig::default();
    let settings = DeliverConfig {
        policy: push::policy(&config()?),
        budget_ms: setting("push_budget_ms", defaults.budget_ms, 0)?,
        batch: setting("push_batch", defaults.batch, 1)?,
        ..defaults
    };
    let db = store()?;
    let mut cache = KvCache::open();
    let mut random = || random_u64().unwrap_or_default();
    let report = deliver(
        &db,
        &vendors,
        &mut Outbound { timeout_ms: None },
        &mut cache,
        &settings,
        &now_ms,
        &mut random,
    )?;
    Ok(json(
        200,
        &serde_json::to_value(&report).unwrap_or_default(),
    ))
}

/// The `default` key-value store as the vendor-token cache; without one (not
/// granted, or failing) tokens are simply made anew each time.
struct KvCache(Option<Store>);

impl KvCache {
    fn open() -> KvCache {
        KvCache(Store::open_default().ok())
    }
}

impl Cache for KvCache {
    fn get(&mut self, key: &str) -> Option<String> {
        let bytes = self.0.as_ref()?.get(key).ok()??;
        String::from_utf8(bytes).ok().filter(|v| !v.is_empty())
    }

    fn set(&mut self, key: &str, value: &str) {
        if let Some(store) = &self.0
            && let Err(e) = store.set(key, value.as_bytes())
        {
            eprintln!("courier: push: token cache write failed: {e}");
        }
    }
}
