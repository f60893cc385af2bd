//! The routes. Each checks the caller, then calls the `Swarm` method of the same
//! name; the work itself lives in the domain library.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query, State};
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
use super::body::{self, ApiJson, MAX_BODY_BYTES};
use super::operations::{OperationStatus, OperationView};
use swarm::Swarm;
use swarm::error::Error;
use swarm::provider::Provider;
use swarm_core::model::WorkspaceRecord;
use swarm_store::{EventRecord, Store};

mod access;
mod records;
mod service;
mod workspaces;

use records::*;
use service::*;
use workspaces::*;

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
