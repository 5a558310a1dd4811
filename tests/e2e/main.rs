//! End-to-end tests: the real `courier` gateway serving the real components over HTTP.
//!
//! # Layout
//! - `harness`: builds the components, starts gateways on port 0, HTTP helpers.
//! - `gateway`: start-up, routing, errors, limits, metrics, shutdown (courier's spin.toml).
//! - `host_interfaces`: every sqlite/key-value/variables function and outbound HTTP,
//!   through the host-probe test guest (tests/fixtures/probe.toml).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod gateway;
mod harness;
mod host_interfaces;
