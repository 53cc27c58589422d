use super::*;
use crate::clock::FakeClock;
use chrono::TimeZone;
use proptest::prelude::*;
use std::path::Path;
use std::time::Duration;

/// A config with sinks "a" and "b", the given extra TOML (rules, zones, tracker).
fn config(extra: &str) -> Config {
    let text = format!(
        r#"{extra}

[[sink]]
name = "a"
kind = "webhook"
url = "http://127.0.0.1:9/a"
secret = "whsec_c2VjcmV0"

[[sink]]
name = "b"
kind = "webhook"
url = "http://127.0.0.1:9/b"
secret = "whsec_c2VjcmV0"
"#
    );
    let base = Path::new(env!("CARGO_MANIFEST_DIR"));
    Config::from_toml(&text, Path::new("test.toml"), base).unwrap_or_else(|e| panic!("{e}"))
}

fn class_of(label: &str) -> usize {
    match label {
        "person" => 0,
        "car" => 2,
        "dog" => 16,
        _ => 79,
    }
}

fn det(label: &str, confidence: f32, bbox: [f32; 4]) -> Detection {
    Detection {
        class_id: class_of(label),
        label: label.into(),
        confidence,
        bbox,
    }
}

fn engine(extra: &str) -> (Engine, FakeClock) {
    let clock = FakeClock::new(Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap());
    let e = Engine::from_config(&config(extra), Arc::new(clock.clone())).unwrap();
    (e, clock)
}

/// Feeds `frames` frames of the same detections, 100 ms apart; returns every hit.
fn feed(
    e: &mut Engine,
    clock: &FakeClock,
    cam: &str,
    dets: &[Detection],
    frames: usize,
) -> Vec<RuleHit> {
    let cam: Arc<str> = cam.into();
    let mut out = Vec::new();
    for _ in 0..frames {
        out.extend(e.evaluate(&cam, clock.now(), dets));
        clock.advance(Duration::from_millis(100));
    }
    out
}

fn fired(hits: &[RuleHit]) -> Vec<&RuleHit> {
    hits.iter().filter(|h| h.kind == HitKind::Fired).collect()
}

const PERSON_LEFT: [f32; 4] = [0.1, 0.2, 0.2, 0.8];
const PERSON_RIGHT: [f32; 4] = [0.7, 0.2, 0.8, 0.8];

#[test]
fn one_person_who_stays_is_one_alert() {
    let (mut e, clock) = engine(
        r#"[[rule]]
name = "p"
labels = ["person"]
min_confidence = 0.6
cooldown_seconds = 5
severity = "high"
sinks = ["b"]
metadata = { zone = "dock" }"#,
    );
    let hits = feed(
        &mut e,
        &clock,
        "cam",
        &[det("person", 0.9, PERSON_LEFT)],
        200,
    );
    assert_eq!(
        hits.len(),
        1,
        "20 s of the same person, cooldown 5 s: one alert"
    );
    let h = &hits[0];
    assert_eq!(
        (h.rule.as_str(), h.label.as_str(), h.count),
        ("p", "person", 1)
    );
    assert_eq!(h.severity, Severity::High);
    assert_eq!(h.sinks, vec!["b".to_string()]);
    assert_eq!(h.metadata["zone"], "dock");
    assert_eq!(h.objects[0].track_id, e.tracks("cam")[0].id);
    // A second person after the cooldown is a new event.
    let two = [
        det("person", 0.9, PERSON_LEFT),
        det("person", 0.8, PERSON_RIGHT),
    ];
    let hits = feed(&mut e, &clock, "cam", &two, 10);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].count, 2);
}

