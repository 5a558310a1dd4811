//! The gateway's connection handling under hostile or careless clients: a request head
//! trickled in (slowloris) is cut off by `--header-timeout`, one address cannot hold
//! more than `--max-connections-per-address`, a client that goes away stops its
//! request's instance at once, and what a burst opened (instances, pooled SQLite
//! connections, descriptors) goes away with it. All of it is the gateway's own
//! access layer, so every test here is gateway-only.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::client::{Client, SECRETS, user_token};
use crate::harness::{Gateway, gateway_only, get};

/// A gauge or counter of the gateway's `/metrics`.
pub(crate) fn metric(base: &str, name: &str) -> i64 {
    let page = get(&format!("{base}/metrics")).body;
    page.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{page}"))
}

/// Waits until `f` holds, up to `limit`; returns how long it took.
pub(crate) fn within(limit: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

/// `(open descriptors, VmRSS in KiB)` of process `pid`.
fn proc_figures(pid: u32) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc fd")
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    (fds, rss)
}

/// Descriptors of process `pid` open on its SQLite database files.
fn sqlite_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().contains("sqlite_db.db"))
        .count()
}

fn connect(base: &str) -> TcpStream {
    let socket = TcpStream::connect(base.trim_start_matches("http://")).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    socket
}

/// Reads one response head and body of `Content-Length` from `socket`.
fn read_response(socket: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_string())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return text;
            }
        }
        match socket.read(&mut buf) {
            Ok(0) => return String::from_utf8_lossy(&got).to_string(),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("reading a response: {e}"),
        }
    }
}

