//! [`Swarm`]: the entry type. One async method per operation, each taking the
//! workspace's lock, journaling its steps, and returning a serialisable result.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::error::{Error, Result};
use crate::provider::{Provider, ProviderError, ProviderErrorKind, ProviderResult};
use swarm_core::config::SwarmConfig;
use swarm_core::model::{
    CreateOptions, CreateStep, MachineState, ValidatedCreate, WorkspaceRecord, WorkspaceStatus,
    WorkspaceSummary,
};
use swarm_core::password;
use swarm_core::quota::{QuotaGuard, Quotas};
use swarm_core::validate::validate_create;
use swarm_store::lock::{LockError, WorkspaceLock};
use swarm_store::{OperationKind, Store};

/// Receives create's steps as they complete.
pub type Progress<'a> = &'a (dyn Fn(&CreateStep) + Send + Sync);

/// The workspace manager: a store, a provider and the configuration.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use swarm::{CreateOptions, FlyProvider, SqliteStore, Swarm, SwarmConfig};
///
/// let config = SwarmConfig::default();
/// let client = fly_api::FlyClient::from_env()?;
/// let provider = FlyProvider::new(client, &config);
/// let store = SqliteStore::open("/tmp/swarm.db", &config.fly_endpoint).await?;
/// let swarm = Swarm::new(store, provider, config);
/// let created = swarm
///     .create(&CreateOptions { name: "alice".into(), ..Default::default() })
///     .await?;
/// println!("{} password: {}", created.workspace.url, created.password.expose());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Swarm<S: Store, P: Provider> {
    pub(crate) store: Arc<S>,
    pub(crate) provider: Arc<P>,
    pub(crate) config: SwarmConfig,
    /// Limits on each owner's workspaces (the controller's `[quotas]`).
    pub(crate) quotas: Quotas,
}

impl<S: Store, P: Provider> Clone for Swarm<S, P> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            provider: Arc::clone(&self.provider),
            config: self.config.clone(),
            quotas: self.quotas,
        }
    }
}

