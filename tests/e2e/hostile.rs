//! Hostile input and the access matrix, end to end: every route of spin.toml × every
//! hostile case that applies to it, generated from two tables (`world::routes` and the
//! case lists of `tokens` and `bodies`), each cell asserting the documented status and error code and that
//! the store is unchanged.
//!
//! - Credentials: no token, expired, forged, malformed (two parts, bad base64, `alg:
//!   none`, another algorithm, tampered claims, claims not JSON, no `exp`, a `sub`
//!   that is no id, another scheme, over-long) → 401; a user token, or a role that is
//!   not exactly `admin`, on an admin route → 403; internal drains without or with a
//!   wrong `X-Internal-Secret` → 401; push callbacks unsigned or badly signed → 401.
//! - Bodies (with valid credentials): over the gateway limit, declared or streamed →
//!   413; over the route's own limit → 413; 10,000 nested `[`, invalid UTF-8, a lone
//!   surrogate, duplicate keys, retyped scalars, extreme numbers, SQL metacharacters
//!   in id fields, not JSON, a form body → 400.
//! - Paths and queries: SQL metacharacters, `%00`, `%2F`, invalid UTF-8 (escaped and
//!   raw), over-long ids → 400 (404 where the segment names a file or vendor); odd but
//!   valid ids (`..`, `.`, `a:b`) are plain unknown ids; negative, overflowing,
//!   non-decimal, repeated and huge `after`/`before`/`limit`/`wait` → 400.
//! - Another user's resources: recall, receipts, history, acks and push devices of
//!   someone else, another org's group.
//! - The connection (gateway-only): a request head trickled in one line a second is
//!   closed at `--header-timeout` unanswered; a body cut off by a disconnect changes
//!   nothing and leaves no instance running.
//!
//! Requests go over a raw TCP connection so that every byte of the path is as
//! written (no client normalizes `..` or re-encodes invalid UTF-8). Each valid request
//! of the route table is sent at the end with its valid credentials and must succeed,
//! so every refusal above is the hostile part's doing.
//!
//! # Layout
//! - `world`: the set-up (users, groups, messages, a push device, a webhook) and the
//!   route table.
//! - `tokens`: hostile tokens and each route's valid credentials.
//! - `bodies`: hostile bodies, path ids and query values.
//! - `cells`: the cells of each route and the check of an answer.
//! - `access`: another user's resources. `limits`: one field over its limit.
//! - `wire`: requests as raw bytes over TCP.

mod access;
mod bodies;
mod cells;
mod limits;
mod tokens;
mod wire;
mod world;

use std::time::Instant;

use serde_json::Value;

use self::access::crossings;
use self::cells::{cell, cells, check};
use self::limits::field_limits;
use self::tokens::valid;
use self::wire::{Wire, send};
use self::world::{Auth, Route, USERS, routes, world};
use crate::client::user_token;

