//! Fleet commands over MQTT: `watchpost/{device}/cmd/{name}`, answered on
//! `watchpost/{device}/cmd/{name}/result`.
//!
//! Broker access is not enough to command a gateway: every command is signed with the
//! device's control key. The payload is JSON `{"ts": <unix seconds>, "nonce": "<unique>",
//! "args": {...}}`, and the MQTT 5 user property `signature` is `v1=` + hex
//! HMAC-SHA256(control key, `{topic}\n{payload}`) — the topic is inside the MAC, so a signed
//! `snapshot` cannot be replayed as a `restart-camera`. A command is refused, with the reason
//! on its result topic, when the signature is missing or wrong, when `ts` is more than
//! [`WINDOW_S`] from the device's clock, or when its nonce was already used in that window.

use super::gateway::Gateway;
use serde_json::{json, Value};
pub use watchpost_contracts::control::{sign, Gate, Refusal, WINDOW_S};

/// Runs an admitted command; the JSON is the `result` field of the answer.
pub async fn run(name: &str, args: &Value, gw: &Gateway) -> Result<Value, String> {
    let camera = || {
        args.get("camera")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| "args.camera (a camera name) is required".to_string())
    };
    match name {
        "replay-dead-letters" => {
            let r = gw
                .replay_dead_letters(None)
                .await
                .map_err(|e| e.to_string())?;
            serde_json::to_value(r).map_err(|e| e.to_string())
        }
        "restart-camera" => {
            let name = camera()?;
            gw.restart_camera(&name).await.map_err(|e| e.to_string())?;
            Ok(json!({ "camera": name, "restarted": true }))
        }
        "snapshot" => {
            use base64::Engine as _;
            let name = camera()?;
            let picture = gw.camera_picture(&name).await.map_err(|e| e.to_string())?;
            Ok(json!({
                "camera": name,
                "width": picture.width,
                "height": picture.height,
                "jpeg_base64": base64::engine::general_purpose::STANDARD.encode(picture.jpeg),
            }))
        }
        "reset-counts" => {
            let line = match args.get("line") {
                None | Some(Value::Null) => None,
                Some(Value::String(l)) => Some(l.as_str()),
                Some(_) => return Err("args.line must be a line's name (or absent for every line)".into()),
            };
            let reset = gw.reset_counts(line).map_err(|e| e.to_string())?;
            Ok(json!({ "reset": reset }))
        }
        other => Err(format!(
            "unknown command \"{other}\" (replay-dead-letters, restart-camera, snapshot, reset-counts)"
        )),
    }
}
