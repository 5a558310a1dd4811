//! Fake push vendors for the end-to-end tests: one loopback HTTP/1.1 server standing in
//! for a Web Push service, APNs, FCM (with its OAuth token endpoint) and Huawei Push Kit
//! (with its OAuth endpoint). Each route checks a request the way the real vendor does
//! (signatures, headers, encryption, payload shape), records what it accepted, and
//! answers from a per-target script (default: success). A request that fails a check is
//! answered like the vendor answers it (400/401/403/…) and recorded as a check failure;
//! the tests assert there are none.
//!
//! The keys and credentials are made from fixed bytes; [`FakeVendors::env`] is the
//! gateway configuration pointing every vendor here.
//!
//! # Layout
//! - this file: the server, its state, the tests' view.
//! - `identities`: the fixed keys and credentials, and the gateway variables naming them.
//! - `checks`: what each vendor checks, and what it reads out of an accepted request.
//! - `wire`: the HTTP/1.1 reading and writing.
//! - `refusals`: the fakes refuse what the vendors refuse.
//! - `apns_h2`: APNs over TLS and HTTP/2 only, as Apple serves it.

mod apns_h2;
mod checks;
mod identities;
mod refusals;
mod wire;

use std::collections::{HashMap, VecDeque};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use courier_push::p256::SecretKey;
use courier_push::p256::elliptic_curve::sec1::ToEncodedPoint as _;
use serde_json::{Value, json};

pub use identities::{
    APNS_KEY_ID, APNS_TEAM, APNS_TOPIC, FCM_CLIENT_EMAIL, FCM_PROJECT, HMS_APP_ID,
    HMS_CALLBACK_KEY, HMS_CALLBACK_USER, HMS_CLIENT_SECRET, Identities, PUSH_CALLBACK_SECRET,
};
pub use wire::Answer;

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// What a request was addressed to: a vendor's device, or an OAuth endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A Web Push subscription, by the id in its endpoint (`/wp/<id>`).
    WebPush(String),
    /// An APNs device token.
    Apns(String),
    /// An FCM registration token.
    Fcm(String),
    /// An HMS token (the first of the send).
    Hms(String),
    /// FCM's token endpoint (`POST /token`).
    FcmOAuth,
    /// Huawei's token endpoint (`POST /oauth2/v3/token`).
    HmsOAuth,
}

impl Target {
    /// Whether this is a push to a device (not a token request).
    pub fn is_push(&self) -> bool {
        !matches!(self, Target::FcmOAuth | Target::HmsOAuth)
    }
}

/// A request that passed the vendor's checks, and how it was answered.
#[derive(Debug, Clone)]
pub struct Seen {
    pub target: Target,
    pub at: Instant,
    /// The HTTP version it came in.
    pub version: http::Version,
    /// The status answered.
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The notification as the app receives it, the same shape for every vendor:
    /// `{"type", "uid", "conv", "msg_id", "unread": n, "sender"?, "text"?}`.
    pub notification: Value,
    /// The JSON body (APNs payload, FCM or HMS message); `null` for Web Push and OAuth.
    pub body: Value,
}

impl Seen {
    /// The first header named `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A Web Push subscription's user-agent keys.
struct SubscriptionKeys {
    private: SecretKey,
    auth: [u8; 16],
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    failures: Vec<String>,
    scripts: HashMap<Target, VecDeque<Answer>>,
    subscriptions: HashMap<String, SubscriptionKeys>,
    /// Access tokens handed out, and by which endpoint.
    access_tokens: HashMap<String, Target>,
    counter: u64,
}

impl State {
    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }
}

struct Shared {
    ids: Identities,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The running fake; stops accepting when dropped.
pub struct FakeVendors {
    shared: Arc<Shared>,
    port: u16,
    stop: Arc<AtomicBool>,
    /// APNs over TLS and HTTP/2, if started ([`FakeVendors::start_with_apns_h2`]).
    apns_h2: Option<apns_h2::ApnsH2>,
}

impl FakeVendors {
    /// Starts the server on a free loopback port.
    pub fn start() -> FakeVendors {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake vendors");
        let port = listener.local_addr().expect("address").port();
        let shared = Arc::new(Shared {
            ids: Identities::new(&format!("http://127.0.0.1:{port}")),
            state: Mutex::default(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (server, stopped) = (Arc::clone(&shared), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let server = Arc::clone(&server);
                std::thread::spawn(move || serve(&server, stream));
            }
        });
        FakeVendors {
            shared,
            port,
            stop,
            apns_h2: None,
        }
    }

    /// [`FakeVendors::start`], with APNs served over TLS and HTTP/2 only (the other
    /// vendors stay on plain HTTP/1.1); [`FakeVendors::apns_runtime_config`] is how the
    /// app host trusts its certificate.
    pub fn start_with_apns_h2() -> FakeVendors {
        let mut fake = FakeVendors::start();
        fake.apns_h2 = Some(apns_h2::ApnsH2::start(Arc::clone(&fake.shared)));
        fake
    }

    /// The TLS connections the HTTP/2 APNs accepted (0 without it).
    pub fn apns_h2_connections(&self) -> usize {
        self.apns_h2.as_ref().map_or(0, |apns| apns.connections())
    }

    /// The runtime-config file (written into `dir`) that makes `push-notify` trust the
    /// HTTP/2 APNs' certificate; `None` without it.
    pub fn apns_runtime_config(&self, dir: &std::path::Path) -> Option<std::path::PathBuf> {
        self.apns_h2.as_ref().map(|apns| apns.runtime_config(dir))
    }

    /// `http://127.0.0.1:<port>`: the base URL of every vendor.
    pub fn origin(&self) -> &str {
        &self.shared.ids.origin
    }

    /// The gateway variables (`SPIN_VARIABLE_*`) that configure every vendor to be
    /// this fake, with both callback secrets.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = self.shared.ids.env();
        if let Some(apns) = &self.apns_h2 {
            for (name, value) in &mut env {
                if name == "SPIN_VARIABLE_APNS_BASE_URL" {
                    value.clone_from(&apns.origin);
                }
            }
        }
        env
    }

