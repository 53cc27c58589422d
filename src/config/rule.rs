//! `[[rule]]`, `[[zone]]` and `[tracker]`: what turns detections into alerts.

use super::default_true;
use super::locate::FieldPath;
use super::problems::Problems;
use super::ScheduleWindow;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

#[derive(
    Debug,
    Clone,
    Copy,
    Deserialize,
    Serialize,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Default,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    /// `None` = every camera.
    #[serde(default)]
    pub cameras: Option<Vec<String>>,
    /// Empty = any label.
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default = "default_min_confidence")]
    pub min_confidence: f32,
    /// A `[[zone]]` by name, or a polygon in normalised image coordinates; `None` = whole frame.
    #[serde(default)]
    pub zone: Option<ZoneRef>,
    /// Box area as a fraction of the frame, to ignore far-away or implausibly large objects.
    #[serde(default)]
    pub min_area: f64,
    #[serde(default = "default_max_area")]
    pub max_area: f64,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Also send `alert.ended` when the condition stops holding.
    #[serde(default)]
    pub emit_ended: bool,
    #[serde(default = "default_min_count")]
    pub min_count: u32,
    #[serde(default)]
    pub dwell_seconds: f64,
    #[serde(default = "default_cooldown")]
    pub cooldown_seconds: f64,
    /// `None` = always.
    #[serde(default)]
    pub schedule: Option<Vec<ScheduleWindow>>,
    #[serde(default)]
    pub severity: Severity,
    /// `None` = every sink.
    #[serde(default)]
    pub sinks: Option<Vec<String>>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// A `[[line]]` by name: the rule fires once per track crossing it (in `direction`),
    /// or, with `max_occupancy` / `min_occupancy`, watches the line's occupancy instead.
    #[serde(default)]
    pub crosses: Option<String>,
    /// Which crossings of `crosses` fire; `None` = any (and refused without `crosses`).
    #[serde(default)]
    pub direction: Option<CrossingDirection>,
    /// Fires when the line's occupancy (in − out, of the rule's labels) exceeds this, and
    /// sends `alert.ended` when it falls back.
    #[serde(default)]
    pub max_occupancy: Option<u32>,
    /// Fires while the occupancy is below this ("someone must be present": a fire watch).
    #[serde(default)]
    pub min_occupancy: Option<u32>,
}

/// Which crossings of a line a rule fires on.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum CrossingDirection {
    In,
    Out,
    #[default]
    Any,
}

impl CrossingDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            CrossingDirection::In => "in",
            CrossingDirection::Out => "out",
            CrossingDirection::Any => "any",
        }
    }
}

pub(super) fn default_max_area() -> f64 {
    1.0
}

/// A rule's zone: the name of a `[[zone]]`, or an inline polygon (the original contract).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ZoneRef {
    Name(String),
    Polygon(#[serde(deserialize_with = "points")] Vec<[f64; 2]>),
}

/// Polygon points as `[x, y]` pairs: a point with another number of coordinates is an error
/// (a fixed-size array would silently ignore a third).
pub(super) fn points<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<[f64; 2]>, D::Error> {
    use serde::de::Error;
    let raw: Vec<Vec<f64>> = Deserialize::deserialize(d)?;
    raw.into_iter()
        .enumerate()
        .map(|(i, p)| match p[..] {
            [x, y] => Ok([x, y]),
            _ => Err(D::Error::custom(format!(
                "polygon point {i} has {} coordinates; a point is [x, y]",
                p.len()
            ))),
        })
        .collect()
}

/// Which point of a box decides whether the object is in a zone.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Anchor {
    /// Where a person or vehicle stands.
    #[default]
    BottomCenter,
    Centroid,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    pub name: String,
    /// `None` = the zone applies to any camera whose rules name it.
    #[serde(default)]
    pub cameras: Option<Vec<String>>,
    #[serde(deserialize_with = "points")]
    pub polygon: Vec<[f64; 2]>,
    #[serde(default)]
    pub anchor: Anchor,
    /// Consecutive frames an object must be in (or out) before it counts as entered (or left).
    #[serde(default = "default_inertia")]
    pub inertia: u32,
}

pub(super) fn default_inertia() -> u32 {
    2
}

