//! The contracts between a watchpost gateway and the fleet console (DESIGN.md, "MQTT topics",
//! "Alert payload"): both binaries build and read these messages with these types, so a
//! contract cannot drift between them.
//!
//! # Layout
//! - [`topics`]: the MQTT topic names, the console's subscription filters, and the parser
//!   that tells which gateway and which kind of message a topic is.
//! - [`event`]: the alert bodies (`alert.fired`, `alert.ended`, …), the same bytes on every
//!   sink.
//! - [`health`]: the retained `health` document a gateway publishes.
//! - [`control`]: signed fleet commands and config pushes: the envelope, the signature, and
//!   the gate a gateway admits them through.
//! - [`signing`]: Standard Webhooks and hex webhook signatures (gateway sinks, console alarms).
//! - [`tls`]: the rustls client set-up of every `mqtts://` connection.
//! - [`throttle`]: a log line at most once per period (floods are counted, not logged).
//!
//! Nothing here links GStreamer, tract or a database: the console runs on an ordinary server.

pub mod control;
pub mod event;
pub mod health;
pub mod signing;
pub mod throttle;
pub mod tls;
pub mod topics;
