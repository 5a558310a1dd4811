//! The `sync` component: the read path — sync with long-poll, the event stream, the
//! conversation list and history.
//!
//! # Layout
//! One handler, [`sync`], routing to `courier_messaging::reads`; the waiting loops
//! ([`long_poll`], [`follow`]) live here because they sleep, which is I/O.

#![allow(
    unsafe_code,
    reason = "#[http_component] expands to the export shims of the component ABI"
)]

use std::time::{Duration, Instant};

use courier_core::api::{HistoryQuery, StreamQuery, SyncQuery, SyncResponse};
use courier_core::auth::Identity;
use courier_core::ids::Seq;
use courier_core::streams::{SSE_PING, sse_events};
use courier_core::{Config, Error};
use courier_messaging::reads;
use courier_spin::env::{config, identity, now_ms, park_offered, store};
use courier_spin::http::{ok, serve};
use courier_spin::route::{Route, resolve};
use courier_spin::store::Store;
use futures::SinkExt;
use spin_sdk::http::{Method, OutgoingResponse, Request, Response, ResponseOutparam};
use spin_sdk::http_component;

/// A waiting loop re-reads the stream head (one primary-key read) this soon after it
/// starts or after the stream moved, and doubles the pause while nothing happens, up
/// to `wait_poll_max_ms` (default 200): on Spin 4.0.2, 100 idle waits cost 0.12-0.14x
/// the CPU of a fixed 20 ms pause (docs/BENCHMARKS.md), and an entry is still seen
/// within 200 ms.
const POLL_FIRST: Duration = Duration::from_millis(courier_core::config::WAIT_POLL_FIRST_MS);
/// A wait answers this much before it would reach the platform's 30 s request limit.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);
const REQUEST_LIMIT: Duration = Duration::from_secs(30);
/// An idle event stream sends a comment line this often.
const PING_EVERY: Duration = Duration::from_secs(15);
/// Entries per event-stream write.
const STREAM_PAGE: u32 = 100;

/// # `GET /v1/sync?after=<seq>&limit=<n>&wait=<s>`
/// The caller's stream entries with `seq > after`, ascending → 200
/// `{"entries", "next", "head", "more"}`.
/// - With no entries and `wait > 0`, holds the request until an entry arrives
///   (re-reading the head, see [`Pause`]) or `wait` passes (a 30 s wait answers at
///   29.5 s, inside the platform's request limit).
/// - Behind the local gateway, which offers to hold the wait itself (header
///   `courier-park`), an empty first page is answered at once with the caller named in
///   `courier-parked-user`; the gateway parks the client and runs the sync again with
///   `wait=0` when the stream moves.
/// - Marks the calling device online.
/// - Bad `after`/`limit`/`wait` or `after` beyond head → 400; bad token → 401.
///
/// # `GET /v1/stream?after=<seq>&wait=<s>` (Server-Sent Events)
/// The same entries as events (`id: <seq>`, `event: entry`, the Entry as `data`), then
/// every new one as it lands, for `wait` seconds (default 30: until 29.5 s);
/// `Last-Event-ID` overrides `after`; a purged gap is one `event: trimmed`; `: ping`
/// every 15 s while idle.
/// - Errors before the stream starts are the JSON errors of `GET /v1/sync`.
/// - Behind the local gateway (header `courier-park`), one page of events is answered
///   at once, with `courier-parked-user` and the cursor in `courier-stream-next`; the
///   gateway holds the stream, with no instance, and runs this again when it moves.
/// - Marks the device online while open.
///
/// # `GET /v1/conversations`
/// The offline counters, most recent first → 200 `{"conversations": [...]}`.
///
/// # `GET /v1/conversations/{conv}/messages?before=<seq>&limit=<n>`
/// The caller's message entries of one conversation, newest first → 200
/// `{"entries", "more"}`; a direct conversation id without the caller → 403; a
/// group the caller never received anything from → an empty page.
#[http_component]
async fn sync(req: Request, out: ResponseOutparam) {
    let mut stream = None;
    let response = serve(req, |req| handle(req, &mut stream));
    let body_of = |response: &mut Response| std::mem::take(response.body_mut());
    let mut response = response;
    let first = body_of(&mut response);
    let outgoing = match OutgoingResponse::try_from(response) {
        Ok(outgoing) => outgoing,
        Err(e) => return eprintln!("courier: cannot answer: {e}"),
    };
    let mut body = outgoing.take_body();
    out.set(outgoing);
    if body.send(first).await.is_err() {
        return;
    }
    if let Some(stream) = stream {
        follow(stream, &mut body).await;
    }
}

