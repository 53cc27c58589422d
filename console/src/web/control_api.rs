//! Enrolment, commands, config pushes and rollouts (admins), and the audit log (readers).

use super::{blocking, Admin, ApiError, Reader, Web};
use crate::control::{Ask, ControlError};
use crate::store::{RequestRow, RolloutRow};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::time::Duration;

type Body<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

fn body<T>(b: Body<T>) -> Result<T, ApiError> {
    b.map(|Json(v)| v)
        // One status for every malformed body (415 and 422 included), as the document says.
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        let status = match &e {
            ControlError::NotEnrolled(_) => StatusCode::NOT_FOUND,
            ControlError::Enrolled(_) => StatusCode::CONFLICT,
            ControlError::Invalid(_) => StatusCode::BAD_REQUEST,
            ControlError::Publish(_) | ControlError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(status, e)
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Enrol {
    /// The gateway's `device.id`.
    device: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Enrolled {
    pub device: String,
    /// Shown this once: the console keeps it, no page or answer shows it again.
    pub control_key: String,
    /// The lines for the gateway's config file.
    pub config: String,
}

/// Adds a gateway: makes its control key and answers the `[control.mqtt]` lines for it.
#[utoipa::path(post, path = "/api/gateways", tag = "control", request_body = Enrol, responses((status = 201, body = Enrolled), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 409, body = ApiError)), security(("session" = []), ("token" = [])))]
pub async fn api_enrol(
    State(w): State<Web>,
    Admin(who): Admin,
    b: Body<Enrol>,
) -> Result<(StatusCode, Json<Enrolled>), ApiError> {
    let b = body(b)?;
    let key = w.control.enrol(who.name(), &b.device).await?;
    let config = format!(
        "[control.mqtt]\nurl = \"{}\"\ncontrol_key = \"{key}\"\n",
        w.broker_url
    );
    Ok((
        StatusCode::CREATED,
        Json(Enrolled {
            device: b.device,
            control_key: key,
            config,
        }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ConfigPush {
    /// A whole config file (secrets may be sent back as the gateway's redacted "(set)").
    #[serde(default)]
    toml: Option<String>,
    /// Or a partial document merged into the running config.
    #[serde(default)]
    merge: Option<String>,
    /// How long to wait for the answer here (default 10 s); the request itself expires
    /// after `expiry_s` (default 60 s).
    #[serde(default)]
    wait_s: Option<f64>,
    #[serde(default)]
    expiry_s: Option<u64>,
}

fn config_ask(toml: Option<String>, merge: Option<String>) -> Result<Ask, ApiError> {
    match (toml, merge) {
        (Some(text), None) => Ok(Ask::Config { whole: true, text }),
        (None, Some(text)) => Ok(Ask::Config { whole: false, text }),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "give exactly one of toml (a whole config) and merge (a partial one)",
        )),
    }
}

fn waits(wait_s: Option<f64>) -> Result<Duration, ApiError> {
    let s = wait_s.unwrap_or(10.0);
    if !(0.0..=60.0).contains(&s) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "wait_s: 0 to 60"));
    }
    Ok(Duration::from_secs_f64(s))
}

fn expiry(s: Option<u64>) -> Result<Duration, ApiError> {
    let s = s.unwrap_or(60);
    if !(1..=3600).contains(&s) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "expiry_s: 1 to 3600",
        ));
    }
    Ok(Duration::from_secs(s))
}

