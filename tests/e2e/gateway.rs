//! The gateway as a user meets it: start-up and its failures, routing, the error
//! shape, limits, metrics, logs and graceful shutdown, on courier's own spin.toml.

use std::time::Duration;

use crate::harness::{Gateway, call, courier_command, gateway_only, get, prepared_manifest};

const SECRETS: &[(&str, &str)] = &[
    (
        "SPIN_VARIABLE_JWT_SECRET",
        "e2e-jwt-secret-0123456789abcdef",
    ),
    (
        "SPIN_VARIABLE_INTERNAL_SECRET",
        "e2e-internal-secret-0123456789",
    ),
];

#[test]
fn healthz_answers_ok_through_the_wasm_component() {
    let gw = Gateway::start("spin.toml", SECRETS);
    let reply = get(&gw.url("/healthz"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json(), serde_json::json!({ "ok": true }));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    // The gateway names every request (its logs carry the id); Spin does not.
    if crate::harness::host() == crate::harness::Host::Gateway {
        assert!(reply.header("x-request-id").is_some());
    }
}

#[test]
fn unknown_route_is_404_in_the_api_error_shape() {
    let gw = Gateway::start("spin.toml", SECRETS);
    let reply = get(&gw.url("/no/such/route"));
    assert_eq!(reply.status, 404);
    assert_eq!(reply.code(), "not_found");
    assert!(reply.json()["error"]["message"].is_string());
}

#[test]
fn wrong_method_on_healthz_is_405_with_allow() {
    let gw = Gateway::start("spin.toml", SECRETS);
    let reply = call("DELETE", &gw.url("/healthz"), &[], None);
    assert_eq!(reply.status, 405);
    assert_eq!(reply.code(), "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("GET"));
}

#[test]
fn healthz_answers_cors_preflight_like_every_api_route() {
    let gw = Gateway::start("spin.toml", SECRETS);
    let origin = ("origin", "https://app.example");
    let preflight = call(
        "OPTIONS",
        &gw.url("/healthz"),
        &[origin, ("access-control-request-method", "GET")],
        None,
    );
    assert_eq!(preflight.status, 204, "{}", preflight.body);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(
        preflight
            .header("access-control-allow-methods")
            .unwrap_or_default()
            .contains("GET")
    );
    let reply = call("GET", &gw.url("/healthz"), &[origin], None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(reply.header("vary"), Some("origin"));
}

#[test]
fn missing_required_variable_fails_start_up_with_a_clear_message() {
    if gateway_only("courier up's start-up errors") {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let manifest = prepared_manifest("spin.toml", data.path());
    let output = courier_command(&manifest, data.path(), &[], &["--no-dev-secrets"])
        .env_remove("SPIN_VARIABLE_JWT_SECRET")
        .env_remove("SPIN_VARIABLE_INTERNAL_SECRET")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "missing required variable `internal_secret` (set SPIN_VARIABLE_INTERNAL_SECRET)"
        ),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).is_empty(),
        "must not listen"
    );
}

#[test]
fn without_secrets_development_secrets_are_generated_once() {
    if gateway_only("courier up's development secrets") {
        return;
    }
    let gw = Gateway::start("spin.toml", &[]);
    assert_eq!(get(&gw.url("/healthz")).status, 200);
    let secrets = std::fs::read_to_string(gw.data.path().join("dev-secrets.json")).unwrap();
    let secrets: serde_json::Value = serde_json::from_str(&secrets).unwrap();
    assert_eq!(secrets["jwt_secret"].as_str().unwrap().len(), 64);
    assert!(gw.wait_for_log("generated development secrets"));
}

#[test]
fn configuration_errors_exit_non_zero_before_listening() {
    if gateway_only("courier up's start-up errors") {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let cases: Vec<(String, &str)> = vec![
        ("spin_manifest_version = 2\n[application]\nname = 1\n".into(), "invalid manifest"),
        (
            "spin_manifest_version = 2\n[application]\nname = \"a\"\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"c\"\n[component.c]\nsource = \"missing.wasm\"\n".into(),
            "cannot read",
        ),
    ];
    for (text, expected) in cases {
        let path = data.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let output = courier_command(&path, data.path(), &[], &[])
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{stderr}");
        assert!(String::from_utf8_lossy(&output.stdout).is_empty());
    }
    let missing = courier_command(&data.path().join("nope.toml"), data.path(), &[], &[])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read manifest"));
}

#[test]
fn a_database_url_its_database_host_does_not_grant_stops_start_up() {
    if gateway_only("courier up's start-up errors") {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let manifest = prepared_manifest("spin.toml", data.path());
    let output = courier_command(
        &manifest,
        data.path(),
        &[
            SECRETS,
            &[(
                "SPIN_VARIABLE_DATABASE_URL",
                "postgres://courier@db.internal:5433/courier",
            )],
        ]
        .concat(),
        &[],
    )
    .output()
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for named in ["database_url", "database_host", "db.internal:5433"] {
        assert!(stderr.contains(named), "{named}: {stderr}");
    }
    assert!(
        String::from_utf8_lossy(&output.stdout).is_empty(),
        "it never listened"
    );
}

#[test]
fn port_in_use_is_a_one_line_start_up_error() {
    if gateway_only("courier up's start-up errors") {
        return;
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let data = tempfile::tempdir().unwrap();
    let manifest = prepared_manifest("spin.toml", data.path());
    let output = courier_command(&manifest, data.path(), SECRETS, &["--listen", &port])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("courier:"))
        .unwrap_or_default();
    assert!(
        line.contains(&format!("cannot listen on {port}")),
        "{stderr}"
    );
}

#[test]
fn metrics_count_requests_by_component_and_status() {
    if gateway_only("the gateway's /metrics") {
        return;
    }
    let gw = Gateway::start("spin.toml", SECRETS);
    for _ in 0..3 {
        get(&gw.url("/healthz"));
    }
    // Paths off the API reach the manifest's `/...` catch-all, the web component's
    // JSON 404.
    get(&gw.url("/nowhere"));
    // The queue drainer runs the worker now and then; wait for it to be idle.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let metrics = get(&gw.url("/metrics"));
        if metrics.body.contains("courier_instances_in_use 0")
            || std::time::Instant::now() > deadline
        {
            break metrics;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .body
            .contains("courier_requests_total{component=\"health\",status=\"200\"} 3")
    );
    assert!(
        metrics
            .body
            .contains("courier_requests_total{component=\"web\",status=\"404\"} 1")
    );
    assert!(
        metrics
            .body
            .contains("courier_request_duration_seconds_count{component=\"health\"} 3")
    );
    assert!(metrics.body.contains("courier_instances_in_use 0"));
}

#[test]
fn logs_carry_request_fields_and_never_the_token() {
    if gateway_only("the gateway's logs") {
        return;
    }
    let gw = Gateway::start("spin.toml", SECRETS);
    let token = "Bearer secret-token-value-must-not-be-logged";
    call(
        "GET",
        &gw.url("/healthz?x=1"),
        &[("authorization", token)],
        None,
    );
    assert!(gw.wait_for_log("path=\"/healthz\""));
    let log = gw.log().join("\n");
    let line = log
        .lines()
        .find(|l| l.contains("path=\"/healthz\""))
        .expect("request log line");
    for field in [
        "request_id=",
        "component=\"health\"",
        "method=GET",
        "status=200",
        "latency_us=",
    ] {
        assert!(line.contains(field), "{field} missing in {line}");
    }
    assert!(!log.contains("secret-token-value"));
}

#[test]
fn oversized_body_is_refused_with_413() {
    if gateway_only("--max-body-bytes") {
        return;
    }
    let gw = Gateway::start_with("spin.toml", SECRETS, &["--max-body-bytes", "1024"]);
    let reply = call("POST", &gw.url("/healthz"), &[], Some(&[b'x'; 4096]));
    assert_eq!(reply.status, 413);
    assert_eq!(reply.code(), "too_large");
}

/// `courier drain` against a running app (either host): the app's secret drains until
/// nothing is due and exits 0; a wrong one is refused at once, non-zero, saying why.
#[test]
fn courier_drain_drains_with_the_secret_and_stops_at_a_refused_one() {
    let gw = Gateway::start("spin.toml", SECRETS);
    let drain = |secret: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_courier"))
            .args(["drain", "--url", &gw.base, "--secret", secret])
            .env_remove("SPIN_VARIABLE_INTERNAL_SECRET")
            .output()
            .unwrap()
    };
    let ok = drain(crate::client::INTERNAL_SECRET);
    assert!(ok.status.success(), "{ok:?}");
    let refused = drain("not-the-secret");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("401") || stderr.contains("403"), "{stderr}");
}