    /// The VAPID public key browsers subscribe with.
    pub fn vapid_public_key(&self) -> String {
        self.shared.ids.vapid.public_key()
    }

    /// Makes the user-agent keys of a new subscription `id` (a P-256 key from fixed
    /// bytes, a 16-byte auth secret) and returns the `PUT /v1/push/devices` body.
    pub fn webpush_registration(&self, id: &str) -> Value {
        let mut state = self.shared.state();
        let n = u8::try_from(state.subscriptions.len() + 0x30).expect("under 200 subscriptions");
        let private = SecretKey::from_slice(&[n; 32]).expect("valid scalar");
        let auth = [n ^ 0x5a; 16];
        let p256dh = private.public_key().to_encoded_point(false);
        state
            .subscriptions
            .insert(id.to_string(), SubscriptionKeys { private, auth });
        json!({
            "vendor": "webpush",
            "endpoint": format!("{}/wp/{id}", self.origin()),
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(p256dh.as_bytes()),
                "auth": URL_SAFE_NO_PAD.encode(auth),
            },
        })
    }

    /// Answers the next requests to `target` with `answers`, in order; then success.
    pub fn script(&self, target: Target, answers: impl IntoIterator<Item = Answer>) {
        self.shared
            .state()
            .scripts
            .entry(target)
            .or_default()
            .extend(answers);
    }

    /// Every push to a device that passed the checks, in arrival order.
    pub fn pushes(&self) -> Vec<Seen> {
        let state = self.shared.state();
        state
            .seen
            .iter()
            .filter(|s| s.target.is_push())
            .cloned()
            .collect()
    }

    /// The requests to `target` that passed the checks.
    pub fn seen(&self, target: &Target) -> Vec<Seen> {
        let state = self.shared.state();
        state
            .seen
            .iter()
            .filter(|s| s.target == *target)
            .cloned()
            .collect()
    }

    /// The requests that failed a vendor check, as `METHOD path: why`.
    pub fn failures(&self) -> Vec<String> {
        self.shared.state().failures.clone()
    }

    /// Asserts that every request the gateway made passed the vendor's checks.
    pub fn assert_checks_passed(&self) {
        let failures = self.failures();
        assert!(
            failures.is_empty(),
            "requests a real vendor would refuse:\n{}",
            failures.join("\n")
        );
    }
}

impl Drop for FakeVendors {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(shared: &Shared, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = match wire::read_request(&stream) {
        Ok(request) => request,
        Err(e) => {
            if e.kind() != std::io::ErrorKind::UnexpectedEof {
                shared
                    .state()
                    .failures
                    .push(format!("unreadable request: {e}"));
            }
            return;
        }
    };
    let answer = respond(shared, &request, http::Version::HTTP_11);
    std::thread::sleep(answer.delay);
    let _ = wire::write_answer(&mut stream, &answer);
}

/// Checks `request`, records it, and picks its answer.
fn respond(shared: &Shared, request: &wire::WireRequest, version: http::Version) -> Answer {
    let now = now_ms();
    let mut state = shared.state();
    let checked = match checks::check(&shared.ids, &state, request, now) {
        Ok(checked) => checked,
        Err(refusal) => {
            state.failures.push(format!(
                "{} {}: {}",
                request.method, request.path, refusal.why
            ));
            return refusal.answer;
        }
    };
    let scripted = state
        .scripts
        .get_mut(&checked.target)
        .and_then(VecDeque::pop_front);
    let answer = match scripted {
        Some(answer) => answer,
        None => {
            let n = state.next();
            match &checked.target {
                Target::WebPush(_) => Answer::status(201).header("location", &format!("/m/{n}")),
                Target::Apns(_) => Answer::status(200)
                    .header("apns-id", &format!("0e2e0000-0000-4000-8000-{n:012x}")),
                Target::Fcm(_) => Answer::json(
                    200,
                    &json!({"name": format!("projects/{FCM_PROJECT}/messages/0:{n}")}),
                ),
                Target::Hms(_) => Answer::json(
                    200,
                    &json!({"code": "80000000", "msg": "Success", "requestId": format!("e2e{n}")}),
                ),
                target @ (Target::FcmOAuth | Target::HmsOAuth) => {
                    let token = format!("e2e-access-{n}");
                    state.access_tokens.insert(token.clone(), target.clone());
                    Answer::json(
                        200,
                        &json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}),
                    )
                }
            }
        }
    };
    state.seen.push(Seen {
        target: checked.target,
        at: Instant::now(),
        version,
        status: answer.status,
        headers: request.headers.clone(),
        notification: checked.notification,
        body: checked.body,
    });
    answer
}