/// Sends `head` (the start line and header lines, each ending in CRLF) one line a
/// second, then one made-up header line a second, never ending the head; returns
/// when the gateway closed the connection (panics past 20 s) and what it answered.
pub(crate) fn trickle(base: &str, head: &[u8], what: &str) -> (Duration, String) {
    let mut socket = connect(base);
    socket.set_nonblocking(true).expect("nonblocking");
    let started = Instant::now();
    let mut lines = head.split_inclusive(|&b| b == b'\n');
    let mut answer = Vec::new();
    let closed = loop {
        let mut buf = [0u8; 1024];
        match socket.read(&mut buf) {
            Ok(0) => break started.elapsed(),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => break started.elapsed(),
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: held for 20 s"
        );
        let next = lines.next().map_or_else(
            || format!("x-slow-{}: 1\r\n", started.elapsed().as_millis()).into_bytes(),
            <[u8]>::to_vec,
        );
        if socket.write_all(&next).is_err() {
            break started.elapsed();
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    (closed, String::from_utf8_lossy(&answer).to_string())
}

#[test]
fn a_request_head_trickled_in_is_cut_off_by_the_header_timeout() {
    if gateway_only("the gateway's --header-timeout") {
        return;
    }
    let gw = Gateway::start("spin.toml", SECRETS);
    let before = metric(&gw.base, "courier_header_timeouts_total");
    // One header line a second, as a slowloris client sends them.
    let (closed, answer) = trickle(
        &gw.base,
        b"GET /healthz HTTP/1.1\r\nhost: courier\r\n",
        "a trickled request head",
    );
    eprintln!("slow request head: connection closed after {closed:?}");
    // The default --header-timeout is 5 s.
    assert!(
        closed >= Duration::from_secs(4) && closed < Duration::from_secs(8),
        "closed after {closed:?}"
    );
    assert!(
        !answer.contains("200 OK"),
        "the slow request was served: {answer}"
    );
    assert!(metric(&gw.base, "courier_header_timeouts_total") > before);
    // A client that sends its head at once is served as before.
    let mut quick = connect(&gw.base);
    quick
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: courier\r\n\r\n")
        .expect("request");
    assert!(read_response(&mut quick).starts_with("HTTP/1.1 200"));
}

#[test]
fn one_address_cannot_hold_more_than_its_connection_cap() {
    if gateway_only("the gateway's --max-connections-per-address") {
        return;
    }
    let gw = Gateway::start_with(
        "spin.toml",
        SECRETS,
        &[
            "--max-connections-per-address",
            "4",
            "--header-timeout",
            "2s",
        ],
    );
    // The harness's own pooled connection is closed once idle for the 2 s timeout.
    within(Duration::from_secs(10), "idle connections closed", || {
        std::thread::sleep(Duration::from_millis(2500));
        let mut probe = connect(&gw.base);
        probe
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: courier\r\nconnection: close\r\n\r\n")
            .expect("request");
        read_response(&mut probe).contains("courier_connections_open 1\n")
    });
    let served: Vec<TcpStream> = (0..4)
        .map(|i| {
            let mut socket = connect(&gw.base);
            socket
                .write_all(b"GET /healthz HTTP/1.1\r\nhost: courier\r\n\r\n")
                .expect("request");
            let answer = read_response(&mut socket);
            assert!(
                answer.starts_with("HTTP/1.1 200"),
                "connection {i}: {answer}"
            );
            socket
        })
        .collect();
    let mut fifth = connect(&gw.base);
    fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: courier\r\n\r\n")
        .expect("request");
    let refused = read_response(&mut fifth);
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    let lower = refused.to_ascii_lowercase();
    assert!(lower.contains("retry-after: 1"), "{refused}");
    assert!(lower.contains("connection: close"), "{refused}");
    assert!(refused.contains("\"code\":\"unavailable\""), "{refused}");
    let mut rest = Vec::new();
    let _ = fifth.read_to_end(&mut rest);
    assert!(rest.is_empty(), "the refused connection stayed open");
    // Once they close, the address may connect again. The gateway sees the closes
    // asynchronously, so a probe that races them may be refused too: count those.
    drop(served);
    let mut refused_probes = 0;
    within(Duration::from_secs(5), "the address served again", || {
        let mut probe = connect(&gw.base);
        probe
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: courier\r\nconnection: close\r\n\r\n")
            .expect("request");
        let answer = read_response(&mut probe);
        if answer.starts_with("HTTP/1.1 503") {
            refused_probes += 1;
        }
        answer.starts_with("HTTP/1.1 200")
    });
    assert_eq!(
        metric(&gw.base, "courier_connections_refused_total"),
        1 + refused_probes
    );
}

#[test]
fn abandoned_polls_free_their_instances_and_connections_at_once() {
    if gateway_only("the gateway's instances, pools and /metrics") {
        return;
    }
    // No parking: every waiting poll holds an instance and a SQLite connection, the
    // case of the attack run (1,100 polls abandoned after 0.3 s held the pool for 30 s).
    let gw = Gateway::start_with(
        "spin.toml",
        SECRETS,
        &[
            "--max-parked",
            "0",
            "--max-instances",
            "200",
            "--pool-idle",
            "1s",
        ],
    );
    let api = Client::of(&gw);
    api.user("ann", "acme");
    let pid = gw.child.id();
    let token = user_token("ann");
    let (fds_before, rss_before) = proc_figures(pid);
    let sqlite_before = sqlite_descriptors(pid);
    let polls: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut socket = connect(&gw.base);
            write!(
                socket,
                "GET /v1/sync?wait=25 HTTP/1.1\r\nhost: courier\r\nauthorization: Bearer {token}\r\n\r\n"
            )
            .expect("poll");
            socket
        })
        .collect();
    within(Duration::from_secs(10), "the polls hold instances", || {
        metric(&gw.base, "courier_instances_in_use") >= 150
    });
    std::thread::sleep(Duration::from_millis(300));
    let in_use = metric(&gw.base, "courier_instances_in_use");
    let (fds_during, rss_during) = proc_figures(pid);
    let sqlite_during = sqlite_descriptors(pid);
    drop(polls);
    let freed = within(Duration::from_secs(3), "instances freed", || {
        metric(&gw.base, "courier_instances_in_use") == 0
    });
    let healthz = get(&gw.url("/healthz"));
    assert_eq!(healthz.status, 200, "{}", healthz.body);
    let abandoned = metric(&gw.base, "courier_requests_abandoned_total");
    assert!(
        abandoned >= in_use,
        "{abandoned} abandoned of {in_use} running"
    );
    // Pooled SQLite connections past the few kept close once idle for --pool-idle.
    // (On PostgreSQL, the sessions past the few kept, likewise.)
    let shrunk = within(Duration::from_secs(10), "idle connections closed", || {
        sqlite_descriptors(pid) <= sqlite_before + 4 * 3 && proc_figures(pid).0 <= fds_before + 20
    });
    let (fds_after, rss_after) = proc_figures(pid);
    eprintln!(
        "abandoned polls: {in_use} instances in use, {fds_during} fds ({sqlite_during} on \
         sqlite_db.db), RSS {rss_during} KiB; after: instances 0 in {freed:?}, \
         {abandoned} abandoned, SQLite descriptors back in {shrunk:?}; \
         before {fds_before} fds ({sqlite_before} on sqlite_db.db), RSS {rss_before} KiB; \
         after {fds_after} fds ({} on sqlite_db.db), RSS {rss_after} KiB",
        sqlite_descriptors(pid)
    );
    assert!(
        fds_after <= fds_before + 20,
        "{fds_after} descriptors open after the burst, {fds_before} before"
    );
}
