//! Long-polls parked in the gateway (`infra/gateway/src/parking.rs`): woken by every
//! kind of write that moves a stream, freed when the client goes, refused cleanly
//! past `--max-parked`, answered on SIGTERM, woken across two gateways on one
//! PostgreSQL, and never fooled by a client's own `courier-park` header. On Spin the
//! wake tests run against the component's own loop (nothing parks there).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{Api, Client, Expect, text_to_group, text_to_user, user_token};
use crate::harness::{Gateway, call, gateway_only, get, host};

/// `courier_parked_polls` of the gateway's `/metrics`.
fn parked(base: &str) -> i64 {
    let page = get(&format!("{base}/metrics")).body;
    page.lines()
        .find_map(|l| l.strip_prefix("courier_parked_polls "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no courier_parked_polls gauge in:\n{page}"))
}

/// Waits until `n` polls are parked (on Spin, where nothing parks, gives the poll
/// half a second to reach its loop).
fn until_parked(base: &str, n: i64) {
    if host() == crate::harness::Host::Spin {
        std::thread::sleep(Duration::from_millis(500));
        return;
    }
    let started = Instant::now();
    while parked(base) < n {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{n} polls never parked"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn head(client: &Client, token: &str) -> i64 {
    client.sync(token, "").expect_json(200)["head"]
        .as_i64()
        .expect("head")
}

/// Parks a poll of `token` after its current head, runs `write`, and returns the
/// poll's page and how long after `write` returned it answered.
fn woken_by(api: &Api, token: &str, write: impl FnOnce()) -> (Value, Duration) {
    let after = head(api.client(), token);
    let client = api.client().clone();
    let token = token.to_string();
    let poll = std::thread::spawn(move || {
        let page = client
            .sync(&token, &format!("after={after}&wait=20"))
            .expect_json(200);
        (page, Instant::now())
    });
    until_parked(&api.gw.base, 1);
    write();
    let wrote = Instant::now();
    let (page, answered) = poll.join().expect("poll thread");
    (page, answered.saturating_duration_since(wrote))
}

fn kinds(page: &Value) -> Vec<&str> {
    page["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect()
}

#[test]
fn a_parked_poll_is_woken_by_a_send_a_fan_out_chunk_a_receipt_and_a_recall() {
    // Every group message goes through the queue, as a fan-out chunk.
    let api = Api::start_with(&[("SPIN_VARIABLE_INLINE_FANOUT_MAX", "0")]);
    for u in ["ann", "bob", "cat"] {
        api.user(u, "acme");
    }
    api.group("g1", "bob", &["ann", "bob", "cat"]);
    let (ann, bob) = (user_token("ann"), user_token("bob"));
    let limit = Duration::from_secs(2);

    let (page, delay) = woken_by(&api, &ann, || {
        api.send_as("bob", &text_to_user("d1", "ann", "hi"))
            .expect_json(201);
    });
    assert_eq!(kinds(&page), ["message"], "{page}");
    assert!(delay < limit, "send: answered {delay:?} after");
    let direct = page["entries"][0]["msg_id"].as_str().unwrap().to_string();

    let (page, delay) = woken_by(&api, &ann, || {
        let sent = api
            .send_as("bob", &text_to_group("g1", "g1", "to all"))
            .expect_json(201);
        assert_eq!(sent["status"], "accepted", "{sent}");
    });
    assert_eq!(kinds(&page), ["message"], "{page}");
    assert_eq!(page["entries"][0]["conv"], "g:g1");
    assert!(delay < limit, "fan-out chunk: answered {delay:?} after");

    // Ann reads bob's message: bob's parked poll gets the (queued) receipt.
    let (page, delay) = woken_by(&api, &bob, || {
        api.call(
            "POST",
            "/v1/receipts",
            Some(&ann),
            Some(json!({ "msg_ids": [direct] }).to_string().as_bytes()),
        )
        .expect_json(200);
    });
    assert!(kinds(&page).contains(&"receipt"), "{page}");
    assert!(delay < limit, "receipt: answered {delay:?} after");

    let (page, delay) = woken_by(&api, &ann, || {
        api.call(
            "POST",
            &format!("/v1/messages/{direct}/recall"),
            Some(&bob),
            None,
        )
        .expect_json(200);
    });
    assert_eq!(kinds(&page), ["recall"], "{page}");
    assert!(delay < limit, "recall: answered {delay:?} after");
    if host() == crate::harness::Host::Gateway {
        assert_eq!(parked(&api.gw.base), 0);
    }
}

/// A raw `GET /v1/sync` on its own socket.
fn raw_poll(base: &str, token: &str, query: &str) -> TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut socket = TcpStream::connect(addr).expect("connect");
    write!(
        socket,
        "GET /v1/sync?{query} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\r\n"
    )
    .expect("write");
    socket
}

#[test]
fn a_client_that_disconnects_frees_its_parked_slot_at_once() {
    if gateway_only("parked long-polls and the /metrics gauge") {
        return;
    }
    let api = Api::start();
    api.user("ann", "acme");
    let sockets: Vec<TcpStream> = (0..20)
        .map(|_| raw_poll(&api.gw.base, &user_token("ann"), "wait=25"))
        .collect();
    until_parked(&api.gw.base, 20);
    drop(sockets);
    let gone = Instant::now();
    while parked(&api.gw.base) > 0 {
        assert!(
            gone.elapsed() < Duration::from_secs(2),
            "{} parked polls outlived their clients",
            parked(&api.gw.base)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Their user still syncs, and a new poll parks.
    let socket = raw_poll(&api.gw.base, &user_token("ann"), "wait=25");
    until_parked(&api.gw.base, 1);
    drop(socket);
}

#[test]
fn past_max_parked_a_poll_gets_503_and_sends_still_get_through() {
    if gateway_only("--max-parked") {
        return;
    }
    let env = crate::client::SECRETS;
    let gw = Gateway::start_with("spin.toml", env, &["--max-parked", "2"]);
    let api = Client::of(&gw);
    for u in ["ann", "bob", "cat", "dan"] {
        api.user(u, "acme");
    }
    let held: Vec<TcpStream> = ["ann", "bob"]
        .iter()
        .map(|u| raw_poll(&gw.base, &user_token(u), "wait=25"))
        .collect();
    until_parked(&gw.base, 2);
    let refused = api.sync(&user_token("cat"), "wait=25");
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.json()["error"]["code"], "unavailable");
    // A poll with something to read is answered, and sends are never refused.
    api.send_as("dan", &text_to_user("c1", "cat", "hi"))
        .expect_json(201);
    let page = api.sync(&user_token("cat"), "wait=25").expect_json(200);
    assert_eq!(kinds(&page), ["message"]);
    let metrics = get(&gw.url("/metrics")).body;
    assert!(
        metrics.contains("courier_parked_refused_total 1"),
        "{metrics}"
    );
    drop(held);
}

#[test]
fn sigterm_answers_every_parked_poll_before_the_gateway_exits() {
    if gateway_only("the gateway's shutdown") {
        return;
    }
    let env = crate::client::SECRETS;
    let mut gw = Gateway::start_with("spin.toml", env, &[]);
    let api = Client::of(&gw);
    api.user("ann", "acme");
    api.user("bob", "acme");
    api.send_as("bob", &text_to_user("c1", "ann", "hi"))
        .expect_json(201);
    let mut sockets: Vec<TcpStream> = (0..5)
        .map(|_| raw_poll(&gw.base, &user_token("ann"), "after=1&wait=25"))
        .collect();
    until_parked(&gw.base, 5);
    let signalled = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &gw.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    for socket in &mut sockets {
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = Vec::new();
        let _ = socket.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains(r#""head":1"#), "{answer}");
    }
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "parked polls answered {:?} after SIGTERM",
        signalled.elapsed()
    );
    let exited = Instant::now();
    while gw.child.try_wait().expect("wait").is_none() {
        assert!(exited.elapsed() < Duration::from_secs(10), "no exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_client_forging_the_park_header_gets_an_ordinary_answer() {
    let api = Api::start();
    api.user("ann", "acme");
    let auth = format!("Bearer {}", user_token("ann"));
    // The real secret too, on the gateway: it replaces whatever a client sends.
    let mut forgeries = vec!["1", "guess"];
    if host() == crate::harness::Host::Gateway {
        forgeries.push(crate::client::INTERNAL_SECRET);
    }
    for forged in forgeries {
        let started = Instant::now();
        let reply = call(
            "GET",
            &api.url("/v1/sync?wait=1"),
            &[("authorization", &auth), ("courier-park", forged)],
            None,
        );
        let took = started.elapsed();
        assert_eq!(
            reply.expect_json(200),
            json!({"entries": [], "next": 0, "head": 0, "more": false})
        );
        assert_eq!(reply.header("courier-parked-user"), None, "{forged}");
        // The wait was served, not cut short by the header.
        assert!(took >= Duration::from_millis(900), "{forged}: {took:?}");
    }
}

#[test]
fn on_postgres_a_send_through_one_gateway_wakes_a_poll_parked_on_another() {
    if courier_store::testdb::postgres_url().is_none() {
        eprintln!("needs {} (a PostgreSQL server)", courier_store::testdb::ENV);
        return;
    }
    if gateway_only("parked long-polls across gateways") {
        return;
    }
    let env = crate::client::SECRETS;
    let a = Gateway::start("spin.toml", env);
    let b = Gateway::start_replica("spin.toml", &a, env);
    let (on_a, on_b) = (Client::of(&a), Client::of(&b));
    on_a.user("ann", "acme");
    on_a.user("bob", "acme");
    assert!(
        b.wait_for_log("wake listener: listening"),
        "b never listened"
    );
    for round in 1..=3 {
        let poll = {
            let on_b = on_b.clone();
            std::thread::spawn(move || {
                let page = on_b
                    .sync(&user_token("ann"), &format!("after={}&wait=20", round - 1))
                    .expect_json(200);
                (page, Instant::now())
            })
        };
        until_parked(&b.base, 1);
        on_a.send_as("bob", &text_to_user(&format!("c{round}"), "ann", "hi"))
            .expect_json(201);
        let sent = Instant::now();
        let (page, answered) = poll.join().expect("poll");
        assert_eq!(page["entries"][0]["seq"], round, "{page}");
        let delay = answered.saturating_duration_since(sent);
        assert!(delay < Duration::from_secs(1), "woken {delay:?} after");
    }
    assert_eq!(parked(&b.base), 0);
}