#[test]
fn median_confidence_not_one_frame_decides() {
    let (mut e, clock) = engine(
        r#"[[rule]]
name = "p"
labels = ["person"]
min_confidence = 0.6
cooldown_seconds = 0
[tracker]
min_hits = 1
score_window = 5"#,
    );
    let cam: Arc<str> = "c".into();
    // Mostly 0.5 with one 0.95 spike: the median stays below 0.6.
    for s in [0.5, 0.5, 0.95, 0.5, 0.5, 0.5] {
        assert!(e
            .evaluate(&cam, clock.now(), &[det("person", s, PERSON_LEFT)])
            .is_empty());
        clock.advance(Duration::from_millis(100));
    }
    // Mostly 0.8 with one dip to 0.3: fires regardless of the dip.
    let (mut e, clock) = engine(
        r#"[[rule]]
name = "p"
labels = ["person"]
min_confidence = 0.6
[tracker]
min_hits = 3"#,
    );
    let mut hits = Vec::new();
    for s in [0.8, 0.3, 0.8] {
        hits.extend(e.evaluate(&cam, clock.now(), &[det("person", s, PERSON_LEFT)]));
    }
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].confidence, 0.8);
}

#[test]
fn zones_count_cameras_and_area() {
    let (mut e, clock) = engine(
        r#"[[camera]]
name = "east"
url = "rtsp://127.0.0.1/east"
[[camera]]
name = "west"
url = "rtsp://127.0.0.1/west"
[[zone]]
name = "lane"
cameras = ["east"]
polygon = [[0.0, 0.5], [0.5, 0.5], [0.5, 1.0], [0.0, 1.0]]
[[rule]]
name = "crowd-in-lane"
labels = ["person"]
zone = "lane"
min_count = 2
cooldown_seconds = 0
[[rule]]
name = "big-car"
labels = ["car"]
min_area = 0.1
cooldown_seconds = 0"#,
    );
    let in_lane = det("person", 0.9, [0.1, 0.2, 0.2, 0.8]);
    let in_lane2 = det("person", 0.9, [0.3, 0.3, 0.4, 0.9]);
    let outside = det("person", 0.9, [0.7, 0.2, 0.8, 0.8]);
    assert!(
        feed(&mut e, &clock, "east", &[in_lane.clone(), outside], 10).is_empty(),
        "one in the lane is below min_count"
    );
    let hits = feed(
        &mut e,
        &clock,
        "east",
        &[in_lane.clone(), in_lane2.clone()],
        10,
    );
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].count, 2);
    assert_eq!(hits[0].sinks, vec!["a".to_string(), "b".to_string()]);
    assert!(
        feed(&mut e, &clock, "west", &[in_lane, in_lane2], 10).is_empty(),
        "the zone exists on east only"
    );
    let small_car = det("car", 0.9, [0.1, 0.1, 0.2, 0.2]);
    assert!(
        feed(&mut e, &clock, "west", &[small_car], 10).is_empty(),
        "area 0.01 < min_area"
    );
    assert_eq!(
        feed(
            &mut e,
            &clock,
            "west",
            &[det("car", 0.9, [0.1, 0.1, 0.6, 0.6])],
            10
        )
        .len(),
        1
    );
}

#[test]
fn anchor_and_inertia() {
    let (mut e, clock) = engine(
        r#"[[zone]]
name = "top"
polygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 0.5], [0.0, 0.5]]
anchor = "centroid"
inertia = 3
[[rule]]
name = "r"
zone = "top"
cooldown_seconds = 0
[tracker]
min_hits = 1"#,
    );
    // Centroid at y = 0.35 (inside), feet at 0.6 (outside): centroid decides.
    let d = det("person", 0.9, [0.4, 0.1, 0.5, 0.6]);
    let cam: Arc<str> = "c".into();
    let mut fired_at = None;
    for i in 0..5 {
        if !e
            .evaluate(&cam, clock.now(), std::slice::from_ref(&d))
            .is_empty()
        {
            fired_at.get_or_insert(i);
        }
    }
    assert_eq!(fired_at, Some(2), "inside only after 3 frames of inertia");
}

