//! Alerts, their evidence, the live feed and the dead letters.

use super::access::{Admin, Reader};
use super::{action_failed, problem, ApiError, Replayed};
use crate::control::web::Web;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::HashMap;

#[utoipa::path(post, path = "/api/dead-letters/replay", tag = "alerts", responses((status = 200, body = Replayed), (status = 401, body = ApiError), (status = 403, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_replay(State(w): State<Web>, _: Admin) -> Response {
    match w.gw.replay_dead_letters().await {
        Ok(n) => Json(Replayed { replayed: n }).into_response(),
        Err(e) => action_failed(e),
    }
}

pub(super) fn jpeg(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "image/jpeg")], bytes).into_response()
}

/// The newest alerts (`?limit=`, default 50, at most 500).
#[utoipa::path(get, path = "/api/alerts", tag = "alerts", params(("limit" = Option<u32>, Query, description = "how many, newest first (default 50, at most 500)")), responses((status = 200, body = Vec<crate::outbox::RecentAlert>), (status = 401, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_alerts(
    State(w): State<Web>,
    _: Reader,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(50)
        .min(500);
    match w
        .gw
        .telemetry
        .outbox
        .call(move |o| o.recent_alerts(limit))
        .await
    {
        Ok(list) => Json(list).into_response(),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// New alerts as they are committed, as Server-Sent Events (one `alert` event each).
#[utoipa::path(get, path = "/api/events", tag = "alerts", responses((status = 200, description = "Server-Sent Events: one `alert` event per committed alert (its payload)", body = String, content_type = "text/event-stream"), (status = 401, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_events(State(w): State<Web>, _: Reader) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let rx = w.gw.telemetry.counters.live_alerts.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(body) => {
                    return Some((
                        Ok::<_, std::convert::Infallible>(
                            Event::default().event("alert").data(body),
                        ),
                        rx,
                    ))
                }
                // A slow page misses alerts, not the pipeline: it can reload the list.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// An alert's evidence JPEG by snapshot id (the alert id).
#[utoipa::path(get, path = "/api/snapshots/{id}", tag = "alerts", params(("id" = String, Path, description = "the alert id")), responses((status = 200, description = "the alert's evidence", content_type = "image/jpeg", body = Vec<u8>), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 404, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_snapshot(
    State(w): State<Web>,
    _: Reader,
    Path(id): Path<String>,
) -> Response {
    let Some(store) = w.gw.snapshots.clone() else {
        return problem(
            StatusCode::NOT_FOUND,
            "snapshots are off ([snapshots] enabled = false)",
        );
    };
    let id = id.trim_end_matches(".jpg").to_string();
    match tokio::task::spawn_blocking(move || store.read(&id)).await {
        Ok(Ok(bytes)) => jpeg(bytes),
        Ok(Err(e @ crate::evidence::EvidenceError::BadId(_))) => {
            problem(StatusCode::BAD_REQUEST, e)
        }
        Ok(Err(e)) => problem(StatusCode::NOT_FOUND, e),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// The dead letters, newest first (at most 200).
#[utoipa::path(get, path = "/api/dead-letters", tag = "alerts",
    responses((status = 200, body = Vec<crate::outbox::ListedRow>), (status = 401, body = ApiError)),
    security(("session" = []), ("token" = [])))]
pub(super) async fn api_dead_letters(State(w): State<Web>, _: Reader) -> Response {
    match w
        .gw
        .telemetry
        .outbox
        .call(|o| o.list(Some(crate::outbox::RowState::Dead), 200))
        .await
    {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}
