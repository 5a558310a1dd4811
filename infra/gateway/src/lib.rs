//! courier's local gateway: a wasmtime host that serves a Spin application
//! (`spin.toml`) the way `spin up` would, on an embedded SQLite store.
//!
//! # Layout
//! - [`manifest`]: parses and validates `spin.toml` (manifest v2).
//! - [`routes`]: Spin's HTTP route matching.
//! - [`variables`]: application and component variable resolution.
//! - [`outbound`]: the `allowed_outbound_hosts` syntax and matching.
//! - [`runtime_config`]: Spin's runtime-config file (`--runtime-config-file`): its
//!   `[[client_tls]]`, used by `host::https`; Spin-only keys are refused.
//! - [`secrets`]: development secrets generated into the data directory.
//! - [`builder`]: runs the components' build commands.
//! - [`host`]: the per-request host state and the Spin interfaces given to guests, each
//!   with its pool (`host::sqlite::pool`: the embedded SQLite files;
//!   `host::postgres::pool`: PostgreSQL sessions, per connection string).
//! - [`server`]: the loaded app: engine, pre-instances, routing, limits, one store a request.
//! - [`listen`]: the HTTP listener and graceful shutdown (the only network I/O).
//! - [`drainer`]: the gateway's queue timer (calls the worker's drain route).
//! - [`drain`]: `courier drain`, the same loop over HTTP against any deployment.
//! - [`metrics`]: Prometheus metrics.
//! - [`faults`]: fault injection for proof tests (`--faults` / `COURIER_FAULTS`, off by default).
//! - [`token`]: development JWTs.
//! - [`up`]: `courier up` from flags to a serving app.

pub mod builder;
pub mod drain;
pub mod drainer;
pub mod events;
pub mod faults;
pub mod host;
pub mod idle;
pub mod listen;
pub mod manifest;
pub mod metrics;
pub mod outbound;
pub mod parking;
pub mod routes;
pub mod runtime_config;
pub mod secrets;
pub mod server;
pub mod token;
pub mod up;
pub mod variables;
