//! The Swarm Controller (`swarm serve`): a team's workspaces as a service over HTTP.
//!
//! It adds no Fly logic: each route calls the same [`Swarm`] method as the CLI
//! command of that name, so results, refusals and messages are the CLI's. Long
//! operations answer `202` with an operation resource at once ([`operations`]); the
//! journal in the store keeps them safe across a crash, as for the CLI. Callers are
//! named by API tokens ([`auth`]); a user sees and acts on their own workspaces only
//! (another user's answers `404`, as if it did not exist), an admin on all.

mod api_error;
pub mod auth;
pub mod operations;
mod quotas;
mod routes;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::provider::Provider;
use crate::store::Store;
use crate::swarm::Swarm;

pub use api_error::{ApiError, ErrorBody, FieldError};
pub use auth::{Caller, NewToken, TokenError, create_token};
pub use operations::{OperationStatus, OperationView, Operations};
pub use quotas::{Quotas, Usage};

/// The OpenAPI document, as served at `/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <routes::ApiDoc as utoipa::OpenApi>::openapi()
}

/// How long a shutdown waits for running operations before leaving them to the
/// journal (and the next `reconcile`).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(60);

/// The service: the domain library plus the operations it runs.
#[derive(Debug)]
pub struct Controller<S: Store, P: Provider> {
    pub(crate) swarm: Arc<Swarm<S, P>>,
    pub(crate) operations: Arc<Operations>,
    pub(crate) quotas: Quotas,
    last_reconcile: Mutex<Option<ReconcileStatus>>,
    reconcile_gate: tokio::sync::Mutex<()>,
}

/// The last reconcile pass, as `/readyz` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReconcileStatus {
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    pub duration_ms: u64,
    /// Workspaces checked.
    pub checked: usize,
    /// Changes made and findings reported.
    pub actions: usize,
    pub converged: bool,
    /// Why the pass could not run at all.
    pub error: Option<String>,
}

impl<S: Store, P: Provider> Controller<S, P> {
    pub fn new(swarm: Swarm<S, P>) -> Arc<Self> {
        Self::with_quotas(swarm, Quotas::default())
    }

    /// A controller that holds every user to `quotas`.
    pub fn with_quotas(swarm: Swarm<S, P>, quotas: Quotas) -> Arc<Self> {
        Arc::new(Self {
            swarm: Arc::new(swarm),
            operations: Arc::new(Operations::default()),
            quotas,
            last_reconcile: Mutex::new(None),
            reconcile_gate: tokio::sync::Mutex::new(()),
        })
    }

    /// One reconcile pass: finishes or undoes what a crash left (of this process or
    /// another), corrects drift, reports orphans. Operations under way hold their
    /// workspace's lock, so the pass leaves them alone.
    pub async fn reconcile_once(&self) -> ReconcileStatus {
        self.reconcile_pass().await.0
    }

    /// A whole pass, recorded for `/readyz`, with its report. One pass at a time: a
    /// second caller waits for the first to end, so the loop and `POST /v1/reconcile`
    /// never double the load on Fly.
    pub(crate) async fn reconcile_pass(
        &self,
    ) -> (
        ReconcileStatus,
        crate::Result<crate::model::ReconcileReport>,
    ) {
        let _one_at_a_time = self.reconcile_gate.lock().await;
        let started = std::time::Instant::now();
        let outcome = self.swarm.reconcile().await;
        let status = ReconcileStatus {
            finished_at: OffsetDateTime::now_utc(),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            checked: outcome.as_ref().map_or(0, |report| report.checked),
            actions: outcome.as_ref().map_or(0, |report| report.actions.len()),
            converged: outcome.as_ref().is_ok_and(|report| report.converged()),
            error: outcome.as_ref().err().map(ToString::to_string),
        };
        tracing::info!(?status, "reconcile pass");
        *self
            .last_reconcile
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(status.clone());
        (status, outcome)
    }

    /// The last reconcile pass, if one ran.
    pub fn last_reconcile(&self) -> Option<ReconcileStatus> {
        self.last_reconcile
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reconciles now and then every `every` until `stop` turns true; a pass under
    /// way when it does is finished first.
    pub fn spawn_reconciler(
        self: &Arc<Self>,
        every: Duration,
        mut stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                this.reconcile_once().await;
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    _ = stop.wait_for(|stopped| *stopped) => return,
                }
            }
        })
    }

    pub fn swarm(&self) -> &Swarm<S, P> {
        &self.swarm
    }

    pub fn operations(&self) -> &Operations {
        &self.operations
    }

    /// The HTTP API (`/v1/…`, `/healthz`, `/readyz`).
    pub fn router(self: &Arc<Self>) -> Router {
        routes::router(Arc::clone(self)).0
    }

    /// Every route the router answers, as (method, path).
    pub fn routes(self: &Arc<Self>) -> Vec<(&'static str, &'static str)> {
        routes::router(Arc::clone(self)).1
    }

    /// Serves on `listener` until `shutdown` resolves, then waits up to
    /// [`SHUTDOWN_GRACE`] for running operations; what is still running then is left
    /// to the journal. Returns the number of operations left unfinished.
    ///
    /// With `reconcile_every`, a reconcile pass runs at once (settling what a crash
    /// of an earlier server left) and then at that interval.
    pub async fn serve(
        self: &Arc<Self>,
        listener: tokio::net::TcpListener,
        reconcile_every: Option<Duration>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<usize> {
        let (stop, stopped) = watch::channel(false);
        let reconciler = reconcile_every.map(|every| self.spawn_reconciler(every, stopped));
        let served = axum::serve(
            listener,
            self.router()
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        let _ = stop.send(true);
        let left = self.operations.drain(SHUTDOWN_GRACE).await;
        if let Some(reconciler) = reconciler {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, reconciler).await;
        }
        served.map(|()| left)
    }
}
