//! The rule dry-run: for one rule on one camera, what each live track meets of the rule's
//! conditions right now, and whether (and why not) the rule would fire. Read-only: computed
//! from the engine's current state, never changing it.

use super::{secs, Engine, Watch};
use serde::Serialize;

/// One rule on one camera, as of the engine's last frame of that camera.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuleExplain {
    pub rule: String,
    pub camera: String,
    /// The rule is enabled and watches this camera (and its zone exists there).
    pub watches: bool,
    /// A schedule window is open now (true without a schedule).
    pub scheduled: bool,
    /// Seconds until the cooldown allows the next alert (0 = it would).
    pub cooldown_left_s: f64,
    pub min_count: u32,
    /// Tracks meeting every per-track condition.
    pub qualifying: usize,
    pub would_fire: bool,
    /// The verdict in words: what fires, or the first thing that keeps it from firing.
    pub why: String,
    pub tracks: Vec<TrackExplain>,
    /// Line rules: the line's occupancy of the rule's labels.
    pub occupancy: Option<u64>,
}

/// One live track against a rule's conditions.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TrackExplain {
    pub track_id: u64,
    pub label: String,
    pub confirmed: bool,
    pub label_ok: bool,
    /// The median of its recent scores, against `min_confidence`.
    pub confidence: f32,
    pub confidence_ok: bool,
    pub area_ok: bool,
    /// `None` when the rule has no zone (the whole frame).
    pub in_zone: Option<bool>,
    /// Seconds in the zone (or since confirmed), against `dwell_seconds`.
    pub dwell_s: Option<f64>,
    pub dwell_ok: bool,
    /// It fired this rule already (a track fires a rule once).
    pub fired_already: bool,
    pub qualifies: bool,
}

impl Engine {
    /// The dry-run of rule `name` on `camera`; `None` for an unknown rule.
    pub fn explain(&self, name: &str, camera: &str) -> Option<RuleExplain> {
        let idx = self.rules.iter().position(|r| r.cfg.name == name)?;
        let rule = &self.rules[idx];
        let cfg = &rule.cfg;
        let now = self.clock.now();
        let local = now.with_timezone(&chrono::Local).naive_local();
        let on_camera = |cams: &Option<Vec<String>>| {
            cams.as_ref().is_none_or(|c| c.iter().any(|c| c == camera))
        };
        let watches = cfg.enabled
            && on_camera(&cfg.cameras)
            && rule.zone.is_none_or(|z| on_camera(&self.zones[z].cameras));
        let scheduled = rule.schedule.is_empty() || rule.schedule.iter().any(|w| w.contains(local));
        let key: std::sync::Arc<str> = match rule.watch {
            Watch::Occupancy { line, .. } => self.lines[line].state_key.clone(),
            _ => std::sync::Arc::from(camera),
        };
        let state = self.state.get(&(idx, key));
        let cooldown_left_s = state.and_then(|s| s.last_fired).map_or(0.0, |last| {
            (cfg.cooldown_seconds - secs(now - last)).max(0.0)
        });
        let cam = self.cameras.get(camera);
        let mut tracks = Vec::new();
        for t in cam.map(|c| c.tracker.tracks()).unwrap_or(&[]) {
            let st = cam.and_then(|c| c.tracks.get(&t.id));
            let (label_ok, confidence_ok, area_ok) = rule.checks(t);
            let confidence = t.median_score();
            let in_zone = rule.zone.map(|z| st.is_some_and(|st| st.zones[z].inside));
            let since = st.and_then(|st| rule.since(st));
            let dwell_s = since.map(|s| secs(now - s));
            let dwell_ok = dwell_s.is_some_and(|d| d >= cfg.dwell_seconds);
            let fired_already = st.is_some_and(|s| s.fired.contains(&idx));
            let qualifies = t.confirmed
                && label_ok
                && confidence_ok
                && area_ok
                && in_zone != Some(false)
                && dwell_ok;
            tracks.push(TrackExplain {
                track_id: t.id,
                label: t.label.clone(),
                confirmed: t.confirmed,
                label_ok,
                confidence,
                confidence_ok,
                area_ok,
                in_zone,
                dwell_s,
                dwell_ok,
                fired_already,
                qualifies,
            });
        }
        let qualifying = tracks.iter().filter(|t| t.qualifies).count();
        let fresh = tracks.iter().any(|t| t.qualifies && !t.fired_already);
        let occupancy = match rule.watch {
            Watch::Tracks => None,
            Watch::Crossing { line, .. } | Watch::Occupancy { line, .. } => {
                Some(self.counts.occupancy(&self.lines[line].name, &cfg.labels))
            }
        };
        let (would_fire, why) = match rule.watch {
            _ if !watches => (false, format!("the rule does not watch camera \"{camera}\" (disabled, another camera, or its zone is drawn on another camera)")),
            _ if !scheduled => (false, "outside its schedule".to_string()),
            Watch::Crossing { line, .. } => (false, format!("fires when a track crosses line \"{}\"; tracks that meet the other conditions: {qualifying}", self.lines[line].name)),
            Watch::Occupancy { line, max, min } => {
                let o = occupancy.unwrap_or(0);
                let out = max.is_some_and(|m| o > u64::from(m)) || min.is_some_and(|m| o < u64::from(m));
                let open = state.is_some_and(|s| s.incident.is_some());
                match (out, open, cooldown_left_s > 0.0) {
                    (true, true, _) => (false, format!("occupancy {o} of line \"{}\" is out of bounds; already alerted, waits for it to come back", self.lines[line].name)),
                    (true, false, true) => (false, format!("occupancy {o} is out of bounds; cooldown {cooldown_left_s:.0} s left")),
                    (true, false, false) => (true, format!("occupancy {o} is out of bounds: it fires")),
                    (false, _, _) => (false, format!("occupancy {o} is within its bounds")),
                }
            }
            Watch::Tracks if qualifying < cfg.min_count as usize => (false, format!("{qualifying} track(s) meet every condition; it needs {}", cfg.min_count)),
            Watch::Tracks if !fresh => (false, "every qualifying track has fired this rule already (a track fires a rule once)".to_string()),
            Watch::Tracks if cooldown_left_s > 0.0 => (false, format!("cooldown: {cooldown_left_s:.0} s left")),
            Watch::Tracks => (true, format!("{qualifying} track(s) meet every condition: it fires")),
        };
        Some(RuleExplain {
            rule: cfg.name.clone(),
            camera: camera.to_string(),
            watches,
            scheduled,
            cooldown_left_s,
            min_count: cfg.min_count,
            qualifying,
            would_fire,
            why,
            tracks,
            occupancy,
        })
    }
}
