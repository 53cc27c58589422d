//! `watchpost/{device}/…` (DESIGN.md "MQTT topics"). `{device}` is the gateway's `device.id`,
//! which the gateway's config check keeps free of `/`, `+` and `#`.

/// The first level of every watchpost topic.
pub const ROOT: &str = "watchpost";

pub fn status(device: &str) -> String {
    format!("{ROOT}/{device}/status")
}
pub fn health(device: &str) -> String {
    format!("{ROOT}/{device}/health")
}
pub fn alerts(device: &str, camera: &str) -> String {
    format!("{ROOT}/{device}/alerts/{camera}")
}
pub fn config_state(device: &str) -> String {
    format!("{ROOT}/{device}/config/state")
}
pub fn config_set(device: &str) -> String {
    format!("{ROOT}/{device}/config/set")
}
pub fn config_result(device: &str) -> String {
    format!("{ROOT}/{device}/config/result")
}
pub fn command(device: &str, name: &str) -> String {
    format!("{ROOT}/{device}/cmd/{name}")
}
pub fn command_result(device: &str, name: &str) -> String {
    format!("{ROOT}/{device}/cmd/{name}/result")
}

/// The gateway's `status` payloads (retained; `offline` is also its last will).
pub const ONLINE: &str = "online";
pub const OFFLINE: &str = "offline";

/// What the console subscribes to with ordinary subscriptions: retained state, which brokers
/// never hand to a shared subscription (MQTT 5.0 §4.8.2), written idempotently.
pub const RETAINED_FILTERS: [&str; 3] = [
    "watchpost/+/status",
    "watchpost/+/config/state",
    HEALTH_FILTER,
];

/// Every gateway's health. The console holds an ordinary subscription to it only long enough
/// to receive the retained documents (then the shared one carries the stream), so each
/// health message is not taken twice.
pub const HEALTH_FILTER: &str = "watchpost/+/health";

/// What the console takes through a shared subscription (`$share/{group}/…`): each message
/// to one replica of the group, queued in its persistent session while it restarts.
pub const SHARED_FILTERS: [&str; 4] = [
    "watchpost/+/alerts/#",
    "watchpost/+/health",
    "watchpost/+/config/result",
    "watchpost/+/cmd/+/result",
];

/// `$share/{group}/{filter}`.
pub fn shared(group: &str, filter: &str) -> String {
    format!("$share/{group}/{filter}")
}

/// What a topic is, and for which gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic<'a> {
    Status { device: &'a str },
    Health { device: &'a str },
    Alert { device: &'a str, camera: &'a str },
    ConfigState { device: &'a str },
    ConfigSet { device: &'a str },
    ConfigResult { device: &'a str },
    Command { device: &'a str, name: &'a str },
    CommandResult { device: &'a str, name: &'a str },
}

impl<'a> Topic<'a> {
    /// `None` for a topic outside the contract.
    pub fn parse(topic: &'a str) -> Option<Self> {
        let rest = topic.strip_prefix(ROOT)?.strip_prefix('/')?;
        let (device, rest) = rest.split_once('/')?;
        if device.is_empty() {
            return None;
        }
        let parts: Vec<&str> = rest.split('/').collect();
        Some(match parts.as_slice() {
            ["status"] => Topic::Status { device },
            ["health"] => Topic::Health { device },
            ["alerts", camera] if !camera.is_empty() => Topic::Alert { device, camera },
            ["config", "state"] => Topic::ConfigState { device },
            ["config", "set"] => Topic::ConfigSet { device },
            ["config", "result"] => Topic::ConfigResult { device },
            ["cmd", name] if !name.is_empty() => Topic::Command { device, name },
            ["cmd", name, "result"] if !name.is_empty() => Topic::CommandResult { device, name },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_parses_back_to_what_made_it() {
        let d = "gw-1";
        assert_eq!(Topic::parse(&status(d)), Some(Topic::Status { device: d }));
        assert_eq!(Topic::parse(&health(d)), Some(Topic::Health { device: d }));
        assert_eq!(
            Topic::parse(&alerts(d, "yard")),
            Some(Topic::Alert {
                device: d,
                camera: "yard"
            })
        );
        assert_eq!(
            Topic::parse(&config_state(d)),
            Some(Topic::ConfigState { device: d })
        );
        assert_eq!(
            Topic::parse(&config_set(d)),
            Some(Topic::ConfigSet { device: d })
        );
        assert_eq!(
            Topic::parse(&config_result(d)),
            Some(Topic::ConfigResult { device: d })
        );
        assert_eq!(
            Topic::parse(&command(d, "snapshot")),
            Some(Topic::Command {
                device: d,
                name: "snapshot"
            })
        );
        assert_eq!(
            Topic::parse(&command_result(d, "snapshot")),
            Some(Topic::CommandResult {
                device: d,
                name: "snapshot"
            })
        );
        for other in [
            "watchpost",
            "watchpost//status",
            "other/gw/status",
            "watchpost/gw/alerts/",
            "watchpost/gw/cmd/a/b/c",
        ] {
            assert_eq!(Topic::parse(other), None, "{other}");
        }
    }
}