#[test]
fn dwell_is_per_track_and_restarts_when_it_leaves() {
    let (mut e, clock) = engine(
        r#"[[rule]]
name = "loiter"
labels = ["person"]
zone = [[0.0, 0.0], [0.35, 0.0], [0.35, 1.0], [0.0, 1.0]]
dwell_seconds = 10
cooldown_seconds = 0"#,
    );
    // Wide boxes, so stepping out and back keeps the same track (IoU 0.43).
    let inside = [det("person", 0.9, [0.0, 0.2, 0.5, 0.8])];
    let moved_out = [det("person", 0.9, [0.2, 0.2, 0.7, 0.8])];
    assert!(
        feed(&mut e, &clock, "c", &inside, 60).is_empty(),
        "6 s < 10 s"
    );
    assert!(feed(&mut e, &clock, "c", &moved_out, 5).is_empty());
    assert!(
        feed(&mut e, &clock, "c", &inside, 95).is_empty(),
        "the dwell restarted"
    );
    let id = e.tracks("c")[0].id;
    let hits = feed(&mut e, &clock, "c", &inside, 20);
    assert_eq!(hits.len(), 1, "fires once after 10 s in the zone");
    assert_eq!(hits[0].objects[0].track_id, id, "one track throughout");
}

#[test]
fn ended_closes_the_incident_with_its_duration() {
    let (mut e, clock) = engine(
        r#"[[rule]]
name = "p"
labels = ["person"]
cooldown_seconds = 0
emit_ended = true
[tracker]
max_age = 3"#,
    );
    let hits = feed(&mut e, &clock, "c", &[det("person", 0.9, PERSON_LEFT)], 50);
    assert_eq!(fired(&hits).len(), 1);
    let hits = feed(&mut e, &clock, "c", &[], 10);
    assert_eq!(hits.len(), 1);
    let HitKind::Ended {
        fired_alert_id,
        started_at,
    } = &hits[0].kind
    else {
        panic!("{hits:?}")
    };
    assert!(hits[0].alert_id > *fired_alert_id);
    // Fired on frame 2 (min_hits), ended when the track died (4 missed frames later).
    let duration = (hits[0].fired_at - *started_at).num_milliseconds();
    assert_eq!(duration, 5200, "{duration}");
}

#[test]
fn disabled_rules_never_fire() {
    let (mut e, clock) = engine(
        r#"[[rule]]
name = "off"
enabled = false
cooldown_seconds = 0"#,
    );
    assert!(feed(&mut e, &clock, "c", &[det("person", 0.99, PERSON_LEFT)], 50).is_empty());
}

#[test]
fn schedule_windows() {
    let w = Window::parse("Mon-Fri 07:00-19:00").unwrap();
    let at = |d, h, m| {
        chrono::NaiveDate::from_ymd_opt(2026, 11, d)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
    };
    // 2026-11-23 is a Monday, 2026-11-28 a Saturday.
    assert!(w.contains(at(23, 7, 0)));
    assert!(!w.contains(at(23, 19, 0)));
    assert!(!w.contains(at(28, 12, 0)));
    let night = Window::parse("Fri 22:00-06:00").unwrap();
    assert!(night.contains(at(27, 23, 0)));
    assert!(
        night.contains(at(28, 5, 59)),
        "Saturday morning belongs to Friday's night window"
    );
    assert!(
        !night.contains(at(27, 5, 0)),
        "Friday morning belongs to Thursday"
    );
    assert!(Window::parse("Sat,Sun 08:00-12:00")
        .unwrap()
        .contains(at(29, 9, 0)));
    assert!(Window::parse("00:00-24:00")
        .unwrap()
        .contains(at(25, 23, 59)));
    for bad in [
        "Mon-Fri",
        "Mon-Fri 7-19",
        "Mox 07:00-19:00",
        "25:00-26:00",
        "07:00-07:00",
    ] {
        assert!(Window::parse(bad).is_err(), "{bad} should be rejected");
    }
}

#[test]
fn schedule_gates_rules_in_local_time() {
    let (mut e, clock) = engine(
        r#"[[rule]]
name = "after-hours"
labels = ["person"]
schedule = ["00:00-00:01"]
cooldown_seconds = 0"#,
    );
    let local_midnight = chrono::Local
        .from_local_datetime(
            &chrono::NaiveDate::from_ymd_opt(2026, 11, 24)
                .unwrap()
                .and_hms_opt(0, 0, 30)
                .unwrap(),
        )
        .earliest()
        .unwrap();
    clock.set(local_midnight.with_timezone(&Utc));
    assert_eq!(
        feed(&mut e, &clock, "c", &[det("person", 0.9, PERSON_LEFT)], 5).len(),
        1
    );
    clock.advance(Duration::from_secs(60));
    assert!(
        feed(&mut e, &clock, "c", &[det("person", 0.9, PERSON_RIGHT)], 20).is_empty(),
        "outside the window"
    );
}

