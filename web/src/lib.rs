//! The HTTPS front door the watchpost gateway's page and the fleet console share, so both
//! answer the same way and a fix lands in both.
//!
//! # Layout
//! - [`auth`]: who may use the page and the API: a one-time setup code, Argon2id passwords,
//!   sessions with CSRF tokens, API tokens, rate-limited sign-in, and roles.
//! - [`access`]: who a request is (bearer token or session cookie + CSRF), and whether it may
//!   change state.
//! - [`tls`]: the server certificate (the configured pair, or a self-signed one made on first
//!   start) and its rustls set-up.
//! - [`limit`]: a cap on open connections, under the TLS acceptor.
//! - [`serve`]: binds and serves a router over HTTPS with the cap, a header-read timeout, the
//!   security headers and a graceful stop.

pub mod access;
pub mod auth;
pub mod limit;
pub mod serve;
pub mod tls;

use std::path::PathBuf;

/// Why the HTTPS server could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("web certificate {path}: {message}")]
    Certificate { path: PathBuf, message: String },
    #[error("cannot listen on {addr}: {message}")]
    Listen { addr: String, message: String },
}
