//! Webhooks end to end, against a receiver in the test (a std `TcpListener`): the
//! admin routes, events delivered signed (checked with the receiver's own HMAC, as
//! the README tells subscribers to), retries until a 2xx, and a receiver that never
//! answers leaving 1:1 send latency as it was.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::client::{Api, Expect, text_to_user, user_token};

const SECRET: &str = "whsec-e2e-0123456789abcdef";
/// How long the webhooks component waits for one delivery.
const TIMEOUT_MS: u64 = 1000;

/// A gateway whose webhooks may also reach plain-http loopback receivers.
fn api() -> Api {
    Api::start_with(&[
        (
            "SPIN_VARIABLE_WEBHOOK_ALLOWED_ORIGINS",
            "https://*:*,http://127.0.0.1:*",
        ),
        ("SPIN_VARIABLE_WEBHOOK_EXTRA_ORIGIN", "http://127.0.0.1:*"),
        ("SPIN_VARIABLE_WEBHOOK_TIMEOUT_MS", &TIMEOUT_MS.to_string()),
        // The latency test sends faster than a person.
        ("SPIN_VARIABLE_RATE_PER_USER_PER_SEC", "1000"),
        ("SPIN_VARIABLE_RATE_BURST", "1000"),
    ])
}

/// What the receiver answers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    /// 500 to the first `n` requests, then 200.
    FailFirst(usize),
    /// Reads the request and never answers (until the test ends).
    Hang,
}

/// One request as received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    at: Instant,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| v.as_str())
    }

    pub(crate) fn event(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON event")
    }
}

/// A webhook subscriber on 127.0.0.1, one thread per connection.
pub(crate) struct Receiver {
    pub(crate) url: String,
    seen: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    pub(crate) fn start(mode: Mode) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hooks/courier", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
        let stop: Arc<AtomicBool> = Arc::default();
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                let (seen, stop) = (seen2.clone(), stop2.clone());
                std::thread::spawn(move || serve(stream, mode, &seen, &stop));
            }
        });
        Receiver { url, seen, stop }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits up to 20 s for at least `n` requests.
    fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "{} of {n} requests", got.len());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(
            self.url
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap(),
        );
    }
}

fn serve(stream: TcpStream, mode: Mode, seen: &Mutex<Vec<Received>>, stop: &AtomicBool) {
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((k, v)) = trimmed.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        match read_chunked(&mut reader) {
            Some(body) => body,
            None => return,
        }
    } else {
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        body
    };
    let index = {
        let mut seen = seen.lock().unwrap();
        seen.push(Received {
            headers,
            body,
            at: Instant::now(),
        });
        seen.len()
    };
    let status = match mode {
        Mode::Hang => {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            return;
        }
        Mode::FailFirst(n) if index <= n => "500 Internal Server Error",
        Mode::FailFirst(_) => "200 OK",
    };
    let _ = (&stream).write_all(
        format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes(),
    );
}

/// A chunked body (RFC 9112 §7.1), trailers skipped.
fn read_chunked(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        if size == 0 {
            let mut line = String::new();
            while reader.read_line(&mut line).ok()? > 2 {
                line.clear();
            }
            return Some(body);
        }
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).ok()?;
        body.extend_from_slice(&chunk[..size]);
    }
}

/// Checks a request the way the README tells a subscriber to: HMAC-SHA256 of
/// `"<t>.<body>"` with the secret, equal to a `v1` of the header, `t` within 5 minutes.
fn verify(req: &Received) {
    let header = req.header("x-courier-signature");
    let mut t = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v.to_string()),
            Some(("v1", v)) => tags.push(v.to_string()),
            _ => {}
        }
    }
    let t = t.expect("t");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(&req.body);
    let expected = hex(&mac.finalize().into_bytes());
    assert!(tags.contains(&expected), "signature {header}");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - t.parse::<i64>().unwrap()).abs() <= 300, "t is fresh");
    assert_eq!(req.header("content-type"), "application/json");
    let event = req.event();
    assert_eq!(req.header("x-courier-event"), event["type"]);
    assert_eq!(req.header("x-courier-event-id"), event["id"]);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hook(api: &Api, id: &str, org: &str, url: &str, events: Value) -> Value {
    api.admin(
        "PUT",
        &format!("/v1/webhooks/{id}"),
        &json!({ "org": org, "url": url, "events": events, "secret": SECRET }),
    )
    .expect_json(200)
}

