//! The routes. Each checks the caller, then calls the `Swarm` method of the same
//! name; the work itself lives in the domain library.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Controller;
use super::api_error::{ApiError, ErrorBody};
use super::auth::{self, Caller};
use super::body::{self, ApiJson, MAX_BODY_BYTES, OptionalApiJson};
use super::operations::{OperationStatus, OperationView};
use swarm::Swarm;
use swarm::cost_report::CostReport;
use swarm::error::Error;
use swarm::provider::Provider;
use swarm_core::model::{CreateOptions, CreateStep, ResizeOptions, WorkspaceRecord};
use swarm_core::quota::Usage;
use swarm_core::version::ServerVersion;
use swarm_store::{EventRecord, Store};

mod access;

type Shared<S, P> = State<Arc<Controller<S, P>>>;

/// The longest a request waits for an operation (Fly's own `/wait` limit).
const MAX_WAIT_SECS: u64 = 60;

/// The router, built through [`Routes`] so that every route is also listed: the
/// OpenAPI test checks the document against that list.
pub(super) fn router<S: Store, P: Provider>(
    controller: Arc<Controller<S, P>>,
) -> (Router, Vec<(&'static str, &'static str)>) {
    use MethodFilter as M;
    let routes = Routes::new()
        .add(M::GET, "GET", "/healthz", healthz)
        .add(M::GET, "GET", "/readyz", readyz::<S, P>)
        .add(M::GET, "GET", "/metrics", metrics::<S, P>)
        .add(M::GET, "GET", "/v1/openapi.json", openapi_json)
        .add(M::GET, "GET", "/v1/version", version::<S, P>)
        .add(M::GET, "GET", "/v1/workspaces", list::<S, P>)
        .add(M::POST, "POST", "/v1/workspaces", create::<S, P>)
        .add(M::GET, "GET", "/v1/workspaces/{name}", show::<S, P>)
        .add(M::DELETE, "DELETE", "/v1/workspaces/{name}", delete::<S, P>)
        .add(
            M::POST,
            "POST",
            "/v1/workspaces/{name}/start",
            start::<S, P>,
        )
        .add(M::POST, "POST", "/v1/workspaces/{name}/stop", stop::<S, P>)
        .add(
            M::POST,
            "POST",
            "/v1/workspaces/{name}/suspend",
            suspend::<S, P>,
        )
        .add(
            M::GET,
            "GET",
            "/v1/workspaces/{name}/health",
            health::<S, P>,
        )
        .add(M::GET, "GET", "/v1/workspaces/{name}/logs", logs::<S, P>)
        .add(
            M::GET,
            "GET",
            "/v1/workspaces/{name}/logs/stream",
            logs_stream::<S, P>,
        )
        .add(
            M::GET,
            "GET",
            "/v1/workspaces/{name}/events",
            events::<S, P>,
        )
        .add(M::GET, "GET", "/v1/health", health_checks::<S, P>)
        .add(
            M::GET,
            "GET",
            "/v1/workspaces/{name}/versions",
            versions::<S, P>,
        )
        .add(
            M::POST,
            "POST",
            "/v1/workspaces/{name}/resize",
            resize::<S, P>,
        )
        .add(
            M::POST,
            "POST",
            "/v1/workspaces/{name}/update",
            update::<S, P>,
        )
        .add(
            M::POST,
            "POST",
            "/v1/workspaces/{name}/rollback",
            rollback::<S, P>,
        )
        .add(
            M::POST,
            "POST",
            "/v1/workspaces/{name}/machine-rollback",
            machine_rollback::<S, P>,
        )
        .add(
            M::POST,
            "POST",
            "/v1/workspaces/{name}/move",
            move_region::<S, P>,
        )
        .add(
            M::GET,
            "GET",
            "/v1/workspaces/{name}/snapshots",
            snapshots::<S, P>,
        )
        .add(
            M::POST,
            "POST",
            "/v1/workspaces/{name}/snapshots",
            snapshot::<S, P>,
        )
        .add(
            M::POST,
            "POST",
            "/v1/workspaces/{name}/restore",
            restore::<S, P>,
        )
        .add(
            M::POST,
            "POST",
            "/v1/workspaces/{name}/password",
            password::<S, P>,
        )
        .add(
            M::GET,
            "GET",
            "/v1/workspaces/{name}/cost",
            workspace_cost::<S, P>,
        )
        .add(M::GET, "GET", "/v1/cost", costs::<S, P>)
        .add(M::POST, "POST", "/v1/reconcile", reconcile::<S, P>)
        .add(M::GET, "GET", "/v1/operations/{id}", operation::<S, P>);
    let routes = access::add(routes);
    let build = controller.build;
    let controller_for_dashboard = Arc::clone(&controller);
    let router = routes
        .router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(controller)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Every answer names the server's version, errors included.
        .layer(axum::middleware::map_response(
            move |mut response: Response| async move {
                response.headers_mut().insert(
                    swarm_core::version::VERSION_HEADER,
                    header::HeaderValue::from_static(build.version),
                );
                response
            },
        ));
    // The web dashboard at `/`, in front of these same routes.
    let router = super::dashboard::mount(router, controller_for_dashboard);
    (router, routes.listed)
}

