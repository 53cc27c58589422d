//! The fleet as the page reads it: sites, gateways with their state and problems, one
//! gateway in full with its health history, the alerts of every gateway (a query and a live
//! Server-Sent Events feed) and their snapshots.

use super::{blocking, ApiError, Reader, Web};
use crate::fleet::{self, Problem, State as GwState};
use crate::store::{AlertFilter, AlertRow, GatewayDetail, GatewayRow, HealthPoint};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

/// A gateway on the fleet page.
#[derive(Serialize, utoipa::ToSchema)]
pub struct GatewayView {
    #[serde(flatten)]
    pub row: GatewayRow,
    /// The operator's tags (rollouts and filters by tag).
    pub tags: Vec<String>,
    pub state: GwState,
    pub problems: Vec<Problem>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct GatewayQuery {
    site: Option<String>,
    /// Only gateways with this tag.
    tag: Option<String>,
    state: Option<GwState>,
    /// Only gateways with this problem (`camera-down`, `dead-letters`, `not-online`,
    /// `backlog`, `anomaly`).
    problem: Option<Problem>,
}

fn view(row: GatewayRow, tags: Vec<String>, now: i64) -> GatewayView {
    let state = fleet::state(&row, now);
    GatewayView {
        problems: fleet::problems(&row, state),
        state,
        tags,
        row,
    }
}

/// Every gateway (sorted by site, then name), filtered by site, state or problem.
#[utoipa::path(get, path = "/api/gateways", tag = "fleet", params(GatewayQuery), responses((status = 200, body = [GatewayView]), (status = 400, body = ApiError), (status = 401, body = ApiError)), security(("session" = []), ("token" = [])))]
pub async fn api_gateways(
    State(w): State<Web>,
    _: Reader,
    q: Result<Query<GatewayQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<GatewayView>>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let now = crate::store::now_ms();
    let (rows, mut tags) = blocking(&w.store, |s| Ok((s.gateways()?, s.tags()?))).await?;
    Ok(Json(
        rows.into_iter()
            .filter(|g| q.site.as_ref().is_none_or(|s| &g.site == s))
            .map(|g| {
                let t = tags.remove(&g.device).unwrap_or_default();
                view(g, t, now)
            })
            .filter(|v| q.tag.as_ref().is_none_or(|t| v.tags.contains(t)))
            .filter(|v| q.state.is_none_or(|s| v.state == s))
            .filter(|v| q.problem.is_none_or(|p| v.problems.contains(&p)))
            .collect(),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct GatewayFull {
    #[serde(flatten)]
    pub detail: GatewayDetail,
    pub state: GwState,
    pub problems: Vec<Problem>,
}

/// One gateway: its state, its newest health document (cameras with their last error in the
/// gateway's words), its running config (redacted by the gateway) and version.
#[utoipa::path(get, path = "/api/gateways/{device}", tag = "fleet", params(("device" = String, Path)), responses((status = 200, body = GatewayFull), (status = 401, body = ApiError), (status = 404, body = ApiError)), security(("session" = []), ("token" = [])))]
pub async fn api_gateway(
    State(w): State<Web>,
    _: Reader,
    Path(device): Path<String>,
) -> Result<Json<GatewayFull>, ApiError> {
    let d = device.clone();
    let detail = blocking(&w.store, move |s| s.gateway(&d))
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no gateway \"{device}\"")))?;
    let state = fleet::state(&detail.gateway, crate::store::now_ms());
    Ok(Json(GatewayFull {
        problems: fleet::problems(&detail.gateway, state),
        state,
        detail,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct HistoryQuery {
    /// How far back (default 24, at most 24 × retention).
    hours: Option<f64>,
}

/// A gateway's health over time (outbox depth, inference ms, cameras up), oldest first.
#[utoipa::path(get, path = "/api/gateways/{device}/history", tag = "fleet", params(("device" = String, Path), HistoryQuery), responses((status = 200, body = [HealthPoint]), (status = 400, body = ApiError), (status = 401, body = ApiError)), security(("session" = []), ("token" = [])))]
pub async fn api_history(
    State(w): State<Web>,
    _: Reader,
    Path(device): Path<String>,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<HealthPoint>>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let hours = q.hours.unwrap_or(24.0);
    if !(hours > 0.0 && hours <= 24.0 * 3650.0) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "hours: must be more than 0",
        ));
    }
    let since = crate::store::now_ms() - (hours * 3_600_000.0) as i64;
    Ok(Json(
        blocking(&w.store, move |s| s.history(&device, since)).await?,
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SiteView {
    pub site: String,
    pub gateways: usize,
    pub online: usize,
    pub stale: usize,
    pub offline: usize,
    pub with_problems: usize,
}

/// Sites with their gateways counted by state.
#[utoipa::path(get, path = "/api/sites", tag = "fleet", responses((status = 200, body = [SiteView]), (status = 401, body = ApiError)), security(("session" = []), ("token" = [])))]
pub async fn api_sites(State(w): State<Web>, _: Reader) -> Result<Json<Vec<SiteView>>, ApiError> {
    let now = crate::store::now_ms();
    let rows = blocking(&w.store, |s| s.gateways()).await?;
    let mut sites: Vec<SiteView> = Vec::new();
    for g in rows.into_iter().map(|g| view(g, Vec::new(), now)) {
        if sites.last().is_none_or(|s| s.site != g.row.site) {
            sites.push(SiteView {
                site: g.row.site.clone(),
                gateways: 0,
                online: 0,
                stale: 0,
                offline: 0,
                with_problems: 0,
            });
        }
        if let Some(s) = sites.last_mut() {
            s.gateways += 1;
            match g.state {
                GwState::Online => s.online += 1,
                GwState::Stale => s.stale += 1,
                GwState::Offline => s.offline += 1,
            }
            if !g.problems.is_empty() {
                s.with_problems += 1;
            }
        }
    }
    Ok(Json(sites))
}

/// Every gateway's alerts, newest first, filtered; page with `before_ms`.
#[utoipa::path(get, path = "/api/alerts", tag = "alerts", params(AlertFilter), responses((status = 200, body = [AlertRow]), (status = 400, body = ApiError), (status = 401, body = ApiError)), security(("session" = []), ("token" = [])))]
pub async fn api_alerts(
    State(w): State<Web>,
    _: Reader,
    q: Result<Query<AlertFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<AlertRow>>, ApiError> {
    let Query(f) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    if f.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "limit: must be 1 to 1000",
        ));
    }
    Ok(Json(blocking(&w.store, move |s| s.alerts(&f)).await?))
}

/// An alert's snapshot (JPEG), when its gateway sent one inline.
#[utoipa::path(get, path = "/api/alerts/{id}/snapshot", tag = "alerts", params(("id" = String, Path)), responses((status = 200, content_type = "image/jpeg", body = Vec<u8>), (status = 401, body = ApiError), (status = 404, body = ApiError)), security(("session" = []), ("token" = [])))]
pub async fn api_snapshot(
    State(w): State<Web>,
    _: Reader,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let jpeg = blocking(&w.store, move |s| s.snapshot(&id))
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no snapshot for this alert"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "private, max-age=86400"),
        ],
        jpeg,
    )
        .into_response())
}

