//! The bodies of courier's fuzz targets. Each `pub fn <name>(data: &[u8])` feeds the
//! bytes to the real parsers the components (or the gateway) call and checks their
//! properties — round trips, limits, "never accepts a signature it did not make" —
//! panicking when one does not hold. `fuzz/fuzz_targets/<name>.rs` runs it under
//! libFuzzer (nightly, `fuzz/run.sh`); `tests/corpus.rs` replays every committed input
//! of `fuzz/corpus/<name>/` on stable, so CI re-checks them with `cargo test`.
//!
//! | target           | what it parses                                                |
//! |------------------|---------------------------------------------------------------|
//! | `request_bodies` | every request body (`parse_request` of the eight body types) |
//! | `ids`            | ids, conversation ids, seqs, query strings, bearer headers    |
//! | `jwt`            | HS256 bearer token verification                               |
//! | `webpush`        | RFC 8291 decryption, subscriptions, VAPID keys and headers    |
//! | `push_answers`   | vendor answer classification and OAuth token answers          |
//! | `push_callbacks` | callback signatures (generic and HMS) and HMS receipts        |
//! | `push_routes`    | device registration and callback routes over a real store    |
//! | `manifest`       | the gateway's `spin.toml` parser and its routes               |
//! | `outbound_hosts` | `allowed_outbound_hosts`, webhook origins and URLs            |

mod answers;
mod bodies;
mod bytes;
mod callbacks;
mod gateway;
mod ids;
mod jwt;
mod push_routes;
mod webpush;

// The gateway's parsers, compiled from the gateway's own source files: depending on
// the gateway crate would build wasmtime under the fuzzer's instrumentation (a build
// of many minutes). These four files use nothing else of the gateway; they must sit
// at the crate root because they name each other as `crate::<module>`.
#[allow(dead_code, reason = "only the parsers are fuzzed")]
#[path = "../../../infra/gateway/src/manifest.rs"]
mod manifest;
#[allow(dead_code, reason = "only the parsers are fuzzed")]
#[path = "../../../infra/gateway/src/outbound.rs"]
mod outbound;
#[allow(dead_code, reason = "only the parsers are fuzzed")]
#[path = "../../../infra/gateway/src/routes.rs"]
mod routes;
#[allow(dead_code, reason = "only the parsers are fuzzed")]
#[path = "../../../infra/gateway/src/variables.rs"]
mod variables;

pub use answers::push_answers;
pub use bodies::request_bodies;
pub use callbacks::push_callbacks;
pub use gateway::{manifest, outbound_hosts};
pub use ids::ids;
pub use jwt::jwt;
pub use push_routes::push_routes;
pub use webpush::webpush;

/// A fuzz target: panics when a property does not hold for the input.
pub type Target = fn(&[u8]);

/// Every target by name, for the corpus replay.
pub const TARGETS: [(&str, Target); 9] = [
    ("request_bodies", request_bodies),
    ("ids", ids),
    ("jwt", jwt),
    ("webpush", webpush),
    ("push_answers", push_answers),
    ("push_callbacks", push_callbacks),
    ("push_routes", push_routes),
    ("manifest", manifest),
    ("outbound_hosts", outbound_hosts),
];

/// The fixed clock of every target: 2026-01-01T00:00:00Z, in Unix ms.
pub const NOW_MS: i64 = 1_767_225_600_000;