/// Code-server keeps settings and extensions under these, on the volume.
pub(crate) fn persistent_env(mount_path: &str) -> [(&'static str, String); 2] {
    [
        ("XDG_DATA_HOME", format!("{mount_path}/.local/share")),
        ("XDG_CONFIG_HOME", format!("{mount_path}/.config")),
    ]
}

pub(crate) fn owner_id() -> String {
    format!("pid {}", std::process::id())
}

impl<S: Store, P: Provider> Swarm<S, P> {
    pub fn new(store: S, provider: P, config: SwarmConfig) -> Self {
        Self {
            store: Arc::new(store),
            provider: Arc::new(provider),
            config,
            quotas: Quotas::default(),
        }
    }

    /// Holds every owner of a workspace to `quotas`: creates and resizes past one are
    /// refused, checked in the store transaction that records them.
    #[must_use]
    pub fn with_quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = quotas;
        self
    }

    pub fn quotas(&self) -> &Quotas {
        &self.quotas
    }

    /// The quota guard for a workspace of `owner` (none without an owner or limits).
    pub(crate) fn quota_guard(&self, owner: Option<&str>) -> Option<QuotaGuard> {
        owner
            .filter(|_| !self.quotas.is_unlimited())
            .map(|user| QuotaGuard {
                user: user.to_owned(),
                quotas: self.quotas,
            })
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn store_arc(&self) -> Arc<S> {
        Arc::clone(&self.store)
    }

    pub fn provider(&self) -> &P {
        &self.provider
    }

    pub fn config(&self) -> &SwarmConfig {
        &self.config
    }

    /// Validates create input without changing anything.
    pub fn validate(&self, options: &CreateOptions) -> Result<ValidatedCreate> {
        validate_create(options, &self.config).map_err(Error::Invalid)
    }

    /// All live workspaces, oldest first.
    pub async fn list(&self) -> Result<Vec<WorkspaceRecord>> {
        Ok(self.store.list_workspaces(false).await?)
    }

    /// [`Swarm::list`] as the JSON document `swarm list --json` prints (pretty, with a
    /// final newline), without decoding records the store holds in the current format.
    pub async fn list_json(&self) -> Result<Vec<u8>> {
        Ok(self.store.list_workspaces_json(false).await?)
    }

    /// What the list shows of every live workspace, oldest first; much cheaper than
    /// [`Swarm::list`] with thousands of workspaces.
    pub async fn list_summaries(&self) -> Result<Vec<WorkspaceSummary>> {
        Ok(self.store.list_summaries(false).await?)
    }

    /// One workspace's record.
    pub async fn show(&self, name: &str) -> Result<WorkspaceRecord> {
        self.store
            .workspace_by_name(name)
            .await?
            .ok_or_else(|| Error::NotFound {
                name: name.to_owned(),
            })
    }

    pub(crate) async fn lock(&self, name: &str, operation: &str) -> Result<WorkspaceLock<S>> {
        Ok(WorkspaceLock::acquire(
            Arc::clone(&self.store),
            name,
            operation,
            self.config.lock_ttl,
            self.config.lock_wait,
        )
        .await?)
    }

    /// The lock of a create: a name another create holds is taken, said at once
    /// (that create may take seconds); any other holder is waited for as usual.
    pub(crate) async fn lock_for_create(&self, name: &str) -> Result<WorkspaceLock<S>> {
        let operation = OperationKind::Create.as_str();
        let store = Arc::clone(&self.store);
        let ttl = self.config.lock_ttl;
        let acquired = WorkspaceLock::acquire(store, name, operation, ttl, Duration::ZERO)
            .instrument(tracing::debug_span!("swarm_step", step = "store: lock"))
            .await;
        match acquired {
            Ok(lock) => Ok(lock),
            Err(LockError::Busy { holder, .. }) if holder.operation == operation => {
                Err(Error::AlreadyExists {
                    name: name.to_owned(),
                    status: WorkspaceStatus::Creating,
                })
            }
            Err(LockError::Busy { .. }) => self.lock(name, operation).await,
            Err(error) => Err(error.into()),
        }
    }

    pub(crate) fn provider_error(&self, error: ProviderError, record: &WorkspaceRecord) -> Error {
        Error::from_provider(
            error,
            record.name.as_str(),
            &record.spec.region,
            &self.config.regions,
        )
    }

    /// Runs an idempotent provider call, retrying retryable failures with backoff.
    pub(crate) async fn retry<T, F, Fut>(&self, what: &str, mut call: F) -> ProviderResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ProviderResult<T>>,
    {
        let mut delay = self.config.step_backoff;
        let attempts = self.config.step_attempts.max(1);
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(error) if error.is_retryable() && attempt < attempts => {
                    tracing::warn!(call = what, attempt, %error, "retrying after a retryable failure");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    pub(crate) async fn backoff(&self, attempt: u32, what: &str, error: &ProviderError) -> bool {
        if !error.is_retryable() || attempt >= self.config.step_attempts.max(1) {
            return false;
        }
        tracing::warn!(call = what, attempt, %error, "retrying after a retryable failure");
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1)).min(16);
        tokio::time::sleep((self.config.step_backoff * factor).min(Duration::from_secs(5))).await;
        true
    }

    // ---------------------------------------------------------------- create

    /// Waits for a machine state, turning transient failures into retries and the
    /// deadline into [`Error::Timeout`].
    pub(crate) async fn wait_for(
        &self,
        record: &WorkspaceRecord,
        app: &str,
        machine_id: &str,
        state: MachineState,
        timeout: Duration,
    ) -> Result<()> {
        let waiting = (record.name.as_str(), state.as_str().to_owned());
        self.wait_machine_state(app, machine_id, state, timeout, waiting, |error| {
            self.provider_error(error, record)
        })
        .await
    }

    /// [`Swarm::wait_for`] for any machine: `waiting` names, for the timeout error,
    /// what waited and for what; `fail` turns a permanent provider error into ours.
    pub(crate) async fn wait_machine_state(
        &self,
        app: &str,
        machine_id: &str,
        state: MachineState,
        timeout: Duration,
        waiting: (&str, String),
        fail: impl Fn(ProviderError) -> Error,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut attempt = 1;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout {
                    name: waiting.0.to_owned(),
                    waiting_for: waiting.1,
                    after_secs: timeout.as_secs(),
                });
            }
            match self
                .provider
                .wait_machine(app, machine_id, state.clone(), left)
                .await
            {
                Ok(()) => return Ok(()),
                Err(error) if error.kind == ProviderErrorKind::Timeout => {}
                Err(error) if error.is_retryable() && attempt < self.config.step_attempts * 4 => {
                    tracing::warn!(%error, "waiting for machine: retrying");
                    tokio::time::sleep(self.config.step_backoff).await;
                    attempt += 1;
                }
                Err(error) => return Err(fail(error)),
            }
        }
    }

    pub(crate) fn require_machine(
        &self,
        record: &WorkspaceRecord,
        operation: &'static str,
    ) -> Result<(String, String)> {
        let blocked = matches!(
            record.status,
            WorkspaceStatus::Creating | WorkspaceStatus::Deleting | WorkspaceStatus::Deleted
        );
        match (&record.app, &record.machine_id) {
            (Some(app), Some(machine)) if !blocked => Ok((app.clone(), machine.clone())),
            _ => Err(Error::InvalidState {
                name: record.name.as_str().to_owned(),
                status: record.status,
                operation,
                hint: "run `swarm reconcile` to finish or undo the interrupted operation"
                    .to_owned(),
            }),
        }
    }

    pub(crate) fn require_volume(
        &self,
        record: &WorkspaceRecord,
        operation: &'static str,
    ) -> Result<String> {
        record.volume_id.clone().ok_or_else(|| Error::InvalidState {
            name: record.name.as_str().to_owned(),
            status: record.status,
            operation,
            hint: "the record holds no volume; run `swarm reconcile`".to_owned(),
        })
    }

    /// Password handling is exposed for callers that verify logins (tests, the controller).
    pub fn verify_password(password: &str, hash: &str) -> bool {
        password::verify(password, hash)
    }
}

/// The machine's name: the workspace's, suffixed.
pub(crate) fn machine_name(record: &WorkspaceRecord) -> String {
    format!("{}-ws", record.spec.name)
}
