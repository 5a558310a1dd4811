//! One request from the network: routing, the body limit, parking offers and the
//! answering runs of parked polls.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::App;
use super::answers::{error_response, full, text_response, unavailable};
use crate::parking::{PARK_HEADER, PARKED_USER_HEADER, Woken};
use crate::routes::RouteMatch;

impl App {
    /// Serves one request from the network.
    pub async fn handle_incoming<B>(
        self: &Arc<Self>,
        req: Request<B>,
        client: SocketAddr,
    ) -> Response<HyperOutgoingBody>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let started = Instant::now();
        let request_id = format!(
            "{:016x}",
            self.next_request_id.fetch_add(1, Ordering::Relaxed)
        );
        let method = req.method().clone();
        let path = req.uri().path().to_string();

        let (component, response) = if path == "/metrics" && method == Method::GET {
            (
                "(gateway)".to_string(),
                text_response(StatusCode::OK, self.render_metrics()),
            )
        } else {
            match self.router.route(&path) {
                None => (
                    "(gateway)".to_string(),
                    error_response(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        &format!("no route for {path}"),
                    ),
                ),
                Some((component, matched)) => {
                    let mut req = req;
                    req.headers_mut().remove(PARK_HEADER);
                    let offer = self.park_offer(&mut req);
                    let response = match self.limited(req) {
                        Ok((req, over)) => {
                            // Boxed, here and in the answering runs: a run's future is
                            // large, and inline it would size the future of every
                            // connection that waits parked.
                            let response =
                                Box::pin(self.call(&component, req, Some(&matched), client)).await;
                            let response = match offer {
                                Some(offer) => {
                                    self.parked(offer, response, &component, &matched, client)
                                        .await
                                }
                                None => response,
                            };
                            // The guest saw a body error (Spin's SDK answers it with a
                            // plain-text 500): the answer is the limit's.
                            if over.load(Ordering::Relaxed) {
                                self.too_large()
                            } else {
                                response
                            }
                        }
                        Err(response) => response,
                    };
                    (component, response)
                }
            }
        };
        let mut response = response;
        if response
            .headers_mut()
            .remove(crate::drainer::QUEUED_HEADER)
            .is_some()
        {
            self.poke.poke();
        }
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        let latency = started.elapsed();
        self.metrics
            .record(&component, response.status().as_u16(), latency);
        tracing::info!(
            request_id,
            component,
            method = %method,
            path,
            status = response.status().as_u16(),
            latency_us = latency.as_micros() as u64,
            "request"
        );
        response
    }

    /// Offers to park a `GET /v1/sync` that may wait, or a `GET /v1/stream` (see
    /// `parking/`): marks the request, and keeps what the answering runs need.
    fn park_offer<B>(&self, req: &mut Request<B>) -> Option<ParkOffer> {
        let parking = self.parking.as_ref()?;
        if req.method() != Method::GET {
            return None;
        }
        let query = req.uri().query().unwrap_or("");
        let waiting = match req.uri().path() {
            crate::parking::SYNC_PATH => Waiting::Poll {
                wait_secs: crate::parking::wait_secs(query)?,
                after: crate::parking::after(query),
            },
            crate::parking::STREAM_PATH => Waiting::Stream,
            _ => return None,
        };
        if !parking.open() {
            return None;
        }
        // Copies, not clones: hyper's URI and header values are slices of the
        // connection's read buffer, and a clone would keep that whole buffer (8 KiB)
        // alive for as long as the client waits.
        let uri = req.uri().to_string().parse().ok()?;
        let headers = req
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                Some((
                    name.clone(),
                    HeaderValue::from_bytes(value.as_bytes()).ok()?,
                ))
            })
            .collect();
        let offer = ParkOffer {
            started: Instant::now(),
            waiting,
            uri,
            headers,
        };
        req.headers_mut()
            .insert(PARK_HEADER, HeaderValue::from_str(parking.secret()).ok()?);
        Some(offer)
    }

    /// After the first run of an offered sync: the component's answer if it did not
    /// park; else waits parked, with no instance, and answers with a run at `wait=0`.
    async fn parked(
        self: &Arc<Self>,
        offer: ParkOffer,
        mut response: Response<HyperOutgoingBody>,
        component: &str,
        matched: &RouteMatch,
        client: SocketAddr,
    ) -> Response<HyperOutgoingBody> {
        let (wait_secs, after) = match offer.waiting {
            Waiting::Poll { wait_secs, after } => (wait_secs, after),
            Waiting::Stream => {
                return crate::events::hold(self, offer, response, component, matched, client)
                    .await;
            }
        };
        let Some(user) = response.headers_mut().remove(PARKED_USER_HEADER) else {
            return response;
        };
        let (Some(parking), Ok(user)) = (&self.parking, user.to_str()) else {
            return response;
        };
        // The answering run's request, built before parking so that the first
        // answer (whose body may still hold buffers of its run) is not kept meanwhile.
        let mut parts = offer.uri.into_parts();
        let query = crate::parking::without_wait(
            parts
                .path_and_query
                .as_ref()
                .and_then(|p| p.query())
                .unwrap_or(""),
        );
        let path_and_query = format!("{}?{query}", crate::parking::SYNC_PATH);
        parts.path_and_query = path_and_query.parse().ok();
        let Ok(uri) = http::Uri::from_parts(parts) else {
            return response;
        };
        drop(response);
        let mut req = Request::new(full(Bytes::new()));
        *req.uri_mut() = uri;
        *req.headers_mut() = offer.headers;
        req.headers_mut().remove(http::header::CONTENT_LENGTH);
        let deadline = crate::parking::deadline(offer.started, wait_secs);
        match parking.park(user, after, deadline).await {
            Err(crate::parking::Refused::Full) => {
                tracing::warn!("parked long-polls are at --max-parked: refused one");
                return unavailable("too many parked long-polls");
            }
            Ok(Woken::NoSource) => {
                tracing::debug!(user, "parked poll answered at once: no wake source");
            }
            Ok(_) => {}
        }
        let mut answer = Box::pin(self.call(component, req, Some(matched), client)).await;
        answer.headers_mut().remove(PARKED_USER_HEADER);
        answer
    }

    /// Applies the body limit: a declared length over it is refused at once; a
    /// streamed body is cut off (and the guest sees a body error) when it passes it,
    /// which the returned flag records so that the answer is 413 whatever the guest
    /// made of the error.
    #[allow(clippy::result_large_err, reason = "the error is the ready response")]
    fn limited<B>(
        &self,
        req: Request<B>,
    ) -> Result<(Request<HyperOutgoingBody>, Arc<AtomicBool>), Response<HyperOutgoingBody>>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let max = self.limits.max_body_bytes;
        let declared = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(self.too_large());
        }
        let over = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&over);
        let req = req.map(|body| {
            Limited::new(body, max)
                .map_err(move |e| match e.downcast::<hyper::Error>() {
                    Ok(e) => wasmtime_wasi_http::Error::Hyper(*e),
                    Err(_) => {
                        flag.store(true, Ordering::Relaxed);
                        wasmtime_wasi_http::Error::HttpRequestBodySize(Some(max as u64))
                    }
                })
                .boxed_unsync()
        });
        Ok((req, over))
    }

    /// The answer to a body over `max_body_bytes`.
    pub(super) fn too_large(&self) -> Response<HyperOutgoingBody> {
        let max = self.limits.max_body_bytes;
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            &format!("request body over {max} bytes"),
        )
    }
}

/// What the answering runs of a parked poll or stream need from the original request.
pub(crate) struct ParkOffer {
    pub(crate) started: Instant,
    pub(crate) waiting: Waiting,
    pub(crate) uri: http::Uri,
    /// The client's headers (without the offer).
    pub(crate) headers: http::HeaderMap,
}

/// What an offered request waits as.
#[derive(Clone, Copy)]
pub(crate) enum Waiting {
    /// `GET /v1/sync` with `wait > 0`.
    Poll { wait_secs: u64, after: i64 },
    /// `GET /v1/stream`.
    Stream,
}
