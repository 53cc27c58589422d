//! `[[line]]`: a line (or polyline) drawn across a path, for crossing alerts, in/out counts,
//! occupancy and count reports.

use super::locate::FieldPath;
use super::problems::Problems;
use super::rule::{points, Anchor};
use super::schedule::TimeOfDay;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Which side-to-side movement counts as "in", relative to the line's drawing direction
/// (standing on the first point, looking at the second: "left-to-right" = from your left
/// hand to your right hand).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum InSide {
    #[default]
    LeftToRight,
    RightToLeft,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineConfig {
    pub name: String,
    /// `None` = every camera.
    #[serde(default)]
    pub cameras: Option<Vec<String>>,
    /// Two or more `[x, y]` in normalised image coordinates, in drawing order.
    #[serde(deserialize_with = "points")]
    pub points: Vec<[f64; 2]>,
    #[serde(default)]
    pub anchor: Anchor,
    #[serde(default, rename = "in")]
    pub in_side: InSide,
    /// Hysteresis: how far (fraction of the frame) beyond the line an object must be before
    /// it counts as on the other side, so jitter on the line never counts twice.
    #[serde(default = "default_min_distance")]
    pub min_distance: f64,
    /// How often a `count.report` event is committed (minutes, fractions allowed).
    #[serde(default = "default_report_minutes")]
    pub report_minutes: f64,
    /// Local time of day at which the totals and occupancy go back to zero (e.g. "03:00").
    #[serde(default)]
    pub occupancy_reset: Option<TimeOfDay>,
}

fn default_min_distance() -> f64 {
    0.03
}

fn default_report_minutes() -> f64 {
    15.0
}

/// Each line's points and cameras; returns the names, for the rules' `crosses`.
pub(super) fn check_lines(
    lines: &[LineConfig],
    cameras: &HashSet<String>,
    zones: &HashSet<String>,
    p: &mut Problems<'_>,
) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, line) in lines.iter().enumerate() {
        let at = FieldPath::root("line").index(i);
        let name = &line.name;
        if name.trim().is_empty() {
            p.add(&at.key("name"), "must not be empty");
        } else if !names.insert(name.clone()) {
            p.add(&at.key("name"), format!("line \"{name}\" is defined twice"));
        } else if zones.contains(name) {
            p.add(
                &at.key("name"),
                format!("\"{name}\" is already a zone's name; give the line its own"),
            );
        }
        if line.points.len() < 2 {
            p.add(
                &at.key("points"),
                format!(
                    "line \"{name}\": a line needs at least 2 points, got {}",
                    line.points.len()
                ),
            );
        }
        for (j, pt) in line.points.iter().enumerate() {
            if pt.iter().any(|v| !(0.0..=1.0).contains(v)) {
                p.add(
                    &at.key("points").index(j),
                    format!(
                        "line \"{name}\": points are normalised 0..1, got [{}, {}]",
                        pt[0], pt[1]
                    ),
                );
            }
        }
        if let Some(j) = line
            .points
            .windows(2)
            .position(|w| (w[0][0] - w[1][0]).hypot(w[0][1] - w[1][1]) < 1e-6)
        {
            p.add(
                &at.key("points").index(j + 1),
                format!("line \"{name}\": point {} repeats point {j}; a segment needs two different points", j + 1),
            );
        }
        for (j, cam) in line.cameras.iter().flatten().enumerate() {
            if !cameras.contains(cam) {
                p.add(
                    &at.key("cameras").index(j),
                    format!("line \"{name}\": no camera named \"{cam}\""),
                );
            }
        }
        p.range(&at.key("min_distance"), line.min_distance, 0.0, 0.25);
        if !(line.report_minutes >= 0.01 && line.report_minutes <= 1440.0) {
            p.add(
                &at.key("report_minutes"),
                format!(
                    "must be between 0.01 and 1440 minutes, got {}",
                    line.report_minutes
                ),
            );
        }
        if let Some(Err(e)) = line.occupancy_reset.as_ref().map(|t| &t.minutes) {
            p.add(&at.key("occupancy_reset"), format!("line \"{name}\": {e}"));
        }
    }
    names
}
