//! The rules room: detections of one frame → [`RuleHit`]s.
//!
//! Per camera a [`Tracker`] turns detections into tracks; rules look at confirmed tracks, not
//! at single detections, so one person walking through the frame is one alert. A track
//! qualifies for a rule when its label matches, its *median* recent score reaches
//! `min_confidence`, its area is within bounds, it is inside the rule's zone (entered after
//! `inertia` frames, tested at the box's bottom-centre or centroid) and has been there for
//! `dwell_seconds`. A rule × camera fires when at least `min_count` tracks qualify, one of
//! them has not fired this rule yet, the schedule allows it and the cooldown has passed.
//! When the condition stops holding, an optional `alert.ended` closes the incident.
//! All timing reads the [`Clock`].

mod schedule;
mod tracker;

use crate::clock::Clock;
use crate::config::{Anchor, Config, RuleConfig, Severity, ZoneRef};
use crate::detect::Detection;
use crate::geometry::{self, in_polygon};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use ulid::Ulid;

pub use crate::config::Window;
pub use tracker::{Track, Tracker};

/// Fired: the condition became true. Ended: it stopped holding (closes the incident).
#[derive(Debug, Clone, PartialEq)]
pub enum HitKind {
    Fired,
    Ended {
        fired_alert_id: Ulid,
        started_at: DateTime<Utc>,
    },
}

/// A rule event on a frame: everything the outbox needs to write the alert.
#[derive(Debug, Clone)]
pub struct RuleHit {
    pub alert_id: Ulid,
    pub kind: HitKind,
    /// When the event happened (clock time).
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
    /// The zone polygon the rule watched, for drawing on the snapshot.
    pub zone: Option<Vec<[f64; 2]>>,
    /// Id of the stored JPEG evidence, once the evidence room has written it.
    pub snapshot: Option<String>,
}

/// One tracked object of a hit, as the payload carries it.
pub use watchpost_contracts::event::Object as HitObject;

#[derive(Debug, Clone)]
struct Zone {
    /// `None` = every camera.
    cameras: Option<Vec<String>>,
    polygon: Vec<[f64; 2]>,
    anchor: Anchor,
    inertia: u32,
}

struct Rule {
    cfg: RuleConfig,
    schedule: Vec<Window>,
    sinks: Vec<String>,
    zone: Option<usize>,
}

/// Where a track stands with respect to one zone.
#[derive(Debug, Clone, Default)]
struct ZoneState {
    inside: bool,
    /// Consecutive frames on the other side of the boundary than `inside` says.
    streak: u32,
    entered_at: Option<DateTime<Utc>>,
}

struct TrackState {
    confirmed_at: Option<DateTime<Utc>>,
    zones: Vec<ZoneState>,
    fired: HashSet<usize>,
}

#[derive(Default)]
struct RuleState {
    last_fired: Option<DateTime<Utc>>,
    incident: Option<(Ulid, DateTime<Utc>)>,
}

struct CameraState {
    tracker: Tracker,
    tracks: HashMap<u64, TrackState>,
}

pub struct Engine {
    rules: Vec<Rule>,
    zones: Vec<Zone>,
    tracker_cfg: crate::config::TrackerConfig,
    cameras: HashMap<Arc<str>, CameraState>,
    state: HashMap<(usize, Arc<str>), RuleState>,
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
    #[error("rule \"{rule}\": no zone named \"{zone}\"")]
    NoZone { rule: String, zone: String },
}

/// Inline polygons get the same edge damping as named zones.
const INLINE_INERTIA: u32 = 2;

