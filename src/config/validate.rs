//! Checks values serde cannot: ranges, references between sections, secrets, schedules.
//! Collects every problem rather than stopping at the first, so one `check-config` run
//! shows the technician everything to fix.

use super::locate::{FieldPath, Located};
use super::{Config, Problem, Secret, SignatureMode, SinkConfig, SinkKind};
use base64::Engine as _;
use std::collections::HashSet;

struct Problems<'a> {
    doc: &'a Located<'a>,
    out: Vec<Problem>,
}

impl Problems<'_> {
    fn add(&mut self, path: &FieldPath, message: impl Into<String>) {
        let (line, column) = self.doc.find(path);
        self.out.push(Problem {
            file: self.doc.file.clone(),
            line,
            column,
            field: path.to_string(),
            message: message.into(),
        });
    }

    fn polygon(&mut self, path: &FieldPath, poly: &[[f64; 2]], owner: &str) {
        if poly.len() < 3 {
            self.add(
                path,
                format!(
                    "{owner}: a polygon needs at least 3 points, got {}",
                    poly.len()
                ),
            );
        }
        for (j, pt) in poly.iter().enumerate() {
            if pt.iter().any(|v| !(0.0..=1.0).contains(v)) {
                self.add(
                    &path.index(j),
                    format!(
                        "{owner}: polygon points are normalised 0..1, got [{}, {}]",
                        pt[0], pt[1]
                    ),
                );
            }
        }
    }

    fn range(&mut self, path: &FieldPath, v: f64, lo: f64, hi: f64) {
        if !(lo..=hi).contains(&v) {
            self.add(path, format!("must be between {lo} and {hi}, got {v}"));
        }
    }
}

