//! The workspace routes: list, show, health, and every operation on a workspace,
//! each answered with its operation (waited on up to `?wait=`).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use crate::api_error::{ApiError, ErrorBody};
use crate::auth::Caller;
use crate::body::{ApiJson, OptionalApiJson};
use crate::operations::OperationView;
use swarm::error::Error;
use swarm::provider::Provider;
use swarm_core::model::{CreateOptions, CreateStep, ResizeOptions, WorkspaceRecord};
use swarm_core::quota::Usage;
use swarm_store::Store;

use super::*;

#[utoipa::path(get, path = "/v1/workspaces", tag = "workspaces", security(("bearer" = [])), responses((status = 200, description = "The caller's workspaces (an admin's: all), as `swarm list --json`"), (status = 401, description = "No valid API token", body = ErrorBody)))]
pub(super) async fn list<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let records: Vec<WorkspaceRecord> = c
        .swarm
        .list()
        .await?
        .into_iter()
        .filter(|record| caller.may_use(record.spec.owner.as_deref()))
        .collect();
    Ok(Json(to_json(&records)?))
}

#[utoipa::path(get, path = "/v1/workspaces/{name}", tag = "workspaces", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name")), responses((status = 200, description = "The record, as `swarm show --json`"), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody)))]
pub(super) async fn show<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(to_json(&c.visible(&caller, &name).await?)?))
}

#[utoipa::path(get, path = "/v1/workspaces/{name}/health", tag = "workspaces", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name")), responses((status = 200, description = "As `swarm health --json`"), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody)))]
pub(super) async fn health<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    c.visible(&caller, &name).await?;
    Ok(Json(to_json(&c.swarm.health(&name).await?)?))
}

#[utoipa::path(post, path = "/v1/workspaces", tag = "workspaces", security(("bearer" = [])), params(("wait" = Option<u64>, Query, description = "Seconds to wait for the end (at most 60)")), request_body = CreateOptions, responses((status = 202, description = "Started; poll the operation", body = OperationView), (status = 200, description = "Finished within `wait`", body = OperationView), (status = 400, description = "Not JSON", body = ErrorBody), (status = 401, description = "No valid API token", body = ErrorBody), (status = 403, description = "Past a quota", body = ErrorBody), (status = 409, description = "The name is taken", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody)))]
pub(super) async fn create<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    ApiQuery(query): ApiQuery<WaitQuery>,
    ApiJson(mut options): ApiJson<CreateOptions>,
) -> Result<Response, ApiError> {
    options.owner = Some(caller.user.clone());
    let swarm = Arc::clone(&c.swarm);
    let name = options.name.clone();
    // The create runs at once; the answer waits for its intent to be committed. What
    // refuses a create (invalid input, a taken name, the quota, checked in the intent's
    // own transaction) ends it before then, and is this request's answer: 422, 409 or
    // 403 straight away, never a failed operation.
    let (admitted_tx, admitted) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        let admitted_tx = std::sync::Mutex::new(Some(admitted_tx));
        let progress = move |step: &CreateStep| {
            if matches!(step, CreateStep::IntentRecorded { .. })
                && let Some(tx) = admitted_tx.lock().ok().and_then(|mut tx| tx.take())
            {
                let _ = tx.send(());
            }
        };
        swarm.create_with_progress(&options, &progress).await
    });
    if admitted.await.is_err() {
        // Ended before its intent: nothing was written.
        return match running.await {
            Ok(Err(error)) => Err(error.into()),
            Ok(Ok(_)) | Err(_) => Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("the create of {name} ended before recording its intent"),
            )),
        };
    }
    let id = crate::Operations::new_id();
    let event = c.event_for(&id, "create", &name, &caller, Some(caller.user.clone()));
    let view = c.operations.start_as(
        id,
        "create",
        &name,
        &caller.user,
        Some(caller.user.clone()),
        async move {
            // The event keeps the operation's outcome only: the result holds the
            // one-time password.
            let answer = match running.await {
                Ok(created) => created
                    .map_err(|e| ApiError::from(e).body)
                    .and_then(|created| to_json(&created).map_err(|e| e.body)),
                Err(join) => Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("the create stopped: {join}"),
                )
                .body),
            };
            event.finish(&answer).await;
            answer
        },
    );
    Ok(c.answer(view, query.duration()).await)
}

#[utoipa::path(delete, path = "/v1/workspaces/{name}", tag = "workspaces", operation_id = "delete", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("wait" = Option<u64>, Query, description = "Seconds to wait for the end (at most 60)")), responses((status = 202, description = "Started; poll the operation", body = OperationView), (status = 200, description = "Finished within `wait`", body = OperationView), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody)))]
pub(super) async fn delete<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<WaitQuery>,
) -> Result<Response, ApiError> {
    c.act(
        &caller,
        &name,
        "delete",
        query.duration(),
        |swarm, name| async move { swarm.delete(&name).await },
    )
    .await
}

