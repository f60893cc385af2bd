//! Long operations (create, delete, start, stop) run in the background: the caller
//! gets an operation resource at once, then polls it or waits on it. The journal in
//! the store is what makes them safe; this registry only reports them.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::{broadcast, watch};

use super::api_error::ErrorBody;
use super::metrics::Metrics;

/// Finished operations kept for polling; older ones are forgotten first.
const KEEP_FINISHED: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationStatus {
    Running,
    Succeeded,
    Failed,
}

/// What `GET /v1/operations/{id}` returns.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OperationView {
    pub id: String,
    pub kind: &'static str,
    pub workspace: String,
    /// Who asked for it.
    pub user: String,
    pub status: OperationStatus,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<OffsetDateTime>,
    /// The command's result, as `swarm <command> --json` prints it.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    pub error: Option<ErrorBody>,
    /// The owner of the workspace, for visibility checks.
    #[serde(skip)]
    pub owner: Option<String>,
}

#[derive(Debug)]
struct Entry {
    view: OperationView,
    done: watch::Receiver<bool>,
}

/// The operations of this server process.
#[derive(Debug)]
pub struct Operations {
    entries: Mutex<HashMap<String, Entry>>,
    finished_order: Mutex<VecDeque<String>>,
    metrics: Metrics,
    /// The name of each workspace an operation began or ended on (or an automatic
    /// action changed), for live pages; nobody listening is fine.
    changes: broadcast::Sender<String>,
}

impl Default for Operations {
    fn default() -> Self {
        Self {
            entries: Mutex::default(),
            finished_order: Mutex::default(),
            metrics: Metrics::default(),
            changes: broadcast::channel(CHANGES_BUFFERED).0,
        }
    }
}

/// Changes a slow listener may fall behind by before it is told to read everything again.
const CHANGES_BUFFERED: usize = 1_024;

impl Operations {
    /// A new operation id, unique across restarts too: a client polling an old id
    /// never gets a new operation.
    pub fn new_id() -> String {
        format!("op_{}", uuid::Uuid::now_v7().simple())
    }

    /// Starts `work` in the background and returns its resource, `running`.
    pub fn start<F>(
        self: &Arc<Self>,
        kind: &'static str,
        workspace: &str,
        user: &str,
        owner: Option<String>,
        work: F,
    ) -> OperationView
    where
        F: Future<Output = Result<Value, ErrorBody>> + Send + 'static,
    {
        self.start_as(Self::new_id(), kind, workspace, user, owner, work)
    }

    /// [`Operations::start`] under an id from [`Operations::new_id`], for work that
    /// needs to know its own id.
    pub fn start_as<F>(
        self: &Arc<Self>,
        id: String,
        kind: &'static str,
        workspace: &str,
        user: &str,
        owner: Option<String>,
        work: F,
    ) -> OperationView
    where
        F: Future<Output = Result<Value, ErrorBody>> + Send + 'static,
    {
        let (done_tx, done_rx) = watch::channel(false);
        let view = OperationView {
            id: id.clone(),
            kind,
            workspace: workspace.to_owned(),
            user: user.to_owned(),
            status: OperationStatus::Running,
            started_at: OffsetDateTime::now_utc(),
            finished_at: None,
            result: None,
            error: None,
            owner,
        };
        self.lock().insert(
            id.clone(),
            Entry {
                view: view.clone(),
                done: done_rx,
            },
        );
        self.changed(workspace);
        let this = Arc::clone(self);
        let workspace = workspace.to_owned();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let outcome = work.await;
            let label = if outcome.is_ok() {
                "succeeded"
            } else {
                "failed"
            };
            this.metrics
                .observe_operation(kind, label, started.elapsed());
            this.finish(&id, outcome);
            let _ = done_tx.send(true);
            this.changed(&workspace);
        });
        view
    }

    fn finish(&self, id: &str, outcome: Result<Value, ErrorBody>) {
        if let Some(entry) = self.lock().get_mut(id) {
            let view = &mut entry.view;
            view.finished_at = Some(OffsetDateTime::now_utc());
            match outcome {
                Ok(result) => {
                    view.status = OperationStatus::Succeeded;
                    view.result = Some(result);
                }
                Err(error) => {
                    view.status = OperationStatus::Failed;
                    view.error = Some(error);
                }
            }
        }
        let mut order = self
            .finished_order
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        order.push_back(id.to_owned());
        while order.len() > KEEP_FINISHED {
            if let Some(old) = order.pop_front() {
                self.lock().remove(&old);
            }
        }
    }

    /// The operation, after waiting up to `wait` for it to finish. A one-time
    /// password in its result is handed out once: later reads show it as `null`.
    pub async fn get(&self, id: &str, wait: Duration) -> Option<OperationView> {
        let mut done = self.lock().get(id)?.done.clone();
        if !wait.is_zero() {
            let _ = tokio::time::timeout(wait, done.wait_for(|finished| *finished)).await;
        }
        let mut entries = self.lock();
        let entry = entries.get_mut(id)?;
        let view = entry.view.clone();
        if let Some(Value::Object(result)) = entry.view.result.as_mut()
            && result.get("password").is_some_and(Value::is_string)
        {
            result.insert("password".to_owned(), Value::Null);
        }
        Some(view)
    }

    /// The workspace owner and the requesting user of an operation, for visibility.
    pub fn parties(&self, id: &str) -> Option<(Option<String>, String)> {
        self.lock()
            .get(id)
            .map(|entry| (entry.view.owner.clone(), entry.view.user.clone()))
    }

    /// The workspace of operation `id` and whether it still runs, after waiting up to
    /// `wait` for its end; unlike [`Operations::get`] it leaves a one-time password
    /// in the result for the caller who reads it.
    pub async fn peek(
        &self,
        id: &str,
        wait: Duration,
    ) -> Option<(String, OperationStatus, OffsetDateTime)> {
        let mut done = self.lock().get(id)?.done.clone();
        if !wait.is_zero() {
            let _ = tokio::time::timeout(wait, done.wait_for(|finished| *finished)).await;
        }
        self.lock().get(id).map(|entry| {
            let view = &entry.view;
            (view.workspace.clone(), view.status, view.started_at)
        })
    }

    /// Says that `workspace` changed (an operation began or ended on it).
    pub fn changed(&self, workspace: &str) {
        let _ = self.changes.send(workspace.to_owned());
    }

    /// The names of workspaces as they change, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    /// Whether `caller` may see operation `id`: the workspace's owner (or an admin)
    /// and whoever asked for it.
    pub fn visible_to(&self, id: &str, caller: &super::Caller) -> bool {
        self.parties(id)
            .is_some_and(|(owner, user)| caller.may_use(owner.as_deref()) || user == caller.user)
    }

    /// Durations of finished operations, and the controller's other counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Number of operations still running.
    pub fn running(&self) -> usize {
        self.lock()
            .values()
            .filter(|entry| entry.view.status == OperationStatus::Running)
            .count()
    }

    /// Waits until no operation runs, or `timeout` passes; returns how many still run.
    pub async fn drain(&self, timeout: Duration) -> usize {
        let receivers: Vec<watch::Receiver<bool>> = self
            .lock()
            .values()
            .filter(|entry| entry.view.status == OperationStatus::Running)
            .map(|entry| entry.done.clone())
            .collect();
        let all = futures::future::join_all(receivers.into_iter().map(|mut done| async move {
            let _ = done.wait_for(|finished| *finished).await;
        }));
        let _ = tokio::time::timeout(timeout, all).await;
        self.running()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
