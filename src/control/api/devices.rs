//! Cameras, the health document, and test alerts through a sink.

use super::access::{Admin, Reader};
use super::alerts::jpeg;
use super::{action_failed, problem, ApiError};
use crate::control::web::Web;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Every camera: its status and state's age, the detection rate achieved, inference time,
/// frames gated, alerts in 24 h, and the objects on its last detected frame.
#[utoipa::path(get, path = "/api/cameras", tag = "cameras", responses((status = 200, body = Vec<crate::telemetry::CameraView>), (status = 401, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_cameras(State(w): State<Web>, _: Reader) -> Response {
    match w.gw.telemetry.camera_views().await {
        Ok(views) => Json(views).into_response(),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[utoipa::path(get, path = "/api/health", tag = "cameras", responses((status = 200, body = crate::telemetry::Health), (status = 401, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_health(State(w): State<Web>, _: Reader) -> Response {
    match w.gw.telemetry.health().await {
        Ok(h) => Json(h).into_response(),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// A camera's latest frame as JPEG, at the camera's frame size.
#[utoipa::path(get, path = "/api/cameras/{name}/snapshot", tag = "cameras", params(("name" = String, Path, description = "the camera")), responses((status = 200, description = "the newest frame", content_type = "image/jpeg", body = Vec<u8>), (status = 401, body = ApiError), (status = 404, body = ApiError, description = "no such camera, or it has not delivered a frame yet")), security(("session" = []), ("token" = [])))]
pub(super) async fn api_camera_snapshot(
    State(w): State<Web>,
    _: Reader,
    Path(name): Path<String>,
) -> Response {
    // No frame yet is the client's "not there (yet)", a 404, not a server fault
    // (schemathesis rightly flagged the 503 this once was).
    match w.gw.camera_picture(&name).await {
        Ok(picture) => jpeg(picture.jpeg),
        Err(e) => action_failed(e),
    }
}

/// Send a test alert (`type = "alert.test"`) through a running sink and return the
/// receiver's answer. Not stored in the outbox.
#[utoipa::path(post, path = "/api/sinks/{name}/test", tag = "sinks",
    params(("name" = String, Path, description = "the sink's name")),
    responses((status = 200, body = crate::deliver::TestAnswer), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError)),
    security(("session" = []), ("token" = [])))]
pub(super) async fn api_sink_test(
    State(w): State<Web>,
    _: Admin,
    Path(name): Path<String>,
) -> Response {
    match w.gw.telemetry.sinks.test(&name).await {
        Ok(answer) => {
            tracing::info!(sink = %name, delivered = answer.delivered, status = ?answer.status, "test alert sent");
            Json(answer).into_response()
        }
        Err(e @ crate::deliver::DeliverError::NotRunning(_)) => problem(StatusCode::NOT_FOUND, e),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// Every `[[line]]`'s counts: totals and occupancy since the last reset, per label, today's
/// figures and the last 48 hours.
#[utoipa::path(get, path = "/api/lines", tag = "lines", responses((status = 200, body = Vec<crate::control::gateway::LineView>), (status = 401, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_lines(State(w): State<Web>, _: Reader) -> Response {
    Json(w.gw.lines()).into_response()
}

/// What a reset did.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ResetAnswer {
    /// The lines set back to zero.
    pub reset: Vec<String>,
}

/// Sets one line's totals and occupancy to zero (e.g. after a site's evacuation drill).
#[utoipa::path(post, path = "/api/lines/{name}/reset", tag = "lines",
    params(("name" = String, Path, description = "the line's name")),
    responses((status = 200, body = ResetAnswer), (status = 401, body = ApiError),
              (status = 403, body = ApiError), (status = 404, body = ApiError)),
    security(("session" = []), ("token" = [])))]
pub(super) async fn api_line_reset(
    State(w): State<Web>,
    _: Admin,
    Path(name): Path<String>,
) -> Response {
    match w.gw.reset_counts(Some(&name)) {
        Ok(reset) => Json(ResetAnswer { reset }).into_response(),
        Err(e) => action_failed(e),
    }
}

/// `GET /api/rules/{name}/dry-run` parameters.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct DryRunQuery {
    /// The camera to explain the rule on.
    camera: String,
}

/// A dry-run answer: the explanation and how old it is.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct DryRunAnswer {
    #[serde(flatten)]
    pub explain: crate::rules::RuleExplain,
    /// Seconds since the detector computed it (its last frame of the camera).
    pub age_s: f64,
}

/// How long a first dry-run waits for the detector's next frame of the camera.
const DRY_RUN_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The rule dry-run: for each live track on the camera, which of the rule's conditions it
/// meets now (label, median confidence, area, zone, dwell, fired already), and whether the
/// rule would fire and why not (count, schedule, cooldown). Nothing is fired or changed. Ask
/// again (e.g. every second) to follow it live; it is computed on every detector frame of the
/// camera while asked for.
#[utoipa::path(get, path = "/api/rules/{name}/dry-run", tag = "config",
    params(("name" = String, Path, description = "the rule"), DryRunQuery),
    responses((status = 200, body = DryRunAnswer), (status = 400, body = ApiError), (status = 401, body = ApiError),
              (status = 404, body = ApiError, description = "no such rule or camera, or no frame of the camera reached the detector within 3 s")),
    security(("session" = []), ("token" = [])))]
pub(super) async fn api_dry_run(
    State(w): State<Web>,
    _: Reader,
    Path(name): Path<String>,
    query: Result<axum::extract::Query<DryRunQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let camera = match query {
        Ok(axum::extract::Query(q)) => q.camera,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if !w
        .gw
        .telemetry
        .cameras
        .snapshots()
        .iter()
        .any(|c| c.name == camera)
    {
        return problem(
            StatusCode::NOT_FOUND,
            format!("no camera named \"{camera}\""),
        );
    }
    let key = (name.clone(), camera.clone());
    let asked = std::time::Instant::now();
    w.gw.telemetry
        .counters
        .dry_runs
        .lock()
        .entry(key.clone())
        .or_insert(crate::telemetry::DryRun {
            asked,
            answer: None,
        })
        .asked = asked;
    let deadline = asked + DRY_RUN_WAIT;
    loop {
        let answer =
            w.gw.telemetry
                .counters
                .dry_runs
                .lock()
                .get(&key)
                .and_then(|r| r.answer.clone());
        match answer {
            Some((at, Ok(explain))) => {
                return Json(DryRunAnswer {
                    explain,
                    age_s: at.elapsed().as_secs_f64(),
                })
                .into_response()
            }
            Some((_, Err(e))) => return problem(StatusCode::NOT_FOUND, e),
            None if std::time::Instant::now() >= deadline => {
                return problem(
                    StatusCode::NOT_FOUND,
                    format!("no frame of camera \"{camera}\" reached the detector in {} s (the camera is down, or the motion gate keeps still frames from the model)", DRY_RUN_WAIT.as_secs()),
                )
            }
            None => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
}
