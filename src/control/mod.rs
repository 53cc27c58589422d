//! The control room: how people and the fleet reach a running gateway.
//!
//! - [`web`]: the HTTPS server (rustls; a self-signed certificate made on first start unless
//!   one is configured). Today it serves the unauthenticated probes `/healthz`, `/readyz`
//!   and `/metrics`; the page and the authenticated REST API come next.
//! - [`fleet`]: the MQTT link to the fleet console: retained `status` (`online`, with
//!   `offline` as the last will, so a dead gateway shows at once) and retained `health`;
//!   [`commands`]: signed fleet commands (`cmd/{name}`) with their results.

pub mod api;
pub mod auth;
pub mod commands;
pub mod edit;
pub mod fleet;
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
