//! End-to-end tests: the real `courier` gateway serving the real components over HTTP.
//!
//! # Layout
//! - `harness`: builds the components, starts gateways on port 0, HTTP helpers.
//! - `client`: the API as the tests use it — tokens, directory set-up, request bodies,
//!   a user's stream, and the "a failed request changed nothing" check.
//! - `gateway`: start-up, routing, errors, limits, metrics, shutdown (courier's spin.toml).
//! - `host_interfaces`: every sqlite/key-value/variables function and outbound HTTP,
//!   through the host-probe test guest (tests/fixtures/probe.toml).
//! - `directory`: users, groups, members, relations (admin token) and their refusals.
//! - `messaging`: `POST /v1/messages` — delivery, idempotency under concurrency, dense
//!   seqs, `sent` vs `accepted`.
//! - `send_refusals`: sends refused for their body, size, relation, recipient or rate,
//!   writing nothing.
//! - `sync`: sync and long-poll, several devices, acks, conversations, history.
//! - `routes`: what every API route shares — token checks (401), CORS, 405 and 404.
//! - `queue`: a 10,000-member fan-out across a SIGKILL; receipts and recall through
//!   the worker; the drain route's secret.
//! - `crashes`: SIGKILLs at random points of a mixed workload (a 10,000-member fan-out,
//!   retries, receipts, recalls, pushes), restarts on the same data, then every
//!   accepted request's effect exactly once.
//! - `faults`: `COURIER_FAULTS` — SQL, latency and outbound faults injected by the
//!   gateway under a mixed workload; after a restart, every 2xx took effect exactly
//!   once and every error changed nothing.
//! - `replicas`: two gateways on one PostgreSQL database, concurrent sends through
//!   both (duplicates split across them, a 10,000-member group), both draining.
//! - `openapi`: `GET /openapi.json` describes every route of spin.toml; path ids
//!   encoded as OpenAPI clients encode them reach their routes.
//! - `parking`: long-polls parked in the gateway: woken by sends, fan-out chunks,
//!   receipts and recalls (and across two gateways on PostgreSQL), freed on
//!   disconnect, refused past `--max-parked`, answered on SIGTERM, not forgeable.
//! - `connections` (gateway-only): a trickled request head closed at
//!   `--header-timeout`, `--max-connections-per-address`, abandoned polls stopping their
//!   instances at once, with `/metrics` and `/proc` figures before and after.
//! - `push`: device registration, coalesced delivery, retries, dead tokens and signed
//!   delivery receipts, against fake vendors.
//! - `vendors`: the fake Web Push service, APNs, FCM and Huawei Push Kit, checking
//!   requests as the real ones do.
//! - `quotas`: an org flooding from many users is limited by its org's bucket while
//!   another org's sends all succeed.
//! - `retention`: the worker's retention pass purges old history; sync reports the trim.
//! - `webhooks`: the admin routes, signed events at a local receiver, retries until a
//!   2xx, and a receiver that never answers leaving 1:1 send latency as it was.
//! - `hostile`: the access matrix — every route × every hostile case that applies
//!   (bad credentials, hostile bodies, paths and queries, another user's resources),
//!   each answered as documented and changing nothing.
//! - `browser`: the web client's files over HTTP, and its chat scenario in headless
//!   Chromium (tests/browser; skipped without Chromium and Node.js unless
//!   `COURIER_REQUIRE_BROWSER=1`).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod browser;
mod client;
mod connections;
mod crashes;
mod directory;
mod events;
mod faults;
mod gateway;
mod harness;
mod host_interfaces;
mod hostile;
mod messaging;
mod openapi;
mod parking;
mod push;
mod queue;
mod quotas;
mod replicas;
mod retention;
mod routes;
mod send_refusals;
mod sync;
mod vendors;
mod webhooks;
