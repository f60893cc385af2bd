//! The service's own routes: liveness and readiness, metrics, the OpenAPI document,
//! the version, the workspaces' health checks, and the answers to unknown paths.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api_error::{ApiError, ErrorBody};
use crate::auth::Caller;
use swarm::error::Error;
use swarm::provider::Provider;
use swarm_core::version::ServerVersion;
use swarm_store::Store;

use super::*;

#[utoipa::path(get, path = "/v1/openapi.json", tag = "service", responses((status = 200, description = "This document")))]
pub(super) async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(<ApiDoc as utoipa::OpenApi>::openapi())
}

/// The server's version; needs no token, so a client checks it before anything else.
#[utoipa::path(get, path = "/v1/version", tag = "service", responses((status = 200, description = "The server's version (also in the `swarm-version` header of every answer)", body = ServerVersion)))]
pub(super) async fn version<S: Store, P: Provider>(State(c): Shared<S, P>) -> Json<ServerVersion> {
    Json(ServerVersion::from(c.build))
}

#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, description = "The process is up")))]
pub(super) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the store answers.
#[utoipa::path(get, path = "/readyz", tag = "service", responses((status = 200, description = "The store answers; the last reconcile pass"), (status = 500, description = "The store does not answer", body = ErrorBody)))]
pub(super) async fn readyz<S: Store, P: Provider>(
    State(c): Shared<S, P>,
) -> Result<Json<Value>, ApiError> {
    c.swarm
        .store()
        .workspace_by_name("readyz")
        .await
        .map_err(|error| ApiError::from(Error::Store(error)))?;
    Ok(Json(
        json!({ "status": "ready", "last_reconcile": c.last_reconcile() }),
    ))
}

/// Prometheus metrics. Unauthenticated like `/healthz`: it names no workspace and
/// no user, only counts by state, kind and Fly endpoint.
#[utoipa::path(get, path = "/metrics", tag = "service", responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain; version=0.0.4", body = String), (status = 500, description = "The store does not answer", body = ErrorBody)))]
pub(super) async fn metrics<S: Store, P: Provider>(
    State(c): Shared<S, P>,
) -> Result<Response, ApiError> {
    let workspaces = c.swarm.list_summaries().await?;
    let text = crate::metrics::Scrape {
        workspaces: &workspaces,
        calls: c.swarm.provider().call_counts(),
        metrics: c.operations.metrics(),
        operations_running: c.operations.running(),
        reconcile_duration_ms: c.last_reconcile().map(|status| status.duration_ms),
    }
    .render();
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// One workspace's last background health check.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(super) struct HealthCheckView {
    workspace: String,
    #[serde(flatten)]
    check: crate::HealthCheck,
}

#[utoipa::path(get, path = "/v1/health", tag = "workspaces", security(("bearer" = [])), responses((status = 200, description = "The last background health check of each of the caller's running workspaces (an admin's: all), from the idle policy's passes", body = Vec<HealthCheckView>), (status = 401, description = "No valid API token", body = ErrorBody)))]
pub(super) async fn health_checks<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
) -> Result<Json<Vec<HealthCheckView>>, ApiError> {
    let checks = c
        .last_health(|owner| caller.may_use(owner))
        .into_iter()
        .map(|(workspace, check)| HealthCheckView { workspace, check })
        .collect();
    Ok(Json(checks))
}

pub(super) async fn not_found() -> ApiError {
    ApiError::not_found("no such route; the API is under /v1")
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not answer that method",
    )
}