/// A router that lists what it routes.
struct Routes<S: Store, P: Provider> {
    router: Router<Arc<Controller<S, P>>>,
    listed: Vec<(&'static str, &'static str)>,
}

impl<S: Store, P: Provider> Routes<S, P> {
    fn new() -> Self {
        Self {
            router: Router::new(),
            listed: Vec::new(),
        }
    }

    fn add<H, T>(
        mut self,
        filter: MethodFilter,
        method: &'static str,
        path: &'static str,
        handler: H,
    ) -> Self
    where
        H: Handler<T, Arc<Controller<S, P>>>,
        T: 'static,
    {
        self.router = self.router.route(path, on(filter, handler));
        self.listed.push((method, path));
        self
    }
}

/// `?wait=SECS`: wait up to that long (at most 60 s) for the operation to finish.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    #[serde(default)]
    wait: u64,
}

impl WaitQuery {
    fn duration(&self) -> Duration {
        Duration::from_secs(self.wait.min(MAX_WAIT_SECS))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StopQuery {
    #[serde(default)]
    wait: u64,
    /// SIGKILL instead of a graceful stop (`swarm stop --force`).
    #[serde(default)]
    force: bool,
}

impl<S: Store, P: Provider> Controller<S, P> {
    /// The caller named by the request's bearer token.
    async fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token)
            .ok_or_else(ApiError::unauthenticated)?;
        auth::authenticate(self.swarm.store(), token)
            .await
            .map_err(|error| ApiError::from(Error::Store(error)))?
            .ok_or_else(ApiError::unauthenticated)
    }

    /// The workspace, if the caller may see it; otherwise the same answer as for a
    /// name that does not exist.
    pub(super) async fn visible(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<WorkspaceRecord, ApiError> {
        let record = self.swarm.show(name).await?;
        if caller.may_use(record.spec.owner.as_deref()) {
            Ok(record)
        } else {
            Err(Error::NotFound {
                name: name.to_owned(),
            }
            .into())
        }
    }

    /// Starts `work` on a workspace the caller may use, as an operation.
    async fn act<F, Fut, T>(
        &self,
        caller: &Caller,
        name: &str,
        kind: &'static str,
        wait: Duration,
        work: F,
    ) -> Result<Response, ApiError>
    where
        F: FnOnce(Arc<Swarm<S, P>>, String) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Error>> + Send + 'static,
        T: serde::Serialize,
    {
        let record = self.visible(caller, name).await?;
        let swarm = Arc::clone(&self.swarm);
        let workspace = name.to_owned();
        let id = super::Operations::new_id();
        let event = self.event_for(&id, kind, name, caller, record.spec.owner.clone());
        let view = self.operations.start_as(
            id,
            kind,
            name,
            &caller.user,
            record.spec.owner.clone(),
            async move {
                let done = work(swarm, workspace).await;
                let answer = done
                    .map_err(|e| ApiError::from(e).body)
                    .and_then(|done| to_json(&done).map_err(|e| e.body));
                event.finish(&answer).await;
                answer
            },
        );
        Ok(self.answer(view, wait).await)
    }

    /// The event an operation records when it ends.
    fn event_for(
        &self,
        operation: &str,
        kind: &'static str,
        name: &str,
        caller: &Caller,
        owner: Option<String>,
    ) -> PendingEvent<S, P> {
        PendingEvent {
            swarm: Arc::clone(&self.swarm),
            started: std::time::Instant::now(),
            event: EventRecord {
                id: 0,
                workspace: name.to_owned(),
                owner,
                at: time::OffsetDateTime::now_utc(),
                actor: caller.user.clone(),
                action: kind.to_owned(),
                outcome: String::new(),
                detail: json!({ "operation": operation, "token": caller.token_id }),
            },
        }
    }

    /// `202` with the operation, or its end when the caller waited and it finished.
    async fn answer(&self, view: OperationView, wait: Duration) -> Response {
        let view = if wait.is_zero() {
            view
        } else {
            self.operations.get(&view.id, wait).await.unwrap_or(view)
        };
        let status = if view.status == OperationStatus::Running {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        };
        let location = format!("/v1/operations/{}", view.id);
        (status, [(header::LOCATION, location)], Json(view)).into_response()
    }
}

/// An event waiting for its operation's end.
struct PendingEvent<S: Store, P: Provider> {
    swarm: Arc<Swarm<S, P>>,
    started: std::time::Instant,
    event: EventRecord,
}

impl<S: Store, P: Provider> PendingEvent<S, P> {
    /// Records the event with the operation's outcome: the error's code and message
    /// on failure, never the result (a create's holds the one-time password).
    async fn finish(mut self, answer: &Result<Value, ErrorBody>) {
        let took = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.event.detail["duration_ms"] = json!(took);
        match answer {
            Ok(_) => self.event.outcome = "succeeded".to_owned(),
            Err(error) => {
                self.event.outcome = "failed".to_owned();
                self.event.detail["error"] = json!({ "code": error.code, "message": error.error });
            }
        }
        if let Err(error) = self.swarm.store().insert_event(&self.event).await {
            tracing::warn!(
                workspace = %self.event.workspace,
                action = %self.event.action,
                %error,
                "cannot record the event"
            );
        }
    }
}
fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("cannot encode the answer: {error}"),
        )
    })
}