/// Webhook jobs in the gateway's database, by state.
fn webhook_jobs(api: &Api) -> Vec<String> {
    api.gw
        .db()
        .query("SELECT state FROM jobs WHERE kind = 'webhook'", &[])
        .unwrap()
        .into_iter()
        .map(|r| r[0].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn message_events_reach_a_receiver_signed_and_verifiable() {
    let api = api();
    let receiver = Receiver::start(Mode::FailFirst(0));
    for (uid, org) in [("ann", "acme"), ("bob", "acme")] {
        api.user(uid, org);
    }
    let stored = hook(
        &api,
        "crm",
        "acme",
        &receiver.url,
        json!(["message.sent", "message.recalled", "message.read"]),
    );
    assert!(!stored.to_string().contains(SECRET));
    let sent = api
        .send_as("ann", &text_to_user("w1", "bob", "for the record"))
        .expect_json(201);
    let msg_id = sent["msg_id"].as_str().unwrap();
    let read = json!({ "msg_ids": [msg_id] }).to_string();
    api.call(
        "POST",
        "/v1/receipts",
        Some(&user_token("bob")),
        Some(read.as_bytes()),
    )
    .expect_json(200);
    api.call(
        "POST",
        &format!("/v1/messages/{msg_id}/recall"),
        Some(&user_token("ann")),
        None,
    )
    .expect_json(200);
    let got = receiver.wait_for(3);
    for req in &got {
        verify(req);
    }
    let mut events: Vec<Value> = got.iter().map(Received::event).collect();
    events.sort_by_key(|e| e["type"].as_str().unwrap().to_string());
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["message.read", "message.recalled", "message.sent"]);
    let sent_event = &events[2];
    assert_eq!(sent_event["id"], format!("msg:{msg_id}:sent"));
    assert_eq!(sent_event["data"]["content"]["text"], "for the record");
    assert_eq!(sent_event["data"]["seq"], sent["seq"]);
    assert_eq!(events[0]["data"]["reader"], "bob");
    // Every delivery answered 2xx: nothing left queued, nothing delivered twice.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(receiver.received().len(), 3);
    assert!(webhook_jobs(&api).is_empty());
}

#[test]
fn a_failing_receiver_gets_the_same_event_again_with_backoff_until_it_answers_2xx() {
    let api = api();
    let receiver = Receiver::start(Mode::FailFirst(2));
    api.user("ann", "acme");
    api.user("bob", "acme");
    hook(&api, "crm", "acme", &receiver.url, json!(["message.sent"]));
    api.send_as("ann", &text_to_user("w1", "bob", "retry me"))
        .expect_json(201);
    let got = receiver.wait_for(3);
    let ids: Vec<&str> = got.iter().map(|r| r.header("x-courier-event-id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let attempts: Vec<&str> = got.iter().map(|r| r.header("x-courier-attempt")).collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    for req in &got {
        verify(req);
    }
    // Backoff: about 1 s, then about 2 s (plus up to 50 % jitter).
    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[0] >= Duration::from_millis(900), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(1900), "{gaps:?}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.received().len(), 3, "no delivery after the 2xx");
    assert!(webhook_jobs(&api).is_empty());
}

/// One 1:1 send; its latency.
fn timed_send(api: &Api, from: &str, to: &str, cmid: &str) -> Duration {
    let body = text_to_user(cmid, to, "ping");
    let started = Instant::now();
    api.send(&user_token(from), &body).expect_json(201);
    started.elapsed()
}

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

#[test]
fn a_receiver_that_never_answers_does_not_slow_one_to_one_sends() {
    let api = api();
    let receiver = Receiver::start(Mode::Hang);
    for (uid, org) in [
        ("ann", "acme"),
        ("bob", "acme"),
        ("cy", "beta"),
        ("di", "beta"),
    ] {
        api.user(uid, org);
    }
    for i in 0..10 {
        timed_send(&api, "cy", "di", &format!("warm-{i}"));
    }
    // acme's sends each queue a delivery to the hanging receiver; beta's, none.
    // Interleaved, so both see the same load on the machine.
    hook(
        &api,
        "audit",
        "acme",
        &receiver.url,
        json!(["message.sent"]),
    );
    let (mut base, mut hanging) = (Vec::new(), Vec::new());
    for i in 0..100 {
        base.push(timed_send(&api, "cy", "di", &format!("base-{i}")));
        hanging.push(timed_send(&api, "ann", "bob", &format!("hang-{i}")));
        // Paced like people, so the drainer runs beside the sends.
        std::thread::sleep(Duration::from_millis(20));
    }
    // The deliveries were being tried (and hung) while the sends ran.
    let attempted = receiver.received().len();
    assert!(attempted > 0, "the receiver was called");
    let (base_median, hang_median) = (median(base.clone()), median(hanging.clone()));
    let (base_max, hang_max) = (
        base.iter().max().copied().unwrap(),
        hanging.iter().max().copied().unwrap(),
    );
    println!(
        "1:1 send latency: without webhook median {base_median:?} max {base_max:?}; \
         with a hanging webhook median {hang_median:?} max {hang_max:?} \
         ({attempted} deliveries attempted, timeout {TIMEOUT_MS} ms)"
    );
    assert!(
        hang_median <= base_median * 2 + Duration::from_millis(10),
        "median {hang_median:?} vs {base_median:?}"
    );
    // A send that waited for the receiver would take the whole timeout.
    assert!(
        hang_max < Duration::from_millis(TIMEOUT_MS).max(base_max * 2),
        "no send waited for the webhook: {hang_max:?}"
    );
    // The hanging deliveries are failures, retried: still queued, not lost.
    assert!(!webhook_jobs(&api).is_empty());
}

#[test]
fn webhook_admin_routes_need_an_admin_and_refuse_bad_input_changing_nothing() {
    let api = api();
    api.user("ann", "acme");
    let receiver = Receiver::start(Mode::FailFirst(0));
    let body =
        json!({ "org": "acme", "url": receiver.url, "events": ["message.read"], "secret": SECRET });
    let bytes = body.to_string();
    api.call("PUT", "/v1/webhooks/h1", None, Some(bytes.as_bytes()))
        .expect_error(401, "unauthorized");
    api.call(
        "PUT",
        "/v1/webhooks/h1",
        Some(&user_token("ann")),
        Some(bytes.as_bytes()),
    )
    .expect_error(403, "forbidden");
    api.unchanged(&["ann"], || {
        for bad in [
            json!({ "org": "acme", "url": "http://10.1.2.3/x", "events": ["message.read"], "secret": SECRET }),
            json!({ "org": "acme", "url": "https://worker.spin.internal/", "events": ["message.read"], "secret": SECRET }),
            json!({ "org": "acme", "url": receiver.url, "events": [], "secret": SECRET }),
            json!({ "org": "acme", "url": receiver.url, "events": ["message.read"], "secret": "short" }),
            json!({ "url": receiver.url, "events": ["message.read"], "secret": SECRET }),
        ] {
            api.admin("PUT", "/v1/webhooks/h1", &bad)
                .expect_error(400, "bad_request");
        }
        api.admin("GET", "/v1/webhooks/h1", &Value::Null)
            .expect_error(404, "not_found");
    });
    let stored = api.admin("PUT", "/v1/webhooks/h1", &body).expect_json(200);
    assert_eq!(stored["events"], json!(["message.read"]));
    assert_eq!(
        api.admin("GET", "/v1/webhooks/h1", &Value::Null)
            .expect_json(200),
        stored
    );
    let listed = api
        .admin("GET", "/v1/webhooks?org=acme", &Value::Null)
        .expect_json(200);
    assert_eq!(listed, json!({ "webhooks": [stored] }));
    let post = api.admin("POST", "/v1/webhooks/h1", &Value::Null);
    post.expect_error(405, "method_not_allowed");
    assert_eq!(post.header("allow"), Some("GET, PUT, DELETE"));
    let reply = api.admin("DELETE", "/v1/webhooks/h1", &Value::Null);
    assert_eq!(reply.status, 204);
    let empty = api
        .admin("GET", "/v1/webhooks", &Value::Null)
        .expect_json(200);
    assert_eq!(empty, json!({ "webhooks": [] }));
}
