//! Into a workspace: run a command in it (`exec`) and its user secrets. Owner only
//! (another user's workspace answers as a missing one); answered at once, not as
//! operations: neither changes the workspace's resources.

use axum::Json;
use axum::extract::{Path, State};
use axum::routing::MethodFilter;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;

use super::{ApiError, ApiJson, Caller, ErrorBody, Routes, Shared, to_json};
use swarm::exec::ExecOptions;
use swarm::provider::Provider;
use swarm_store::Store;

/// Adds the routes of this module.
pub(super) fn add<S: Store, P: Provider>(routes: Routes<S, P>) -> Routes<S, P> {
    use MethodFilter as M;
    routes
        .add(M::POST, "POST", "/v1/workspaces/{name}/exec", exec::<S, P>)
        .add(
            M::GET,
            "GET",
            "/v1/workspaces/{name}/secrets",
            secrets::<S, P>,
        )
        .add(
            M::PUT,
            "PUT",
            "/v1/workspaces/{name}/secrets/{key}",
            set_secret::<S, P>,
        )
        .add(
            M::DELETE,
            "DELETE",
            "/v1/workspaces/{name}/secrets/{key}",
            unset_secret::<S, P>,
        )
}

/// `POST …/exec`: `swarm exec NAME [--timeout] [--start] -- CMD…`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ExecBody {
    /// The program and its arguments (no shell; `["sh", "-c", "…"]` for one).
    command: Vec<String>,
    /// Seconds the command may run (1 to 3600); Fly's default when left out.
    #[serde(default)]
    timeout: Option<u64>,
    /// Start a stopped workspace first and wait until it runs.
    #[serde(default)]
    start: bool,
}

#[utoipa::path(post, path = "/v1/workspaces/{name}/exec", tag = "workspaces", operation_id = "exec", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name")), request_body = ExecBody, responses((status = 200, description = "The command ran: `{workspace, started, stdout, stderr, exit_code, exit_signal?}`, as `swarm exec --json`; a failing command is a 200 too"), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 409, description = "The workspace is not running (send `start: true`)", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody), (status = 504, description = "The command ran past its timeout", body = ErrorBody)))]
async fn exec<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<ExecBody>,
) -> Result<Json<Value>, ApiError> {
    let options = ExecOptions {
        command: body.command,
        timeout_secs: body.timeout,
        start_first: body.start,
    };
    swarm::exec::validate_exec(&options).map_err(|error| swarm::Error::Invalid(vec![error]))?;
    c.visible(&caller, &name).await?;
    Ok(Json(to_json(&c.swarm.exec(&name, &options).await?)?))
}

#[utoipa::path(get, path = "/v1/workspaces/{name}/secrets", tag = "workspaces", operation_id = "secrets", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name")), responses((status = 200, description = "`{workspace, secrets: [{key, created_at, updated_at}]}`: names only, never values"), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody)))]
async fn secrets<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    c.visible(&caller, &name).await?;
    Ok(Json(to_json(&c.swarm.list_secrets(&name).await?)?))
}

/// `PUT …/secrets/{key}`: the value travels in the body, never in the URL.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SecretBody {
    #[schema(value_type = String)]
    value: SecretString,
}

#[utoipa::path(put, path = "/v1/workspaces/{name}/secrets/{key}", tag = "workspaces", operation_id = "set_secret", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("key" = String, Path, description = "Secret name: an env var name, not FLY_* and none of swarm's own")), request_body = SecretBody, responses((status = 200, description = "`{workspace, key, action, version, restart_needed, note}`"), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid name or value; the field is named (never the value)", body = ErrorBody)))]
async fn set_secret<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path((name, key)): Path<(String, String)>,
    ApiJson(body): ApiJson<SecretBody>,
) -> Result<Json<Value>, ApiError> {
    c.visible(&caller, &name).await?;
    Ok(Json(to_json(
        &c.swarm.set_secret(&name, &key, &body.value).await?,
    )?))
}

#[utoipa::path(delete, path = "/v1/workspaces/{name}/secrets/{key}", tag = "workspaces", operation_id = "unset_secret", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("key" = String, Path, description = "Secret name")), responses((status = 200, description = "`{workspace, key, action, version, restart_needed, note}`"), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace (or another user's), or no such secret", body = ErrorBody), (status = 422, description = "Invalid name; the field is named", body = ErrorBody)))]
async fn unset_secret<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path((name, key)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    c.visible(&caller, &name).await?;
    Ok(Json(to_json(&c.swarm.unset_secret(&name, &key).await?)?))
}
