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
//! Lines (`lines`): each track's anchor is followed across every `[[line]]` of its camera
//! with hysteresis ([`geometry::LineWatch`]); crossings are counted per line and label, and
//! rules with `crosses` fire per crossing or on the line's occupancy. [`Engine::tick`] runs
//! the clock's side: occupancy rules, the daily reset and the periodic `count.report`.
//! All timing reads the [`Clock`].

mod explain;
mod lines;
mod schedule;
mod tracker;

use crate::clock::Clock;
use crate::config::{
    Anchor, Config, CrossingDirection, EventKind, InSide, RuleConfig, Severity, ZoneRef,
};
use crate::detect::Detection;
use crate::geometry::{self, in_polygon, LineWatch};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use ulid::Ulid;

pub use crate::config::Window;
pub use explain::{RuleExplain, TrackExplain};
pub use lines::{
    interval_floor, last_reset_at, CountsError, Crossing, Hour, LabelCount, LineCounts, LineHealth,
    SharedCounts, Tally,
};
pub use tracker::{Track, Tracker};
pub use watchpost_contracts::event::LineEvent;

/// Fired: the condition became true. Ended: it stopped holding (closes the incident).
/// Report: a line's `count.report` for one interval.
#[derive(Debug, Clone, PartialEq)]
pub enum HitKind {
    Fired,
    Ended {
        fired_alert_id: Ulid,
        started_at: DateTime<Utc>,
    },
    Report(Box<LineReport>),
}

/// One line's figures over one report interval.
#[derive(Debug, Clone, PartialEq)]
pub struct LineReport {
    pub line: String,
    /// Empty: the line is on every camera.
    pub cameras: Vec<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The line's counts at the interval's end (interval and total figures).
    pub counts: LineCounts,
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
    /// Rules with `crosses`: the line, direction and occupancy.
    pub line: Option<LineEvent>,
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
    /// Where its `alert.ended` goes (sinks whose `events` take it).
    sinks_ended: Vec<String>,
    zone: Option<usize>,
    watch: Watch,
}

impl Rule {
    /// What a track itself must meet: (label, median confidence, area). One place for the
    /// rules and their dry-run, so the two can never disagree.
    fn checks(&self, t: &Track) -> (bool, bool, bool) {
        let cfg = &self.cfg;
        let area = t.area() as f64;
        (
            cfg.labels.is_empty() || cfg.labels.contains(&t.label),
            t.median_score() >= cfg.min_confidence,
            area >= cfg.min_area && area <= cfg.max_area,
        )
    }

    fn meets(&self, t: &Track) -> bool {
        let (label, confidence, area) = self.checks(t);
        label && confidence && area
    }

    /// Since when the track counts for the dwell: entering the rule's zone, or being
    /// confirmed (whole frame); `None` while outside the zone.
    fn since(&self, st: &TrackState) -> Option<DateTime<Utc>> {
        match self.zone {
            Some(z) => st.zones[z]
                .inside
                .then_some(st.zones[z].entered_at)
                .flatten(),
            None => st.confirmed_at,
        }
    }
}

/// What a rule watches besides labels and confidence.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Watch {
    /// A zone (or the whole frame): tracks qualify, `min_count` of them fire.
    Tracks,
    /// Each crossing of a line in a direction fires.
    Crossing {
        line: usize,
        direction: CrossingDirection,
    },
    /// The line's occupancy out of bounds fires; back inside ends.
    Occupancy {
        line: usize,
        max: Option<u32>,
        min: Option<u32>,
    },
}

#[derive(Debug, Clone)]
struct Line {
    name: String,
    cameras: Option<Vec<String>>,
    points: Vec<[f64; 2]>,
    anchor: Anchor,
    in_side: InSide,
    margin: f64,
    period: chrono::Duration,
    reset_minutes: Option<u32>,
    /// The key occupancy rules keep their state under (made once, not per frame).
    state_key: Arc<str>,
}

fn report_period(minutes: f64) -> chrono::Duration {
    chrono::Duration::milliseconds((minutes * 60_000.0).round().max(1.0) as i64)
}

/// A crossing seen on this frame.
struct Crossed {
    line: usize,
    track: u64,
    dir: Crossing,
}

