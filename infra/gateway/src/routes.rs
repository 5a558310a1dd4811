//! HTTP route matching with Spin's semantics.
//!
//! A route is a path of segments: literals, `:name` captures, and an optional trailing
//! `/...` wildcard that matches the prefix itself and anything below it. When several
//! routes match, the most specific wins: a route without a wildcard beats one with,
//! then more segments beat fewer, then literals beat captures. `{ private = true }`
//! routes never match an incoming request; they are reachable only through
//! `http://<component>.spin.internal`.

use std::fmt;

use anyhow::{Result, bail};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Path {
        segments: Vec<Segment>,
        wildcard: bool,
    },
    Private,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Capture(String),
}

/// What a successful match tells the component (Spin's `spin-*` request headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// The route as written, e.g. `/v1/...`.
    pub raw_route: String,
    /// The part of the request path the route consumed, e.g. `/v1`.
    pub matched_prefix: String,
    /// The rest of the path below a wildcard (`spin-path-info`), e.g. `/users/u1`.
    pub path_info: String,
    /// Named captures in route order.
    pub captures: Vec<(String, String)>,
}

impl Route {
    pub fn parse(text: &str) -> Result<Self> {
        if !text.starts_with('/') {
            bail!("route `{text}` must start with `/`");
        }
        let (body, wildcard) = match text.strip_suffix("/...") {
            Some(prefix) => (prefix, true),
            None if text == "/..." => ("", true),
            None => (text, false),
        };
        let mut segments = Vec::new();
        for part in body.split('/').skip(1) {
            if part.is_empty() {
                if body.len() > 1 {
                    bail!("route `{text}` has an empty segment");
                }
                continue;
            }
            if part.contains("...") {
                bail!("route `{text}`: `...` is only allowed as the last segment");
            }
            segments.push(match part.strip_prefix(':') {
                Some("") => bail!("route `{text}` has an unnamed capture"),
                Some(name) => Segment::Capture(name.to_string()),
                None => Segment::Literal(part.to_string()),
            });
        }
        Ok(Route::Path { segments, wildcard })
    }

    /// Matches a request path (no query string).
    pub fn matches(&self, path: &str) -> Option<RouteMatch> {
        let Route::Path { segments, wildcard } = self else {
            return None;
        };
        let parts: Vec<&str> = path.split('/').skip(1).filter(|p| !p.is_empty()).collect();
        if parts.len() < segments.len() || (!wildcard && parts.len() != segments.len()) {
            return None;
        }
        let mut captures = Vec::new();
        for (segment, part) in segments.iter().zip(&parts) {
            match segment {
                Segment::Literal(lit) if lit == part => {}
                Segment::Literal(_) => return None,
                Segment::Capture(name) => captures.push((name.clone(), (*part).to_string())),
            }
        }
        let matched_prefix = format!("/{}", parts[..segments.len()].join("/"));
        let rest = &parts[segments.len()..];
        let path_info = if rest.is_empty() {
            String::new()
        } else {
            format!("/{}", rest.join("/"))
        };
        Some(RouteMatch {
            raw_route: self.to_string(),
            matched_prefix: if matched_prefix == "/" && *wildcard {
                String::new()
            } else {
                matched_prefix
            },
            path_info,
            captures,
        })
    }

    /// Orders matching routes: the larger key is the more specific route.
    fn specificity(&self) -> (bool, usize, usize) {
        match self {
            Route::Path { segments, wildcard } => (
                !wildcard,
                segments.len(),
                segments
                    .iter()
                    .filter(|s| matches!(s, Segment::Literal(_)))
                    .count(),
            ),
            Route::Private => (false, 0, 0),
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Private => write!(f, "{{ private = true }}"),
            Route::Path { segments, wildcard } => {
                for segment in segments {
                    match segment {
                        Segment::Literal(lit) => write!(f, "/{lit}")?,
                        Segment::Capture(name) => write!(f, "/:{name}")?,
                    }
                }
                match (*wildcard, segments.is_empty()) {
                    (true, _) => write!(f, "/..."),
                    (false, true) => write!(f, "/"),
                    (false, false) => Ok(()),
                }
            }
        }
    }
}

/// A routing table: `(route, target)` pairs; the most specific match wins.
#[derive(Debug, Clone)]
pub struct Router<T> {
    routes: Vec<(Route, T)>,
}

impl<T: Clone> Router<T> {
    pub fn new(routes: Vec<(Route, T)>) -> Self {
        Self { routes }
    }

    pub fn route(&self, path: &str) -> Option<(T, RouteMatch)> {
        self.routes
            .iter()
            .filter_map(|(route, target)| route.matches(path).map(|m| (route, target, m)))
            .max_by_key(|(route, _, _)| route.specificity())
            .map(|(_, target, m)| (target.clone(), m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router<&'static str> {
        Router::new(
            [
                ("/healthz", "health"),
                ("/v1/...", "api"),
                ("/v1/messages", "send"),
                ("/v1/messages/:id/recall", "recall"),
                ("/v1/messages/:id/...", "messages-any"),
                ("/...", "web"),
            ]
            .into_iter()
            .map(|(r, t)| (Route::parse(r).unwrap(), t))
            .collect(),
        )
    }

    #[test]
    fn exact_routes_match_only_themselves() {
        let r = router();
        assert_eq!(r.route("/healthz").unwrap().0, "health");
        assert_eq!(r.route("/healthzz").unwrap().0, "web");
        assert_eq!(r.route("/v1/messages").unwrap().0, "send");
    }

    #[test]
    fn wildcards_match_prefix_and_below_and_report_path_info() {
        let r = router();
        let (target, m) = r.route("/v1/sync").unwrap();
        assert_eq!(target, "api");
        assert_eq!(m.matched_prefix, "/v1");
        assert_eq!(m.path_info, "/sync");
        let (target, m) = r.route("/v1").unwrap();
        assert_eq!((target, m.path_info.as_str()), ("api", ""));
        let (target, m) = r.route("/").unwrap();
        assert_eq!((target, m.matched_prefix.as_str()), ("web", ""));
        assert_eq!(r.route("/app.js").unwrap().1.path_info, "/app.js");
    }

    #[test]
    fn captures_are_named_and_more_specific_routes_win() {
        let r = router();
        let (target, m) = r.route("/v1/messages/m1/recall").unwrap();
        assert_eq!(target, "recall");
        assert_eq!(m.captures, vec![("id".to_string(), "m1".to_string())]);
        assert_eq!(
            r.route("/v1/messages/m1/receipts").unwrap().0,
            "messages-any"
        );
    }

    #[test]
    fn private_routes_never_match_and_bad_routes_are_rejected() {
        assert!(Route::Private.matches("/").is_none());
        assert!(Route::parse("healthz").is_err());
        assert!(Route::parse("/a//b").is_err());
        assert!(Route::parse("/a/.../b").is_err());
        assert!(Route::parse("/a/:").is_err());
        assert_eq!(Route::parse("/v1/...").unwrap().to_string(), "/v1/...");
        assert_eq!(Route::parse("/").unwrap().to_string(), "/");
    }

    #[test]
    fn empty_router_matches_nothing() {
        let r: Router<&str> = Router::new(vec![]);
        assert!(r.route("/").is_none());
    }
}
