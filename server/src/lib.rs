//! # etalon-server
//!
//! Etalon's HTTP service (`etalon serve`, `docs/FORMATS.md` "HTTP service"): organisations with hashed
//! API keys, versioned banks, campaigns with join codes, and adaptive sessions that resume anywhere and
//! never lose an acknowledged answer — a thin front end on the application layer
//! (`etalon-assessment`), stored in SQLite or PostgreSQL.
//!
//! - [`storage`]: the one storage interface and its two databases, with versioned migrations;
//! - [`service`]: the operations (start, answer, result, reports…), independent of HTTP;
//! - [`api`]: routes, JSON errors, the OpenAPI document; [`mod@serve`]: the server process;
//! - [`ags`]: grade passback to the LMS's gradebook through a durable outbox;
//! - [`cat`]: the 1EdTech Computer Adaptive Testing 1.0 REST binding;
//! - [`lti`]: LTI 1.3 launches from an LMS (platform registration, OIDC login, id_token validation);
//! - [`web`]: the web pages (participants and organisations), on the same service;
//! - [`loadgen`]: the load generator behind `etalon bench serve`.

pub mod ags;
pub mod api;
pub mod auth;
pub mod cat;
pub mod error;
pub mod loadgen;
pub mod lti;
pub mod outbox;
pub mod serve;
pub mod service;
pub mod storage;
pub mod web;
pub mod xapi;

pub use error::{ApiError, ApiResult};

/// Make ring the process's TLS cryptography (rustls), once. The service's outgoing HTTPS (platform
/// keys, grade passback) needs it; so does any other `reqwest` client built in the same process, since
/// the crates' features are shared: call it before building one (the service calls it itself).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
pub use serve::{ServeOptions, serve};
pub use service::Service;