/// Associates detections across frames so each object has a track id.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackerConfig {
    /// Frames a track must be matched before rules see it (filters one-frame false positives).
    #[serde(default = "default_min_hits")]
    pub min_hits: u32,
    /// Missed frames after which a track ends.
    #[serde(default = "default_max_age")]
    pub max_age: u32,
    #[serde(default = "default_iou")]
    pub iou_threshold: f32,
    /// Frames over which a track's median score is taken.
    #[serde(default = "default_score_window")]
    pub score_window: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            min_hits: default_min_hits(),
            max_age: default_max_age(),
            iou_threshold: default_iou(),
            score_window: default_score_window(),
        }
    }
}

pub(super) fn default_min_hits() -> u32 {
    2
}
pub(super) fn default_max_age() -> u32 {
    5
}
pub(super) fn default_iou() -> f32 {
    0.3
}
pub(super) fn default_score_window() -> usize {
    5
}

pub(super) fn default_min_confidence() -> f32 {
    0.5
}
pub(super) fn default_min_count() -> u32 {
    1
}
pub(super) fn default_cooldown() -> f64 {
    60.0
}

/// Each zone's polygon and cameras; returns the names, for the rules' references.
pub(super) fn check_zones(
    zones_cfg: &[ZoneConfig],
    cameras: &HashSet<String>,
    p: &mut Problems<'_>,
) -> HashSet<String> {
    let mut zones = HashSet::new();
    for (i, zone) in zones_cfg.iter().enumerate() {
        let at = FieldPath::root("zone").index(i);
        if zone.name.trim().is_empty() {
            p.add(&at.key("name"), "must not be empty");
        } else if !zones.insert(zone.name.clone()) {
            p.add(
                &at.key("name"),
                format!("zone \"{}\" is defined twice", zone.name),
            );
        }
        p.polygon(
            &at.key("polygon"),
            &zone.polygon,
            &format!("zone \"{}\"", zone.name),
        );
        for (j, cam) in zone.cameras.iter().flatten().enumerate() {
            if !cameras.contains(cam) {
                p.add(
                    &at.key("cameras").index(j),
                    format!("zone \"{}\": no camera named \"{cam}\"", zone.name),
                );
            }
        }
        if zone.inertia == 0 || zone.inertia > 100 {
            p.add(
                &at.key("inertia"),
                format!("must be between 1 and 100 frames, got {}", zone.inertia),
            );
        }
    }
    zones
}

/// What a rule may name: the cameras, sinks and zones that exist and the model's labels.
pub(super) struct Names<'a> {
    pub(super) cameras: &'a HashSet<String>,
    pub(super) sinks: &'a HashSet<String>,
    pub(super) zones: &'a HashSet<String>,
    pub(super) lines: &'a HashSet<String>,
    /// `None` when the labels file could not be read (reported already).
    pub(super) labels: Option<&'a [String]>,
    pub(super) labels_file: &'a std::path::Path,
}

pub(super) fn check_rules(rules_cfg: &[RuleConfig], names: &Names<'_>, p: &mut Problems<'_>) {
    let Names {
        cameras,
        sinks,
        zones,
        lines,
        labels,
        labels_file,
    } = *names;
    let mut rules = HashSet::new();
    for (i, rule) in rules_cfg.iter().enumerate() {
        let at = FieldPath::root("rule").index(i);
        let name = &rule.name;
        if name.trim().is_empty() {
            p.add(&at.key("name"), "must not be empty");
        } else if !rules.insert(name.clone()) {
            p.add(&at.key("name"), format!("rule \"{name}\" is defined twice"));
        }
        for (j, cam) in rule.cameras.iter().flatten().enumerate() {
            if !cameras.contains(cam) {
                p.add(
                    &at.key("cameras").index(j),
                    format!("rule \"{name}\": no camera named \"{cam}\""),
                );
            }
        }
        for (j, sink) in rule.sinks.iter().flatten().enumerate() {
            if !sinks.contains(sink) {
                p.add(
                    &at.key("sinks").index(j),
                    format!("rule \"{name}\": no sink named \"{sink}\""),
                );
            }
        }
        if let Some(labels) = labels {
            for (j, l) in rule.labels.iter().enumerate() {
                if !labels.contains(l) {
                    p.add(
                        &at.key("labels").index(j),
                        format!(
                            "rule \"{name}\": the model has no label \"{l}\" (see {})",
                            labels_file.display()
                        ),
                    );
                }
            }
        }
        p.range(
            &at.key("min_confidence"),
            rule.min_confidence as f64,
            0.0,
            1.0,
        );
        match &rule.zone {
            Some(ZoneRef::Polygon(poly)) => {
                p.polygon(&at.key("zone"), poly, &format!("rule \"{name}\""))
            }
            Some(ZoneRef::Name(z)) if !zones.contains(z) => p.add(
                &at.key("zone"),
                format!("rule \"{name}\": no [[zone]] named \"{z}\""),
            ),
            _ => {}
        }
        if !(0.0..=1.0).contains(&rule.min_area)
            || !(0.0..=1.0).contains(&rule.max_area)
            || rule.min_area > rule.max_area
        {
            p.add(
                &at.key("max_area"),
                format!(
                    "rule \"{name}\": need 0 <= min_area <= max_area <= 1 (fractions of the frame), got {} and {}",
                    rule.min_area, rule.max_area
                ),
            );
        }
        if rule.min_count == 0 {
            p.add(&at.key("min_count"), "must be at least 1");
        }
        p.range(&at.key("dwell_seconds"), rule.dwell_seconds, 0.0, 86400.0);
        p.range(
            &at.key("cooldown_seconds"),
            rule.cooldown_seconds,
            0.0,
            86400.0 * 7.0,
        );
        for (j, s) in rule.schedule.iter().flatten().enumerate() {
            if let Err(e) = &s.window {
                p.add(
                    &at.key("schedule").index(j),
                    format!("rule \"{name}\": {e}"),
                );
            }
        }
        check_crossing(rule, &at, lines, p);
    }
}