/// A random scene: each frame, each of up to 3 people is present or not.
fn scene() -> impl Strategy<Value = Vec<[bool; 3]>> {
    proptest::collection::vec(
        proptest::array::uniform3(proptest::bool::weighted(0.7)),
        1..150,
    )
}

fn people(present: &[bool; 3]) -> Vec<Detection> {
    let boxes = [
        [0.05, 0.2, 0.15, 0.8],
        [0.4, 0.2, 0.5, 0.8],
        [0.75, 0.2, 0.85, 0.8],
    ];
    present
        .iter()
        .zip(boxes)
        .filter(|(p, _)| **p)
        .map(|(_, b)| det("person", 0.9, b))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn cooldown_is_never_broken(frames in scene(), cooldown in 0u32..8) {
        let (mut e, clock) = engine(&format!(
            "[[rule]]\nname = \"p\"\nlabels = [\"person\"]\ncooldown_seconds = {cooldown}\n[tracker]\nmin_hits = 1\nmax_age = 2"
        ));
        let cam: Arc<str> = "c".into();
        let mut times = Vec::new();
        for f in &frames {
            for h in e.evaluate(&cam, clock.now(), &people(f)) {
                times.push(h.fired_at);
            }
            clock.advance(Duration::from_millis(100));
        }
        for pair in times.windows(2) {
            prop_assert!((pair[1] - pair[0]).num_milliseconds() >= cooldown as i64 * 1000);
        }
    }

    #[test]
    fn min_count_counts_distinct_tracks(frames in scene(), min_count in 1u32..4) {
        let (mut e, clock) = engine(&format!(
            "[[rule]]\nname = \"p\"\nlabels = [\"person\"]\nmin_count = {min_count}\ncooldown_seconds = 0\n[tracker]\nmin_hits = 1\nmax_age = 0"
        ));
        let cam: Arc<str> = "c".into();
        for f in &frames {
            for h in e.evaluate(&cam, clock.now(), &people(f)) {
                let ids: HashSet<u64> = h.objects.iter().map(|o| o.track_id).collect();
                prop_assert_eq!(ids.len(), h.objects.len());
                prop_assert!(ids.len() >= min_count as usize);
                prop_assert!(ids.len() <= f.iter().filter(|p| **p).count());
            }
            clock.advance(Duration::from_millis(100));
        }
    }

    #[test]
    fn dwell_fires_once_for_a_stay_and_never_for_a_short_visit(stay in 1usize..120, dwell_frames in 1usize..60) {
        let (mut e, clock) = engine(&format!(
            "[[rule]]\nname = \"p\"\nlabels = [\"person\"]\ndwell_seconds = {}\ncooldown_seconds = 0\n[tracker]\nmin_hits = 1\nmax_age = 0",
            dwell_frames as f64 / 10.0
        ));
        let cam: Arc<str> = "c".into();
        let mut n = 0;
        for _ in 0..stay {
            n += e.evaluate(&cam, clock.now(), &[det("person", 0.9, PERSON_LEFT)]).len();
            clock.advance(Duration::from_millis(100));
        }
        n += e.evaluate(&cam, clock.now(), &[]).len();
        // Frame k (0-based) is k/10 s after the track was confirmed on frame 0.
        prop_assert_eq!(n, usize::from(stay > dwell_frames));
    }

    #[test]
    fn disabled_rules_stay_silent(frames in scene()) {
        let (mut e, clock) = engine("[[rule]]\nname = \"p\"\nenabled = false\ncooldown_seconds = 0\n[tracker]\nmin_hits = 1");
        let cam: Arc<str> = "c".into();
        for f in &frames {
            prop_assert!(e.evaluate(&cam, clock.now(), &people(f)).is_empty());
            clock.advance(Duration::from_millis(100));
        }
    }
}

// ---- lines ------------------------------------------------------------------------------

