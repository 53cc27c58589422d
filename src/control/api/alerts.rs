//! Alerts, their evidence, the live feed and the dead letters.

use super::access::{Admin, Reader};
use super::{action_failed, problem, ApiError, Replayed};
use crate::control::web::Web;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

#[utoipa::path(post, path = "/api/dead-letters/replay", tag = "alerts", responses((status = 200, body = Replayed), (status = 401, body = ApiError), (status = 403, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_replay(State(w): State<Web>, _: Admin) -> Response {
    match w.gw.replay_dead_letters(None).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => action_failed(e),
    }
}

/// Put one dead letter (a delivery row, by the id `GET /api/dead-letters` lists) back in the
/// queue.
#[utoipa::path(post, path = "/api/dead-letters/{id}/replay", tag = "alerts", params(("id" = i64, Path, description = "the delivery row's id")), responses((status = 200, body = Replayed), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_replay_one(
    State(w): State<Web>,
    _: Admin,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
) -> Response {
    let Ok(Path(id)) = id else {
        return problem(StatusCode::BAD_REQUEST, "the id is a delivery row's number");
    };
    match w.gw.replay_dead_letters(Some(id)).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => action_failed(e),
    }
}

pub(super) fn jpeg(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "image/jpeg")], bytes).into_response()
}

/// `GET /api/alerts` filters. Each is checked: a bad value is a 400 naming it, not ignored.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct AlertQuery {
    /// How many, newest first (1–500, default 50).
    limit: Option<u32>,
    /// Only alerts older than this `seq` (from the last alert of the previous page).
    before: Option<i64>,
    camera: Option<String>,
    rule: Option<String>,
    /// The detected label (`person`, `car`, …).
    label: Option<String>,
    severity: Option<crate::config::Severity>,
    /// RFC 3339 time, inclusive.
    since: Option<String>,
    /// RFC 3339 time, exclusive.
    until: Option<String>,
}

fn rfc3339_ms(field: &str, v: &Option<String>) -> Result<Option<i64>, String> {
    v.as_deref()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| d.timestamp_millis())
                .map_err(|e| {
                    format!("{field}: not an RFC 3339 time ({e}), e.g. 2026-12-04T08:00:00Z")
                })
        })
        .transpose()
}

/// Alerts, newest first, filtered and paged (`?camera=&rule=&label=&severity=&since=&until=&before=&limit=`).
#[utoipa::path(get, path = "/api/alerts", tag = "alerts", params(AlertQuery), responses((status = 200, body = Vec<crate::outbox::RecentAlert>), (status = 400, body = ApiError), (status = 401, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_alerts(
    State(w): State<Web>,
    _: Reader,
    query: Result<Query<AlertQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match query {
        Ok(Query(q)) => q,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("limit: must be 1 to 500, got {limit}"),
        );
    }
    let (since_ms, until_ms) = match (rfc3339_ms("since", &q.since), rfc3339_ms("until", &q.until))
    {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return problem(StatusCode::BAD_REQUEST, e),
    };
    let filter = crate::outbox::AlertFilter {
        camera: q.camera,
        rule: q.rule,
        label: q.label,
        severity: q.severity.map(|s| s.as_str().to_string()),
        since_ms,
        until_ms,
        before: q.before,
        limit: limit as usize,
    };
    match w.gw.telemetry.outbox.call(move |o| o.alerts(&filter)).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// One alert with its delivery chain: the committed body, and per sink every attempt (time,
/// status, latency, error) and where the row stands (pending with its next attempt,
/// delivered, or dead and replayable by its id).
#[utoipa::path(get, path = "/api/alerts/{id}", tag = "alerts", params(("id" = String, Path, description = "the alert id (a ULID)")), responses((status = 200, body = crate::outbox::AlertDetail), (status = 401, body = ApiError), (status = 404, body = ApiError)), security(("session" = []), ("token" = [])))]
pub(super) async fn api_alert(State(w): State<Web>, _: Reader, Path(id): Path<String>) -> Response {
    let wanted = id.clone();
    match w
        .gw
        .telemetry
        .outbox
        .call(move |o| o.alert_detail(&wanted))
        .await
    {
        Ok(Some(detail)) => Json(detail).into_response(),
        Ok(None) => problem(
            StatusCode::NOT_FOUND,
            format!("no alert {id} in the outbox (never committed, or removed by retention)"),
        ),
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
