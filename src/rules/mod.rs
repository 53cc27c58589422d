//! The rules room: detections of one frame → [`RuleHit`]s.
//!
//! First cut, per rule × camera: labels, `min_confidence` on this frame's detections, a zone tested at each box's bottom-centre (where a person stands), `min_count`,
//! `dwell_seconds` (the condition must hold that long without a break), a schedule in the
//! device's local time, and a cooldown. Tracking across frames comes later; until then dwell
//! is measured on the condition, not on individual objects.

mod schedule;

use crate::clock::Clock;
use crate::config::{RuleConfig, Severity};
use crate::detect::Detection;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use ulid::Ulid;

pub use schedule::Window;

/// A rule fired on a frame: everything the outbox needs to write the alert.
#[derive(Debug, Clone)]
pub struct RuleHit {
    pub alert_id: Ulid,
    pub fired_at: DateTime<Utc>,
    pub camera: String,
    pub rule: String,
    pub label: String,
    pub confidence: f32,
    pub count: u32,
    pub severity: Severity,
    pub frame_ts: DateTime<Utc>,
    pub objects: Vec<HitObject>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Sink names this alert goes to (one outbox row each).
    pub sinks: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HitObject {
    pub label: String,
    pub confidence: f32,
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
}

struct Rule {
    cfg: RuleConfig,
    schedule: Vec<Window>,
    sinks: Vec<String>,
}

#[derive(Default)]
struct State {
    true_since: Option<DateTime<Utc>>,
    last_fired: Option<DateTime<Utc>>,
}

pub struct Engine {
    rules: Vec<Rule>,
    state: HashMap<(usize, Arc<str>), State>,
    clock: Arc<dyn Clock>,
    ids: ulid::Generator,
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("rule \"{rule}\": schedule \"{window}\": {message}")]
    Schedule {
        rule: String,
        window: String,
        message: String,
    },
}

impl Engine {
    /// `all_sinks` is what a rule without `sinks` delivers to.
    pub fn new(
        rules: &[RuleConfig],
        all_sinks: &[String],
        clock: Arc<dyn Clock>,
    ) -> Result<Self, RulesError> {
        let rules = rules
            .iter()
            .map(|cfg| {
                let schedule = cfg
                    .schedule
                    .iter()
                    .flatten()
                    .map(|w| {
                        Window::parse(w).map_err(|message| RulesError::Schedule {
                            rule: cfg.name.clone(),
                            window: w.clone(),
                            message,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Rule {
                    sinks: cfg.sinks.clone().unwrap_or_else(|| all_sinks.to_vec()),
                    schedule,
                    cfg: cfg.clone(),
                })
            })
            .collect::<Result<Vec<_>, RulesError>>()?;
        Ok(Self {
            rules,
            state: HashMap::new(),
            clock,
            ids: ulid::Generator::new(),
        })
    }

    /// Evaluates every rule that watches `camera` against one frame's detections.
    pub fn evaluate(
        &mut self,
        camera: &Arc<str>,
        frame_ts: DateTime<Utc>,
        detections: &[Detection],
    ) -> Vec<RuleHit> {
        let now = self.clock.now();
        let local = now.with_timezone(&chrono::Local).naive_local();
        let mut hits = Vec::new();
        for (idx, rule) in self.rules.iter().enumerate() {
            let cfg = &rule.cfg;
            if let Some(cams) = &cfg.cameras {
                if !cams.iter().any(|c| **c == **camera) {
                    continue;
                }
            }
            let mut matched: Vec<&Detection> = detections
                .iter()
                .filter(|d| cfg.labels.is_empty() || cfg.labels.contains(&d.label))
                .filter(|d| d.confidence >= cfg.min_confidence)
                .filter(|d| cfg.zone.as_deref().is_none_or(|z| in_zone(z, &d.bbox)))
                .collect();
            let scheduled =
                rule.schedule.is_empty() || rule.schedule.iter().any(|w| w.contains(local));
            let state = self.state.entry((idx, camera.clone())).or_default();
            if !scheduled || matched.len() < cfg.min_count as usize {
                state.true_since = None;
                continue;
            }
            let since = *state.true_since.get_or_insert(now);
            if secs(now - since) < cfg.dwell_seconds {
                continue;
            }
            if let Some(last) = state.last_fired {
                if secs(now - last) < cfg.cooldown_seconds {
                    continue;
                }
            }
            state.last_fired = Some(now);
            matched.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
            let best = matched[0];
            let alert_id = self
                .ids
                .generate_from_datetime(now.into())
                .unwrap_or_else(|_| Ulid::from_datetime(now.into()));
            hits.push(RuleHit {
                alert_id,
                fired_at: now,
                camera: camera.to_string(),
                rule: cfg.name.clone(),
                label: best.label.clone(),
                confidence: round3(best.confidence),
                count: matched.len() as u32,
                severity: cfg.severity,
                frame_ts,
                objects: matched
                    .iter()
                    .map(|d| HitObject {
                        label: d.label.clone(),
                        confidence: round3(d.confidence),
                        bbox: d.bbox.map(round3),
                    })
                    .collect(),
                metadata: cfg.metadata.clone(),
                sinks: rule.sinks.clone(),
            });
        }
        hits
    }
}

fn secs(d: chrono::Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

fn round3(v: f32) -> f32 {
    (v * 1000.0).round() / 1000.0
}

/// Is the bottom-centre of `bbox` inside the polygon? (even-odd ray casting)
fn in_zone(zone: &[[f64; 2]], bbox: &[f32; 4]) -> bool {
    let x = ((bbox[0] + bbox[2]) / 2.0) as f64;
    // A box clipped at the frame's bottom edge still stands inside a zone drawn to 1.0.
    let y = (bbox[3] as f64).min(1.0 - 1e-6);
    let mut inside = false;
    let mut j = zone.len().wrapping_sub(1);
    for i in 0..zone.len() {
        let (xi, yi) = (zone[i][0], zone[i][1]);
        let (xj, yj) = (zone[j][0], zone[j][1]);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

#[cfg(test)]
mod tests;