/// A vertical line down the middle, drawn top to bottom: its left is the frame's right.
const LINE: &str = r#"
[[line]]
name = "door"
points = [[0.5, 0.05], [0.5, 0.95]]
in = "left-to-right"
report_minutes = 0.05
"#;

/// A person box whose bottom-centre is at `x`.
fn person_at(x: f32) -> Detection {
    det("person", 0.9, [x - 0.1, 0.3, x + 0.1, 0.8])
}

/// Walks one person from `from` to `to` in `steps` frames (100 ms apart), then lets the
/// track end with a few empty frames.
fn walk(e: &mut Engine, clock: &FakeClock, from: f32, to: f32, steps: usize) -> Vec<RuleHit> {
    let mut out = Vec::new();
    for i in 0..steps {
        let x = from + (to - from) * i as f32 / (steps - 1) as f32;
        out.extend(feed(e, clock, "cam", &[person_at(x)], 1));
    }
    out.extend(feed(e, clock, "cam", &[], 8));
    out
}

fn line_counts(e: &Engine) -> LineCounts {
    e.counts()
        .snapshot()
        .into_iter()
        .find(|c| c.line == "door")
        .expect("door counted")
}

#[test]
fn a_walk_across_counts_once_in_the_line_s_terms_and_fires_its_crossing_rule() {
    let rules = format!(
        "{LINE}\n[[rule]]\nname = \"entering\"\ncrosses = \"door\"\ndirection = \"in\"\ncooldown_seconds = 0\n\
         [[rule]]\nname = \"leaving\"\ncrosses = \"door\"\ndirection = \"out\"\ncooldown_seconds = 0\nlabels = [\"person\"]"
    );
    let (mut e, clock) = engine(&rules);
    // Screen right to left: from the line's left (it is drawn downwards) to its right = in.
    let hits = walk(&mut e, &clock, 0.8, 0.2, 30);
    let f = fired(&hits);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, "entering");
    let line = f[0].line.as_ref().expect("line in the hit");
    assert_eq!(
        (
            line.name.as_str(),
            line.direction.as_deref(),
            line.occupancy
        ),
        ("door", Some("in"), 1)
    );
    assert_eq!(f[0].objects.len(), 1);
    let c = line_counts(&e);
    assert_eq!(
        (c.labels["person"].total_in, c.labels["person"].total_out),
        (1, 0)
    );
    // And back: one "out", occupancy back to zero.
    let f2: Vec<_> = walk(&mut e, &clock, 0.2, 0.8, 12)
        .into_iter()
        .filter(|h| h.kind == HitKind::Fired)
        .collect();
    assert_eq!(
        f2.iter().map(|h| h.rule.as_str()).collect::<Vec<_>>(),
        ["leaving"]
    );
    let c = line_counts(&e);
    assert_eq!(
        (c.labels["person"].total_out, c.labels["person"].occupancy),
        (1, 0)
    );
}

#[test]
fn standing_on_the_line_with_jitter_never_counts() {
    let (mut e, clock) = engine(&format!(
        "{LINE}\n[[rule]]\nname = \"any\"\ncrosses = \"door\"\ncooldown_seconds = 0"
    ));
    let mut hits = Vec::new();
    for i in 0..200 {
        // ±0.02 around the line, inside the default 0.03 margin.
        let x = 0.5 + if i % 2 == 0 { 0.02 } else { -0.02 };
        hits.extend(feed(&mut e, &clock, "cam", &[person_at(x)], 1));
    }
    assert!(fired(&hits).is_empty());
    assert!(e.counts().snapshot().iter().all(|c| c.labels.is_empty()));
}

