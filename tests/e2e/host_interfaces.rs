//! The Spin host interfaces the gateway provides, observed from a real guest
//! (tests/guests/host-probe) through the real gateway.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use courier_store::sql::Sql;
use serde_json::{Value, json};

use crate::harness::{Gateway, call, gateway_only, get};

const PROBE: &str = "tests/fixtures/probe.toml";
const SECRET: (&str, &str) = ("SPIN_VARIABLE_SECRET", "probe-secret");

/// A one-route HTTP server that answers `200 echo` after `delay`; returns its port.
fn echo_server(delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                std::thread::sleep(delay);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\necho",
                );
            });
        }
    });
    port
}

fn probe(gw: &Gateway, what: &str) -> Value {
    let reply = get(&gw.url(&format!("/probe/{what}")));
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

#[test]
fn postgres_functions_transactions_and_errors_behave_like_spin() {
    if courier_store::testdb::postgres_url().is_none() {
        eprintln!("needs {} (a PostgreSQL server)", courier_store::testdb::ENV);
        return;
    }
    let gw = Gateway::start(PROBE, &[SECRET]);
    let seen = probe(&gw, "postgres");
    let text = |k: &str| seen[k].as_str().unwrap_or_default().to_string();
    // Spin's words for a denied address; the gateway adds where to grant it.
    assert!(
        text("open_denied").starts_with(
            "connection-failed: address postgres://denied.invalid:5432 is not permitted"
        ),
        "{seen}"
    );
    assert!(
        text("open_tls_required").starts_with("connection-failed:"),
        "{seen}"
    );
    match crate::harness::host() {
        // The gateway has no TLS to PostgreSQL and says so; Spin tries TLS, which
        // the test server does not offer.
        crate::harness::Host::Gateway => {
            assert!(
                text("open_denied").contains("allowed_outbound_hosts"),
                "{seen}"
            );
            assert!(
                text("open_tls_required").contains("sslmode=require"),
                "{seen}"
            );
        }
        crate::harness::Host::Spin => {
            assert!(text("open_tls_required").contains("TLS"), "{seen}");
        }
    }
    assert_eq!(seen["open"], "ok", "{seen}");
    assert_eq!(seen["create"], "ok", "{seen}");
    assert_eq!(seen["insert"], "ok", "{seen}");
    assert_eq!(
        seen["columns"],
        json!([
            "s:Int16",
            "i:Int32",
            "k:Int64",
            "f:Floating32",
            "d:Floating64",
            "t:Str",
            "b:Binary",
            "z:Boolean",
            "n:Decimal",
            "v:Str",
            "dec:Decimal",
            "nothing:Str"
        ]),
        "{seen}"
    );
    assert_eq!(
        seen["row"],
        "[Int16(-7), Int32(-2147483648), Int64(1), Floating32(0.5), Floating64(-1.25), \
         Str(\"héllo ✓\"), Binary([0, 255, 7]), Boolean(true), DbNull, Str(\"short\"), \
         Decimal(\"12345.678\"), DbNull]",
        "every value type survives a round trip"
    );
    assert!(
        text("wrong_parameter_type").to_lowercase().contains("int4"),
        "an int64 for an int4 parameter is refused, as on Spin: {seen}"
    );
    assert!(text("syntax_error").starts_with("db-error 42601"), "{seen}");
    assert!(
        text("unique_violation").starts_with("db-error 23505"),
        "{seen}"
    );
    assert_eq!(seen["rollback"], "ok");
    assert_eq!(seen["count_after_rollback"], 1);
    assert_eq!(seen["begin_insert"], "ok");
    assert_eq!(
        seen["other_sees_uncommitted"], 1,
        "another connection must not see an open transaction"
    );
    assert_eq!(seen["commit"], "ok");
    assert_eq!(seen["other_sees_committed"], 2);
    assert_eq!(seen["execute_count"], 2, "execute returns the rows changed");
    // An instance that ends inside a transaction (holding a row lock) has it rolled
    // back: the row it inserted is gone and the lock is free for the next request.
    let abandoned = probe(&gw, "postgres?phase=abandon");
    assert_eq!(abandoned["abandon"], "ok", "{abandoned}");
    let db = gw.db();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = db
            .query_i64("SELECT count(*) FROM probe_pg WHERE k = 99", &[])
            .unwrap();
        if left == Some(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the abandoned insert was not rolled back"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // On Spin 4.0.2 the row lock was still held here (this lock_timeout ran out):
    // its connection pool keeps the abandoned session, transaction and all. The
    // gateway rolls back when the instance ends.
    if gateway_only("releasing an abandoned transaction's locks when the instance ends") {
        return;
    }
    db.execute("SET lock_timeout = '2s'", &[]).unwrap();
    db.execute("UPDATE probe_pg SET t = 'free' WHERE k = 1", &[])
        .expect("the abandoned row lock was released");
}

#[test]
fn sqlite_functions_transactions_and_errors_behave_like_spin() {
    let gw = Gateway::start(PROBE, &[SECRET]);
    let seen = probe(&gw, "sqlite");
    assert_eq!(seen["open_ungranted"], "access-denied");
    assert_eq!(seen["open_default"], "ok");
    assert_eq!(seen["create"], "ok");
    assert_eq!(seen["insert"], "ok");
    assert_eq!(seen["columns"], json!(["i", "r", "t", "b", "n"]));
    assert_eq!(
        seen["round_trip"], true,
        "every value type survives a round trip"
    );
    assert_eq!(seen["rollback"], "ok");
    assert_eq!(seen["count_after_rollback"], 1);
    assert_eq!(seen["commit"], "ok");
    assert_eq!(seen["count_after_commit"], 2);
    assert_eq!(
        seen["other_sees_uncommitted"], 2,
        "another connection must not see an open transaction"
    );
    assert_eq!(seen["other_sees_committed"], 3);
    assert!(
        seen["syntax_error"].as_str().unwrap().starts_with("io: "),
        "{seen}"
    );
    assert!(
        seen["constraint_error"]
            .as_str()
            .unwrap()
            .contains("UNIQUE"),
        "{seen}"
    );
    // The probe left a transaction open when its instance ended: it was rolled back,
    // and the database is not left locked for the next request.
    let again = probe(&gw, "sqlite");
    assert_eq!(again["count_after_commit"], 2, "{again}");
}

#[test]
fn key_value_functions_behave_like_spin() {
    let gw = Gateway::start(PROBE, &[SECRET]);
    let seen = probe(&gw, "kv");
    assert_eq!(seen["open_ungranted"], "access-denied");
    assert_eq!(seen["get_missing"], Value::Null);
    assert_eq!(seen["exists_missing"], json!({ "Ok": false }));
    assert_eq!(seen["get_after_overwrite"], "two");
    assert_eq!(seen["exists_present"], json!({ "Ok": true }));
    assert_eq!(seen["binary_len"], 2);
    assert_eq!(seen["keys"], json!({ "Ok": ["probe:a", "probe:b"] }));
    assert_eq!(seen["delete"], json!({ "Ok": null }));
    assert_eq!(
        seen["delete_missing"],
        json!({ "Ok": null }),
        "deleting a missing key is not an error"
    );
    assert_eq!(seen["get_after_delete"], Value::Null);
}

#[test]
fn variables_resolve_from_defaults_environment_and_templates() {
    let gw = Gateway::start(PROBE, &[SECRET, ("SPIN_VARIABLE_ECHO_PORT", "8123")]);
    let seen = probe(&gw, "variables");
    assert_eq!(seen["greeting"], "hello", "manifest default");
    assert_eq!(
        seen["url"], "http://127.0.0.1:8123/x",
        "template with an environment override"
    );
    assert_eq!(seen["secret"], "probe-secret");
    assert_eq!(
        seen["not_granted"], "undefined",
        "an app variable not in the component's table"
    );
    assert_eq!(seen["invalid"], "invalid-name");
}

#[test]
fn outbound_http_is_allowed_only_to_listed_hosts() {
    let port = echo_server(Duration::ZERO);
    let gw = Gateway::start(
        PROBE,
        &[SECRET, ("SPIN_VARIABLE_ECHO_PORT", &port.to_string())],
    );
    let allowed = get(&gw.url(&format!("/probe/outbound?url=http://127.0.0.1:{port}/x"))).json();
    assert_eq!(allowed, json!({ "status": 200, "body": "echo" }));
    let other_port = echo_server(Duration::ZERO);
    let denied = get(&gw.url(&format!(
        "/probe/outbound?url=http://127.0.0.1:{other_port}/x"
    )))
    .json();
    assert!(
        denied["error"]
            .as_str()
            .unwrap()
            .contains("HttpRequestDenied"),
        "{denied}"
    );
    let https = get(&gw.url(&format!("/probe/outbound?url=https://127.0.0.1:{port}/x"))).json();
    assert!(
        https["error"]
            .as_str()
            .unwrap()
            .contains("HttpRequestDenied"),
        "{https}"
    );
    // The gateway's own log line; Spin logs denials in its own words.
    if crate::harness::host() == crate::harness::Host::Gateway {
        assert!(gw.wait_for_log("outbound request denied"));
    }
}

#[test]
fn spin_internal_routes_in_process_including_private_components() {
    let gw = Gateway::start(PROBE, &[SECRET]);
    let private =
        get(&gw.url("/probe/outbound?url=http://private-health.spin.internal/healthz")).json();
    assert_eq!(private, json!({ "status": 200, "body": "{\"ok\":true}" }));
    // Not in the probe's allowed_outbound_hosts, though the component exists.
    let unlisted = get(&gw.url("/probe/outbound?url=http://health.spin.internal/healthz")).json();
    assert!(
        unlisted["error"]
            .as_str()
            .unwrap()
            .contains("HttpRequestDenied"),
        "{unlisted}"
    );
    // A private component has no public route.
    assert_eq!(get(&gw.url("/private-health")).status, 404);
}

#[test]
fn spin_route_headers_reach_the_component() {
    let gw = Gateway::start(PROBE, &[SECRET]);
    let seen = probe(&gw, "spin-headers");
    assert_eq!(seen["spin-matched-route"], "/probe/...");
    assert_eq!(seen["spin-component-route"], "/probe");
    assert_eq!(seen["spin-path-info"], "/spin-headers");
    assert!(
        seen["spin-full-url"]
            .as_str()
            .unwrap()
            .ends_with("/probe/spin-headers")
    );
    assert!(
        seen["spin-client-addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
}

#[test]
fn a_guest_that_never_returns_is_stopped_by_the_request_timeout() {
    if gateway_only("--request-timeout") {
        return;
    }
    let gw = Gateway::start_with(PROBE, &[SECRET], &["--request-timeout", "1"]);
    let started = Instant::now();
    let reply = get(&gw.url("/probe/spin"));
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.code(), "unavailable");
    assert!(reply.body.contains("request timed out"), "{}", reply.body);
    assert!(started.elapsed() < Duration::from_secs(5));
    // The gateway still serves.
    assert_eq!(get(&gw.url("/healthz")).status, 200);
}

#[test]
fn a_request_past_the_instance_pool_gets_503_while_an_instance_is_busy() {
    if gateway_only("--max-instances") {
        return;
    }
    let gw = Gateway::start_with(
        PROBE,
        &[SECRET],
        &["--max-instances", "1", "--request-timeout", "3"],
    );
    // The spinning guest holds the only instance until its 3 s timeout. It asks again
    // while one of the probes below holds the instance.
    let busy = std::thread::spawn({
        let url = gw.url("/probe/spin");
        move || {
            let started = Instant::now();
            loop {
                let reply = get(&url);
                if !reply.body.contains("too many requests in flight")
                    || started.elapsed() > Duration::from_secs(10)
                {
                    break reply;
                }
            }
        }
    });
    let started = Instant::now();
    let refused = loop {
        let reply = get(&gw.url("/healthz"));
        if reply.status == 503 || started.elapsed() > Duration::from_secs(10) {
            break reply;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.code(), "unavailable");
    assert!(
        refused.body.contains("too many requests in flight"),
        "{}",
        refused.body
    );
    let timed_out = busy.join().unwrap();
    assert_eq!(timed_out.status, 503, "{}", timed_out.body);
    assert!(
        timed_out.body.contains("request timed out"),
        "{}",
        timed_out.body
    );
    // The instance comes back (freed as the stopped run's task ends, just after its
    // answer): the gateway serves again.
    let started = Instant::now();
    while get(&gw.url("/healthz")).status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "instance not freed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn request_bodies_within_the_limit_reach_the_guest() {
    if gateway_only("--max-body-bytes") {
        return;
    }
    let gw = Gateway::start_with(PROBE, &[SECRET], &["--max-body-bytes", "2048"]);
    let ok = call(
        "POST",
        &gw.url("/probe/echo-body"),
        &[],
        Some(&[b'x'; 2048]),
    );
    assert_eq!(ok.json(), json!({ "len": 2048 }));
    let over = call(
        "POST",
        &gw.url("/probe/echo-body"),
        &[],
        Some(&[b'x'; 2049]),
    );
    assert_eq!(over.status, 413);
}

#[test]
fn sigterm_lets_in_flight_requests_finish_then_exits() {
    if gateway_only("the gateway's graceful shutdown") {
        return;
    }
    let port = echo_server(Duration::from_millis(1500));
    let mut gw = Gateway::start(
        PROBE,
        &[SECRET, ("SPIN_VARIABLE_ECHO_PORT", &port.to_string())],
    );
    let url = gw.url(&format!("/probe/outbound?url=http://127.0.0.1:{port}/slow"));
    let in_flight = std::thread::spawn(move || get(&url));
    std::thread::sleep(Duration::from_millis(400));
    let kill = Command::new("kill")
        .args(["-TERM", &gw.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let reply = in_flight.join().unwrap();
    assert_eq!(
        reply.json(),
        json!({ "status": 200, "body": "echo" }),
        "the in-flight request finished"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = gw.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "gateway did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
}
