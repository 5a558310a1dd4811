//! Responses in the API's shapes, CORS for browser clients, and request helpers.

use courier_core::error::Error;
use spin_sdk::http::{Method, Request, Response};

use crate::env::variable;

/// A JSON response.
pub fn json(status: u16, body: &serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
        .build()
}

/// An empty response (204).
pub fn no_content() -> Response {
    Response::builder().status(204).body(Vec::new()).build()
}

/// The error response: the one mapping lives in [`Error::status_and_code`]. Server
/// faults are logged with their detail; the client sees a generic message.
pub fn error(e: &Error) -> Response {
    if e.status() >= 500 {
        eprintln!("courier: {e}");
    }
    let mut response = Response::builder()
        .status(e.status())
        .header("content-type", "application/json")
        .body(e.body())
        .build();
    if let Some(secs) = e.retry_after() {
        response.set_header("retry-after", secs.to_string());
    }
    response
}

/// The 405 answer of a route that serves only `allowed`: `method_not_allowed` in the
/// API shape, with the `Allow` header that RFC 9110 (§15.5.6) requires on a 405.
pub fn method_not_allowed(allowed: &[Method]) -> Response {
    let mut response = error(&Error::MethodNotAllowed);
    let names: Vec<String> = allowed.iter().map(Method::to_string).collect();
    response.set_header("allow", names.join(", "));
    response
}

/// Passes a request whose method is one of `allowed`; any other gets
/// [`method_not_allowed`] back, for the handler to answer with.
pub fn check_method(req: &Request, allowed: &[Method]) -> Result<(), Response> {
    if allowed.contains(req.method()) {
        Ok(())
    } else {
        Err(method_not_allowed(allowed))
    }
}

/// The answer to a path under a component's route that none of its handlers serves:
/// 404 `not_found`, one wording for every component.
pub fn no_route(path: &str) -> Error {
    Error::NotFound(format!("no route for {path}"))
}

/// The bearer token of the `Authorization` header, if any.
pub fn bearer(req: &Request) -> Option<&str> {
    req.header("authorization").and_then(|v| v.as_str())
}

/// The query string (without `?`).
pub fn query(req: &Request) -> &str {
    req.query()
}

const ALLOWED_METHODS: &str = "GET, POST, PUT, DELETE, OPTIONS";
const ALLOWED_HEADERS: &str = "authorization, content-type";

/// The `Access-Control-Allow-Origin` value for this request's `Origin`, if allowed by
/// `cors_allowed_origins` (comma-separated origins, or `*`).
fn allowed_origin(req: &Request) -> Option<String> {
    let origin = req.header("origin")?.as_str()?.to_string();
    let allowed = variable("cors_allowed_origins").unwrap_or_default();
    let ok = allowed
        .split(',')
        .map(str::trim)
        .any(|a| a == "*" || a.eq_ignore_ascii_case(&origin));
    ok.then_some(origin)
}

/// Runs a handler with the cross-cutting behaviour every route shares: CORS
/// preflight, CORS headers on the answer, and errors in the API shape.
pub fn serve(req: Request, handle: impl FnOnce(&Request) -> Result<Response, Error>) -> Response {
    let origin = allowed_origin(&req);
    let mut response = if *req.method() == Method::Options {
        let mut r = no_content();
        r.set_header("access-control-allow-methods", ALLOWED_METHODS);
        r.set_header("access-control-allow-headers", ALLOWED_HEADERS);
        r.set_header("access-control-max-age", "600");
        r
    } else {
        handle(&req).unwrap_or_else(|e| error(&e))
    };
    if let Some(origin) = origin {
        response.set_header("access-control-allow-origin", origin);
        response.set_header("vary", "origin");
        response.set_header("access-control-expose-headers", "retry-after");
    }
    response
}

/// A service's answer as a response (204 has no body). An answer that queued work is
/// marked `x-courier-queued`, so a local gateway drains at once (the header is
/// harmless elsewhere; schedulers drain on their own timer).
pub fn reply(reply: courier_messaging::Reply) -> Response {
    let mut response = if reply.status == 204 {
        no_content()
    } else {
        json(reply.status, &reply.body)
    };
    if reply.queued {
        response.set_header("x-courier-queued", "1");
    }
    response
}

/// Any JSON-serializable body with status 200.
pub fn ok<T: serde::Serialize>(value: &T) -> Response {
    json(
        200,
        &serde_json::to_value(value).unwrap_or(serde_json::Value::Null),
    )
}

/// A path segment's value, percent-decoded: clients encode `:` in path parameters
/// (`encodeURIComponent("dm:u1:u2")` is `dm%3Au1%3Au2`), and ids contain it. A `%` not
/// followed by two hex digits stays as is, and so does a segment that does not decode
/// to UTF-8; either then fails the id check.
pub fn decoded(segment: &str) -> std::borrow::Cow<'_, str> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    if !segment.contains('%') {
        return segment.into();
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let pair = bytes
            .get(i + 1)
            .copied()
            .and_then(hex)
            .zip(bytes.get(i + 2).copied().and_then(hex));
        match (bytes[i], pair) {
            (b'%', Some((high, low))) => {
                out.push((high << 4) | low);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_or(segment.into(), Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoded_turns_percent_escapes_into_the_id() {
        assert_eq!(decoded("dm%3Au1%3au2"), "dm:u1:u2");
        assert_eq!(decoded("g:g1"), "g:g1");
        assert_eq!(decoded("%41%2e%2E"), "A..");
    }

    #[test]
    fn decoded_keeps_what_does_not_decode() {
        for raw in ["100%", "%4", "%zz1", "%+1x", "a%ff", "%C3%28"] {
            assert_eq!(decoded(raw), raw, "{raw}");
        }
        assert_eq!(decoded("caf%C3%A9"), "café");
    }
}
