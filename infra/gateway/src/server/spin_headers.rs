//! The `spin-*` request headers Spin gives a guest.

use std::net::SocketAddr;

use http::{HeaderValue, Request};

use crate::routes::RouteMatch;

/// Adds Spin's `spin-*` request headers.
pub(super) fn with_spin_headers<B>(
    mut req: Request<B>,
    matched: Option<&RouteMatch>,
    client: SocketAddr,
) -> Request<B> {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("localhost")
        .to_string();
    let path = req.uri().path().to_string();
    let headers = req.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("spin-full-url", &format!("http://{host}{path_and_query}"));
    set("spin-client-addr", &client.to_string());
    set("spin-base-path", "/");
    match matched {
        Some(m) => {
            set("spin-matched-route", &m.raw_route);
            set("spin-raw-component-route", &m.raw_route);
            set("spin-component-route", &m.matched_prefix);
            set("spin-path-info", &m.path_info);
            for (name, value) in &m.captures {
                if let Ok(name) =
                    http::HeaderName::from_bytes(format!("spin-path-match-{name}").as_bytes())
                    && let Ok(value) = HeaderValue::from_str(value)
                {
                    headers.insert(name, value);
                }
            }
        }
        None => {
            set("spin-path-info", &path);
        }
    }
    req
}
