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
mod body;
mod dashboard;
pub mod leader;
pub mod metrics;
pub mod operations;
mod routes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use swarm::Swarm;
use swarm::provider::Provider;
use swarm_core::model::{Health, ReconcileAction, WorkspaceStatus};
use swarm_core::version::BuildInfo;
use swarm_store::{EventRecord, Store};

pub use api_error::{ApiError, ErrorBody, FieldError};
pub use auth::{Caller, NewToken, TokenError, create_token};
pub use leader::{DEFAULT_LEADER_LEASE, LEADER_LEASE, Leadership};
pub use operations::{OperationStatus, OperationView, Operations};
pub use swarm_core::quota::{Quotas, Usage};

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
    last_reconcile: Mutex<Option<ReconcileStatus>>,
    reconcile_gate: tokio::sync::Mutex<()>,
    /// The last health check of each workspace the idle policy looked at.
    last_health: Mutex<HashMap<String, HealthCheck>>,
    /// The last reconcile failure recorded per workspace, so a failure repeated
    /// every pass makes one event, not one a pass.
    reconcile_failures: Mutex<HashMap<String, String>>,
    /// What `GET /v1/version` and the `swarm-version` header say.
    pub(crate) build: BuildInfo,
    /// Whether this replica runs the background loops ([`leader`]).
    leadership: Arc<Leadership<S>>,
}

/// Who the automatic actions are, in the event history.
pub const RECONCILER: &str = "reconciler";
pub const IDLE_POLICY: &str = "idle-policy";

/// A workspace's health as last checked in the background.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HealthCheck {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub checked_at: OffsetDateTime,
    /// As `swarm health --json`; absent when the check failed.
    #[schema(value_type = Option<Object>)]
    pub health: Option<Health>,
    /// Why the check failed.
    pub error: Option<String>,
    #[serde(skip)]
    pub owner: Option<String>,
}

/// What one idle-policy pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IdlePass {
    /// Running workspaces checked.
    pub checked: usize,
    /// Workspaces stopped for being idle too long.
    pub stopped: Vec<String>,
}

/// Background work of [`Controller::serve_with`]; `None` turns a task off.
#[derive(Debug, Clone, Copy, Default)]
pub struct Background {
    pub reconcile_every: Option<Duration>,
    pub idle_check_every: Option<Duration>,
}