/// A hit before it gets its id.
struct Pending {
    idx: usize,
    kind: HitKind,
    objects: Vec<HitObject>,
    camera: String,
    line: Option<LineEvent>,
}

impl Pending {
    /// The `alert.ended` closing `incident` (the fired alert's id and start).
    fn ended(
        idx: usize,
        (fired_alert_id, started_at): (Ulid, DateTime<Utc>),
        camera: String,
        line: Option<LineEvent>,
    ) -> Self {
        Self {
            idx,
            kind: HitKind::Ended {
                fired_alert_id,
                started_at,
            },
            objects: Vec::new(),
            camera,
            line,
        }
    }
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
    lines: Vec<LineWatch>,
    /// Crossings made while the track was still tentative, counted once it is confirmed.
    pending: Vec<(usize, Crossing)>,
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
    lines: Vec<Line>,
    counts: SharedCounts,
    /// Where `count.report` events go.
    report_sinks: Vec<String>,
    /// Per line, the camera of its last crossing (occupancy alerts name it).
    line_camera: Vec<Option<String>>,
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
    #[error("rule \"{rule}\": no line named \"{line}\"")]
    NoLine { rule: String, line: String },
    #[error("line \"{line}\": occupancy_reset: {message}")]
    Reset { line: String, message: String },
}

/// The camera a `count.report` names when its line is drawn on every camera (MQTT topic
/// `alerts/_lines`); camera names cannot start with `_`, so it never collides.
pub const ALL_CAMERAS: &str = "_lines";

/// Inline polygons get the same edge damping as named zones.
const INLINE_INERTIA: u32 = 2;

impl Engine {
    /// Builds the engine from a validated config; a rule without `sinks` goes to every sink
    /// whose routing accepts it ([`Config::sinks_for`]).
    pub fn from_config(config: &Config, clock: Arc<dyn Clock>) -> Result<Self, RulesError> {
        Self::with_counts(config, clock, SharedCounts::default())
    }