#[test]
fn occupancy_alerts_above_its_bound_ends_when_back_and_never_goes_below_zero() {
    let rules = format!(
        "{LINE}\n[[rule]]\nname = \"crowd\"\ncrosses = \"door\"\nmax_occupancy = 1\ncooldown_seconds = 0\nseverity = \"high\""
    );
    let (mut e, clock) = engine(&rules);
    // One out first: occupancy stays at zero.
    walk(&mut e, &clock, 0.2, 0.8, 10);
    assert_eq!(line_counts(&e).occupancy(&[]), 0);
    assert!(
        fired(&walk(&mut e, &clock, 0.8, 0.2, 10)).is_empty(),
        "1 inside is allowed"
    );
    let second = walk(&mut e, &clock, 0.8, 0.2, 10);
    let f = fired(&second);
    assert_eq!(f.len(), 1, "2 inside > 1");
    assert_eq!(f[0].rule, "crowd");
    assert_eq!(f[0].line.as_ref().map(|l| l.occupancy), Some(2));
    assert_eq!(f[0].severity, Severity::High);
    // Still 2: no second alert.
    assert!(fired(&feed(&mut e, &clock, "cam", &[], 20)).is_empty());
    let back = walk(&mut e, &clock, 0.2, 0.8, 10);
    let ended: Vec<_> = back
        .iter()
        .filter(|h| matches!(h.kind, HitKind::Ended { .. }))
        .collect();
    assert_eq!(ended.len(), 1, "ended once when back to 1");
    assert!(
        matches!(ended[0].kind, HitKind::Ended { fired_alert_id, .. } if fired_alert_id == f[0].alert_id)
    );
}

#[test]
fn min_occupancy_is_a_fire_watch() {
    let rules = format!("{LINE}\n[[rule]]\nname = \"fire-watch\"\ncrosses = \"door\"\nmin_occupancy = 1\ncooldown_seconds = 0");
    let (mut e, clock) = engine(&rules);
    // Nobody there at the start: it fires at once, and ends when someone comes in.
    let first = e.tick();
    assert_eq!(fired(&first).len(), 1);
    let hits = walk(&mut e, &clock, 0.8, 0.2, 10);
    assert_eq!(
        hits.iter()
            .filter(|h| matches!(h.kind, HitKind::Ended { .. }))
            .count(),
        1
    );
}

#[test]
fn count_reports_come_every_interval_with_the_interval_s_figures() {
    let (mut e, clock) = engine(LINE);
    walk(&mut e, &clock, 0.8, 0.2, 10); // in
    walk(&mut e, &clock, 0.8, 0.2, 10); // in
    walk(&mut e, &clock, 0.2, 0.8, 10); // out
                                        // 3 s interval (0.05 min); the walks took ~5.4 s, so at least one report is out already.
    let mut reports: Vec<LineReport> = Vec::new();
    for _ in 0..100 {
        clock.advance(Duration::from_millis(100));
        for h in e.tick() {
            if let HitKind::Report(r) = h.kind {
                assert_eq!(h.severity, Severity::Info);
                assert_eq!(h.rule, "door");
                assert_eq!(h.camera, ALL_CAMERAS);
                reports.push(*r);
            }
        }
    }
    // Every interval is 3 s, aligned, and back to back.
    for pair in reports.windows(2) {
        assert_eq!(pair[0].end, pair[1].start);
        assert_eq!((pair[1].end - pair[1].start).num_milliseconds(), 3000);
    }
    // The last reports cover quiet intervals: no crossings, the totals kept.
    let last = reports.last().expect("reports");
    let t = &last.counts.labels["person"];
    assert_eq!((t.interval_in, t.interval_out), (0, 0));
    assert_eq!((t.total_in, t.total_out, t.occupancy), (2, 1, 1));
    assert!(reports.len() >= 3, "{} reports", reports.len());
}

#[test]
fn occupancy_resets_at_its_local_time_of_day() {
    use chrono::Local;
    let start = Local
        .with_ymd_and_hms(2026, 11, 24, 2, 58, 0)
        .earliest()
        .expect("a local time")
        .with_timezone(&Utc);
    let clock = FakeClock::new(start);
    let cfg = config(&format!("{LINE}occupancy_reset = \"03:00\"\n"));
    let mut e = Engine::from_config(&cfg, Arc::new(clock.clone())).unwrap();
    walk(&mut e, &clock, 0.8, 0.2, 10);
    assert_eq!(line_counts(&e).occupancy(&[]), 1);
    clock.advance(Duration::from_secs(60)); // 02:59:0x
    e.tick();
    assert_eq!(line_counts(&e).occupancy(&[]), 1, "not yet 03:00");
    clock.advance(Duration::from_secs(60)); // past 03:00
    e.tick();
    let c = line_counts(&e);
    assert_eq!((c.occupancy(&[]), c.labels["person"].total_in), (0, 0));
    assert_eq!(
        c.since.with_timezone(&Local).format("%H:%M").to_string(),
        "03:00"
    );
    // A second tick the same day does not reset again (a crossing after 03:00 stays).
    walk(&mut e, &clock, 0.8, 0.2, 10);
    clock.advance(Duration::from_secs(3600));
    e.tick();
    assert_eq!(line_counts(&e).occupancy(&[]), 1);
}

