//! Event streams held by the gateway: a `GET /v1/stream` waits with no WebAssembly
//! instance, like a parked long-poll (`parking/`), and the `sync` component still
//! writes every event the client sees.
//!
//! # The exchange with the `sync` component
//! 1. The gateway offers to park (header [`PARK_HEADER`]), as for a long-poll.
//! 2. The component checks the token and `after` (or `Last-Event-ID`), marks the device
//!    online and answers at once: the first page of events as the body, the caller in
//!    [`PARKED_USER_HEADER`] and the cursor (the last event's seq) in [`NEXT_HEADER`].
//! 3. The gateway sends that, keeps the response open, and parks the stream on the
//!    user. When the stream moves it runs the component again with `after=<cursor>`
//!    and appends what it answers; while nothing happens it writes `: ping` every
//!    15 s itself. A run that does not answer with events (the token expired, the user
//!    is gone) ends the stream, as does its `wait` (default, and at most, 29.5 s:
//!    inside the platform's 30 s limit, as the component's own loop on Spin), SIGTERM,
//!    or `--max-parked` being reached. The client reconnects with `Last-Event-ID`.
//! 4. A client that goes away drops the body, which frees the parked slot at once.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Frame;
use tokio::sync::mpsc;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::parking::{PARK_HEADER, PARKED_USER_HEADER, Parking, Refused, STREAM_PATH, Woken};
use crate::routes::RouteMatch;
use crate::server::{App, ParkOffer, full, unavailable};

/// Response header of the component's run: the seq of the last event it wrote (or the
/// `after` it was given, when it wrote none).
pub const NEXT_HEADER: &str = "courier-stream-next";
/// An idle stream gets a comment line this often.
const PING_EVERY: Duration = Duration::from_secs(15);
/// `wait` when the client gives none: the stream then ends at 29.5 s
/// ([`crate::parking::deadline`]), inside the platform's 30 s request limit, as the
/// component's own loop does on Spin.
const DEFAULT_WAIT_SECS: u64 = 30;
/// A run asked for after the wake source failed waits this long first, so a store
/// outage is not a busy loop.
const NO_SOURCE_PAUSE: Duration = Duration::from_secs(1);
const PING: &[u8] = b": ping\n\n";

/// After the first run of an offered stream: the component's answer if it did not take
/// the offer (an error, say); else the stream, held here.
pub(crate) async fn hold(
    app: &Arc<App>,
    offer: ParkOffer,
    mut response: Response<HyperOutgoingBody>,
    component: &str,
    matched: &RouteMatch,
    client: SocketAddr,
) -> Response<HyperOutgoingBody> {
    let Some(taken) = taken(&mut response) else {
        return response;
    };
    let Some(parking) = app.parking.clone() else {
        return response;
    };
    if parking.full() {
        tracing::warn!("parked waiters are at --max-parked: refused a stream");
        return unavailable("too many parked long-polls");
    }
    let (mut parts, body) = response.into_parts();
    // The body goes on past the first run's.
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let Ok(first) = body.collect().await.map(|b| b.to_bytes()) else {
        return unavailable("component failed");
    };
    let (sender, receiver) = mpsc::channel(4);
    if !first.is_empty() {
        let _ = sender.try_send(first);
    }
    let stream = Held {
        app: Arc::clone(app),
        parking,
        user: taken.user,
        after: taken.next,
        offer,
        component: component.to_string(),
        matched: matched.clone(),
        client,
    };
    tokio::spawn(stream.run(sender));
    Response::from_parts(parts, ChannelBody(receiver).boxed_unsync())
}

/// What a run that took the offer named, its headers removed.
struct Taken {
    user: String,
    next: i64,
}

fn taken(response: &mut Response<HyperOutgoingBody>) -> Option<Taken> {
    let headers = response.headers_mut();
    let user = headers.remove(PARKED_USER_HEADER);
    let next = headers.remove(NEXT_HEADER);
    Some(Taken {
        user: user?.to_str().ok()?.to_string(),
        next: next?.to_str().ok()?.parse().ok()?,
    })
}

