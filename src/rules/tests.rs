use super::*;
use crate::clock::FakeClock;
use chrono::TimeZone;
use std::time::Duration;

fn rule(toml_text: &str) -> RuleConfig {
    toml::from_str(toml_text).expect("test rule parses")
}

fn det(label: &str, confidence: f32, bbox: [f32; 4]) -> Detection {
    Detection {
        class_id: 0,
        label: label.into(),
        confidence,
        bbox,
    }
}

fn engine(rules: &[RuleConfig]) -> (Engine, FakeClock) {
    let clock = FakeClock::new(Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap());
    let e = Engine::new(rules, &["a".into(), "b".into()], Arc::new(clock.clone())).unwrap();
    (e, clock)
}

#[test]
fn label_confidence_and_cooldown() {
    let (mut e, clock) = engine(&[rule(
        r#"name = "p"
           labels = ["person"]
           min_confidence = 0.6
           cooldown_seconds = 60
           severity = "high"
           sinks = ["b"]
           metadata = { zone = "dock" }"#,
    )]);
    let cam: Arc<str> = "cam".into();
    let t = clock.now();
    assert!(e
        .evaluate(&cam, t, &[det("person", 0.59, [0.1, 0.1, 0.2, 0.5])])
        .is_empty());
    assert!(e
        .evaluate(&cam, t, &[det("dog", 0.9, [0.1, 0.1, 0.2, 0.5])])
        .is_empty());
    let hits = e.evaluate(
        &cam,
        t,
        &[
            det("person", 0.91, [0.1, 0.1, 0.2, 0.5]),
            det("person", 0.7, [0.5, 0.1, 0.6, 0.5]),
        ],
    );
    assert_eq!(hits.len(), 1);
    let h = &hits[0];
    assert_eq!(
        (h.rule.as_str(), h.label.as_str(), h.count),
        ("p", "person", 2)
    );
    assert_eq!(h.confidence, 0.91);
    assert_eq!(h.severity, Severity::High);
    assert_eq!(h.sinks, vec!["b".to_string()]);
    assert_eq!(h.metadata["zone"], "dock");
    // Within the cooldown: nothing; after it: fires again with a later, distinct id.
    clock.advance(Duration::from_secs(59));
    assert!(e
        .evaluate(&cam, t, &[det("person", 0.9, [0.1, 0.1, 0.2, 0.5])])
        .is_empty());
    clock.advance(Duration::from_secs(1));
    let again = e.evaluate(&cam, t, &[det("person", 0.9, [0.1, 0.1, 0.2, 0.5])]);
    assert_eq!(again.len(), 1);
    assert!(again[0].alert_id > h.alert_id);
    // The cooldown is per camera: another camera fires at once.
    let other: Arc<str> = "other".into();
    assert_eq!(
        e.evaluate(&other, t, &[det("person", 0.9, [0.1, 0.1, 0.2, 0.5])])
            .len(),
        1
    );
}

#[test]
fn cameras_zone_count_and_default_sinks() {
    let (mut e, clock) = engine(&[rule(
        r#"name = "lane"
           cameras = ["east"]
           labels = ["person"]
           zone = [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]]
           min_count = 2
           cooldown_seconds = 0"#,
    )]);
    let (east, west): (Arc<str>, Arc<str>) = ("east".into(), "west".into());
    let t = clock.now();
    let in_lane = det("person", 0.9, [0.1, 0.2, 0.2, 0.8]);
    let above = det("person", 0.9, [0.5, 0.0, 0.6, 0.4]);
    let at_edge = det("person", 0.9, [0.7, 0.3, 0.8, 1.0]);
    assert!(
        e.evaluate(&east, t, &[in_lane.clone(), above]).is_empty(),
        "one in the zone is below min_count"
    );
    let hits = e.evaluate(&east, t, &[in_lane.clone(), at_edge.clone()]);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].sinks, vec!["a".to_string(), "b".to_string()]);
    assert!(
        e.evaluate(&west, t, &[in_lane, at_edge]).is_empty(),
        "rule is for east only"
    );
}

#[test]
fn dwell_needs_an_unbroken_condition() {
    let (mut e, clock) = engine(&[rule(
        r#"name = "loiter"
           labels = ["person"]
           dwell_seconds = 10
           cooldown_seconds = 0"#,
    )]);
    let cam: Arc<str> = "c".into();
    let p = [det("person", 0.9, [0.1, 0.1, 0.2, 0.5])];
    let t = clock.now();
    assert!(e.evaluate(&cam, t, &p).is_empty());
    clock.advance(Duration::from_secs(6));
    assert!(
        e.evaluate(&cam, t, &[]).is_empty(),
        "gone: the dwell restarts"
    );
    assert!(e.evaluate(&cam, t, &p).is_empty());
    clock.advance(Duration::from_secs(9));
    assert!(e.evaluate(&cam, t, &p).is_empty());
    clock.advance(Duration::from_secs(1));
    assert_eq!(e.evaluate(&cam, t, &p).len(), 1);
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
    let (mut e, clock) = engine(&[rule(
        r#"name = "after-hours"
           labels = ["person"]
           schedule = ["00:00-00:01"]
           cooldown_seconds = 0"#,
    )]);
    let cam: Arc<str> = "c".into();
    let p = [det("person", 0.9, [0.1, 0.1, 0.2, 0.5])];
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
    assert_eq!(e.evaluate(&cam, clock.now(), &p).len(), 1);
    clock.advance(Duration::from_secs(60));
    assert!(e.evaluate(&cam, clock.now(), &p).is_empty());
}
