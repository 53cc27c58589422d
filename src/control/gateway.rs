//! The running gateway as the doors see it: one handle (cameras, sinks, outbox and counters
//! through telemetry, live config and its switches, snapshots) that the page, the REST API
//! and the signed MQTT commands all act on. An action they share is written once, here.

use super::live::LiveConfig;
use crate::evidence::SnapshotStore;
use crate::telemetry::Telemetry;
use std::sync::Arc;

#[derive(Clone)]
pub struct Gateway {
    pub telemetry: Telemetry,
    /// `None` when not started from a config file (nothing to edit).
    pub live: Option<Arc<LiveConfig>>,
    /// `None` when `[snapshots] enabled = false`.
    pub snapshots: Option<Arc<SnapshotStore>>,
}

/// Why an action did not happen: something the caller named is not there (a client's
/// mistake, 404), or the gateway failed (500).
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Failed(String),
}

/// What a replay of dead letters did.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Replayed {
    pub replayed: usize,
    /// Sinks whose last attempt still failed: the replayed rows may die again.
    pub warnings: Vec<String>,
}

/// A camera's newest frame as JPEG, at the camera's own size.
pub struct CameraPicture {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// One line's counts as the page and the API show them.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LineView {
    #[serde(flatten)]
    pub counts: crate::rules::LineHealth,
    /// Crossings since local midnight, every label.
    pub today_in: u64,
    pub today_out: u64,
    /// The last 48 hours that had crossings, oldest first.
    pub hours: Vec<HourView>,
    /// Where the next `count.report` starts (RFC 3339).
    pub interval_start: String,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct HourView {
    /// The hour's start (RFC 3339).
    pub start: String,
    #[serde(rename = "in")]
    pub entered: u64,
    pub out: u64,
}

impl Gateway {
    /// Every line's counts, with today's figures by the gateway's local day.
    pub fn lines(&self) -> Vec<LineView> {
        use chrono::TimeZone;
        let now = chrono::Local::now();
        let midnight = now
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .and_then(|m| chrono::Local.from_local_datetime(&m).earliest())
            .map(|m| m.timestamp())
            .unwrap_or(0);
        self.telemetry
            .counters
            .line_counts
            .snapshot()
            .into_iter()
            .map(|c| {
                let today = c.hours.iter().filter(|h| h.start >= midnight);
                LineView {
                    today_in: today.clone().map(|h| h.entered).sum(),
                    today_out: today.map(|h| h.out).sum(),
                    hours: c
                        .hours
                        .iter()
                        .map(|h| HourView {
                            start: chrono::DateTime::from_timestamp(h.start, 0)
                                .map(crate::clock::rfc3339_ms)
                                .unwrap_or_default(),
                            entered: h.entered,
                            out: h.out,
                        })
                        .collect(),
                    interval_start: crate::clock::rfc3339_ms(c.interval_start),
                    counts: c.health(),
                }
            })
            .collect()
    }

    /// Sets one line's (or every line's) totals and occupancy to zero, now; the committer
    /// saves it with the next burst (within a detector turn).
    pub fn reset_counts(&self, line: Option<&str>) -> Result<Vec<String>, ActionError> {
        let reset = self
            .telemetry
            .counters
            .line_counts
            .reset(line, chrono::Utc::now())
            .map_err(|e| ActionError::NotFound(e.to_string()))?;
        tracing::info!(lines = ?reset, "line counts reset on request");
        Ok(reset)
    }

    /// Puts one dead letter (by delivery row id) or every one back in the queue, warning for
    /// each sink that still failed on its last attempt (its rows would only die again).
    pub async fn replay_dead_letters(&self, row: Option<i64>) -> Result<Replayed, ActionError> {
        let now = chrono::Utc::now().timestamp_millis();
        let (replayed, only, failing) = self
            .telemetry
            .outbox
            .call(move |o| {
                let (n, sink) = match row {
                    Some(id) => {
                        let sink = o.sink_of(id)?;
                        o.replay(id, now)?;
                        (1, sink)
                    }
                    None => (o.replay_all_dead(now)?, None),
                };
                Ok((n, sink, o.sinks_still_failing()?))
            })
            .await
            .map_err(|e| match e {
                crate::outbox::OutboxError::NoSuchRow(id) => {
                    ActionError::NotFound(format!("no dead letter with id {id}"))
                }
                e => ActionError::Failed(e.to_string()),
            })?;
        let warnings = failing
            .into_iter()
            .filter(|(sink, _, _)| only.as_ref().is_none_or(|o| o == sink))
            .map(|(sink, status, error)| {
                format!(
                    "sink \"{sink}\" still failed on its last attempt ({}); the replayed rows may be dead letters again until it is fixed",
                    status.map(|s| format!("HTTP {s}")).unwrap_or(error)
                )
            })
            .collect();
        Ok(Replayed { replayed, warnings })
    }

    /// Reconnects one camera with its current settings (a technician's "reconnect now").
    pub async fn restart_camera(&self, name: &str) -> Result<(), ActionError> {
        let cams = self.telemetry.cameras.clone();
        let n = name.to_string();
        tokio::task::spawn_blocking(move || cams.restart(&n))
            .await
            .map_err(|e| ActionError::Failed(e.to_string()))?
            .map_err(|e| match e {
                e @ crate::video::VideoError::Unknown(_) => ActionError::NotFound(e.to_string()),
                e => ActionError::Failed(e.to_string()),
            })
    }

    /// The camera's newest frame; not found before its first frame (a client's "not there
    /// yet", not a server fault).
    pub async fn camera_picture(&self, name: &str) -> Result<CameraPicture, ActionError> {
        let frame = self
            .telemetry
            .cameras
            .latest_frame(name)
            .map_err(|e| ActionError::NotFound(e.to_string()))?;
        let (width, height) = (frame.source_width, frame.source_height);
        let jpeg = tokio::task::spawn_blocking(move || crate::evidence::frame_jpeg(&frame, 80))
            .await
            .map_err(|e| ActionError::Failed(e.to_string()))?
            .map_err(|e| ActionError::Failed(e.to_string()))?;
        Ok(CameraPicture {
            jpeg,
            width,
            height,
        })
    }
}
