//! courier's Spin glue: everything a component needs from the platform, so that the
//! component crates stay thin (parse → core → respond).
//!
//! # Layout
//! - [`store`]: the store a component opens, chosen by the `database_url` variable.
//! - [`sqlite`]: the store's SQL executor over `fermyon:spin/sqlite`.
//! - [`postgres`]: the store's SQL executor over `spin:postgres@4.0.0`.
//! - [`http`]: JSON and error responses in the API shape, CORS, request helpers.
//! - [`route`]: a component's route table (method + path pattern → handler; 404/405).
//! - [`env`]: the clock, randomness and variables.
//! - [`outbound`]: outbound HTTP for the delivery services (a round at once, with an
//!   optional time limit per request).

pub mod env;
pub mod http;
pub mod outbound;
pub mod postgres;
pub mod route;
pub mod sqlite;
pub mod store;
