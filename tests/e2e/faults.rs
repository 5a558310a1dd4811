//! Fault injection (`COURIER_FAULTS`, see `infra/gateway/src/faults.rs`) end to end:
//! a bad spec stops `courier up` before it binds; the probe guest sees injected SQL
//! and outbound faults; and the invariant test — a mixed workload of sends, retries,
//! read receipts and recalls against a gateway whose SQL calls fail and lag at
//! random, then a restart without SQL faults on the same data (outbound requests
//! still failing, so webhook deliveries are retried) — shows that every request that
//! got a 2xx took effect exactly once (streams, rows, webhook events), every one that
//! got an error changed nothing, and every stream is dense.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

use courier_store::sql::Sql;
use serde_json::{Value, json};

use crate::client::{INTERNAL_SECRET, JWT_SECRET, admin_token};
use crate::harness::{
    Gateway, call, courier_command, gateway_only, get, prepared_manifest, store_at,
};
use crate::webhooks::{Mode, Receiver};

mod verify;
mod workload;

use self::verify::count;
use self::workload::{GROUP, Op, USERS, request};

const PROBE: &str = "tests/fixtures/probe.toml";

#[test]
fn an_invalid_fault_spec_stops_courier_up_before_it_binds() {
    if gateway_only("fault injection") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let manifest = prepared_manifest("spin.toml", dir.path());
    for (spec, reason) in [
        ("sql=1.5", "between 0 and 1"),
        ("sq=0.1", "unknown knob `sq`"),
        ("latency=20-10ms", "a <= b"),
    ] {
        let mut child = courier_command(&manifest, dir.path(), &[("COURIER_FAULTS", spec)], &[])
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("courier up with COURIER_FAULTS={spec} did not exit");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let (mut out, mut err) = (String::new(), String::new());
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(!status.success(), "{spec}: {status}");
        assert!(err.contains(reason), "{spec}: {err}");
        assert!(!out.contains("listening"), "{spec} bound a port: {out}");
    }
}

#[test]
fn the_probe_sees_injected_sql_and_outbound_faults_and_metrics_count_them() {
    if gateway_only("fault injection") {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let gw = Gateway::start(
        PROBE,
        &[
            ("SPIN_VARIABLE_SECRET", "probe-secret"),
            ("SPIN_VARIABLE_ECHO_PORT", &port.to_string()),
            ("COURIER_FAULTS", "sql=1,outbound=1,seed=5"),
        ],
    );
    assert!(gw.wait_for_log("fault injection is ON"), "{:?}", gw.log());
    let outbound = get(&gw.url(&format!("/probe/outbound?url=http://127.0.0.1:{port}/x"))).json();
    assert!(
        outbound["error"]
            .as_str()
            .unwrap_or_default()
            .contains("ConnectionRefused"),
        "{outbound}"
    );
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "the request was not sent");
    // In-process calls have their own knob (`internal`, 0 here): the call is made,
    // and the health component answers 503 because every SQL call fails.
    let internal =
        get(&gw.url("/probe/outbound?url=http://private-health.spin.internal/healthz")).json();
    assert_eq!(internal["status"], 503, "{internal}");
    let sqlite = get(&gw.url("/probe/sqlite")).json();
    assert_eq!(sqlite["open_default"], "ok", "opening is not a statement");
    for step in ["create", "insert", "rollback", "commit"] {
        let seen = sqlite[step].as_str().unwrap_or_default();
        assert!(
            seen.starts_with("io: ") && seen.contains("(injected fault)"),
            "{step}: {sqlite}"
        );
    }
    let metrics = get(&gw.url("/metrics")).body;
    assert!(
        metrics.contains("courier_faults_injected_total{kind=\"outbound\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("courier_faults_injected_total{kind=\"internal\"} 0\n"),
        "{metrics}"
    );
    assert!(injected(&metrics, "sql") >= 6, "{metrics}");
}

/// The count of `courier_faults_injected_total{kind}` on a `/metrics` page.
fn injected(metrics: &str, kind: &str) -> u64 {
    let prefix = format!("courier_faults_injected_total{{kind=\"{kind}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in {metrics}"))
}

