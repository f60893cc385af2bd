//! What is kept about workspaces: cost, snapshots, image versions, logs (also
//! streamed), operations, events; and a reconcile pass on demand.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use crate::api_error::{ApiError, ErrorBody};
use crate::auth::Caller;
use crate::operations::OperationView;
use swarm::cost_report::CostReport;
use swarm::error::Error;
use swarm::provider::Provider;
use swarm_store::{EventRecord, Store};

use super::*;

#[utoipa::path(get, path = "/v1/cost", tag = "workspaces", security(("bearer" = [])), responses((status = 200, description = "The caller's workspaces (an admin's: every user's) priced from Fly's published prices, as `swarm cost --json`"), (status = 401, description = "No valid API token", body = ErrorBody)))]
pub(super) async fn costs<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let records = c.swarm.list().await?;
    let visible = records
        .iter()
        .filter(|record| caller.may_use(record.spec.owner.as_deref()));
    Ok(Json(to_json(&CostReport::of(visible))?))
}

#[utoipa::path(get, path = "/v1/workspaces/{name}/cost", tag = "workspaces", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name")), responses((status = 200, description = "As `swarm cost NAME --json`: the estimate in each state, and its snapshots"), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody)))]
pub(super) async fn workspace_cost<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    c.visible(&caller, &name).await?;
    Ok(Json(to_json(&c.swarm.cost(&name).await?)?))
}

#[utoipa::path(get, path = "/v1/workspaces/{name}/snapshots", tag = "workspaces", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name")), responses((status = 200, description = "As `swarm snapshot list --json`"), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody)))]
pub(super) async fn snapshots<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    c.visible(&caller, &name).await?;
    Ok(Json(to_json(&c.swarm.snapshots(&name).await?)?))
}

#[utoipa::path(get, path = "/v1/workspaces/{name}/versions", tag = "workspaces", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name")), responses((status = 200, description = "As `swarm versions --json`"), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody)))]
pub(super) async fn versions<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    c.visible(&caller, &name).await?;
    Ok(Json(to_json(&c.swarm.versions(&name).await?)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LogsQuery {
    /// The last N lines (1 to 10,000; 100 by default).
    #[serde(default = "default_lines")]
    lines: usize,
}

pub(super) fn default_lines() -> usize {
    100
}

#[utoipa::path(get, path = "/v1/workspaces/{name}/logs", tag = "workspaces", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("lines" = Option<usize>, Query, description = "The last N lines, 1 to 10000 (100)")), responses((status = 200, description = "As `swarm logs --json`"), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody)))]
pub(super) async fn logs<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<LogsQuery>,
) -> Result<Json<Value>, ApiError> {
    if !(1..=10_000).contains(&query.lines) {
        return Err(Error::Invalid(vec![swarm_core::validate::ValidationError {
            field: "lines",
            value: query.lines.to_string(),
            rule: "must be 1 to 10000".to_owned(),
        }])
        .into());
    }
    c.visible(&caller, &name).await?;
    Ok(Json(to_json(&c.swarm.logs(&name, query.lines).await?)?))
}

#[utoipa::path(get, path = "/v1/operations/{id}", tag = "operations", security(("bearer" = [])), params(("id" = String, Path, description = "Operation id"), ("wait" = Option<u64>, Query, description = "Seconds to wait for the end (at most 60)")), responses((status = 200, description = "The operation", body = OperationView), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such operation, or another user's", body = ErrorBody)))]
pub(super) async fn operation<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<WaitQuery>,
) -> Result<Json<OperationView>, ApiError> {
    let missing = || ApiError::not_found(format!("no operation {id}"));
    // Visibility first, so waiting reveals nothing either.
    if !c.operations.visible_to(&id, &caller) {
        return Err(missing());
    }
    c.operations
        .get(&id, query.duration())
        .await
        .map(Json)
        .ok_or_else(missing)
}

/// One reconcile pass now, as `swarm reconcile --json` prints it. An admin runs the
/// whole pass (every workspace, the pool, the orphan scan); a user runs it over their
/// own workspaces only and sees only those (`pool_slots` is 0 for them).
#[utoipa::path(post, path = "/v1/reconcile", tag = "service", operation_id = "reconcile", security(("bearer" = [])), responses((status = 200, description = "The report, as `swarm reconcile --json`: an admin's pass covers every workspace, the pool and orphans; a user's covers only their own workspaces"), (status = 401, description = "No valid API token", body = ErrorBody), (status = 502, description = "Fly.io could not be read", body = ErrorBody)))]
pub(super) async fn reconcile<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let report = if caller.admin {
        c.reconcile_pass().await.1?
    } else {
        // The admin's pass records its events itself; a user's is recorded here.
        let began = time::OffsetDateTime::now_utc();
        let report = c.swarm.reconcile_owned_by(&caller.user).await?;
        c.record_reconcile_events(&report.actions, began).await;
        report
    };
    Ok(Json(to_json(&report)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventsQuery {
    /// The newest N events (1 to 1,000; 100 by default).
    #[serde(default = "default_lines")]
    limit: usize,
}

#[utoipa::path(get, path = "/v1/workspaces/{name}/events", tag = "workspaces", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("limit" = Option<usize>, Query, description = "The newest N events, 1 to 1000 (100)")), responses((status = 200, description = "Who did what, when, and how it ended, oldest first; automatic actions by `reconciler` and `idle-policy`", body = Vec<EventRecord>), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody)))]
pub(super) async fn events<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Json<Vec<EventRecord>>, ApiError> {
    if !(1..=1_000).contains(&query.limit) {
        return Err(Error::Invalid(vec![swarm_core::validate::ValidationError {
            field: "limit",
            value: query.limit.to_string(),
            rule: "must be 1 to 1000".to_owned(),
        }])
        .into());
    }
    let record = c.visible(&caller, &name).await?;
    let events = c
        .swarm
        .store()
        .events_of(&name, record.spec.owner.as_deref(), query.limit)
        .await
        .map_err(|error| ApiError::from(Error::Store(error)))?;
    Ok(Json(events))
}

#[utoipa::path(get, path = "/v1/workspaces/{name}/logs/stream", tag = "workspaces", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name")), responses((status = 200, description = "New log lines as server-sent events: each `log` event's data is a log line as `swarm logs --json` prints it; an `error` event carries a message", content_type = "text/event-stream", body = String), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody)))]
pub(super) async fn logs_stream<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures::StreamExt;
    c.visible(&caller, &name).await?;
    // Dropped with the connection, which ends the follow.
    let lines = c.swarm.follow_logs(&name).await?;
    let events = lines.map(|line| match line {
        Ok(line) => Event::default().event("log").json_data(&line),
        Err(error) => Ok(Event::default().event("error").data(error.to_string())),
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}
