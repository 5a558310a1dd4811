//! A component's route table: method and path pattern → the component's own handler
//! tag, with the path's captures percent-decoded. One resolution for every component,
//! done before authentication: a path no row matches is 404 `not_found` ("no route
//! for …"), a path some row matches with another method is 405 with `Allow`.
//!
//! Patterns are the API's: literal segments and `{name}` captures
//! (`/v1/messages/{msg_id}/recall`). Empty segments of the request path are skipped,
//! as Spin's own `/...` routes do.

use std::borrow::Cow;

use spin_sdk::http::{Method, Response};

use crate::http::{decoded, error, method_not_allowed, no_route};

/// One row of a table: `method` on `pattern` is served by `handler`.
pub struct Route<H> {
    pub method: Method,
    pub pattern: &'static str,
    pub handler: H,
}

impl<H> Route<H> {
    pub const fn new(method: Method, pattern: &'static str, handler: H) -> Route<H> {
        Route {
            method,
            pattern,
            handler,
        }
    }
}

/// The captures of a matched path, percent-decoded ([`decoded`]), by name.
#[derive(Debug, Default)]
pub struct Captures<'p> {
    named: Vec<(&'static str, Cow<'p, str>)>,
}

impl Captures<'_> {
    /// The value of capture `name`; `""` for a name the pattern does not have.
    pub fn get(&self, name: &str) -> &str {
        self.named
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, value)| value)
    }
}

/// The captures of `path` under `pattern`, or `None` when it does not match.
fn matches<'p>(pattern: &'static str, path: &'p str) -> Option<Captures<'p>> {
    let mut wanted = pattern.split('/').filter(|s| !s.is_empty());
    let mut given = path.split('/').filter(|s| !s.is_empty());
    let mut captures = Captures::default();
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return Some(captures),
            (Some(want), Some(segment)) => {
                match want.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                    Some(name) => captures.named.push((name, decoded(segment))),
                    None if want == segment => {}
                    None => return None,
                }
            }
            _ => return None,
        }
    }
}

/// The row of `routes` serving `method` on `path`, with the path's captures; else the
/// answer to give: 404 (no row's pattern matches) or 405 naming the methods that do.
pub fn resolve<'r, 'p, H>(
    routes: &'r [Route<H>],
    method: &Method,
    path: &'p str,
) -> Result<(&'r H, Captures<'p>), Response> {
    let mut allowed = Vec::new();
    for route in routes {
        if let Some(captures) = matches(route.pattern, path) {
            if route.method == *method {
                return Ok((&route.handler, captures));
            }
            allowed.push(route.method.clone());
        }
    }
    if allowed.is_empty() {
        Err(error(&no_route(path)))
    } else {
        Err(method_not_allowed(&allowed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Op {
        List,
        Get,
        Put,
        Recall,
    }

    const ROUTES: &[Route<Op>] = &[
        Route::new(Method::Get, "/v1/webhooks", Op::List),
        Route::new(Method::Get, "/v1/webhooks/{id}", Op::Get),
        Route::new(Method::Put, "/v1/webhooks/{id}", Op::Put),
        Route::new(Method::Post, "/v1/messages/{msg_id}/recall", Op::Recall),
    ];

    fn found(method: Method, path: &str) -> Option<(Op, String)> {
        resolve(ROUTES, &method, path)
            .ok()
            .map(|(op, at)| (*op, format!("{}{}", at.get("id"), at.get("msg_id"))))
    }

    #[test]
    fn a_matching_row_gives_its_handler_and_decoded_captures() {
        assert_eq!(
            found(Method::Get, "/v1/webhooks"),
            Some((Op::List, "".into()))
        );
        assert_eq!(
            found(Method::Get, "/v1/webhooks/"),
            Some((Op::List, "".into()))
        );
        assert_eq!(
            found(Method::Put, "/v1/webhooks/crm%2D1"),
            Some((Op::Put, "crm-1".into()))
        );
        assert_eq!(
            found(Method::Post, "/v1/messages//m1/recall"),
            Some((Op::Recall, "m1".into()))
        );
    }

    #[test]
    fn an_unknown_path_is_404_and_a_known_one_with_another_method_405() {
        let missing = resolve(ROUTES, &Method::Get, "/v1/webhooks/a/b").unwrap_err();
        assert_eq!(missing.status(), &404);
        assert!(resolve(ROUTES, &Method::Get, "/v1/messages/m1").is_err());
        let wrong = resolve(ROUTES, &Method::Delete, "/v1/webhooks/a").unwrap_err();
        assert_eq!(wrong.status(), &405);
        let allow = wrong.header("allow").and_then(|v| v.as_str());
        assert_eq!(allow, Some("GET, PUT"));
    }
}