// ---------------------------------------------------------------------------------
// The invariant test.

/// The faults of the workload's gateway (the seed is added); `COURIER_TEST_FAULTS`
/// replaces them.
const FAULTS: &str = "sql=0.04,latency=0-3ms,outbound=0.3";
/// The faults of the gateway that drains and is checked: outbound HTTP only.
const OUTBOUND_FAULTS: &str = "outbound=0.5";

fn env<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("SPIN_VARIABLE_JWT_SECRET", JWT_SECRET),
        ("SPIN_VARIABLE_INTERNAL_SECRET", INTERNAL_SECRET),
        // The workload is about faults, not rate limits.
        ("SPIN_VARIABLE_RATE_PER_USER_PER_SEC", "10000"),
        ("SPIN_VARIABLE_RATE_BURST", "10000"),
        // The webhook receiver is a plain-http loopback server.
        (
            "SPIN_VARIABLE_WEBHOOK_ALLOWED_ORIGINS",
            "https://*:*,http://127.0.0.1:*",
        ),
        ("SPIN_VARIABLE_WEBHOOK_EXTRA_ORIGIN", "http://127.0.0.1:*"),
    ];
    env.extend_from_slice(extra);
    env
}

#[test]
fn under_sql_faults_every_answer_tells_the_truth_after_a_restart() {
    if gateway_only("fault injection") {
        return;
    }
    let seed: u64 = std::env::var("COURIER_TEST_FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    eprintln!("faults invariant: seed {seed} (COURIER_TEST_FAULTS_SEED replays it)");
    let started = Instant::now();

    // The directory, without faults.
    let mut setup = Gateway::start_in("spin.toml", tempfile::tempdir().unwrap(), &env(&[]), &[]);
    let admin = admin_token();
    for u in USERS {
        let (status, body) = request(
            &setup.base,
            "PUT",
            &format!("/v1/users/{u}"),
            &admin,
            Some(&json!({ "name": u, "org": "faults" })),
        );
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = request(
        &setup.base,
        "PUT",
        &format!("/v1/groups/{GROUP}"),
        &admin,
        Some(&json!({ "name": "F", "owner": "fa", "members": USERS })),
    );
    assert_eq!(status, 200, "{body}");
    // Every event goes to a receiver that always answers 200; the faults refuse 30 %
    // of the deliveries before they are sent, so they are retried.
    let receiver = Receiver::start(Mode::FailFirst(0));
    let (status, body) = request(
        &setup.base,
        "PUT",
        "/v1/webhooks/fw",
        &admin,
        Some(&json!({
            "org": "faults",
            "url": receiver.url,
            "events": ["message.sent", "message.recalled", "message.read"],
            "secret": "whsec-faults-0123456789",
        })),
    );
    assert_eq!(status, 200, "{body}");
    let data = setup.take_data();
    drop(setup);

    // The workload, with faults.
    let faults = std::env::var("COURIER_TEST_FAULTS").unwrap_or_else(|_| FAULTS.to_string());
    let spec = format!("{faults},seed={seed}");
    let mut faulty = Gateway::start_in("spin.toml", data, &env(&[("COURIER_FAULTS", &spec)]), &[]);
    let workload_started = Instant::now();
    let log = workload::run(&faulty.base, seed);
    // Drains under faults for a while, as the gateway's timer would, so the queue's
    // own retries meet faults too. The webhook deliveries' drain is called directly as
    // well: the worker reaches it only after a drain without a fault.
    let mut drains: BTreeMap<(&str, u16), usize> = BTreeMap::new();
    let drains_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < drains_until {
        for route in ["/internal/drain", "/internal/webhooks/drain"] {
            let reply = call(
                "POST",
                &faulty.url(route),
                &[("x-internal-secret", INTERNAL_SECRET)],
                Some(b""),
            );
            *drains.entry((route, reply.status)).or_default() += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let metrics = get(&faulty.url("/metrics")).body;
    let sql_faults = injected(&metrics, "sql");
    let outbound_faults = injected(&metrics, "outbound");
    let workload_time = workload_started.elapsed();
    let data = faulty.take_data();
    drop(faulty);

    // Restart without SQL faults; the jobs leased by drains that failed are freed (as
    // their leases' expiry would, 30 s later). Half of the outbound requests still
    // fail, so webhook deliveries are retried; each round makes every waiting job due
    // at once (their backoffs would take minutes), until the queue is empty.
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    {
        let db = store_at(data.path());
        db.execute(
            "UPDATE jobs SET run_at = 0, locked_until = 0, lease = NULL WHERE state = 'ready'",
            &[],
        )
        .unwrap();
    }
    let outbound_spec = format!("{OUTBOUND_FAULTS},seed={seed}");
    let gw = Gateway::start_in(
        "spin.toml",
        data,
        &env(&[("COURIER_FAULTS", &outbound_spec)]),
        &[],
    );
    let db = gw.db();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut rounds = 0;
    loop {
        db.execute(
            "UPDATE jobs SET run_at = 0 WHERE state = 'ready' AND locked_until <= ?",
            &[now_ms().into()],
        )
        .unwrap();
        let drained = call(
            "POST",
            &gw.url("/internal/drain"),
            &[("x-internal-secret", INTERNAL_SECRET)],
            Some(b""),
        );
        rounds += 1;
        let pending = count(
            &*db,
            "SELECT count(*) FROM jobs WHERE state = 'ready' AND id <> 'retention'",
            &[],
        );
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} jobs still pending; the last drain: {} {}",
            drained.status,
            drained.body
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let outbound_faults = outbound_faults + injected(&get(&gw.url("/metrics")).body, "outbound");
    assert_eq!(
        count(&*db, "SELECT count(*) FROM jobs WHERE state = 'dead'", &[]),
        0,
        "dead-lettered jobs"
    );

    let deliveries: Vec<Value> = receiver.received().iter().map(|r| r.event()).collect();
    let summary = verify::effects(&gw.base, &*db, &log, &deliveries);

    // The figures (docs/RELIABILITY.md).
    let mut outcomes: BTreeMap<(&str, u16), usize> = BTreeMap::new();
    let mut accepted = 0;
    for op in &log {
        let (kind, status) = match op {
            Op::Send {
                status,
                accepted: a,
                ..
            } => {
                accepted += usize::from(*a);
                ("send", *status)
            }
            Op::Receipt { status, .. } => ("receipt", *status),
            Op::Recall { status, .. } => ("recall", *status),
        };
        *outcomes.entry((kind, status)).or_default() += 1;
    }
    let store = if courier_store::testdb::postgres_url().is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    eprintln!(
        "faults invariant ({store}, {spec}): {sql_faults} SQL and {outbound_faults} outbound faults \
         injected; {} requests in {:.1} s \
         (workload); outcomes by (kind, status): {outcomes:?}; {accepted} sends answered `accepted`; \
         {} distinct client_msg_ids, {} stored; {} webhook events in {} deliveries; \
         drains under SQL faults by (route, status): {drains:?}; {rounds} drain rounds after \
         the restart; total {:.1} s",
        log.len(),
        workload_time.as_secs_f64(),
        summary.ids,
        summary.stored,
        summary.events,
        deliveries.len(),
        started.elapsed().as_secs_f64(),
    );
    assert!(
        sql_faults > 0 && outbound_faults > 0,
        "no fault was injected"
    );
    assert!(
        outcomes.iter().any(|((_, s), _)| *s >= 500),
        "no request failed: the faults did not reach the handlers"
    );
    assert!(
        outcomes
            .iter()
            .any(|((k, s), _)| *k == "send" && (200..300).contains(s)),
        "no send succeeded"
    );
}