/// `crosses`, `direction` and the occupancy bounds: what goes with what.
fn check_crossing(
    rule: &RuleConfig,
    at: &FieldPath,
    lines: &HashSet<String>,
    p: &mut Problems<'_>,
) {
    let name = &rule.name;
    let occupancy = rule.max_occupancy.is_some() || rule.min_occupancy.is_some();
    let Some(line) = &rule.crosses else {
        if rule.direction.is_some() {
            p.add(
                &at.key("direction"),
                format!("rule \"{name}\": a direction needs `crosses = \"<line>\"`"),
            );
        }
        for (key, set) in [
            ("max_occupancy", rule.max_occupancy.is_some()),
            ("min_occupancy", rule.min_occupancy.is_some()),
        ] {
            if set {
                p.add(
                    &at.key(key),
                    format!("rule \"{name}\": occupancy is counted on a line; add `crosses = \"<line>\"`"),
                );
            }
        }
        return;
    };
    if !lines.contains(line) {
        p.add(
            &at.key("crosses"),
            format!("rule \"{name}\": no [[line]] named \"{line}\""),
        );
    }
    if rule.zone.is_some() {
        p.add(
            &at.key("zone"),
            format!("rule \"{name}\": a rule watches a zone or a line (`crosses`), not both"),
        );
    }
    if occupancy && rule.direction.is_some() {
        p.add(
            &at.key("direction"),
            format!(
                "rule \"{name}\": an occupancy rule counts both directions; remove `direction`"
            ),
        );
    }
    if let (Some(max), Some(min)) = (rule.max_occupancy, rule.min_occupancy) {
        if min > max {
            p.add(
                &at.key("min_occupancy"),
                format!("rule \"{name}\": min_occupancy {min} is above max_occupancy {max}"),
            );
        }
    }
    if rule.dwell_seconds > 0.0 {
        p.add(
            &at.key("dwell_seconds"),
            format!("rule \"{name}\": dwell has no meaning on a line crossing; remove it"),
        );
    }
    if rule.min_count > 1 {
        p.add(
            &at.key("min_count"),
            format!("rule \"{name}\": a crossing is one track; for a number of people use max_occupancy"),
        );
    }
}

impl TrackerConfig {
    pub(super) fn check(&self, p: &mut Problems<'_>) {
        let t = FieldPath::root("tracker");
        if self.min_hits == 0 || self.min_hits > 100 {
            p.add(
                &t.key("min_hits"),
                format!("must be between 1 and 100, got {}", self.min_hits),
            );
        }
        if self.max_age > 1000 {
            p.add(
                &t.key("max_age"),
                format!("must be at most 1000 frames, got {}", self.max_age),
            );
        }
        p.range(
            &t.key("iou_threshold"),
            self.iou_threshold as f64,
            0.01,
            0.99,
        );
        if self.score_window == 0 || self.score_window > 100 {
            p.add(
                &t.key("score_window"),
                format!("must be between 1 and 100, got {}", self.score_window),
            );
        }
    }
}