/// The token of an `Authorization: Bearer <token>` value; the scheme's name is matched
/// in any letter case (RFC 9110 §11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The caller, named by the bearer token; the first extractor of a handler, so a
/// request without a valid token is refused (401) before its input is read.
impl<S: Store, P: Provider> FromRequestParts<Arc<Controller<S, P>>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        controller: &Arc<Controller<S, P>>,
    ) -> Result<Self, ApiError> {
        // A dashboard request, whose session named the caller (see `dashboard`).
        if let Some(signed_in) = parts.extensions.get::<super::dashboard::SignedIn>() {
            return Ok(signed_in.caller().clone());
        }
        controller.caller(&parts.headers).await
    }
}

/// `Query`, with a bad query refused as our JSON error naming the field.
struct ApiQuery<T>(T);

impl<T: serde::de::DeserializeOwned, St: Send + Sync> FromRequestParts<St> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(query)| Self(query))
            .map_err(|rejection: QueryRejection| body::query_error(&rejection.body_text()))
    }
}

/// The OpenAPI document, generated from the route annotations and the body types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Swarm Controller",
        description = "VS Code Remote Swarm as a service: a team's code-server workspaces on Fly.io."
    ),
    paths(
        healthz, readyz, metrics, openapi_json, version, list, create, show, delete, start, stop, suspend, health, logs,
        versions, resize, update, rollback, machine_rollback, move_region, snapshots, snapshot, restore,
        password, reconcile, operation, logs_stream, events, health_checks, costs, workspace_cost,
        access::exec, access::secrets, access::set_secret, access::unset_secret
    ),
    modifiers(&BearerToken)
)]
pub(super) struct ApiDoc;

/// `Authorization: Bearer <token>` (`swarm token create`).
struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

#[utoipa::path(get, path = "/v1/openapi.json", tag = "service", responses((status = 200, description = "This document")))]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(<ApiDoc as utoipa::OpenApi>::openapi())
}

/// The server's version; needs no token, so a client checks it before anything else.
#[utoipa::path(get, path = "/v1/version", tag = "service", responses((status = 200, description = "The server's version (also in the `swarm-version` header of every answer)", body = ServerVersion)))]
async fn version<S: Store, P: Provider>(State(c): Shared<S, P>) -> Json<ServerVersion> {
    Json(ServerVersion::from(c.build))
}

