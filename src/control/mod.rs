//! The control room: how people and the fleet reach a running gateway.
//!
//! - [`web`]: the HTTPS server (rustls; a self-signed certificate made on first start unless
//!   one is configured): the unauthenticated probes `/healthz`, `/readyz`, `/metrics`, the
//!   embedded page (`page.html`) and the REST API behind [`auth`] (one-time setup code,
//!   argon2 password, session cookies with CSRF tokens, API tokens, login rate limit).
//! - [`api`]: the config, sink-test and dead-letter endpoints, and the OpenAPI document
//!   generated from the handlers (`/api/openapi.json`).
//! - [`live`]: the one place a config changes: validate, write atomically, apply in place,
//!   version, roll back; [`edit`]: item-by-item edits and merges of the TOML text that keep
//!   the operator's comments and put back secrets shown as "(set)".
//! - [`gateway`]: the one handle the page, the API and the fleet commands act on; the actions
//!   they share (replay dead letters, restart a camera, a camera's picture) are written there.
//! - [`fleet`]: the MQTT link to the fleet console: retained `status` (`online`, with
//!   `offline` as the last will, so a dead gateway shows at once), `health`, `config/state`,
//!   `config/set`; [`commands`]: signed fleet commands (`cmd/{name}`) with their results.

pub mod api;
pub mod commands;
pub mod edit;
pub mod fleet;
pub mod gateway;
pub mod live;
pub mod web;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("web: cannot listen on {addr}: {message}")]
    Listen { addr: String, message: String },
    #[error("web certificate {path}: {message}")]
    Certificate { path: PathBuf, message: String },
    #[error("control.mqtt: {0}")]
    Mqtt(String),
}
