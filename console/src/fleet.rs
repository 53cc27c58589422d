//! What the console concludes about a gateway from what it said and when: online, stale or
//! offline, and which problems it has. Pure functions of the stored row and the clock.

use crate::store::GatewayRow;
use serde::Serialize;
use watchpost_contracts::health::STALE_AFTER_INTERVALS;

/// A gateway's state on the fleet page and in `watchpost_console_gateways{state}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Connected, and its health is fresh.
    Online,
    /// Connected as far as the broker knows, but no health for 3 × its interval: wedged, or
    /// its network is frozen while the TCP session lingers.
    Stale,
    /// Its last will (or a clean stop) said so.
    Offline,
}

impl State {
    pub const ALL: [State; 3] = [State::Online, State::Stale, State::Offline];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Online => "online",
            State::Stale => "stale",
            State::Offline => "offline",
        }
    }
}

/// The state of `g` at `now_ms` (console clock).
pub fn state(g: &GatewayRow, now_ms: i64) -> State {
    if g.status == watchpost_contracts::topics::OFFLINE {
        return State::Offline;
    }
    let interval_ms = g.health_interval_s.unwrap_or(30.0) * 1000.0;
    let last = match (g.health_ms, g.status_ms) {
        (Some(h), _) => h,
        // Connected but no health yet: judged from when it said it was online.
        (None, Some(s)) => s,
        (None, None) => g.first_seen_ms,
    };
    if (now_ms - last) as f64 > STALE_AFTER_INTERVALS * interval_ms {
        State::Stale
    } else {
        State::Online
    }
}

/// A problem a fleet operator filters by ("show me every gateway with a camera down").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Problem {
    NotOnline,
    CameraDown,
    DeadLetters,
    Backlog,
    Anomaly,
}

/// An outbox this deep means deliveries are not keeping up.
pub const BACKLOG: i64 = 100;

pub fn problems(g: &GatewayRow, state: State) -> Vec<Problem> {
    let mut p = Vec::new();
    if state != State::Online {
        p.push(Problem::NotOnline);
    }
    if !g.cameras_down.is_empty() {
        p.push(Problem::CameraDown);
    }
    if g.dead_letters.unwrap_or(0) > 0 {
        p.push(Problem::DeadLetters);
    }
    if g.outbox_pending.unwrap_or(0) >= BACKLOG {
        p.push(Problem::Backlog);
    }
    if g.anomalies.unwrap_or(0) > 0 {
        p.push(Problem::Anomaly);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> GatewayRow {
        GatewayRow {
            device: "gw".into(),
            site: "s".into(),
            status: "online".into(),
            status_ms: Some(1_000),
            first_seen_ms: 1_000,
            health_ms: Some(10_000),
            health_interval_s: Some(2.0),
            version: None,
            uptime_s: None,
            cameras_up: Some(1),
            cameras_total: Some(2),
            cameras_down: vec!["yard".into()],
            inference_ms: None,
            outbox_pending: Some(0),
            dead_letters: Some(3),
            events_24h: None,
            delivery_success_rate: None,
            delivery_latency_p95_ms: None,
            anomalies: None,
        }
    }

    #[test]
    fn stale_after_three_intervals_offline_on_the_will() {
        let g = row();
        assert_eq!(state(&g, 10_000 + 6_000), State::Online);
        assert_eq!(state(&g, 10_000 + 6_001), State::Stale);
        let gone = GatewayRow {
            status: "offline".into(),
            ..row()
        };
        assert_eq!(state(&gone, 10_001), State::Offline);
        let silent = GatewayRow {
            health_ms: None,
            ..row()
        };
        assert_eq!(state(&silent, 1_000 + 6_001), State::Stale);
        assert_eq!(
            problems(&g, State::Stale),
            vec![
                Problem::NotOnline,
                Problem::CameraDown,
                Problem::DeadLetters
            ]
        );
    }
}
