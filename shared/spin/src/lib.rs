//! courier's Spin glue: everything a component needs from the platform, so that the
//! component crates stay thin (parse → core → respond).
//!
//! # Layout
//! - [`sqlite`]: the store's SQL executor over `fermyon:spin/sqlite`.
//! - [`http`]: JSON and error responses in the API shape, CORS, request helpers.
//! - [`env`]: the clock, randomness and variables.

pub mod env;
pub mod http;
pub mod sqlite;
