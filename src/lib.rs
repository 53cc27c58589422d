//! watchpost: edge firmware for on-site camera gateways.
//!
//! # Layout
//!
//! An alert travels through the rooms below in this order; each room owns its types and
//! its error enum, and hands the next room a pipeline type (named in brackets).
//!
//! ```text
//! camera (RTSP) ─► video ─[Frame]─► detect ─[Detections]─► rules ─[RuleHit]─► outbox ─[OutboxRow]─► deliver
//! ```
//!
//! - [`config`]: TOML file → validated [`config::Config`]; every problem carries file, line and field.
//! - [`video`]: one GStreamer pipeline per camera (rtspsrc → decodebin → scale → appsink), reconnect,
//!   sampling to `detect_fps`, and [`video::LatestFrames`], the newest-frame-wins hand-off.
//! - [`detect`]: the ONNX detector on tract: pre-processing, inference, decoding and NMS.
//! - [`rules`]: tracks objects across frames and turns them into [`rules::RuleHit`]s: labels,
//!   median confidence, area, zones, count, dwell, schedule, cooldown, `alert.ended`; all timed
//!   by a [`clock::Clock`].
//! - [`evidence`]: the JPEG snapshot of each alert's frame, boxes and zone drawn, with retention.
//! - [`outbox`]: the commit point. SQLite (WAL, `synchronous=FULL`), one row per alert × sink;
//!   nothing is acknowledged anywhere before it is committed here.
//! - [`deliver`]: signing (Standard Webhooks, hex HMAC), the webhook sink and the retry policy;
//!   reads only from the outbox and marks rows delivered after the receiver's 2xx.
//! - [`app`]: wires the rooms into the running daemon and owns the shutdown order
//!   (cameras → detector → outbox flush → sinks).
//! - [`demo`]: the embedded default: an in-process RTSP server looping the bundled clip and a
//!   local receiver that verifies every signature.
//! - [`clock`]: wall time behind a trait, so rules and retries are tested without sleeping.
//!
//! `main.rs` is only the command line: it parses, builds the rooms through [`app`], and runs.

pub mod app;
pub mod clock;
pub mod config;
pub mod deliver;
pub mod demo;
pub mod detect;
pub mod evidence;
pub mod outbox;
pub mod rules;
pub mod video;

/// The one-time GStreamer initialisation, shared by the camera and the demo server.
pub fn init_gstreamer() -> Result<(), gstreamer::glib::Error> {
    gstreamer::init()
}
