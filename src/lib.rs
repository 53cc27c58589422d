//! watchpost: edge firmware for on-site camera gateways.
//!
//! # Layout
//!
//! An alert travels through the rooms below in this order; each room owns its types and
//! its error enum, and hands the next room a pipeline type (named in brackets). A room uses
//! only rooms before it and the leaves; `scripts/rooms.py` (run by `scripts/test`) fails on
//! any circle. docs/architecture.md has the table of who may use what.
//!
//! ```text
//! camera (RTSP) ─► video ─[Frame]─► detect ─[Detection]─► rules ─[RuleHit]─► outbox ─[OutboxRow]─► deliver
//! ```
//!
//! The pipeline, in order:
//! - [`config`]: TOML file → validated [`config::Config`]; every problem carries file, line and
//!   field. Uses only the leaves: it owns the values' grammar ([`config::ModelKind`],
//!   [`config::Window`], the labels file), the rooms own what they mean.
//! - [`video`]: one GStreamer pipeline per camera (rtspsrc → decodebin → scale → appsink), reconnect,
//!   sampling to `detect_fps`, and [`video::LatestFrames`], the newest-frame-wins hand-off.
//! - [`detect`]: the ONNX detector on tract: pre-processing, inference, decoding and NMS
//!   (and `detect::fastops`, plane-wise stand-ins for three of tract's slow operators), and
//!   the motion gate that decides which frames reach the model.
//! - [`rules`]: tracks objects across frames and turns them into [`rules::RuleHit`]s: labels,
//!   median confidence, area, zones, count, dwell, schedule, cooldown, `alert.ended`; lines
//!   (crossings counted per line and label, occupancy, the periodic `count.report`, kept in
//!   [`rules::SharedCounts`] and committed with the alerts); all timed by a [`clock::Clock`].
//! - [`evidence`]: the JPEG snapshot of each alert's frame, boxes and zone drawn, with retention.
//! - [`outbox`]: the commit point. SQLite (WAL, `synchronous=FULL`), one row per alert × sink;
//!   nothing is acknowledged anywhere before it is committed here.
//! - [`deliver`]: the webhook, MQTT, Slack, PagerDuty and email sinks and the retry policy;
//!   reads only from the outbox and marks rows delivered after the receiver's 2xx or the
//!   broker's PUBACK. [`deliver::SinkSet`] runs one worker per sink and adds, restarts or
//!   removes them by name when the config changes.
//!
//! Around the pipeline:
//! - [`switch`]: hands the running pipeline a new model or rule set (from `control`).
//! - [`service`]: systemd's notify protocol: READY=1, STATUS=, and WATCHDOG=1 only while the
//!   detector turns and the outbox takes writes.
//! - [`telemetry`]: what the gateway says about itself: [`telemetry::Counters`] (kept by the
//!   pipeline), readiness, Prometheus metrics, the JSON health document.
//! - [`control`]: how people and the fleet reach it: the HTTPS server (probes, the local page,
//!   the authenticated REST API in `control::api` with its OpenAPI document), live config
//!   changes with versions and rollback (also on SIGHUP), and the MQTT fleet link (`status`
//!   with an `offline` last will, `health`, `config/state`, `config/set`, signed `cmd/{name}`).
//! - [`app`]: wires the rooms into the running daemon and owns the shutdown order
//!   (cameras → detector → outbox flush → sinks).
//! - [`demo`]: the embedded default: an in-process RTSP server looping the bundled clip and a
//!   local receiver that verifies every signature.
//!
//! Leaves, used by several rooms and using none: [`clock`] (wall time behind a trait),
//! [`geometry`] (IoU, polygons, anchor points, line sides and crossings), [`imaging`] (the one resize filter),
//! [`reconcile`] ("apply this list by name": added / restarted / unchanged / removed),
//! [`template`] (people's alert titles).
//!
//! What the gateway and the fleet console (`console/`) must agree on lives in the
//! `watchpost-contracts` crate (`contracts/`), used by both: MQTT topic names, the alert
//! payload types, the health document (re-exported here by the rooms that fill it in),
//! signed control messages, webhook signing, the rustls client set-up and `throttle` (a log
//! line at most once per period). The HTTPS front door it shares with the console (certificate,
//! sign-in, connection cap, security headers) is the `watchpost-web` crate (`web/`).
//!
//! The binaries: `main.rs` + `cli/` is the command line of the shipped `watchpost`; the
//! benchmark commands are a separate binary, `watchpost-bench` (`--features bench`).
//! `fuzzing` (features `fuzzing`, `test-helpers`) holds the fuzz targets' bodies, shared by
//! `fuzz/` (cargo-fuzz) and the corpus regression test; the shipped binary has none of it.

pub mod app;
pub mod clock;
pub mod config;
pub mod control;
pub mod deliver;
pub mod demo;
pub mod detect;
pub mod evidence;
#[cfg(any(feature = "fuzzing", feature = "test-helpers"))]
pub mod fuzzing;
pub mod geometry;
pub mod imaging;
pub mod outbox;
pub mod reconcile;
pub mod rules;
pub mod service;
pub mod switch;
pub mod telemetry;
pub mod template;
pub mod video;

/// The one-time GStreamer initialisation, shared by the camera and the demo server. GLib's own
/// messages (criticals from GStreamer's RTSP client, for example) go to `tracing`, each
/// distinct message at most once a minute: a connection being torn down can repeat one
/// critical hundreds of thousands of times, which would flood the journal.
pub fn init_gstreamer() -> Result<(), gstreamer::glib::Error> {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| gstreamer::glib::log_set_default_handler(glib_to_tracing));
    gstreamer::init()
}

fn glib_to_tracing(domain: Option<&str>, level: gstreamer::glib::LogLevel, message: &str) {
    use gstreamer::glib::LogLevel;
    use parking_lot::Mutex;
    use std::collections::HashMap;
    use std::time::{Duration, Instant};
    static SEEN: Mutex<Option<HashMap<String, (Instant, u64)>>> = Mutex::new(None);
    let key = format!("{}:{message}", domain.unwrap_or("glib"));
    let repeats = {
        let mut seen = SEEN.lock();
        let map = seen.get_or_insert_with(HashMap::new);
        if map.len() > 1000 {
            map.clear();
        }
        let entry = map
            .entry(key)
            .or_insert((Instant::now() - Duration::from_secs(3600), 0));
        if entry.0.elapsed() < Duration::from_secs(60) {
            entry.1 += 1;
            return;
        }
        let repeats = entry.1;
        *entry = (Instant::now(), 0);
        repeats
    };
    let domain = domain.unwrap_or("glib");
    match level {
        LogLevel::Error | LogLevel::Critical => {
            tracing::error!(target: "glib", domain, repeats, "{message}")
        }
        LogLevel::Warning => tracing::warn!(target: "glib", domain, repeats, "{message}"),
        LogLevel::Message | LogLevel::Info => tracing::info!(target: "glib", domain, "{message}"),
        LogLevel::Debug => tracing::debug!(target: "glib", domain, "{message}"),
    }
}
