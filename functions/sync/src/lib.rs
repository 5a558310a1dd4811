//! The `sync` component: the read path — sync with long-poll, the conversation list
//! and history.
//!
//! # Layout
//! One handler, [`sync`], routing to `courier_messaging::reads`; the long-poll loop
//! ([`long_poll`]) lives here because it sleeps, which is I/O.

#![allow(
    unsafe_code,
    reason = "#[http_component] expands to the export shims of the component ABI"
)]

use std::time::{Duration, Instant};

use courier_core::Error;
use courier_core::api::{HistoryQuery, SyncQuery, SyncResponse};
use courier_core::auth::Identity;
use courier_messaging::reads;
use courier_spin::env::{config, identity, now_ms, park_offered, store};
use courier_spin::http::{check_method, decoded, ok, segments, serve};
use courier_spin::store::Store;
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

/// How often a waiting sync re-reads the stream head (one primary-key read).
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// A long-poll answers this much before `wait` would reach the gateway's 30 s limit.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);
const REQUEST_LIMIT: Duration = Duration::from_secs(30);

/// # `GET /v1/sync?after=<seq>&limit=<n>&wait=<s>`
/// The caller's stream entries with `seq > after`, ascending → 200
/// `{"entries", "next", "head", "more"}`.
/// - With no entries and `wait > 0`, holds the request until an entry arrives
///   (re-reading the head every 20 ms) or `wait` passes (a 30 s wait answers at 29.5 s,
///   inside the platform's request limit).
/// - Behind the local gateway, which offers to hold the wait itself (header
///   `courier-park`), an empty first page is answered at once with the caller named in
///   `courier-parked-user`; the gateway parks the client and runs the sync again with
///   `wait=0` when the stream moves.
/// - Marks the calling device online.
/// - Bad `after`/`limit`/`wait` or `after` beyond head → 400; bad token → 401.
///
/// # `GET /v1/conversations`
/// The offline counters, most recent first → 200 `{"conversations": [...]}`.
///
/// # `GET /v1/conversations/{conv}/messages?before=<seq>&limit=<n>`
/// The caller's message entries of one conversation, newest first → 200
/// `{"entries", "more"}`; a direct conversation id without the caller → 403; a
/// group the caller never received anything from → an empty page.
#[http_component]
fn sync(req: Request) -> Response {
    serve(req, handle)
}

fn handle(req: &Request) -> Result<Response, Error> {
    let path = req.path();
    let route = if path == "/v1/sync" {
        Route::Sync
    } else {
        match segments(path, "/v1/conversations").as_deref() {
            Some([]) => Route::Conversations,
            Some([conv, "messages"]) => Route::History(decoded(conv).into_owned()),
            _ => return Err(Error::NotFound(format!("no route for {path}"))),
        }
    };
    if let Err(refused) = check_method(req, &[Method::Get]) {
        return Ok(refused);
    }
    let now = now_ms();
    let caller = identity(req, now)?;
    let db = store()?;
    match route {
        Route::Sync => {
            let query = SyncQuery::parse(req.query())?;
            let config = config()?;
            // The first pass refuses an unknown user or `after` beyond the head; only
            // then is the device marked online, so a refused sync changes nothing.
            let first = reads::sync_once(&db, &caller, &query)?;
            reads::touch(&db, &config, &caller, now)?;
            if first.entries.is_empty() && query.wait_secs > 0 && park_offered(req) {
                // The gateway holds the wait, with no instance, and asks again with
                // wait=0 when the stream moves or the wait ends.
                let mut parked = ok(&first);
                parked.set_header("courier-parked-user", caller.user.as_str());
                return Ok(parked);
            }
            Ok(ok(&long_poll(&db, &caller, &query, first)?))
        }
        Route::Conversations => Ok(ok(&reads::conversations(&db, &caller)?)),
        Route::History(conv) => {
            let query = HistoryQuery::parse(req.query())?;
            Ok(ok(&reads::history(&db, &caller, &conv, &query)?))
        }
    }
}

enum Route {
    Sync,
    Conversations,
    History(String),
}

/// Answers `page` (the first pass) at once when it has entries; otherwise waits for
/// the head to move (cheap reads) until `wait` passes.
fn long_poll(
    db: &Store,
    caller: &Identity,
    query: &SyncQuery,
    page: SyncResponse,
) -> Result<SyncResponse, Error> {
    let started = Instant::now();
    if !page.entries.is_empty() || query.wait_secs == 0 {
        return Ok(page);
    }
    let wait = Duration::from_secs(u64::from(query.wait_secs)).min(REQUEST_LIMIT - DEADLINE_MARGIN);
    while started.elapsed() < wait {
        std::thread::sleep(POLL_INTERVAL.min(wait.saturating_sub(started.elapsed())));
        if reads::head(db, caller)? > query.after {
            return reads::sync_once(db, caller, query);
        }
    }
    Ok(page)
}