/// One `alert` event (an [`AlertRow`]) per alert stored from now on, from every gateway.
#[utoipa::path(get, path = "/api/alerts/stream", tag = "alerts", responses((status = 200, description = "Server-Sent Events", body = String, content_type = "text/event-stream"), (status = 401, body = ApiError)), security(("session" = []), ("token" = [])))]
pub async fn api_stream(State(w): State<Web>, _: Reader) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let rx = w.alerts.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let e = match rx.recv().await {
            Ok(a) => Event::default()
                .event("alert")
                .data(serde_json::to_string(&a).unwrap_or_default()),
            // A slow reader skipped some: say so, keep going (the list has them all).
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                Event::default().event("lagged").data(n.to_string())
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok::<_, std::convert::Infallible>(e), rx))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct AlarmQuery {
    /// Only alarms raised and not yet resolved.
    active: Option<bool>,
    limit: Option<i64>,
}

/// The fleet's alarms, newest first.
#[utoipa::path(get, path = "/api/alarms", tag = "alarms", params(AlarmQuery), responses((status = 200, body = [crate::store::AlarmRow]), (status = 401, body = ApiError)), security(("session" = []), ("token" = [])))]
pub async fn api_alarms(
    State(w): State<Web>,
    _: Reader,
    q: Result<Query<AlarmQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<crate::store::AlarmRow>>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let (active, limit) = (q.active.unwrap_or(false), q.limit.unwrap_or(200));
    Ok(Json(
        blocking(&w.store, move |s| s.alarms(active, limit)).await?,
    ))
}