/// How long a reconcile asked for by a request waits for another replica's pass.
const MANUAL_PASS_WAIT: Duration = Duration::from_secs(60);

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

    /// A controller that holds every user to `quotas` (checked by the store in the
    /// transaction of each create and resize: [`Swarm::with_quotas`]).
    pub fn with_quotas(swarm: Swarm<S, P>, quotas: Quotas) -> Arc<Self> {
        Self::with_build(swarm, quotas, BuildInfo::library())
    }

    /// [`Controller::with_quotas`], saying it is the binary `build` (its commit).
    pub fn with_build(swarm: Swarm<S, P>, quotas: Quotas, build: BuildInfo) -> Arc<Self> {
        Self::with_leader_lease(swarm, quotas, build, DEFAULT_LEADER_LEASE)
    }

    /// [`Controller::with_build`] campaigning for leadership with a lease of `ttl`:
    /// how long the replicas' loops pause, at most, when their leader dies.
    pub fn with_leader_lease(
        swarm: Swarm<S, P>,
        quotas: Quotas,
        build: BuildInfo,
        ttl: Duration,
    ) -> Arc<Self> {
        let leadership = Leadership::new(swarm.store_arc(), ttl);
        Arc::new(Self {
            swarm: Arc::new(swarm.with_quotas(quotas)),
            operations: Arc::new(Operations::default()),
            last_reconcile: Mutex::new(None),
            reconcile_gate: tokio::sync::Mutex::new(()),
            last_health: Mutex::new(HashMap::new()),
            reconcile_failures: Mutex::new(HashMap::new()),
            build,
            leadership,
        })
    }

    /// Appends to the event history; a store failure is logged, never fatal to the
    /// action it describes.
    pub(crate) async fn record_event(&self, event: EventRecord) {
        self.operations.changed(&event.workspace);
        if let Err(error) = self.swarm.store().insert_event(&event).await {
            tracing::warn!(
                workspace = %event.workspace,
                action = %event.action,
                %error,
                "cannot record the event"
            );
        }
    }

    /// Events for what a reconcile pass changed (orphans have no workspace of ours).
    async fn record_reconcile_events(&self, actions: &[ReconcileAction], at: OffsetDateTime) {
        let mut named = Vec::new();
        for action in actions {
            let name = match action {
                ReconcileAction::FinishedCreate { name, .. }
                | ReconcileAction::UndidCreate { name, .. }
                | ReconcileAction::FinishedDelete { name, .. }
                | ReconcileAction::SettledOperation { name, .. }
                | ReconcileAction::StatusDrift { name, .. }
                | ReconcileAction::FinishedOperation { name, .. }
                | ReconcileAction::UndidOperation { name, .. }
                | ReconcileAction::Failed { name, .. } => name,
                ReconcileAction::OrphanApp { .. }
                | ReconcileAction::OrphanMachine { .. }
                | ReconcileAction::PoolSlotRemoved { .. }
                | ReconcileAction::PoolSlotRefreshed { .. } => continue,
            };
            if let ReconcileAction::Failed { error, .. } = action {
                let mut failures = self
                    .reconcile_failures
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if failures.get(name) == Some(error) {
                    continue;
                }
                failures.insert(name.clone(), error.clone());
            } else {
                self.reconcile_failures
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(name);
            }
            named.push((name.clone(), action));
        }
        if named.is_empty() {
            return;
        }
        // Deleted records too: a finished delete's owner is on its record.
        let owners: HashMap<String, Option<String>> =
            match self.swarm.store().list_workspaces(true).await {
                Ok(records) => records
                    .into_iter()
                    .map(|record| (record.spec.name.to_string(), record.spec.owner))
                    .collect(),
                Err(error) => {
                    tracing::warn!(%error, "cannot read owners for reconcile events");
                    return;
                }
            };
        for (name, action) in named {
            let outcome = if matches!(action, ReconcileAction::Failed { .. }) {
                "failed"
            } else {
                "succeeded"
            };
            self.record_event(EventRecord {
                id: 0,
                owner: owners.get(&name).cloned().flatten(),
                workspace: name,
                at,
                actor: RECONCILER.to_owned(),
                action: "reconcile".to_owned(),
                outcome: outcome.to_owned(),
                detail: serde_json::to_value(action).unwrap_or_default(),
            })
            .await;
        }
    }

    /// One idle-policy pass: checks the health of every running workspace (kept for
    /// [`Controller::last_health`]) and stops, as `swarm stop` does, each one
    /// code-server reports `expired` for longer than its idle timeout. A safety net
    /// beside code-server's own idle exit (older images lack it).
    pub async fn idle_check_once(&self) -> IdlePass {
        let mut pass = IdlePass::default();
        let records = match self.swarm.list().await {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(%error, "idle policy: cannot list workspaces");
                return pass;
            }
        };
        // Only running workspaces are checked; the others' old checks go.
        let live: std::collections::HashSet<String> = records
            .iter()
            .filter(|record| record.status == WorkspaceStatus::Running)
            .map(|record| record.spec.name.to_string())
            .collect();
        self.last_health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|name, _| live.contains(name));
        for record in records {
            if record.status != WorkspaceStatus::Running {
                continue;
            }
            let name = record.spec.name.to_string();
            pass.checked += 1;
            let checked_at = OffsetDateTime::now_utc();
            let health = self.swarm.health(&name).await;
            let idle_for = health
                .as_ref()
                .ok()
                .and_then(|health| health.idle_since)
                .map(|since| checked_at - since);
            self.last_health
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    name.clone(),
                    HealthCheck {
                        checked_at,
                        error: health.as_ref().err().map(ToString::to_string),
                        health: health.ok(),
                        owner: record.spec.owner.clone(),
                    },
                );
            let timeout = time::Duration::seconds(
                i64::try_from(record.spec.idle_timeout_secs).unwrap_or(i64::MAX),
            );
            let Some(idle_for) = idle_for.filter(|idle_for| *idle_for > timeout) else {
                continue;
            };
            // `suspend` workspaces are suspended: Fly's proxy would do it too, but these
            // very health probes pass through it and count as traffic.
            let suspend = record.spec.idle_policy == swarm_core::model::IdlePolicy::Suspend;
            let (action, metric) = if suspend {
                ("suspend", "idle_suspend")
            } else {
                ("stop", "idle_stop")
            };
            tracing::info!(
                workspace = %name,
                idle_secs = idle_for.whole_seconds(),
                idle_timeout_secs = record.spec.idle_timeout_secs,
                action,
                "idle policy: putting to rest"
            );
            let started = std::time::Instant::now();
            let stopped = if suspend {
                self.swarm.suspend(&name).await
            } else {
                self.swarm.stop(&name, false).await
            };
            let took = started.elapsed();
            let outcome = if stopped.is_ok() {
                "succeeded"
            } else {
                "failed"
            };
            self.operations
                .metrics()
                .observe_operation(metric, outcome, took);
            let mut detail = serde_json::json!({
                "idle_secs": idle_for.whole_seconds(),
                "idle_timeout_secs": record.spec.idle_timeout_secs,
                "duration_ms": u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            });
            match &stopped {
                Ok(_) => {
                    self.operations.metrics().count_idle_stop();
                    pass.stopped.push(name.clone());
                }
                Err(error) => {
                    tracing::warn!(workspace = %name, %error, action, "idle policy failed");
                    detail["error"] = serde_json::Value::String(error.to_string());
                }
            }
            self.record_event(EventRecord {
                id: 0,
                workspace: name,
                owner: record.spec.owner.clone(),
                at: checked_at,
                actor: IDLE_POLICY.to_owned(),
                action: action.to_owned(),
                outcome: outcome.to_owned(),
                detail,
            })
            .await;
        }
        pass
    }

    /// The last background health check of each workspace whose owner `visible`
    /// accepts, by name.
    pub fn last_health(
        &self,
        visible: impl Fn(Option<&str>) -> bool,
    ) -> Vec<(String, HealthCheck)> {
        let mut checks: Vec<(String, HealthCheck)> = self
            .last_health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, check)| visible(check.owner.as_deref()))
            .map(|(name, check)| (name.clone(), check.clone()))
            .collect();
        checks.sort_by(|a, b| a.0.cmp(&b.0));
        checks
    }

    /// Runs the idle policy now and then every `every` until `stop` turns true; a
    /// pass under way then is finished, so a stop it began is not cut short.
    pub fn spawn_idle_policy(
        self: &Arc<Self>,
        every: Duration,
        stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let this = Arc::clone(self);
        spawn_every(every, stop, self.leadership.watch(), move || {
            let this = Arc::clone(&this);
            async move {
                this.background_pass("idle-policy", async || {
                    this.idle_check_once().await;
                })
                .await;
            }
        })
    }

    /// One reconcile pass: finishes or undoes what a crash left (of this process or
    /// another), corrects drift, reports orphans. Operations under way hold their
    /// workspace's lock, so the pass leaves them alone.
    pub async fn reconcile_once(&self) -> ReconcileStatus {
        self.reconcile_pass().await.0
    }

    /// A whole pass, recorded for `/readyz`, with its report. One pass at a time,
    /// across replicas too (its pass lease): a second caller waits for the first to
    /// end (up to a minute, then `Busy`), so the loop and `POST /v1/reconcile` never
    /// double the load on Fly.
    pub(crate) async fn reconcile_pass(
        &self,
    ) -> (
        ReconcileStatus,
        swarm::Result<swarm_core::model::ReconcileReport>,
    ) {
        let _one_at_a_time = self.reconcile_gate.lock().await;
        let pass = match self.leadership.pass("reconcile", MANUAL_PASS_WAIT).await {
            Ok(pass) => pass,
            Err(error) => {
                let error = swarm::Error::from(error);
                let status = ReconcileStatus {
                    finished_at: OffsetDateTime::now_utc(),
                    duration_ms: 0,
                    checked: 0,
                    actions: 0,
                    converged: false,
                    error: Some(error.to_string()),
                };
                return (status, Err(error));
            }
        };
        let done = self.reconcile_held().await;
        if let Err(error) = pass.release().await {
            tracing::warn!(%error, "cannot release the reconcile pass lease");
        }
        done
    }

    /// The loop's pass: its lease is already held ([`Controller::background_pass`]).
    async fn reconcile_unleased(&self) {
        let _one_at_a_time = self.reconcile_gate.lock().await;
        // Recorded for `/readyz` by the pass itself.
        let _ = self.reconcile_held().await;
    }

    async fn reconcile_held(
        &self,
    ) -> (
        ReconcileStatus,
        swarm::Result<swarm_core::model::ReconcileReport>,
    ) {
        let started = std::time::Instant::now();
        let began = OffsetDateTime::now_utc();
        let outcome = self.swarm.reconcile().await;
        if let Ok(report) = &outcome {
            self.record_reconcile_events(&report.actions, began).await;
        }
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

    /// Runs one pass of the loop `name` if this replica leads, under the loop's pass
    /// lease (skipped while another replica's pass holds it). Each pass is logged with
    /// this replica and its start and end, so its runs can be audited across replicas.
    async fn background_pass(&self, name: &'static str, pass: impl AsyncFnOnce()) {
        if !self.leadership.is_leader() {
            return;
        }
        let lease = match self.leadership.pass(name, Duration::ZERO).await {
            Ok(lease) => lease,
            Err(error) => {
                tracing::info!(pass = name, %error, "pass skipped");
                return;
            }
        };
        let started = OffsetDateTime::now_utc();
        pass().await;
        let finished = OffsetDateTime::now_utc();
        tracing::info!(
            pass = name,
            replica = self.leadership.replica(),
            started_ms = unix_ms(started),
            finished_ms = unix_ms(finished),
            "background pass"
        );
        if let Err(error) = lease.release().await {
            tracing::warn!(pass = name, %error, "cannot release the pass lease");
        }
    }

    /// This replica's part in the election of the replica that runs the loops.
    pub fn leadership(&self) -> &Arc<Leadership<S>> {
        &self.leadership
    }

    /// Reconciles now and then every `every` until `stop` turns true; a pass under
    /// way when it does is finished first.
    pub fn spawn_reconciler(
        self: &Arc<Self>,
        every: Duration,
        stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let this = Arc::clone(self);
        spawn_every(every, stop, self.leadership.watch(), move || {
            let this = Arc::clone(&this);
            async move {
                this.background_pass("reconcile", async || {
                    this.reconcile_unleased().await;
                })
                .await;
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
        let background = Background {
            reconcile_every,
            idle_check_every: None,
        };
        self.serve_with(listener, background, shutdown).await
    }

    /// [`Controller::serve`] with every background task: reconcile and the idle
    /// policy ([`Controller::idle_check_once`]) at their intervals.
    pub async fn serve_with(
        self: &Arc<Self>,
        listener: tokio::net::TcpListener,
        background: Background,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<usize> {
        let (stop, stopped) = watch::channel(false);
        let loops = background.reconcile_every.is_some() || background.idle_check_every.is_some();
        if loops {
            // Before the loops start, so a sole replica's first pass runs at once.
            self.leadership.round().await;
        }
        let election = loops.then(|| self.leadership.spawn(stopped.clone()));
        let idle_policy = background
            .idle_check_every
            .map(|every| self.spawn_idle_policy(every, stopped.clone()));
        let reconciler = background
            .reconcile_every
            .map(|every| self.spawn_reconciler(every, stopped));
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
        if let Some(idle_policy) = idle_policy {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, idle_policy).await;
        }
        if let Some(election) = election {
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, election).await;
        }
        served.map(|()| left)
    }
}

/// Runs `pass` now and then every `every` until `stop` turns true, and at once when
/// this replica becomes the leader (a new leader settles what the old one left without
/// waiting a whole interval). A pass under way when `stop` turns is finished first:
/// background work is never cut off halfway.
fn spawn_every<F, Fut>(
    every: Duration,
    mut stop: watch::Receiver<bool>,
    mut leading: watch::Receiver<bool>,
    pass: F,
) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        loop {
            pass().await;
            let led = *leading.borrow_and_update();
            let becomes_leader = async {
                if led {
                    std::future::pending::<()>().await;
                }
                let _ = leading.wait_for(|leads| *leads).await;
            };
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = becomes_leader => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
    })
}

fn unix_ms(at: OffsetDateTime) -> i128 {
    at.unix_timestamp_nanos() / 1_000_000
}