/// One stream the gateway holds.
struct Held {
    app: Arc<App>,
    parking: Arc<Parking>,
    user: String,
    /// The last seq sent.
    after: i64,
    offer: ParkOffer,
    component: String,
    matched: RouteMatch,
    client: SocketAddr,
}

impl Held {
    /// Feeds the response body until the stream ends; dropping `sender` ends it.
    async fn run(mut self, sender: mpsc::Sender<Bytes>) {
        let parking = Arc::clone(&self.parking);
        let _open = parking.stream_opened();
        let wait = stream_wait(self.offer.uri.query().unwrap_or(""));
        let end = crate::parking::deadline(self.offer.started, wait);
        let mut wrote = Instant::now();
        loop {
            if Instant::now() >= end {
                return;
            }
            let ping_at = (wrote + PING_EVERY).min(end);
            let woken = tokio::select! {
                woken = parking.park(&self.user, self.after, ping_at) => woken,
                () = sender.closed() => return,
            };
            let chunk = match woken {
                Err(Refused::Full) | Ok(Woken::ShuttingDown) => return,
                Ok(Woken::Deadline) if Instant::now() >= end => return,
                Ok(Woken::Deadline) => Bytes::from_static(PING),
                Ok(woken @ (Woken::Moved | Woken::NoSource)) => {
                    if woken == Woken::NoSource {
                        tokio::select! {
                            () = tokio::time::sleep(NO_SOURCE_PAUSE) => {}
                            () = sender.closed() => return,
                        }
                    }
                    match self.again().await {
                        Some(chunk) => chunk,
                        None => return,
                    }
                }
            };
            if chunk.is_empty() {
                continue; // a wake that found nothing new
            }
            if sender.send(chunk).await.is_err() {
                return;
            }
            wrote = Instant::now();
        }
    }

    /// Runs the component for the events after `after`; `None` when it did not answer
    /// with events (the stream then ends).
    async fn again(&mut self) -> Option<Bytes> {
        let query = with_after(self.offer.uri.query().unwrap_or(""), self.after);
        let mut parts = self.offer.uri.clone().into_parts();
        parts.path_and_query = format!("{STREAM_PATH}?{query}").parse().ok();
        let uri = http::Uri::from_parts(parts).ok()?;
        let mut req = Request::new(full(Bytes::new()));
        *req.uri_mut() = uri;
        *req.headers_mut() = self.offer.headers.clone();
        let headers = req.headers_mut();
        headers.remove(http::header::CONTENT_LENGTH);
        // The cursor is `after` now; the client's Last-Event-ID would override it.
        headers.remove("last-event-id");
        headers.insert(
            PARK_HEADER,
            HeaderValue::from_str(self.parking.secret()).ok()?,
        );
        // Boxed: inline, a run's large future would size the held stream's task.
        let mut response =
            Box::pin(
                self.app
                    .call(&self.component, req, Some(&self.matched), self.client),
            )
            .await;
        if response.status() != http::StatusCode::OK {
            tracing::debug!(status = %response.status(), "held stream: a run refused; ending it");
            return None;
        }
        let taken = taken(&mut response)?;
        let body = response.into_body().collect().await.ok()?.to_bytes();
        self.after = taken.next;
        Some(body)
    }
}

/// `wait` of a stream's query string (the component refused a bad one already).
fn stream_wait(query: &str) -> u64 {
    query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("wait="))
        .next_back()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_WAIT_SECS)
}

/// The query string with `after=<after>` in place of the client's.
fn with_after(query: &str, after: i64) -> String {
    let after = format!("after={after}");
    query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("after="))
        .chain(std::iter::once(after.as_str()))
        .collect::<Vec<_>>()
        .join("&")
}

/// A response body fed by a channel; it ends when the sender drops.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_after_replaces_the_cursor_and_keeps_the_rest() {
        assert_eq!(with_after("after=3&x=1", 9), "x=1&after=9");
        assert_eq!(with_after("", 4), "after=4");
        assert_eq!(with_after("after=1&after=2", 5), "after=5");
        assert_eq!(stream_wait("after=1"), 30);
        assert_eq!(stream_wait("wait=0&after=1"), 0);
    }
}