pub(super) fn validate(c: &mut Config, doc: &Located) -> Vec<Problem> {
    let mut p = Problems {
        doc,
        out: Vec::new(),
    };
    let device = FieldPath::root("device");
    if c.device.id.trim().is_empty() {
        p.add(&device.key("id"), "must not be empty");
    }

    let model = FieldPath::root("model");
    if let Some(size) = c.model.input_size {
        if !(32..=1280).contains(&size) {
            p.add(
                &model.key("input_size"),
                format!("must be between 32 and 1280 (NanoDet: 320 or 416; SSD: 300), got {size}"),
            );
        }
    }
    if c.model.threads == 0 || c.model.threads > 64 {
        p.add(
            &model.key("threads"),
            format!("must be between 1 and 64, got {}", c.model.threads),
        );
    }
    if let Some(t) = c.model.score_threshold {
        p.range(&model.key("score_threshold"), t as f64, 0.01, 1.0);
    }
    if !c.model.path.is_file() {
        p.add(
            &model.key("path"),
            format!("model file {} not found", c.model.path.display()),
        );
    }
    let labels: Option<Vec<String>> = match std::fs::read_to_string(&c.model.labels) {
        Ok(t) => match super::parse_labels(&t) {
            Ok(labels) => Some(labels),
            Err(e) => {
                p.add(
                    &model.key("labels"),
                    format!("labels file {}: {e}", c.model.labels.display()),
                );
                None
            }
        },
        Err(e) => {
            p.add(
                &model.key("labels"),
                format!("cannot read labels file {}: {e}", c.model.labels.display()),
            );
            None
        }
    };

    let mut cameras = HashSet::new();
    for (i, cam) in c.cameras.iter_mut().enumerate() {
        let at = FieldPath::root("camera").index(i);
        if let Some(file) = cam.credentials_file.clone() {
            match merge_credentials(cam.url.expose(), &file) {
                Ok(url) => cam.url = super::Secret::new(url),
                Err(message) => p.add(&at.key("credentials_file"), message),
            }
        }
        if cam.name.trim().is_empty() {
            p.add(&at.key("name"), "must not be empty");
        } else if cam.name.starts_with('_') || cam.name.contains(['/', '+', '#']) {
            // It is an MQTT topic level (`alerts/{camera}`); `_` names are reserved for
            // watchpost's own (test alerts come from camera `_test`).
            p.add(
                &at.key("name"),
                format!(
                    "camera \"{}\": a camera name cannot start with '_' or contain '/', '+' or '#'",
                    cam.name
                ),
            );
        } else if !cameras.insert(cam.name.clone()) {
            p.add(
                &at.key("name"),
                format!("camera \"{}\" is defined twice", cam.name),
            );
        }
        match url::Url::parse(cam.url.expose()) {
            Ok(u) if matches!(u.scheme(), "rtsp" | "rtsps") && u.host_str().is_some() => {}
            Ok(u) if u.scheme() == "testsrc" => {}
            Ok(u) if u.scheme() == "file" => {
                let path = u.to_file_path().unwrap_or_default();
                if !path.is_file() {
                    p.add(
                        &at.key("url"),
                        format!(
                            "camera \"{}\": no video file at {}",
                            cam.name,
                            path.display()
                        ),
                    );
                }
            }
            Ok(u) => p.add(
                &at.key("url"),
                format!(
                    "camera \"{}\": expected rtsp://host/path, file:///path/to/video or testsrc://, got scheme \"{}\"",
                    cam.name,
                    u.scheme()
                ),
            ),
            Err(e) => p.add(
                &at.key("url"),
                format!(
                    "camera \"{}\": not a valid URL ({e}): {}",
                    cam.name,
                    cam.redacted_url()
                ),
            ),
        }
        if let Some(m) = &cam.motion {
            let at = at.key("motion");
            let owner = format!("camera \"{}\" motion", cam.name);
            if m.threshold == 0 {
                p.add(
                    &at.key("threshold"),
                    format!("{owner}: must be 1 to 255, got 0"),
                );
            }
            if !(m.min_area > 0.0 && m.min_area <= 1.0) {
                p.add(
                    &at.key("min_area"),
                    format!(
                        "{owner}: a fraction of the picture above 0 and at most 1, got {}",
                        m.min_area
                    ),
                );
            }
            if !(m.max_skip_seconds > 0.0 && m.max_skip_seconds <= 3600.0) {
                p.add(
                    &at.key("max_skip_seconds"),
                    format!(
                        "{owner}: must be above 0 and at most 3600, got {}",
                        m.max_skip_seconds
                    ),
                );
            }
            for (j, mask) in m.masks.iter().enumerate() {
                p.polygon(&at.key("masks").index(j), mask, &owner);
            }
        }
        if !(cam.detect_fps > 0.0 && cam.detect_fps <= 60.0) {
            p.add(
                &at.key("detect_fps"),
                format!(
                    "camera \"{}\": must be above 0 and at most 60, got {}",
                    cam.name, cam.detect_fps
                ),
            );
        }
    }

    let mut sinks = HashSet::new();
    let rule_names: Vec<String> = c.rules.iter().map(|r| r.name.clone()).collect();
    for (i, sink) in c.sinks.iter_mut().enumerate() {
        let at = FieldPath::root("sink").index(i);
        if sink.name.trim().is_empty() {
            p.add(&at.key("name"), "must not be empty");
        } else if !sinks.insert(sink.name.clone()) {
            p.add(
                &at.key("name"),
                format!("sink \"{}\" is defined twice", sink.name),
            );
        }
        validate_routing(sink, &at, &rule_names, &mut p);
        check_limits(sink, &at, &mut p);
        if !matches!(
            sink.kind,
            SinkKind::Slack | SinkKind::Pagerduty | SinkKind::Email
        ) {
            for (field, set) in [
                ("routing_key", sink.routing_key.is_some()),
                ("from", sink.from.is_some()),
                ("to", !sink.to.is_empty()),
                ("template", sink.template.is_some()),
                ("link_url", sink.link_url.is_some()),
            ] {
                if set {
                    p.add(
                        &at.key(field),
                        format!(
                            "{} sinks do not take this setting (slack, pagerduty and email do)",
                            sink.kind.as_str()
                        ),
                    );
                }
            }
        }
        match sink.kind {
            SinkKind::Mqtt => {
                validate_mqtt_sink(sink, &at, &mut p);
                continue;
            }
            SinkKind::Slack | SinkKind::Pagerduty | SinkKind::Email => {
                validate_people_sink(sink, &at, &mut p);
                continue;
            }
            SinkKind::Webhook => {}
        }
        for (field, set) in [
            ("ca_file", sink.ca_file.is_some()),
            ("client_cert_file", sink.client_cert_file.is_some()),
            ("client_key_file", sink.client_key_file.is_some()),
            ("username", sink.username.is_some()),
            ("password", sink.password.is_some()),
            ("connections", sink.connections.is_some()),
        ] {
            if set {
                p.add(&at.key(field), "only MQTT sinks take this setting");
            }
        }
        match url::Url::parse(&sink.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            Ok(u) => p.add(
                &at.key("url"),
                format!(
                    "sink \"{}\": a webhook needs an http(s) URL, got scheme \"{}\"",
                    sink.name,
                    u.scheme()
                ),
            ),
            Err(e) => p.add(
                &at.key("url"),
                format!("sink \"{}\": not a valid URL ({e})", sink.name),
            ),
        }
        if !load_secret_file(sink, &at, &mut p) && sink.secret.is_none() {
            p.add(
                &at,
                format!(
                    "sink \"{}\": a webhook needs a secret (or secret_file) to sign with",
                    sink.name
                ),
            );
        }
        let field = if sink.secret_file.is_some() {
            "secret_file"
        } else {
            "secret"
        };
        if let Some(secret) = &sink.secret {
            match sink.signature {
                SignatureMode::StandardWebhooks => {
                    // Several secrets (a rotation) are separated by whitespace.
                    let mut parts = secret.expose().split_whitespace().peekable();
                    let ok = parts.peek().is_some()
                        && parts.all(|one| {
                            one.strip_prefix("whsec_").is_some_and(|k| {
                                base64::engine::general_purpose::STANDARD
                                    .decode(k)
                                    .is_ok_and(|b| !b.is_empty())
                            })
                        });
                    if !ok {
                        p.add(
                            &at.key(field),
                            format!("sink \"{}\": a standard-webhooks secret is \"whsec_\" followed by base64 (the value is not shown)", sink.name),
                        );
                    }
                }
                SignatureMode::Hex => {
                    if secret.expose().is_empty() {
                        p.add(&at.key(field), "must not be empty");
                    }
                }
            }
        }
        if sink.signature == SignatureMode::Hex {
            match &sink.signature_header {
                Some(h) if reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_ok() => {}
                Some(h) => p.add(
                    &at.key("signature_header"),
                    format!("\"{h}\" is not a valid HTTP header name"),
                ),
                None => p.add(
                    &at.key("signature"),
                    format!(
                        "sink \"{}\": signature = \"hex\" needs signature_header (e.g. \"X-Signature\")",
                        sink.name
                    ),
                ),
            }
        }
    }

    let mut zones = HashSet::new();
    for (i, zone) in c.zones.iter().enumerate() {
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

    let t = FieldPath::root("tracker");
    if c.tracker.min_hits == 0 || c.tracker.min_hits > 100 {
        p.add(
            &t.key("min_hits"),
            format!("must be between 1 and 100, got {}", c.tracker.min_hits),
        );
    }
    if c.tracker.max_age > 1000 {
        p.add(
            &t.key("max_age"),
            format!("must be at most 1000 frames, got {}", c.tracker.max_age),
        );
    }
    p.range(
        &t.key("iou_threshold"),
        c.tracker.iou_threshold as f64,
        0.01,
        0.99,
    );
    if c.tracker.score_window == 0 || c.tracker.score_window > 100 {
        p.add(
            &t.key("score_window"),
            format!("must be between 1 and 100, got {}", c.tracker.score_window),
        );
    }
    let snap = FieldPath::root("snapshots");
    if c.snapshots.quality == 0 || c.snapshots.quality > 100 {
        p.add(
            &snap.key("quality"),
            format!("must be between 1 and 100, got {}", c.snapshots.quality),
        );
    }
    if c.snapshots.max_count == 0 || c.snapshots.max_mb.is_nan() || c.snapshots.max_mb <= 0.0 {
        p.add(
            &snap,
            "max_count and max_mb must be above 0 (use enabled = false to turn snapshots off)",
        );
    }

    let mut rules = HashSet::new();
    for (i, rule) in c.rules.iter().enumerate() {
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
        if let Some(labels) = &labels {
            for (j, l) in rule.labels.iter().enumerate() {
                if !labels.contains(l) {
                    p.add(
                        &at.key("labels").index(j),
                        format!(
                            "rule \"{name}\": the model has no label \"{l}\" (see {})",
                            c.model.labels.display()
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
            Some(super::ZoneRef::Polygon(poly)) => {
                p.polygon(&at.key("zone"), poly, &format!("rule \"{name}\""))
            }
            Some(super::ZoneRef::Name(z)) if !zones.contains(z) => p.add(
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
    }

    let d = FieldPath::root("delivery");
    if c.delivery.retry_schedule_seconds.is_empty() {
        p.add(&d.key("retry_schedule_seconds"), "must not be empty");
    }
    for (j, s) in c.delivery.retry_schedule_seconds.iter().enumerate() {
        p.range(
            &d.key("retry_schedule_seconds").index(j),
            *s,
            0.001,
            86400.0,
        );
    }
    p.range(
        &d.key("max_backoff_seconds"),
        c.delivery.max_backoff_seconds,
        0.001,
        86400.0,
    );
    p.range(
        &d.key("max_age_hours"),
        c.delivery.max_age_hours,
        0.001,
        24.0 * 365.0,
    );
    p.range(
        &d.key("history_hours"),
        c.delivery.history_hours,
        0.0,
        24.0 * 365.0,
    );
    if c.delivery.outbox_max_mb == 0 {
        p.add(&d.key("outbox_max_mb"), "must be at least 1");
    }
    let h = FieldPath::root("health");
    p.range(
        &h.key("silence_minutes"),
        c.health.silence_minutes,
        1.0,
        7.0 * 24.0 * 60.0,
    );
    p.range(
        &h.key("baseline_hours"),
        c.health.baseline_hours,
        1.0,
        24.0 * 30.0,
    );
    if c.health.baseline_hours * 60.0 <= c.health.silence_minutes {
        p.add(
            &h.key("baseline_hours"),
            format!(
                "must be longer than silence_minutes ({} min), or nothing can look silent",
                c.health.silence_minutes
            ),
        );
    }
    if c.health.min_events == 0 {
        p.add(&h.key("min_events"), "must be at least 1");
    }
    if let Some(web) = &c.web {
        if web.listen.parse::<std::net::SocketAddr>().is_err() {
            p.add(
                &FieldPath::root("web").key("listen"),
                format!("expected ADDRESS:PORT, got \"{}\"", web.listen),
            );
        }
        if web.cert_file.is_some() != web.key_file.is_some() {
            p.add(
                &FieldPath::root("web").key(if web.cert_file.is_some() {
                    "key_file"
                } else {
                    "cert_file"
                }),
                "give both cert_file and key_file, or neither (a self-signed pair is made)",
            );
        }
    }
    if let Some(m) = c.control.as_mut().and_then(|c| c.mqtt.as_mut()) {
        let at = FieldPath::root("control").key("mqtt");
        match (&m.control_key, &m.control_key_file) {
            (Some(_), Some(_)) => p.add(
                &at.key("control_key_file"),
                "give either control_key or control_key_file, not both",
            ),
            (None, Some(file)) => match std::fs::read_to_string(file) {
                Ok(k) if k.trim().len() >= 16 => m.control_key = Some(Secret::new(k.trim())),
                Ok(_) => p.add(
                    &at.key("control_key_file"),
                    format!(
                        "{}: the key must be at least 16 characters (the value is not shown)",
                        file.display()
                    ),
                ),
                Err(e) => p.add(
                    &at.key("control_key_file"),
                    format!("{}: {e}", file.display()),
                ),
            },
            (Some(k), None) if k.expose().len() < 16 => p.add(
                &at.key("control_key"),
                "must be at least 16 characters (the value is not shown)",
            ),
            _ => {}
        }
        if !(m.url.starts_with("mqtt://") || m.url.starts_with("mqtts://")) {
            p.add(
                &at.key("url"),
                format!(
                    "expected mqtt://host[:port] or mqtts://host[:port], got \"{}\"",
                    crate::config::redact_url(&m.url)
                ),
            );
        }
        if !(m.health_interval_seconds >= 1.0 && m.health_interval_seconds <= 3600.0) {
            p.add(
                &at.key("health_interval_seconds"),
                format!(
                    "must be between 1 and 3600, got {}",
                    m.health_interval_seconds
                ),
            );
        }
    }
    p.out
}

/// Reads `secret_file` into `secret`; false when the setting is missing or broken (the
/// problem, if any, is recorded).
fn load_secret_file(sink: &mut SinkConfig, at: &FieldPath, p: &mut Problems<'_>) -> bool {
    match (&sink.secret, &sink.secret_file) {
        (Some(_), Some(_)) => {
            p.add(
                &at.key("secret_file"),
                format!(
                    "sink \"{}\": give either secret or secret_file, not both",
                    sink.name
                ),
            );
            true
        }
        (None, Some(f)) => match std::fs::read_to_string(f) {
            Ok(s) => {
                sink.secret = Some(super::Secret::new(s.trim()));
                true
            }
            Err(e) => {
                p.add(
                    &at.key("secret_file"),
                    format!("cannot read {}: {e}", f.display()),
                );
                true
            }
        },
        (Some(_), None) => true,
        (None, None) => false,
    }
}

fn validate_mqtt_sink(sink: &mut SinkConfig, at: &FieldPath, p: &mut Problems<'_>) {
    let name = sink.name.clone();
    let tls = match url::Url::parse(&sink.url) {
        Ok(u) if matches!(u.scheme(), "mqtt" | "mqtts") && u.host_str().is_some() => {
            if u.password().is_some() && sink.password.is_some() {
                p.add(
                    &at.key("password"),
                    format!("sink \"{name}\": a password is given both in the URL and as password"),
                );
            }
            u.scheme() == "mqtts"
        }
        Ok(u) => {
            p.add(
                &at.key("url"),
                format!("sink \"{name}\": expected mqtt://host[:port] or mqtts://host[:port], got scheme \"{}\"", u.scheme()),
            );
            return;
        }
        Err(e) => {
            p.add(
                &at.key("url"),
                format!("sink \"{name}\": not a valid URL ({e})"),
            );
            return;
        }
    };
    if let Some(q) = sink.qos.filter(|q| !matches!(q, 1 | 2)) {
        p.add(
            &at.key("qos"),
            format!("must be 1 or 2, got {q}: a QoS 0 publish is never acknowledged, so the outbox could not know it arrived"),
        );
    }
    if let Some(t) = &sink.topic {
        if t.is_empty() || t.contains(['#', '+']) {
            p.add(
                &at.key("topic"),
                "a publish topic must not be empty or contain wildcards (# +)",
            );
        }
    }
    if let Some(n) = sink.connections.filter(|n| !(1..=16).contains(n)) {
        p.add(
            &at.key("connections"),
            format!("must be between 1 and 16, got {n}"),
        );
    }
    load_secret_file(sink, at, p);
    if let Some(secret) = &sink.secret {
        if crate::signing::Signer::standard_webhooks(secret.expose()).is_err() {
            let field = if sink.secret_file.is_some() {
                "secret_file"
            } else {
                "secret"
            };
            p.add(
                &at.key(field),
                format!("sink \"{name}\": a standard-webhooks secret is \"whsec_\" followed by base64 (the value is not shown)"),
            );
        }
    }
    let tls_fields = [
        ("ca_file", sink.ca_file.is_some()),
        ("client_cert_file", sink.client_cert_file.is_some()),
        ("client_key_file", sink.client_key_file.is_some()),
    ];
    if !tls {
        for (field, set) in tls_fields {
            if set {
                p.add(
                    &at.key(field),
                    format!("sink \"{name}\": TLS files need an mqtts:// URL"),
                );
            }
        }
        return;
    }
    match (&sink.client_cert_file, &sink.client_key_file) {
        (Some(_), None) => p.add(
            &at.key("client_cert_file"),
            "needs client_key_file (its private key) as well",
        ),
        (None, Some(_)) => p.add(
            &at.key("client_key_file"),
            "needs client_cert_file (its certificate) as well",
        ),
        _ => {}
    }
    // Load the files now, so a bad one is reported at start with its field, not on the
    // first connection attempt.
    if let Err(e) = crate::tls::tls_config_for(
        &sink.url,
        sink.ca_file.as_deref(),
        sink.client_cert_file.as_deref(),
        sink.client_key_file.as_deref(),
    ) {
        p.add(&at.key(e.field), e.message);
    }
}

/// Settings every sink kind has.
fn check_limits(sink: &SinkConfig, at: &FieldPath, p: &mut Problems<'_>) {
    if !(sink.timeout_seconds > 0.0 && sink.timeout_seconds <= 300.0) {
        p.add(
            &at.key("timeout_seconds"),
            format!(
                "must be above 0 and at most 300, got {}",
                sink.timeout_seconds
            ),
        );
    }
    if let Some(c) = sink.concurrency_setting.filter(|c| !(1..=256).contains(c)) {
        p.add(
            &at.key("concurrency"),
            format!("must be between 1 and 256, got {c}"),
        );
    }
}

fn validate_routing(sink: &SinkConfig, at: &FieldPath, rules: &[String], p: &mut Problems<'_>) {
    if let Some(list) = &sink.severities {
        if list.is_empty() {
            p.add(
                &at.key("severities"),
                "an empty list would route nothing here; leave it out for all severities",
            );
        }
    }
    for (j, r) in sink.rules.iter().flatten().enumerate() {
        if !rules.contains(r) {
            p.add(
                &at.key("rules").index(j),
                format!("sink \"{}\": no rule is named \"{r}\"", sink.name),
            );
        }
    }
}

/// Slack, PagerDuty and email: the sinks that talk to people.
fn validate_people_sink(sink: &mut SinkConfig, at: &FieldPath, p: &mut Problems<'_>) {
    let name = sink.name.clone();
    let kind = sink.kind.as_str();
    if sink.kind == SinkKind::Pagerduty && sink.url.is_empty() {
        sink.url = super::PAGERDUTY_EVENTS_URL.to_string();
    }
    let schemes: &[&str] = if sink.kind == SinkKind::Email {
        &["smtp", "smtps"]
    } else {
        &["http", "https"]
    };
    match url::Url::parse(&sink.url) {
        Ok(u) if schemes.contains(&u.scheme()) && u.host_str().is_some() => {}
        Ok(u) => p.add(
            &at.key("url"),
            format!(
                "sink \"{name}\": a {kind} sink needs a {}:// URL, got scheme \"{}\"",
                schemes.join(":// or "),
                u.scheme()
            ),
        ),
        Err(e) => p.add(
            &at.key("url"),
            format!("sink \"{name}\": not a valid URL ({e})"),
        ),
    }
    if let Some(t) = &sink.template {
        if let Err(e) = crate::template::check(t) {
            p.add(&at.key("template"), e);
        }
    }
    let not_here = |field: &str, set: bool, p: &mut Problems<'_>| {
        if set {
            p.add(
                &at.key(field),
                format!("{kind} sinks do not take this setting"),
            );
        }
    };
    not_here(
        "secret",
        sink.secret.is_some() || sink.secret_file.is_some(),
        p,
    );
    not_here("qos", sink.qos.is_some(), p);
    not_here("topic", sink.topic.is_some(), p);
    not_here("client_cert_file", sink.client_cert_file.is_some(), p);
    not_here("client_key_file", sink.client_key_file.is_some(), p);
    not_here("connections", sink.connections.is_some(), p);
    match sink.kind {
        SinkKind::Pagerduty
            if sink
                .routing_key
                .as_ref()
                .is_none_or(|k| k.expose().trim().is_empty()) =>
        {
            p.add(
                at,
                format!(
                    "sink \"{name}\": a pagerduty sink needs routing_key (the integration key)"
                ),
            );
        }
        SinkKind::Email => {
            let mailbox = |s: &str| s.parse::<lettre::message::Mailbox>().is_ok();
            match &sink.from {
                Some(f) if mailbox(f) => {}
                Some(f) => p.add(&at.key("from"), format!("\"{f}\" is not an email address")),
                None => p.add(at, format!("sink \"{name}\": an email sink needs from")),
            }
            if sink.to.is_empty() {
                p.add(
                    at,
                    format!("sink \"{name}\": an email sink needs at least one address in to"),
                );
            }
            for (j, t) in sink.to.iter().enumerate() {
                if !mailbox(t) {
                    p.add(
                        &at.key("to").index(j),
                        format!("\"{t}\" is not an email address"),
                    );
                }
            }
        }
        _ => {}
    }
    if sink.kind != SinkKind::Email {
        not_here("username", sink.username.is_some(), p);
        not_here("password", sink.password.is_some(), p);
        not_here("ca_file", sink.ca_file.is_some(), p);
    }
}

/// The camera URL with the `user:password` of `file` in it; never echoes the password.
fn merge_credentials(url: &str, file: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let (user, password) = text
        .trim()
        .split_once(':')
        .filter(|(u, _)| !u.is_empty())
        .ok_or_else(|| {
            format!(
                "{}: expected one line \"user:password\" (the content is not shown)",
                file.display()
            )
        })?;
    let mut u = url::Url::parse(url).map_err(|e| format!("the camera URL is not valid ({e})"))?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err("the camera URL already has credentials: give them in the URL or in credentials_file, not both".into());
    }
    // Url percent-encodes what a user name or password may contain (@ : /).
    u.set_username(user)
        .and_then(|_| u.set_password(Some(password)))
        .map_err(|_| "this camera URL cannot carry credentials".to_string())?;
    Ok(u.to_string())
}