#[utoipa::path(post, path = "/v1/workspaces/{name}/start", tag = "workspaces", operation_id = "start", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("wait" = Option<u64>, Query, description = "Seconds to wait for the end (at most 60)")), responses((status = 202, description = "Started; poll the operation", body = OperationView), (status = 200, description = "Finished within `wait`", body = OperationView), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody)))]
pub(super) async fn start<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<WaitQuery>,
) -> Result<Response, ApiError> {
    c.act(
        &caller,
        &name,
        "start",
        query.duration(),
        |swarm, name| async move { swarm.start(&name).await },
    )
    .await
}

#[utoipa::path(post, path = "/v1/workspaces/{name}/stop", tag = "workspaces", operation_id = "stop", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("wait" = Option<u64>, Query, description = "Seconds to wait for the end (at most 60)"), ("force" = Option<bool>, Query, description = "Kill at once (SIGKILL)")), responses((status = 202, description = "Started; poll the operation", body = OperationView), (status = 200, description = "Finished within `wait`", body = OperationView), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody)))]
pub(super) async fn stop<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<StopQuery>,
) -> Result<Response, ApiError> {
    let force = query.force;
    let wait = Duration::from_secs(query.wait.min(MAX_WAIT_SECS));
    c.act(
        &caller,
        &name,
        "stop",
        wait,
        move |swarm, name| async move { swarm.stop(&name, force).await },
    )
    .await
}