    /// As [`Engine::from_config`], counting into `counts` (restored from the outbox at start,
    /// carried over when the rules change live).
    pub fn with_counts(
        config: &Config,
        clock: Arc<dyn Clock>,
        counts: SharedCounts,
    ) -> Result<Self, RulesError> {
        let lines: Vec<Line> = config
            .lines
            .iter()
            .map(|l| {
                let reset_minutes = match &l.occupancy_reset {
                    None => None,
                    Some(t) => Some(t.minutes.clone().map_err(|message| RulesError::Reset {
                        line: l.name.clone(),
                        message,
                    })?),
                };
                Ok(Line {
                    name: l.name.clone(),
                    cameras: l.cameras.clone(),
                    points: l.points.clone(),
                    anchor: l.anchor,
                    in_side: l.in_side,
                    margin: l.min_distance,
                    period: report_period(l.report_minutes),
                    reset_minutes,
                    state_key: Arc::from(format!("line:{}", l.name)),
                })
            })
            .collect::<Result<_, RulesError>>()?;
        counts.keep_only(&config.lines, clock.now(), |l| {
            report_period(l.report_minutes)
        });
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
            let watch = match &cfg.crosses {
                None => Watch::Tracks,
                Some(name) => {
                    let line = lines.iter().position(|l| &l.name == name).ok_or_else(|| {
                        RulesError::NoLine {
                            rule: cfg.name.clone(),
                            line: name.clone(),
                        }
                    })?;
                    if cfg.max_occupancy.is_some() || cfg.min_occupancy.is_some() {
                        Watch::Occupancy {
                            line,
                            max: cfg.max_occupancy,
                            min: cfg.min_occupancy,
                        }
                    } else {
                        Watch::Crossing {
                            line,
                            direction: cfg.direction.unwrap_or_default(),
                        }
                    }
                }
            };
            rules.push(Rule {
                sinks: config.sinks_for(cfg),
                sinks_ended: config.sinks_for_event(cfg, EventKind::AlertEnded),
                schedule,
                zone,
                watch,
                cfg: cfg.clone(),
            });
        }
        Ok(Self {
            line_camera: vec![None; lines.len()],
            lines,
            counts,
            report_sinks: config.sinks_for_reports(),
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

    /// The shared line counts this engine adds to.
    pub fn counts(&self) -> &SharedCounts {
        &self.counts
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
        // Intervals that ended before this frame close first, so a crossing on this frame
        // counts in the interval that holds its time.
        let reports = self.roll(now);
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
        let on_camera = |cams: &Option<Vec<String>>| {
            cams.as_ref()
                .is_none_or(|c| c.iter().any(|c| **c == **camera))
        };
        let mut crossed: Vec<Crossed> = Vec::new();
        // Bring each matched track's zone and line states up to date.
        for track in cam.tracker.tracks() {
            let st = cam.tracks.entry(track.id).or_insert_with(|| TrackState {
                confirmed_at: None,
                zones: vec![ZoneState::default(); self.zones.len()],
                fired: HashSet::new(),
                lines: vec![LineWatch::default(); self.lines.len()],
                pending: Vec::new(),
            });
            if track.confirmed && st.confirmed_at.is_none() {
                st.confirmed_at = Some(now);
                crossed.extend(st.pending.drain(..).map(|(line, dir)| Crossed {
                    line,
                    track: track.id,
                    dir,
                }));
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
            for (l, line) in self.lines.iter().enumerate() {
                if !on_camera(&line.cameras) {
                    continue;
                }
                let p = anchor_point(&track.bbox, line.anchor);
                if let Some(from) = st.lines[l].step(&line.points, p, line.margin) {
                    let dir = Crossing::from_side(from, line.in_side);
                    if track.confirmed {
                        crossed.push(Crossed {
                            line: l,
                            track: track.id,
                            dir,
                        });
                    } else {
                        st.pending.push((l, dir));
                    }
                }
            }
        }
        if !crossed.is_empty() {
            let labels: Vec<String> = crossed
                .iter()
                .map(|c| {
                    cam.tracker
                        .tracks()
                        .iter()
                        .find(|t| t.id == c.track)
                        .map(|t| t.label.clone())
                        .unwrap_or_default()
                })
                .collect();
            for (c, label) in crossed.iter().zip(&labels) {
                let line = &self.lines[c.line];
                self.counts.add(&line.name, line.period, label, c.dir, now);
                tracing::debug!(line = %line.name, label = %label, direction = c.dir.as_str(), track = c.track, "line crossed");
            }
            for c in &crossed {
                self.line_camera[c.line] = Some(camera.to_string());
            }
        }

        let mut hits: Vec<Pending> = Vec::new();
        for idx in 0..self.rules.len() {
            let rule = &self.rules[idx];
            let cfg = &rule.cfg;
            // A zone drawn for some cameras does not exist on the others.
            if !cfg.enabled
                || !on_camera(&cfg.cameras)
                || rule
                    .zone
                    .is_some_and(|z| !on_camera(&self.zones[z].cameras))
            {
                continue;
            }
            let cam = &self.cameras[camera];
            let scheduled =
                rule.schedule.is_empty() || rule.schedule.iter().any(|w| w.contains(local));
            match rule.watch {
                Watch::Tracks => {}
                Watch::Occupancy { .. } => continue,
                Watch::Crossing { line, direction } => {
                    if !scheduled || !on_camera(&self.lines[line].cameras) {
                        continue;
                    }
                    for c in crossed.iter().filter(|c| c.line == line) {
                        let wanted = match direction {
                            CrossingDirection::Any => true,
                            CrossingDirection::In => c.dir == Crossing::In,
                            CrossingDirection::Out => c.dir == Crossing::Out,
                        };
                        let Some(track) = cam.tracker.tracks().iter().find(|t| t.id == c.track)
                        else {
                            continue;
                        };
                        if !wanted || !rule.meets(track) {
                            continue;
                        }
                        let state = self.state.entry((idx, camera.clone())).or_default();
                        let cooled = state
                            .last_fired
                            .is_none_or(|last| secs(now - last) >= cfg.cooldown_seconds);
                        if !cooled {
                            continue;
                        }
                        state.last_fired = Some(now);
                        let occupancy = self.counts.occupancy(&self.lines[line].name, &cfg.labels);
                        hits.push(Pending {
                            idx,
                            kind: HitKind::Fired,
                            objects: vec![hit_object(track)],
                            camera: camera.to_string(),
                            line: Some(LineEvent {
                                name: self.lines[line].name.clone(),
                                direction: Some(c.dir.as_str().to_string()),
                                occupancy,
                            }),
                        });
                    }
                    continue;
                }
            }
            let mut qualifying: Vec<&Track> = Vec::new();
            for track in cam.tracker.tracks().iter().filter(|t| t.confirmed) {
                let Some(st) = cam.tracks.get(&track.id) else {
                    continue;
                };
                let since = rule.since(st);
                if rule.meets(track) && since.is_some_and(|s| secs(now - s) >= cfg.dwell_seconds) {
                    qualifying.push(track);
                }
            }
            let active = scheduled && qualifying.len() >= cfg.min_count as usize;
            let state = self.state.entry((idx, camera.clone())).or_default();
            if !active {
                if let Some(incident) = state.incident.take() {
                    if cfg.emit_ended {
                        hits.push(Pending::ended(idx, incident, camera.to_string(), None));
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
            hits.push(Pending {
                idx,
                kind: HitKind::Fired,
                objects: qualifying.iter().map(|t| hit_object(t)).collect(),
                camera: camera.to_string(),
                line: None,
            });
        }
        let mut out = self.finish(hits, now, frame_ts);
        out.extend(self.occupancy(now));
        out.extend(self.report_hits(reports, now));
        out
    }

    /// The clock's side of the lines, run after every frame and between frames: the daily
    /// occupancy reset, the `count.report` of every line whose interval ended, and the
    /// occupancy rules (which fire and end on counts, not on a frame).
    pub fn tick(&mut self) -> Vec<RuleHit> {
        let now = self.clock.now();
        let reports = self.roll(now);
        let mut out = self.occupancy(now);
        out.extend(self.report_hits(reports, now));
        out
    }

    /// The daily reset and the end of report intervals, as of `now`.
    fn roll(&mut self, now: DateTime<Utc>) -> Vec<LineReport> {
        let mut reports: Vec<LineReport> = Vec::new();
        let lines = &self.lines;
        self.counts.with(|board| {
            let mut changed = false;
            for line in lines {
                let counts = board
                    .entry(line.name.clone())
                    .or_insert_with(|| LineCounts::new(&line.name, now, line.period));
                if let Some(at) = line.reset_minutes.and_then(|m| last_reset_at(now, m)) {
                    if counts.since < at {
                        tracing::info!(line = %line.name, "occupancy_reset: counts back to zero");
                        counts.reset(at);
                        changed = true;
                    }
                }
                if now >= counts.interval_start + line.period {
                    let end = interval_floor(now, line.period);
                    reports.push(LineReport {
                        line: line.name.clone(),
                        cameras: line.cameras.clone().unwrap_or_default(),
                        start: counts.interval_start,
                        end,
                        counts: counts.clone(),
                    });
                    for t in counts.labels.values_mut() {
                        t.interval_in = 0;
                        t.interval_out = 0;
                    }
                    counts.interval_start = end;
                    changed = true;
                }
            }
            ((), changed)
        });
        reports
    }

    /// The occupancy rules: fire when a line's occupancy leaves its bounds, end when back.
    fn occupancy(&mut self, now: DateTime<Utc>) -> Vec<RuleHit> {
        let local = now.with_timezone(&chrono::Local).naive_local();
        let mut hits: Vec<Pending> = Vec::new();
        for idx in 0..self.rules.len() {
            let rule = &self.rules[idx];
            let cfg = &rule.cfg;
            let Watch::Occupancy { line, max, min } = rule.watch else {
                continue;
            };
            if !cfg.enabled {
                continue;
            }
            let name = &self.lines[line].name;
            let occupancy = self.counts.occupancy(name, &cfg.labels);
            let scheduled =
                rule.schedule.is_empty() || rule.schedule.iter().any(|w| w.contains(local));
            let out_of_bounds = max.is_some_and(|m| occupancy > u64::from(m))
                || min.is_some_and(|m| occupancy < u64::from(m));
            let camera = self.lines[line]
                .cameras
                .as_ref()
                .and_then(|c| c.first().cloned())
                .or_else(|| self.line_camera[line].clone())
                .unwrap_or_default();
            let event = LineEvent {
                name: name.clone(),
                direction: None,
                occupancy,
            };
            let state = self
                .state
                .entry((idx, self.lines[line].state_key.clone()))
                .or_default();
            if !(scheduled && out_of_bounds) {
                if let Some(incident) = state.incident.take() {
                    hits.push(Pending::ended(idx, incident, camera, Some(event)));
                }
                continue;
            }
            let cooled = state
                .last_fired
                .is_none_or(|last| secs(now - last) >= cfg.cooldown_seconds);
            if state.incident.is_some() || !cooled {
                continue;
            }
            state.last_fired = Some(now);
            hits.push(Pending {
                idx,
                kind: HitKind::Fired,
                objects: Vec::new(),
                camera,
                line: Some(event),
            });
        }
        self.finish(hits, now, now)
    }

    /// Each ended interval's `count.report`, as a hit for the outbox.
    fn report_hits(&mut self, reports: Vec<LineReport>, now: DateTime<Utc>) -> Vec<RuleHit> {
        let mut out = Vec::new();
        for r in reports {
            let alert_id = self.new_id(now);
            out.push(RuleHit {
                alert_id,
                fired_at: now,
                camera: r
                    .cameras
                    .first()
                    .cloned()
                    .unwrap_or_else(|| ALL_CAMERAS.to_string()),
                rule: r.line.clone(),
                label: String::new(),
                confidence: 0.0,
                count: 0,
                severity: Severity::Info,
                frame_ts: r.end,
                objects: Vec::new(),
                metadata: serde_json::Map::new(),
                sinks: self.report_sinks.clone(),
                zone: None,
                snapshot: None,
                line: None,
                kind: HitKind::Report(Box::new(r)),
            });
        }
        out
    }

    /// Gives each pending hit its id, opens or closes its incident, marks its tracks fired.
    fn finish(
        &mut self,
        hits: Vec<Pending>,
        now: DateTime<Utc>,
        frame_ts: DateTime<Utc>,
    ) -> Vec<RuleHit> {
        let mut out = Vec::with_capacity(hits.len());
        for p in hits {
            let alert_id = self.new_id(now);
            let rule = &self.rules[p.idx];
            let key: Arc<str> = match rule.watch {
                Watch::Occupancy { line, .. } => self.lines[line].state_key.clone(),
                _ => Arc::from(p.camera.as_str()),
            };
            if p.kind == HitKind::Fired {
                let state = self.state.entry((p.idx, key)).or_default();
                // A new incident starts unless one is still open; it closes when the condition
                // ends. Crossing alerts are events, not incidents.
                if !matches!(rule.watch, Watch::Crossing { .. }) {
                    state.incident.get_or_insert((alert_id, now));
                }
                if let Some(cam) = self.cameras.get_mut(p.camera.as_str()) {
                    for o in &p.objects {
                        if let Some(st) = cam.tracks.get_mut(&o.track_id) {
                            st.fired.insert(p.idx);
                        }
                    }
                }
            }
            let best = p.objects.first();
            let sinks = match p.kind {
                HitKind::Ended { .. } => rule.sinks_ended.clone(),
                _ => rule.sinks.clone(),
            };
            out.push(RuleHit {
                alert_id,
                fired_at: now,
                camera: p.camera,
                rule: rule.cfg.name.clone(),
                label: best.map(|o| o.label.clone()).unwrap_or_default(),
                confidence: best.map(|o| o.confidence).unwrap_or(0.0),
                count: p.objects.len() as u32,
                severity: rule.cfg.severity,
                frame_ts,
                metadata: rule.cfg.metadata.clone(),
                sinks,
                zone: rule.zone.map(|z| self.zones[z].polygon.clone()),
                snapshot: None,
                line: p.line,
                objects: p.objects,
                kind: p.kind,
            });
        }
        out
    }
}

fn hit_object(t: &Track) -> HitObject {
    HitObject {
        label: t.label.clone(),
        confidence: round3(t.median_score()),
        bbox: t.bbox.map(round3),
        track_id: t.id,
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
