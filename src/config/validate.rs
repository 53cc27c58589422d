//! The pure checks, after `resolve` has read every file: ranges, references between
//! sections, secrets' formats, schedules. Each section's own checks sit beside its struct
//! (`camera.rs`, `sink.rs` …); this file runs them in order and checks what crosses sections.

use super::problems::Problems;
use super::resolve::Resolved;
use super::rule::Names;
use super::Config;

pub(super) fn validate(c: &Config, r: &Resolved, p: &mut Problems<'_>) {
    c.device.check(p);
    c.model.check(p);
    let cameras = super::camera::check_cameras(&c.cameras, p);
    let rule_names: Vec<String> = c.rules.iter().map(|r| r.name.clone()).collect();
    let sinks = super::sink::check_sinks(&c.sinks, &rule_names, p);
    let zones = super::rule::check_zones(&c.zones, &cameras, p);
    let lines = super::line::check_lines(&c.lines, &cameras, &zones, p);
    c.tracker.check(p);
    c.snapshots.check(p);
    let names = Names {
        cameras: &cameras,
        sinks: &sinks,
        zones: &zones,
        lines: &lines,
        labels: r.labels.as_deref(),
        labels_file: &c.model.labels,
    };
    super::rule::check_rules(&c.rules, &names, p);
    c.delivery.check(p);
    c.health.check(p);
    if let Some(web) = &c.web {
        web.check(p);
    }
    if let Some(m) = c.control.as_ref().and_then(|c| c.mqtt.as_ref()) {
        m.check(p);
    }
}