/// Pushes a config change to one gateway (signed `config/set`) and answers the request with
/// its outcome: `applied` with the new version, `refused` with the gateway's located errors,
/// or `waiting` when no answer came within `wait_s`.
#[utoipa::path(post, path = "/api/gateways/{device}/config", tag = "control", params(("device" = String, Path)), request_body = ConfigPush, responses((status = 200, body = RequestRow), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)), security(("session" = []), ("token" = [])))]
pub async fn api_config(
    State(w): State<Web>,
    Admin(who): Admin,
    Path(device): Path<String>,
    b: Body<ConfigPush>,
) -> Result<Json<RequestRow>, ApiError> {
    let b = body(b)?;
    let ask = config_ask(b.toml, b.merge)?;
    let (wait, exp) = (waits(b.wait_s)?, expiry(b.expiry_s)?);
    let id = w.control.send(who.name(), &device, &ask, None, exp).await?;
    Ok(Json(w.control.wait(&id, wait).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CommandBody {
    #[serde(default)]
    #[schema(value_type = Object)]
    args: serde_json::Value,
    #[serde(default)]
    wait_s: Option<f64>,
    #[serde(default)]
    expiry_s: Option<u64>,
}

/// Runs a command on one gateway (`replay-dead-letters`, `restart-camera`, `snapshot`: the
/// snapshot's JPEG comes back base64 in `result.result.jpeg_base64`).
#[utoipa::path(post, path = "/api/gateways/{device}/commands/{name}", tag = "control", params(("device" = String, Path), ("name" = String, Path)), request_body = CommandBody, responses((status = 200, body = RequestRow), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)), security(("session" = []), ("token" = [])))]
pub async fn api_command(
    State(w): State<Web>,
    Admin(who): Admin,
    Path((device, name)): Path<(String, String)>,
    b: Body<CommandBody>,
) -> Result<Json<RequestRow>, ApiError> {
    let b = body(b)?;
    let args = if b.args.is_null() {
        serde_json::json!({})
    } else {
        b.args
    };
    let ask = Ask::Command { name, args };
    let (wait, exp) = (waits(b.wait_s)?, expiry(b.expiry_s)?);
    let id = w.control.send(who.name(), &device, &ask, None, exp).await?;
    Ok(Json(w.control.wait(&id, wait).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    device: Option<String>,
    rollout: Option<String>,
    limit: Option<i64>,
}

/// The audit log: every enrolment, command and config push, newest first, with who sent it
/// and how it ended.
#[utoipa::path(get, path = "/api/audit", tag = "control", params(AuditQuery), responses((status = 200, body = [RequestRow]), (status = 401, body = ApiError)), security(("session" = []), ("token" = [])))]
pub async fn api_audit(
    State(w): State<Web>,
    _: Reader,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<RequestRow>>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    Ok(Json(
        blocking(&w.store, move |s| {
            s.requests(
                q.device.as_deref(),
                q.rollout.as_deref(),
                q.limit.unwrap_or(200),
            )
        })
        .await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewRollout {
    /// Every gateway of this site …
    #[serde(default)]
    site: Option<String>,
    /// … or every gateway with this tag …
    #[serde(default)]
    tag: Option<String>,
    /// … or these gateways.
    #[serde(default)]
    devices: Option<Vec<String>>,
    #[serde(default)]
    toml: Option<String>,
    #[serde(default)]
    merge: Option<String>,
    /// A gateway that has not answered by then counts as `no-answer` (default 60 s).
    #[serde(default)]
    timeout_s: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RolloutView {
    #[serde(flatten)]
    pub rollout: RolloutRow,
    pub targeted: usize,
    pub applied: usize,
    pub failed: usize,
    pub no_answer: usize,
    pub waiting: usize,
    pub requests: Vec<RequestRow>,
}

/// Pushes one config change to a set of gateways (a site, or a list); each gets its own
/// request, and the rollout counts their outcomes.
#[utoipa::path(post, path = "/api/rollouts", tag = "control", request_body = NewRollout, responses((status = 202, body = RolloutView), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)), security(("session" = []), ("token" = [])))]
pub async fn api_new_rollout(
    State(w): State<Web>,
    Admin(who): Admin,
    b: Body<NewRollout>,
) -> Result<(StatusCode, Json<RolloutView>), ApiError> {
    let b = body(b)?;
    let ask = config_ask(b.toml, b.merge)?;
    ask.check()?;
    let timeout = expiry(b.timeout_s)?;
    let (targets, target) = match (b.site, b.tag, b.devices) {
        (None, Some(tag), None) => {
            let t2 = tag.clone();
            let tags = blocking(&w.store, |s| s.tags()).await?;
            let mut d: Vec<String> = tags
                .into_iter()
                .filter(|(_, t)| t.contains(&t2))
                .map(|(d, _)| d)
                .collect();
            d.sort();
            (d, format!("tag={tag}"))
        }
        (Some(site), None, None) => {
            let s2 = site.clone();
            let rows = blocking(&w.store, move |s| s.gateways()).await?;
            let d: Vec<String> = rows
                .into_iter()
                .filter(|g| g.site == s2)
                .map(|g| g.device)
                .collect();
            (d, format!("site={site}"))
        }
        (None, None, Some(devices)) => {
            let t = format!("devices={}", devices.join(","));
            (devices, t)
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "give exactly one of site, tag and devices",
            ))
        }
    };
    if targets.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the target holds no gateway",
        ));
    }
    let rollout = RolloutRow {
        id: ulid::Ulid::new().to_string(),
        who: who.name().to_string(),
        created_ms: crate::store::now_ms(),
        target,
        what: ask.what(),
        timeout_s: timeout.as_secs_f64(),
    };
    let r = rollout.clone();
    blocking(&w.store, move |s| s.add_rollout(&r)).await?;
    for device in &targets {
        // A gateway that cannot be asked (not enrolled) is recorded as refused by the
        // console itself, so the counts still add up.
        if let Err(e) = w
            .control
            .send(who.name(), device, &ask, Some(&rollout.id), timeout)
            .await
        {
            let (id, d, what, who, rid, why) = (
                ulid::Ulid::new().to_string(),
                device.clone(),
                ask.what(),
                who.name().to_string(),
                rollout.id.clone(),
                e.to_string(),
            );
            blocking(&w.store, move |s| {
                let now = crate::store::now_ms();
                s.add_request(&crate::store::NewRequest {
                    id: &id,
                    rollout: Some(&rid),
                    device: &d,
                    kind: "config/set",
                    what: &what,
                    who: &who,
                    sent_ms: now,
                    expires_ms: now,
                })?;
                s.settle_request(&id, false, &serde_json::json!({"ok": false, "error": why}))
            })
            .await?;
        }
    }
    let view = rollout_view(&w, rollout.id.clone()).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

async fn rollout_view(w: &Web, id: String) -> Result<RolloutView, ApiError> {
    let (rollout, requests) = blocking(&w.store, move |s| {
        Ok((s.rollout(&id)?, s.requests(None, Some(&id), 10_000)?))
    })
    .await?;
    let rollout = rollout.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such rollout"))?;
    let count = |o: &str| requests.iter().filter(|r| r.outcome == o).count();
    Ok(RolloutView {
        targeted: requests.len(),
        applied: count("applied"),
        failed: count("refused"),
        no_answer: count("no-answer"),
        waiting: count("waiting"),
        rollout,
        requests,
    })
}

/// One rollout with its per-gateway outcomes.
#[utoipa::path(get, path = "/api/rollouts/{id}", tag = "control", params(("id" = String, Path)), responses((status = 200, body = RolloutView), (status = 401, body = ApiError), (status = 404, body = ApiError)), security(("session" = []), ("token" = [])))]
pub async fn api_rollout(
    State(w): State<Web>,
    _: Reader,
    Path(id): Path<String>,
) -> Result<Json<RolloutView>, ApiError> {
    Ok(Json(rollout_view(&w, id).await?))
}

/// Rollouts, newest first.
#[utoipa::path(get, path = "/api/rollouts", tag = "control", responses((status = 200, body = [RolloutRow]), (status = 401, body = ApiError)), security(("session" = []), ("token" = [])))]
pub async fn api_rollouts(
    State(w): State<Web>,
    _: Reader,
) -> Result<Json<Vec<RolloutRow>>, ApiError> {
    Ok(Json(blocking(&w.store, |s| s.rollouts(100)).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Rotate {
    /// How long to wait for the gateway's answer (default 10 s, at most 30).
    #[serde(default)]
    wait_s: Option<f64>,
}

/// Rotates a gateway's control key: the new key is pushed signed with the current one, which
/// the gateway keeps accepting as `control_key_previous`; the console signs with the new key
/// once the gateway applied it. Neither key appears in the answer or the audit log.
#[utoipa::path(post, path = "/api/gateways/{device}/key", tag = "control", params(("device" = String, Path)), request_body = Rotate, responses((status = 200, body = RequestRow), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)), security(("session" = []), ("token" = [])))]
pub async fn api_rotate(
    State(w): State<Web>,
    Admin(who): Admin,
    Path(device): Path<String>,
    b: Body<Rotate>,
) -> Result<Json<RequestRow>, ApiError> {
    let b = body(b)?;
    let wait = waits(b.wait_s)?;
    Ok(Json(w.control.rotate(who.name(), &device, wait).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Tags {
    /// 1 to 32 characters each: lowercase letters, digits, '-' or '_'; at most 16.
    tags: Vec<String>,
}

/// Sets a gateway's tags (replacing them).
#[utoipa::path(put, path = "/api/gateways/{device}/tags", tag = "control", params(("device" = String, Path)), request_body = Tags, responses((status = 204), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)), security(("session" = []), ("token" = [])))]
pub async fn api_tags(
    State(w): State<Web>,
    Admin(who): Admin,
    Path(device): Path<String>,
    b: Body<Tags>,
) -> Result<StatusCode, ApiError> {
    let b = body(b)?;
    let ok = |t: &String| {
        (1..=32).contains(&t.len())
            && t.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    };
    if b.tags.len() > 16 {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "tags: at most 16"));
    }
    if let Some(bad) = b.tags.iter().find(|t| !ok(t)) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("tags: \"{bad}\" is not 1 to 32 lowercase letters, digits, '-' or '_'"),
        ));
    }
    let (d, tags) = (device.clone(), b.tags);
    blocking(&w.store, move |s| s.set_tags(&d, &tags)).await?;
    tracing::info!(device = %device, by = who.name(), "tags set");
    Ok(StatusCode::NO_CONTENT)
}
