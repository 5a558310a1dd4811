//! The push benchmark: a 10,000-member group message to members who are all offline
//! with a Web Push registration, delivered through a local fake push service —
//! time from the send to the last push request, and push jobs per second (the
//! encryption and VAPID signing included). Baseline in the same run: the same
//! per-push work (RFC 8291 encryption + VAPID JWT) natively on one core, with no
//! store and no HTTP.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use courier_core::{ConvId, GroupId, MsgId, UserId};
use courier_push::Notification;
use courier_push::p256::{EncodedPoint, SecretKey};
use courier_push::webpush::{Sender, Subscription, VapidKey, decrypt};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;

use super::client::Conn;
use super::{Fixture, Row};

pub const MEMBERS: usize = 10_000;
const VAPID: [u8; 32] = [5; 32];
const AUTH: [u8; 16] = [6; 16];
const UA_KEY: [u8; 32] = [3; 32];

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The variables that point the app's Web Push at the fake service on `addr`.
pub fn variables(addr: SocketAddr) -> std::collections::BTreeMap<String, String> {
    [
        ("vapid_private_key", b64(&VAPID)),
        ("vapid_subject", "mailto:bench@example.com".into()),
        ("webpush_allow_http", "true".into()),
        ("webpush_extra_origin", format!("http://{addr}")),
        ("push_delay_ms", "0".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// What the fake push service saw.
#[derive(Default)]
struct Seen {
    count: AtomicU64,
    first: Mutex<Option<Instant>>,
    last: Mutex<Option<Instant>>,
    sample: Mutex<Option<Vec<u8>>>,
}

/// A push service answering 201 to every POST, keeping counts, arrival times and one
/// body to decrypt.
async fn serve_push_service(listener: tokio::net::TcpListener, seen: Arc<Seen>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let seen = Arc::clone(&seen);
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let seen = Arc::clone(&seen);
                async move {
                    let body = req.into_body().collect().await?.to_bytes();
                    let now = Instant::now();
                    if seen.count.fetch_add(1, Ordering::SeqCst) == 0 {
                        *seen.first.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
                        *seen.sample.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(body.to_vec());
                    }
                    *seen.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
                    hyper::Response::builder()
                        .status(201)
                        .header("location", "/m/1")
                        .body(Full::new(Bytes::new()))
                        .map_err(anyhow::Error::from)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The native baseline: encryptions + VAPID signatures per second on one core.
fn native_pushes_per_sec(subscription: &Subscription) -> Result<f64> {
    let sender = Sender::new(VapidKey::from_bytes(&VAPID)?, "mailto:bench@example.com")?;
    let n = Notification {
        user: UserId::parse("q00001")?,
        unread: 1,
        conv: ConvId::group(&GroupId::parse("everyone")?),
        msg_id: MsgId::parse("m-bench")?,
        preview: None,
    };
    let started = Instant::now();
    let mut done = 0u64;
    let mut random = [7u8; 48];
    while started.elapsed() < Duration::from_secs(3) {
        random[0] = random[0].wrapping_add(1);
        random[1] = (done % 251) as u8;
        sender.request(subscription, &n, 1_764_000_000_000, &random)?;
        done += 1;
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

pub async fn run(fixture: &Fixture, listener: std::net::TcpListener) -> Result<Vec<Row>> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let service_addr = listener.local_addr()?;
    let seen = Arc::new(Seen::default());
    tokio::spawn(serve_push_service(listener, Arc::clone(&seen)));

    println!("creating {MEMBERS} users, their Web Push registrations and a group…");
    let uids = fixture.users("q", MEMBERS, 16).await?;
    let public = SecretKey::from_slice(&UA_KEY)?.public_key();
    let p256dh = b64(EncodedPoint::from(public).as_bytes());
    let mut handles = Vec::new();
    for part in uids.chunks(MEMBERS.div_ceil(16)) {
        let tokens: Vec<(String, String)> = part
            .iter()
            .map(|uid| Ok((uid.clone(), fixture.token(uid, false)?)))
            .collect::<Result<_>>()?;
        let (addr, p256dh) = (fixture.addr, p256dh.clone());
        handles.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await?;
            for (uid, token) in tokens {
                let body = json!({"vendor": "webpush",
                    "endpoint": format!("http://{service_addr}/wp/{uid}"),
                    "keys": {"p256dh": p256dh, "auth": b64(&AUTH)}});
                let (status, _) = conn
                    .call(
                        "PUT",
                        "/v1/push/devices/browser",
                        Some(&token),
                        Some(body.to_string()),
                    )
                    .await?;
                anyhow::ensure!(status == 200, "registering {uid}: {status}");
            }
            anyhow::Ok(())
        }));
    }
    for handle in handles {
        handle.await??;
    }
    let admin = fixture.token("bench-admin", true)?;
    let mut conn = Conn::open(fixture.addr).await?;
    let body = json!({ "name": "everyone", "owner": uids[0], "members": uids }).to_string();
    let (status, _) = conn
        .call("PUT", "/v1/groups/everyone", Some(&admin), Some(body))
        .await?;
    anyhow::ensure!(status == 200, "group: {status}");

    let sender = fixture.token(&uids[0], false)?;
    let text = json!({"client_msg_id": "push-1", "to": {"group": "everyone"},
                      "content": {"type": "text", "text": "to everyone"}});
    let started = Instant::now();
    let (status, _) = conn
        .call(
            "POST",
            "/v1/messages",
            Some(&sender),
            Some(text.to_string()),
        )
        .await?;
    anyhow::ensure!(status == 201, "send: {status}");
    let expected = (MEMBERS - 1) as u64;
    while seen.count.load(Ordering::SeqCst) < expected {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "only {} of {expected} pushes arrived",
            seen.count.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first = seen
        .first
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .context("no push")?;
    let last = seen
        .last
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .context("no push")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let total = seen.count.load(Ordering::SeqCst);
    anyhow::ensure!(
        total == expected,
        "{total} pushes for {expected} offline members"
    );
    // The pushes are real: the sample decrypts to the notification.
    let sample = seen
        .sample
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .context("no sample")?;
    let plain = decrypt(&SecretKey::from_slice(&UA_KEY)?, &AUTH, &sample)?;
    let note: serde_json::Value = serde_json::from_slice(&plain)?;
    anyhow::ensure!(note["conv"] == "g:everyone", "decrypted: {note}");

    let to_last = last.duration_since(started);
    let delivery = last.duration_since(first).as_secs_f64().max(1e-6);
    let rate = (total - 1) as f64 / delivery;
    let subscription = Subscription::parse_allowing_http(
        &format!("http://{service_addr}/wp/x"),
        &p256dh,
        &b64(&AUTH),
    )?;
    let native = native_pushes_per_sec(&subscription)?;
    Ok(vec![
        Row {
            what: format!("{MEMBERS}-member message → last push request"),
            value: format!("{:.2} s", to_last.as_secs_f64()),
            baseline: "-".into(),
            ratio: "-".into(),
        },
        Row {
            what: "push jobs/s (first → last push request)".into(),
            value: format!("{rate:.0}/s"),
            baseline: format!("{native:.0}/s crypto, 1 core"),
            ratio: format!("{:.2}", rate / native),
        },
        Row {
            what: "pushes received / offline members".into(),
            value: format!("{total}"),
            baseline: format!("{expected}"),
            ratio: "1.00".into(),
        },
    ])
}