fn handle(req: &Request, stream: &mut Option<Following>) -> Result<Response, Error> {
    let (op, at) = match resolve(ROUTES, req.method(), req.path()) {
        Ok(found) => found,
        Err(refused) => return Ok(refused),
    };
    let now = now_ms();
    let caller = identity(req, now)?;
    let db = store()?;
    match op {
        Op::Sync => {
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
            Ok(ok(&long_poll(&db, &config, &caller, &query, first)?))
        }
        Op::Stream => {
            let last_event_id = req.header("last-event-id").and_then(|v| v.as_str());
            let query = StreamQuery::parse(req.query(), last_event_id)?;
            let config = config()?;
            let page = SyncQuery {
                after: query.after,
                limit: STREAM_PAGE,
                wait_secs: 0,
            };
            let first = reads::sync_once(&db, &caller, &page)?;
            reads::touch(&db, &config, &caller, now)?;
            let mut events = Response::builder()
                .status(200)
                .header("content-type", "text/event-stream")
                .header("cache-control", "no-cache")
                .header("x-accel-buffering", "no")
                .body(sse_events(&first))
                .build();
            if park_offered(req) {
                events.set_header("courier-parked-user", caller.user.as_str());
                events.set_header("courier-stream-next", first.next.to_string());
            } else if query.wait_secs > 0 {
                let wait = Duration::from_secs(u64::from(query.wait_secs));
                *stream = Some(Following {
                    db,
                    caller,
                    config,
                    after: first.next,
                    until: Instant::now() + wait.min(REQUEST_LIMIT - DEADLINE_MARGIN),
                });
            }
            Ok(events)
        }
        Op::Conversations => Ok(ok(&reads::conversations(&db, &caller)?)),
        Op::History => {
            let query = HistoryQuery::parse(req.query())?;
            Ok(ok(&reads::history(&db, &caller, at.get("conv"), &query)?))
        }
    }
}

/// What a read asks for.
#[derive(Clone, Copy)]
enum Op {
    Sync,
    Stream,
    Conversations,
    History,
}

const ROUTES: &[Route<Op>] = &[
    Route::new(Method::Get, "/v1/sync", Op::Sync),
    Route::new(Method::Get, "/v1/stream", Op::Stream),
    Route::new(Method::Get, "/v1/conversations", Op::Conversations),
    Route::new(
        Method::Get,
        "/v1/conversations/{conv}/messages",
        Op::History,
    ),
];

/// The pause between head reads of a waiting loop: [`POLL_FIRST`], doubling to
/// `max` (`wait_poll_max_ms`) while the stream stays still.
struct Pause {
    next: Duration,
    max: Duration,
}

impl Pause {
    fn new(config: &Config) -> Self {
        Pause {
            next: POLL_FIRST,
            max: Duration::from_millis(config.wait_poll_max_ms),
        }
    }

    /// Sleeps the current pause (never past `until`) and lengthens the next one.
    fn sleep(&mut self, until: Instant) {
        std::thread::sleep(
            self.next
                .min(until.saturating_duration_since(Instant::now())),
        );
        self.next = (self.next * 2).min(self.max);
    }

    /// The stream moved: the next pause is the first one again.
    fn reset(&mut self) {
        self.next = POLL_FIRST;
    }
}

/// Answers `page` (the first pass) at once when it has entries; otherwise waits for
/// the head to move (cheap reads) until `wait` passes.
fn long_poll(
    db: &Store,
    config: &Config,
    caller: &Identity,
    query: &SyncQuery,
    page: SyncResponse,
) -> Result<SyncResponse, Error> {
    let started = Instant::now();
    if !page.entries.is_empty() || query.wait_secs == 0 {
        return Ok(page);
    }
    let wait = Duration::from_secs(u64::from(query.wait_secs)).min(REQUEST_LIMIT - DEADLINE_MARGIN);
    let until = started + wait;
    let mut pause = Pause::new(config);
    while Instant::now() < until {
        pause.sleep(until);
        if reads::head(db, caller)? > query.after {
            return reads::sync_once(db, caller, query);
        }
    }
    Ok(page)
}

/// An event stream the component serves itself (no gateway holds it).
struct Following {
    db: Store,
    caller: Identity,
    config: Config,
    after: Seq,
    until: Instant,
}

/// Writes each new page of the stream as events, and a ping while idle, until the
/// platform's limit nears, the client goes away (a write fails) or the store fails.
async fn follow<B>(mut stream: Following, body: &mut B)
where
    B: futures::Sink<Vec<u8>> + Unpin,
{
    let until = stream.until;
    let mut pause = Pause::new(&stream.config);
    let mut wrote = Instant::now();
    while Instant::now() < until {
        pause.sleep(until);
        let moved = match reads::head(&stream.db, &stream.caller) {
            Ok(head) => head > stream.after,
            Err(_) => return,
        };
        let events = if moved {
            let query = SyncQuery {
                after: stream.after,
                limit: STREAM_PAGE,
                wait_secs: 0,
            };
            let Ok(page) = reads::sync_once(&stream.db, &stream.caller, &query) else {
                return;
            };
            stream.after = page.next;
            pause.reset();
            sse_events(&page)
        } else if wrote.elapsed() >= PING_EVERY {
            SSE_PING.to_string()
        } else {
            continue;
        };
        let _ = reads::touch(&stream.db, &stream.config, &stream.caller, now_ms());
        if body.send(events.into_bytes()).await.is_err() {
            return;
        }
        wrote = Instant::now();
    }
}
