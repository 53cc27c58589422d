//! Cameras, the health document, and test alerts through a sink.

use super::access::{Admin, Reader};
use super::alerts::jpeg;
use super::{action_failed, problem, ApiError};
use crate::control::web::Web;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[utoipa::path(get, path = "/api/cameras", tag = "cameras", responses((status = 200, body = Vec<crate::video::CameraSnapshot>), (status = 401, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_cameras(State(w): State<Web>, _: Reader) -> Response {
    Json(w.gw.telemetry.cameras.snapshots()).into_response()
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