#[test]
fn counts_carry_over_a_live_rule_change_and_a_restore() {
    let (mut e, clock) = engine(LINE);
    walk(&mut e, &clock, 0.8, 0.2, 10);
    let counts = e.counts().clone();
    // Live change: a new engine on the same counts.
    let e2 = Engine::with_counts(&config(LINE), Arc::new(clock.clone()), counts.clone()).unwrap();
    assert_eq!(line_counts(&e2).labels["person"].total_in, 1);
    // Restart: what the committer saved, read back.
    let saved: Vec<(String, String)> = counts
        .take_changed()
        .expect("changed")
        .iter()
        .map(|c| (c.line.clone(), serde_json::to_string(c).unwrap()))
        .collect();
    let restored = SharedCounts::restore(saved);
    let e3 = Engine::with_counts(&config(LINE), Arc::new(clock.clone()), restored).unwrap();
    assert_eq!(line_counts(&e3), line_counts(&e2));
    // A removed line's counts go; a reset names an unknown line as such.
    let e4 = Engine::with_counts(&config(""), Arc::new(clock.clone()), counts.clone()).unwrap();
    assert!(e4.counts().snapshot().is_empty());
    assert_eq!(
        counts.reset(Some("door"), clock.now()),
        Err(CountsError::NoLine("door".into()))
    );
}

#[test]
fn the_dry_run_says_what_each_track_meets_and_why_the_rule_would_not_fire() {
    let (mut e, clock) = engine(
        "[[zone]]\nname = \"left\"\npolygon = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]\n\n\
         [[rule]]\nname = \"dwell\"\nlabels = [\"person\"]\nzone = \"left\"\ndwell_seconds = 1\nmin_confidence = 0.5",
    );
    assert!(e.explain("nope", "cam").is_none());
    let dets = [
        det("person", 0.9, PERSON_LEFT),
        det("dog", 0.9, PERSON_RIGHT),
    ];
    feed(&mut e, &clock, "cam", &dets, 4);
    let x = e.explain("dwell", "cam").expect("a rule");
    assert!(x.watches && x.scheduled && !x.would_fire, "{x:?}");
    let person = x
        .tracks
        .iter()
        .find(|t| t.label == "person")
        .expect("person");
    assert_eq!(
        (person.label_ok, person.in_zone, person.dwell_ok),
        (true, Some(true), false)
    );
    assert!(person.dwell_s.is_some_and(|d| d < 1.0), "{person:?}");
    let dog = x.tracks.iter().find(|t| t.label == "dog").expect("dog");
    assert_eq!(
        (dog.label_ok, dog.in_zone, dog.qualifies),
        (false, Some(false), false)
    );
    assert!(
        x.why
            .contains("0 track(s) meet every condition; it needs 1"),
        "{}",
        x.why
    );
    // Past the dwell it would fire (explaining changes nothing: the next frame fires it).
    clock.advance(Duration::from_millis(1100));
    let x = e.explain("dwell", "cam").expect("a rule");
    assert!(x.would_fire, "{x:?}");
    assert_eq!(fired(&feed(&mut e, &clock, "cam", &dets, 1)).len(), 1);
    let x = e.explain("dwell", "cam").expect("a rule");
    assert!(
        !x.would_fire && x.why.contains("fired this rule already"),
        "{}",
        x.why
    );
    // A camera with no frame yet: watched, no tracks, nothing to fire.
    let other = e.explain("dwell", "other").expect("rule");
    assert!(other.tracks.is_empty() && !other.would_fire);
}