#[test]
fn every_route_refuses_every_hostile_case_that_applies_and_changes_nothing() {
    let started = Instant::now();
    let w = world();
    let set_up = started.elapsed();
    let api = &w.api;
    let routes = routes(&w);
    let mut count = 0;
    let mut cases = std::collections::BTreeSet::new();
    for route in &routes {
        let cells = cells(route);
        cases.extend(cells.iter().map(|c| c.case.clone()));
        api.unchanged(USERS, || {
            for cell in &cells {
                check(route, cell, &send(&api.gw.base, &cell.wire));
            }
        });
        println!("{}: {} cells", route.name(), cells.len());
        count += cells.len();
    }
    assert!(
        api.stream("eve").head < api.stream("ann").head,
        "eve's stream is shorter than ann's, for the ack crossing"
    );
    let crossings = crossings(&w);
    api.unchanged(USERS, || {
        for (case, method, path, who, body, status, code) in &crossings {
            let bytes = body.as_ref().map(Value::to_string).unwrap_or_default();
            let wire = Wire::new(method, path.as_str())
                .header("content-type", "application/json")
                .header("authorization", &format!("Bearer {}", user_token(who)))
                .body(bytes);
            let route = Route::new(method, path, Auth::User, *status);
            let cell = cell(*case, wire, (*status, code));
            check(&route, &cell, &send(&api.gw.base, &cell.wire));
        }
    });
    count += crossings.len();
    let limits = field_limits(api.stream("ann").head);
    api.unchanged(USERS, || {
        for (case, method, path, auth, body, status, code) in &limits {
            let route = Route::new(method, path, *auth, *status);
            let cell = cell(*case, valid(&route, path, body.clone()), (*status, code));
            check(&route, &cell, &send(&api.gw.base, &cell.wire));
        }
    });
    count += limits.len();
    assert!(
        api.stream("eve").messages().is_empty(),
        "eve saw none of the others' messages"
    );
    // The valid requests, last: each succeeds, so each refusal above was the hostile
    // part's doing.
    for route in &routes {
        let reply = send(&api.gw.base, &valid(route, &route.path, route.body_bytes()));
        assert_eq!(
            reply.status,
            route.ok,
            "the valid {}: {}",
            route.name(),
            reply.body
        );
    }
    println!(
        "hostile matrix: {} routes × {} distinct cases, {count} cells ({} access crossings, \
         {} field limits) in {:.1} s after {:.1} s of set-up (gateway start, components \
         built if stale)",
        routes.len(),
        cases.len(),
        crossings.len(),
        limits.len(),
        (started.elapsed() - set_up).as_secs_f64(),
        set_up.as_secs_f64()
    );
}

/// Two rows of the matrix about the connection rather than the request, for every
/// route at once: a request head trickled in one header line a second (slowloris) is
/// closed by the gateway's `--header-timeout` (5 s) without an answer, and a request
/// whose client goes away halfway through its body changes nothing and holds no
/// instance after. Gateway-only: both are the gateway's connection handling (Spin's
/// own listener has its own).
#[test]
fn every_route_closes_a_trickled_head_and_forgets_a_body_cut_off_by_a_disconnect() {
    use std::io::Write;
    use std::net::{Shutdown, TcpStream};
    use std::time::Duration;

    use crate::connections::{metric, trickle, within};

    if crate::harness::gateway_only("the gateway's --header-timeout and abandoned requests") {
        return;
    }
    let w = world();
    let api = &w.api;
    let routes = routes(&w);
    let addr = api.gw.base.trim_start_matches("http://").to_string();
    api.unchanged(USERS, || {
        for route in &routes {
            let mut body = route.body_bytes();
            if body.len() < 2 {
                body = br#"{"padding": "a body that never arrives in full"}"#.to_vec();
            }
            let wire = valid(route, &route.path, Vec::new());
            let mut bytes = wire.head_lines(&addr);
            bytes.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
            bytes.extend_from_slice(&body[..body.len() / 2]);
            let mut socket = TcpStream::connect(&addr).expect("connect");
            socket.write_all(&bytes).expect("head and half a body");
            std::thread::sleep(Duration::from_millis(50));
            let _ = socket.shutdown(Shutdown::Both);
        }
        within(Duration::from_secs(5), "cut-off requests end", || {
            metric(&api.gw.base, "courier_instances_in_use") == 0
        });
        let trickled: Vec<_> = routes
            .iter()
            .map(|route| {
                let name = route.name();
                let head = valid(route, &route.path, route.body_bytes()).head_lines(&addr);
                let addr = addr.clone();
                std::thread::spawn(move || {
                    let (closed, answer) = trickle(&addr, &head, &name);
                    assert!(
                        closed >= Duration::from_secs(4) && closed < Duration::from_secs(9),
                        "{name}: a trickled head closed after {closed:?}"
                    );
                    assert!(
                        !answer.starts_with("HTTP/1.1 2"),
                        "{name}: a trickled head was served: {answer}"
                    );
                })
            })
            .collect();
        for thread in trickled {
            thread.join().expect("a trickled head");
        }
    });
    let timeouts = metric(&api.gw.base, "courier_header_timeouts_total");
    assert!(
        timeouts >= routes.len() as i64,
        "{timeouts} header timeouts counted for {} trickled heads",
        routes.len()
    );
    println!(
        "connection rows: {} routes × (trickled head, body cut off by a disconnect)",
        routes.len()
    );
}