#[utoipa::path(get, path = "/healthz", tag = "service", responses((status = 200, description = "The process is up")))]
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the store answers.
#[utoipa::path(get, path = "/readyz", tag = "service", responses((status = 200, description = "The store answers; the last reconcile pass"), (status = 500, description = "The store does not answer", body = ErrorBody)))]
async fn readyz<S: Store, P: Provider>(State(c): Shared<S, P>) -> Result<Json<Value>, ApiError> {
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
async fn metrics<S: Store, P: Provider>(State(c): Shared<S, P>) -> Result<Response, ApiError> {
    let workspaces = c.swarm.list_summaries().await?;
    let text = super::metrics::Scrape {
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

#[utoipa::path(get, path = "/v1/workspaces", tag = "workspaces", security(("bearer" = [])), responses((status = 200, description = "The caller's workspaces (an admin's: all), as `swarm list --json`"), (status = 401, description = "No valid API token", body = ErrorBody)))]
async fn list<S: Store, P: Provider>(
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
async fn show<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(to_json(&c.visible(&caller, &name).await?)?))
}

#[utoipa::path(get, path = "/v1/workspaces/{name}/health", tag = "workspaces", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name")), responses((status = 200, description = "As `swarm health --json`"), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody)))]
async fn health<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    c.visible(&caller, &name).await?;
    Ok(Json(to_json(&c.swarm.health(&name).await?)?))
}

#[utoipa::path(post, path = "/v1/workspaces", tag = "workspaces", security(("bearer" = [])), params(("wait" = Option<u64>, Query, description = "Seconds to wait for the end (at most 60)")), request_body = CreateOptions, responses((status = 202, description = "Started; poll the operation", body = OperationView), (status = 200, description = "Finished within `wait`", body = OperationView), (status = 400, description = "Not JSON", body = ErrorBody), (status = 401, description = "No valid API token", body = ErrorBody), (status = 403, description = "Past a quota", body = ErrorBody), (status = 409, description = "The name is taken", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody)))]
async fn create<S: Store, P: Provider>(
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
    let id = super::Operations::new_id();
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
async fn delete<S: Store, P: Provider>(
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
async fn start<S: Store, P: Provider>(
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
async fn stop<S: Store, P: Provider>(
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
async fn suspend<S: Store, P: Provider>(
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
struct ResizeBody {
    cpus: Option<u32>,
    cpu_kind: Option<String>,
    memory: Option<u32>,
    storage: Option<u32>,
}

#[utoipa::path(post, path = "/v1/workspaces/{name}/resize", tag = "workspaces", operation_id = "resize", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("wait" = Option<u64>, Query, description = "Seconds to wait for the end (at most 60)")), request_body = ResizeBody, responses((status = 202, description = "Started; poll the operation", body = OperationView), (status = 200, description = "Finished within `wait`", body = OperationView), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody), (status = 403, description = "Past a quota", body = ErrorBody)))]
async fn resize<S: Store, P: Provider>(
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
struct UpdateBody {
    image: String,
}

#[utoipa::path(post, path = "/v1/workspaces/{name}/update", tag = "workspaces", operation_id = "update", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("wait" = Option<u64>, Query, description = "Seconds to wait for the end (at most 60)")), request_body = UpdateBody, responses((status = 202, description = "Started; poll the operation", body = OperationView), (status = 200, description = "Finished within `wait`", body = OperationView), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody)))]
async fn update<S: Store, P: Provider>(
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
struct RollbackBody {
    /// The version to go back to; the one before the current by default.
    to: Option<u32>,
}

#[utoipa::path(post, path = "/v1/workspaces/{name}/rollback", tag = "workspaces", operation_id = "rollback", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("wait" = Option<u64>, Query, description = "Seconds to wait for the end (at most 60)")), request_body = Option<RollbackBody>, responses((status = 202, description = "Started; poll the operation", body = OperationView), (status = 200, description = "Finished within `wait`", body = OperationView), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody)))]
async fn rollback<S: Store, P: Provider>(
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
async fn machine_rollback<S: Store, P: Provider>(
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
struct MoveBody {
    region: String,
}

#[utoipa::path(post, path = "/v1/workspaces/{name}/move", tag = "workspaces", operation_id = "move", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("wait" = Option<u64>, Query, description = "Seconds to wait for the end (at most 60)")), request_body = MoveBody, responses((status = 202, description = "Started; poll the operation", body = OperationView), (status = 200, description = "Finished within `wait`", body = OperationView), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody)))]
async fn move_region<S: Store, P: Provider>(
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
struct RestoreBody {
    snapshot: String,
}

#[utoipa::path(post, path = "/v1/workspaces/{name}/restore", tag = "workspaces", operation_id = "restore", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("wait" = Option<u64>, Query, description = "Seconds to wait for the end (at most 60)")), request_body = RestoreBody, responses((status = 202, description = "Started; poll the operation", body = OperationView), (status = 200, description = "Finished within `wait`", body = OperationView), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody)))]
async fn restore<S: Store, P: Provider>(
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
async fn snapshot<S: Store, P: Provider>(
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
async fn password<S: Store, P: Provider>(
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

#[utoipa::path(get, path = "/v1/cost", tag = "workspaces", security(("bearer" = [])), responses((status = 200, description = "The caller's workspaces (an admin's: every user's) priced from Fly's published prices, as `swarm cost --json`"), (status = 401, description = "No valid API token", body = ErrorBody)))]
async fn costs<S: Store, P: Provider>(
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
async fn workspace_cost<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    c.visible(&caller, &name).await?;
    Ok(Json(to_json(&c.swarm.cost(&name).await?)?))
}

#[utoipa::path(get, path = "/v1/workspaces/{name}/snapshots", tag = "workspaces", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name")), responses((status = 200, description = "As `swarm snapshot list --json`"), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody)))]
async fn snapshots<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    c.visible(&caller, &name).await?;
    Ok(Json(to_json(&c.swarm.snapshots(&name).await?)?))
}

#[utoipa::path(get, path = "/v1/workspaces/{name}/versions", tag = "workspaces", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name")), responses((status = 200, description = "As `swarm versions --json`"), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody)))]
async fn versions<S: Store, P: Provider>(
    State(c): Shared<S, P>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    c.visible(&caller, &name).await?;
    Ok(Json(to_json(&c.swarm.versions(&name).await?)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsQuery {
    /// The last N lines (1 to 10,000; 100 by default).
    #[serde(default = "default_lines")]
    lines: usize,
}

fn default_lines() -> usize {
    100
}

#[utoipa::path(get, path = "/v1/workspaces/{name}/logs", tag = "workspaces", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("lines" = Option<usize>, Query, description = "The last N lines, 1 to 10000 (100)")), responses((status = 200, description = "As `swarm logs --json`"), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody)))]
async fn logs<S: Store, P: Provider>(
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
async fn operation<S: Store, P: Provider>(
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
async fn reconcile<S: Store, P: Provider>(
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
struct EventsQuery {
    /// The newest N events (1 to 1,000; 100 by default).
    #[serde(default = "default_lines")]
    limit: usize,
}

#[utoipa::path(get, path = "/v1/workspaces/{name}/events", tag = "workspaces", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name"), ("limit" = Option<usize>, Query, description = "The newest N events, 1 to 1000 (100)")), responses((status = 200, description = "Who did what, when, and how it ended, oldest first; automatic actions by `reconciler` and `idle-policy`", body = Vec<EventRecord>), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody), (status = 422, description = "Invalid input; the field is named", body = ErrorBody)))]
async fn events<S: Store, P: Provider>(
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

/// One workspace's last background health check.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct HealthCheckView {
    workspace: String,
    #[serde(flatten)]
    check: super::HealthCheck,
}

#[utoipa::path(get, path = "/v1/health", tag = "workspaces", security(("bearer" = [])), responses((status = 200, description = "The last background health check of each of the caller's running workspaces (an admin's: all), from the idle policy's passes", body = Vec<HealthCheckView>), (status = 401, description = "No valid API token", body = ErrorBody)))]
async fn health_checks<S: Store, P: Provider>(
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

#[utoipa::path(get, path = "/v1/workspaces/{name}/logs/stream", tag = "workspaces", security(("bearer" = [])), params(("name" = String, Path, description = "Workspace name")), responses((status = 200, description = "New log lines as server-sent events: each `log` event's data is a log line as `swarm logs --json` prints it; an `error` event carries a message", content_type = "text/event-stream", body = String), (status = 401, description = "No valid API token", body = ErrorBody), (status = 404, description = "No such workspace, or another user's", body = ErrorBody)))]
async fn logs_stream<S: Store, P: Provider>(
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

async fn not_found() -> ApiError {
    ApiError::not_found("no such route; the API is under /v1")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not answer that method",
    )
}