#[utoipa::path(post, path = "/v1/workspaces/{name}/suspend", tag = "workspaces", operation_id = "suspend", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("wait" = Option<u64>, Query, description = "Seconds to wait for the end (at most 60)")), responses((status = 202, description = "Started; poll the operation", body = OperationView), (status = 200, description = "Finished within `wait`", body = OperationView), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid input (e.g. more memory than Fly suspends); the field is named", body = ErrorBody)))]
pub(super) async fn suspend<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<WaitQuery>,
) -> Result<Response, ApiError> {
    // Too much memory for Fly to suspend is refused up front (422), not as a failed operation.
    let record = c.visible(&caller, &name).await?;
    let memory = format!("{} MB", record.spec.guest.memory_mb);
    swarm_core::model::check_suspendable("memory", &memory, record.spec.guest)
        .map_err(|error| ApiError::from(Error::Invalid(vec![error])))?;
    c.act(
        &caller,
        &name,
        "suspend",
        query.duration(),
        |swarm, name| async move { swarm.suspend(&name).await },
    )
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ResizeBody {
    cpus: Option<u32>,
    cpu_kind: Option<String>,
    memory: Option<u32>,
    storage: Option<u32>,
}

#[utoipa::path(post, path = "/v1/workspaces/{name}/resize", tag = "workspaces", operation_id = "resize", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("wait" = Option<u64>, Query, description = "Seconds to wait for the end (at most 60)")), request_body = ResizeBody, responses((status = 202, description = "Started; poll the operation", body = OperationView), (status = 200, description = "Finished within `wait`", body = OperationView), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody), (status = 403, description = "Past a quota", body = ErrorBody)))]
pub(super) async fn resize<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<WaitQuery>,
    ApiJson(body): ApiJson<ResizeBody>,
) -> Result<Response, ApiError> {
    let options = ResizeOptions {
        cpus: body.cpus,
        cpu_kind: body.cpu_kind,
        memory_mb: body.memory,
        storage_gb: body.storage,
    };
    let record = c.visible(&caller, &name).await?;
    let plan = c.swarm.validate_resize(&name, &options).await?;
    if let Some(owner) = record.spec.owner.as_deref() {
        let records = c.swarm.list().await?;
        let after = Usage::of_user(&records, owner).replacing(
            Usage::of(&record),
            Usage::workspace(plan.guest, plan.storage_gb, record.spec.ip_mode),
        );
        c.swarm.quotas().check(owner, after).map_err(Error::from)?;
    }
    c.act(
        &caller,
        &name,
        "resize",
        query.duration(),
        |swarm, name| async move { swarm.resize(&name, &options).await },
    )
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateBody {
    image: String,
}

#[utoipa::path(post, path = "/v1/workspaces/{name}/update", tag = "workspaces", operation_id = "update", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("wait" = Option<u64>, Query, description = "Seconds to wait for the end (at most 60)")), request_body = UpdateBody, responses((status = 202, description = "Started; poll the operation", body = OperationView), (status = 200, description = "Finished within `wait`", body = OperationView), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody)))]
pub(super) async fn update<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<WaitQuery>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Response, ApiError> {
    swarm_core::validate::validate_image(&body.image).map_err(|e| Error::Invalid(vec![e]))?;
    c.act(
        &caller,
        &name,
        "update",
        query.duration(),
        |swarm, name| async move { swarm.update_image(&name, &body.image).await },
    )
    .await
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RollbackBody {
    /// The version to go back to; the one before the current by default.
    to: Option<u32>,
}

#[utoipa::path(post, path = "/v1/workspaces/{name}/rollback", tag = "workspaces", operation_id = "rollback", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("wait" = Option<u64>, Query, description = "Seconds to wait for the end (at most 60)")), request_body = Option<RollbackBody>, responses((status = 202, description = "Started; poll the operation", body = OperationView), (status = 200, description = "Finished within `wait`", body = OperationView), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody)))]
pub(super) async fn rollback<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<WaitQuery>,
    // No body at all: the default target.
    OptionalApiJson(body): OptionalApiJson<RollbackBody>,
) -> Result<Response, ApiError> {
    let to = body.and_then(|body| body.to);
    c.visible(&caller, &name).await?;
    c.swarm.validate_rollback(&name, to).await?;
    c.act(
        &caller,
        &name,
        "rollback",
        query.duration(),
        move |swarm, name| async move { swarm.rollback(&name, to).await },
    )
    .await
}

#[utoipa::path(post, path = "/v1/workspaces/{name}/machine-rollback", tag = "workspaces", operation_id = "machine_rollback", description = "Back to the machine config the workspace had before its last machine change (resize, update, rollback or machine rollback): image and guest, in place, volume kept. Takes no body.", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("wait" = Option<u64>, Query, description = "Seconds to wait for the end (at most 60)")), responses((status = 202, description = "Started; poll the operation", body = OperationView), (status = 200, description = "Finished within `wait`", body = OperationView), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "No earlier machine config (field `machine`)", body = ErrorBody), (status = 403, description = "Past a quota", body = ErrorBody)))]
pub(super) async fn machine_rollback<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<WaitQuery>,
) -> Result<Response, ApiError> {
    let record = c.visible(&caller, &name).await?;
    let target = c.swarm.validate_machine_rollback(&name).await?;
    // Undoing a shrink grows the machine: the owner's quota applies as for resize.
    if let Some(owner) = record.spec.owner.as_deref() {
        let records = c.swarm.list().await?;
        let after = Usage::of_user(&records, owner).replacing(
            Usage::of(&record),
            Usage::workspace(target.guest, record.spec.storage_gb, record.spec.ip_mode),
        );
        c.swarm.quotas().check(owner, after).map_err(Error::from)?;
    }
    c.act(
        &caller,
        &name,
        "machine_rollback",
        query.duration(),
        |swarm, name| async move { swarm.rollback_machine(&name).await },
    )
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct MoveBody {
    region: String,
}

#[utoipa::path(post, path = "/v1/workspaces/{name}/move", tag = "workspaces", operation_id = "move", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("wait" = Option<u64>, Query, description = "Seconds to wait for the end (at most 60)")), request_body = MoveBody, responses((status = 202, description = "Started; poll the operation", body = OperationView), (status = 200, description = "Finished within `wait`", body = OperationView), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody)))]
pub(super) async fn move_region<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<WaitQuery>,
    ApiJson(body): ApiJson<MoveBody>,
) -> Result<Response, ApiError> {
    c.visible(&caller, &name).await?;
    c.swarm.validate_move(&name, &body.region).await?;
    c.act(
        &caller,
        &name,
        "move",
        query.duration(),
        |swarm, name| async move { swarm.move_region(&name, &body.region).await },
    )
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RestoreBody {
    snapshot: String,
}

#[utoipa::path(post, path = "/v1/workspaces/{name}/restore", tag = "workspaces", operation_id = "restore", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("wait" = Option<u64>, Query, description = "Seconds to wait for the end (at most 60)")), request_body = RestoreBody, responses((status = 202, description = "Started; poll the operation", body = OperationView), (status = 200, description = "Finished within `wait`", body = OperationView), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody)))]
pub(super) async fn restore<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<WaitQuery>,
    ApiJson(body): ApiJson<RestoreBody>,
) -> Result<Response, ApiError> {
    c.visible(&caller, &name).await?;
    c.swarm.validate_restore(&name, &body.snapshot).await?;
    c.act(
        &caller,
        &name,
        "restore",
        query.duration(),
        |swarm, name| async move { swarm.restore(&name, &body.snapshot).await },
    )
    .await
}

#[utoipa::path(post, path = "/v1/workspaces/{name}/snapshots", tag = "workspaces", operation_id = "snapshot", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("wait" = Option<u64>, Query, description = "Seconds to wait for the end (at most 60)")), responses((status = 202, description = "Started; poll the operation", body = OperationView), (status = 200, description = "Finished within `wait`", body = OperationView), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody)))]
pub(super) async fn snapshot<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<WaitQuery>,
) -> Result<Response, ApiError> {
    c.act(
        &caller,
        &name,
        "snapshot",
        query.duration(),
        |swarm, name| async move { swarm.create_snapshot(&name).await },
    )
    .await
}

#[utoipa::path(post, path = "/v1/workspaces/{name}/password", tag = "workspaces", operation_id = "password", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("wait" = Option<u64>, Query, description = "Seconds to wait for the end (at most 60)")), responses((status = 202, description = "Started; poll the operation", body = OperationView), (status = 200, description = "Finished within `wait`", body = OperationView), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody)))]
pub(super) async fn password<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<WaitQuery>,
) -> Result<Response, ApiError> {
    c.act(
        &caller,
        &name,
        "password",
        query.duration(),
        |swarm, name| async move { swarm.rotate_password(&name).await },
    )
    .await
}