impl Engine {
    /// Builds the engine from a validated config; a rule without `sinks` goes to every sink
    /// whose routing accepts it ([`Config::sinks_for`]).
    pub fn from_config(config: &Config, clock: Arc<dyn Clock>) -> Result<Self, RulesError> {
        let mut zones: Vec<Zone> = config
            .zones
            .iter()
            .map(|z| Zone {
                cameras: z.cameras.clone(),
                polygon: z.polygon.clone(),
                anchor: z.anchor,
                inertia: z.inertia.max(1),
            })
            .collect();
        let mut rules = Vec::new();
        for cfg in &config.rules {
            let schedule = cfg
                .schedule
                .iter()
                .flatten()
                .map(|w| {
                    w.window.clone().map_err(|message| RulesError::Schedule {
                        rule: cfg.name.clone(),
                        window: w.text.clone(),
                        message,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let zone = match &cfg.zone {
                None => None,
                Some(ZoneRef::Name(name)) => Some(
                    config
                        .zones
                        .iter()
                        .position(|z| &z.name == name)
                        .ok_or_else(|| RulesError::NoZone {
                            rule: cfg.name.clone(),
                            zone: name.clone(),
                        })?,
                ),
                Some(ZoneRef::Polygon(polygon)) => {
                    zones.push(Zone {
                        cameras: None,
                        polygon: polygon.clone(),
                        anchor: Anchor::BottomCenter,
                        inertia: INLINE_INERTIA,
                    });
                    Some(zones.len() - 1)
                }
            };
            rules.push(Rule {
                sinks: config.sinks_for(cfg),
                schedule,
                zone,
                cfg: cfg.clone(),
            });
        }
        Ok(Self {
            rules,
            zones,
            tracker_cfg: config.tracker.clone(),
            cameras: HashMap::new(),
            state: HashMap::new(),
            clock,
            ids: ulid::Generator::new(),
        })
    }

    /// The camera's live tracks (for status pages and tests).
    pub fn tracks(&self, camera: &str) -> &[Track] {
        self.cameras
            .get(camera)
            .map(|c| c.tracker.tracks())
            .unwrap_or(&[])
    }

    fn new_id(&mut self, now: DateTime<Utc>) -> Ulid {
        self.ids
            .generate_from_datetime(now.into())
            .unwrap_or_else(|_| Ulid::from_datetime(now.into()))
    }

    /// Tracks one frame's detections and evaluates every rule that watches `camera`.
    pub fn evaluate(
        &mut self,
        camera: &Arc<str>,
        frame_ts: DateTime<Utc>,
        detections: &[Detection],
    ) -> Vec<RuleHit> {
        let now = self.clock.now();
        let local = now.with_timezone(&chrono::Local).naive_local();
        let cam = self
            .cameras
            .entry(camera.clone())
            .or_insert_with(|| CameraState {
                tracker: Tracker::new(self.tracker_cfg.clone()),
                tracks: HashMap::new(),
            });
        for id in cam.tracker.update(detections) {
            cam.tracks.remove(&id);
        }
        // Bring each matched track's zone states up to date.
        for track in cam.tracker.tracks() {
            let st = cam.tracks.entry(track.id).or_insert_with(|| TrackState {
                confirmed_at: None,
                zones: vec![ZoneState::default(); self.zones.len()],
                fired: HashSet::new(),
            });
            if track.confirmed && st.confirmed_at.is_none() {
                st.confirmed_at = Some(now);
            }
            if track.misses > 0 {
                continue;
            }
            for (z, zone) in self.zones.iter().enumerate() {
                let inside = in_polygon(&zone.polygon, anchor_point(&track.bbox, zone.anchor));
                let zs = &mut st.zones[z];
                if inside == zs.inside {
                    zs.streak = 0;
                } else {
                    zs.streak += 1;
                    if zs.streak >= zone.inertia {
                        zs.inside = inside;
                        zs.streak = 0;
                        zs.entered_at = inside.then_some(now);
                    }
                }
            }
        }

        let mut hits = Vec::new();
        for idx in 0..self.rules.len() {
            let rule = &self.rules[idx];
            let cfg = &rule.cfg;
            let watches = |cams: &Option<Vec<String>>| {
                cams.as_ref()
                    .is_none_or(|c| c.iter().any(|c| **c == **camera))
            };
            // A zone drawn for some cameras does not exist on the others.
            if !cfg.enabled
                || !watches(&cfg.cameras)
                || rule.zone.is_some_and(|z| !watches(&self.zones[z].cameras))
            {
                continue;
            }
            let cam = &self.cameras[camera];
            let scheduled =
                rule.schedule.is_empty() || rule.schedule.iter().any(|w| w.contains(local));
            let mut qualifying: Vec<&Track> = Vec::new();
            for track in cam.tracker.tracks().iter().filter(|t| t.confirmed) {
                let Some(st) = cam.tracks.get(&track.id) else {
                    continue;
                };
                let since = match rule.zone {
                    Some(z) => st.zones[z]
                        .inside
                        .then_some(st.zones[z].entered_at)
                        .flatten(),
                    None => st.confirmed_at,
                };
                let area = track.area() as f64;
                let ok = (cfg.labels.is_empty() || cfg.labels.contains(&track.label))
                    && track.median_score() >= cfg.min_confidence
                    && area >= cfg.min_area
                    && area <= cfg.max_area
                    && since.is_some_and(|s| secs(now - s) >= cfg.dwell_seconds);
                if ok {
                    qualifying.push(track);
                }
            }
            let active = scheduled && qualifying.len() >= cfg.min_count as usize;
            let state = self.state.entry((idx, camera.clone())).or_default();
            if !active {
                if let Some((fired_id, started)) = state.incident.take() {
                    if cfg.emit_ended {
                        hits.push((
                            idx,
                            HitKind::Ended {
                                fired_alert_id: fired_id,
                                started_at: started,
                            },
                            Vec::new(),
                        ));
                    }
                }
                continue;
            }
            let fresh = qualifying
                .iter()
                .any(|t| !cam.tracks[&t.id].fired.contains(&idx));
            let cooled = state
                .last_fired
                .is_none_or(|last| secs(now - last) >= cfg.cooldown_seconds);
            if !(fresh && cooled) {
                continue;
            }
            state.last_fired = Some(now);
            qualifying.sort_by(|a, b| {
                b.median_score()
                    .total_cmp(&a.median_score())
                    .then(a.id.cmp(&b.id))
            });
            let objects: Vec<HitObject> = qualifying
                .iter()
                .map(|t| HitObject {
                    label: t.label.clone(),
                    confidence: round3(t.median_score()),
                    bbox: t.bbox.map(round3),
                    track_id: t.id,
                })
                .collect();
            hits.push((idx, HitKind::Fired, objects));
        }

        let mut out = Vec::with_capacity(hits.len());
        for (idx, kind, objects) in hits {
            let alert_id = self.new_id(now);
            let state = self.state.entry((idx, camera.clone())).or_default();
            if kind == HitKind::Fired {
                // A new incident starts unless one is still open; it closes when the condition ends.
                state.incident.get_or_insert((alert_id, now));
                if let Some(cam) = self.cameras.get_mut(camera) {
                    for o in &objects {
                        if let Some(st) = cam.tracks.get_mut(&o.track_id) {
                            st.fired.insert(idx);
                        }
                    }
                }
            }
            let rule = &self.rules[idx];
            let best = objects.first();
            out.push(RuleHit {
                alert_id,
                kind,
                fired_at: now,
                camera: camera.to_string(),
                rule: rule.cfg.name.clone(),
                label: best.map(|o| o.label.clone()).unwrap_or_default(),
                confidence: best.map(|o| o.confidence).unwrap_or(0.0),
                count: objects.len() as u32,
                severity: rule.cfg.severity,
                frame_ts,
                objects,
                metadata: rule.cfg.metadata.clone(),
                sinks: rule.sinks.clone(),
                zone: rule.zone.map(|z| self.zones[z].polygon.clone()),
                snapshot: None,
            });
        }
        out
    }
}

fn secs(d: chrono::Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

fn round3(v: f32) -> f32 {
    (v * 1000.0).round() / 1000.0
}

fn anchor_point(bbox: &[f32; 4], anchor: Anchor) -> (f64, f64) {
    match anchor {
        Anchor::BottomCenter => geometry::bottom_center(bbox),
        Anchor::Centroid => geometry::centroid(bbox),
    }
}

#[cfg(test)]
mod tests;
