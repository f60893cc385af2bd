//! [`Swarm`]: the entry type. One async method per operation, each taking the
//! workspace's lock, journaling its steps, and returning a serialisable result.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::json;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::failpoint::crash_point;
use crate::journal::Journal;
use crate::provider::{
    GuestFile, MachineInfo, MachineRequest, Provider, ProviderError, ProviderErrorKind,
    ProviderResult, TAG_VERSION, TAG_WORKSPACE, TAG_WORKSPACE_ID, VolumeRequest,
};
use swarm_core::config::SwarmConfig;
use swarm_core::first_boot;
use swarm_core::model::{
    CreateOptions, CreateStep, Created, Deleted, Health, HealthStatus, IpKind, IpRecord, LogLine,
    MachineState, OneTimePassword, StateChange, ValidatedCreate, WorkspaceRecord, WorkspaceStatus,
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
    store: Arc<S>,
    provider: Arc<P>,
    config: SwarmConfig,
    /// Limits on each owner's workspaces (the controller's `[quotas]`).
    quotas: Quotas,
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

    pub(crate) fn store_arc(&self) -> Arc<S> {
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
    async fn lock_for_create(&self, name: &str) -> Result<WorkspaceLock<S>> {
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

    /// Creates a workspace. See [`Swarm::create_with_progress`].
    pub async fn create(&self, options: &CreateOptions) -> Result<Created> {
        self.create_with_progress(options, &|_| {}).await
    }

    /// Creates a workspace: validate → intent → app → (volume → machine → started ∥
    /// IPs) → record, calling `progress` after each step. A permanent failure
    /// removes what was made; a crash leaves a journal entry `reconcile` resolves.
    pub async fn create_with_progress(
        &self,
        options: &CreateOptions,
        progress: Progress<'_>,
    ) -> Result<Created> {
        let validated = self.validate(options)?;
        let span = tracing::info_span!("create", workspace = %validated.spec.name);
        self.create_validated(validated, progress)
            .instrument(span)
            .await
    }

    async fn create_validated(
        &self,
        validated: ValidatedCreate,
        progress: Progress<'_>,
    ) -> Result<Created> {
        let spec = validated.spec;
        let name = spec.name.as_str().to_owned();
        // A taken name is refused before the lock is written to the store; checked
        // again under the lock, against a create running in another process.
        if let Some(existing) = self.store.workspace_by_name(&name).await? {
            return Err(Error::AlreadyExists {
                name,
                status: existing.status,
            });
        }
        let pool_may_serve = self.pool_may_serve(&spec).await?;
        // On an early return the lock's drop frees it.
        let lock = self.lock_for_create(&name).await?;
        if let Some(existing) = self.store.workspace_by_name(&name).await? {
            return Err(Error::AlreadyExists {
                name,
                status: existing.status,
            });
        }
        let password = password::generate()?;
        // The argon2id hash (tens of ms of CPU and 19 MiB) is only needed for the
        // machine's config. From a slot the machine comes next: hash now, beside the
        // intent. Otherwise it starts once the app is made, beside the volume's create,
        // so it slows neither the intent's commit nor the app's request.
        let hashing = pool_may_serve.then(|| start_hash(&password));
        let record =
            WorkspaceRecord::new(spec, WorkspaceStatus::Creating, OffsetDateTime::now_utc());
        let id = record.id;
        // The plan's notes go out with the intent, so the app's create follows this one
        // write. Not when a pool slot may serve: then the slot brings the app.
        let notes = if pool_may_serve {
            Vec::new()
        } else {
            plan_notes(&record)
        };
        // Record, journal entry and notes in one transaction, with the owner's quota
        // checked in it: a crash leaves all or none.
        let quota = self.quota_guard(record.spec.owner.as_deref());
        let journal = Journal::insert_and_begin(
            Arc::clone(&self.store),
            record,
            OperationKind::Create,
            &owner_id(),
            notes,
            quota.as_ref(),
        )
        .await
        .map_err(|error| match error {
            swarm_store::StoreError::NameTaken(name) => Error::AlreadyExists {
                name,
                status: WorkspaceStatus::Creating,
            },
            other => Error::from(other),
        })?;
        progress(&CreateStep::IntentRecorded { id });

        let outcome = self
            .provision(
                &journal,
                &password,
                hashing,
                pool_may_serve,
                (lock.name(), lock.owner()),
                progress,
            )
            .await;
        let result = match outcome {
            Ok(record) => {
                // Its last step freed the lock.
                lock.released();
                return Ok(Created {
                    workspace: record,
                    password,
                    notes: validated.notes,
                });
            }
            Err((step, error)) => Err(self.compensate(&journal, step, error).await),
        };
        lock.release().await?;
        result
    }

    /// The create steps proper; on failure returns the step that failed.
    ///
    /// The app is created without a lookup first: its create carries the workspace id
    /// as idempotency key, so Fly itself tells our app (created, or handed back on a
    /// repeat) from someone else's (`name_taken`). Once we have made the app, it holds
    /// nothing: volume, machine and IPs are created without a lookup first, and looked
    /// up only after a failure that may have been applied, saving a round trip each.
    async fn provision(
        &self,
        journal: &Journal<S>,
        password: &OneTimePassword,
        mut hashing: Option<Hashing>,
        pool_may_serve: bool,
        lock: (&str, &str),
        progress: Progress<'_>,
    ) -> std::result::Result<WorkspaceRecord, (&'static str, Error)> {
        // Warm pool: a matching slot already holds app, volume and IPs (see pool.rs).
        // Not tried when none matched just before: a slot filled since is left for the
        // next create (this one takes the normal path, which is always correct).
        let slot = if pool_may_serve {
            self.take_pool_slot(journal)
                .await
                .map_err(|error| ("pool slot", error))?
        } else {
            None
        };
        let record = journal.record().await;
        // Either way the app holds nothing of this workspace yet (ours is new; a slot's
        // machine carries no workspace's tags until this create's update): volume, IPs
        // and machine are created (or the slot's adopted) without listing first.
        let app_made = match &slot {
            Some(slot) => {
                progress(&CreateStep::PoolSlot {
                    app: slot.app.clone(),
                    volume: slot.volume_id.clone(),
                    addresses: slot.ips.iter().map(|ip| ip.address.clone()).collect(),
                });
                false
            }
            None => {
                // The plan's notes went out with the intent unless a pool slot was
                // expected (and none was left): then they go now, before any Fly create.
                if pool_may_serve {
                    journal
                        .notes(plan_notes(&record))
                        .await
                        .map_err(|error| ("app", error.into()))?;
                }
                let app = self
                    .create_app(journal, &record)
                    .await
                    .map_err(|error| ("app", error))?;
                progress(&CreateStep::App {
                    name: app,
                    adopted: false,
                });
                hashing.get_or_insert_with(|| start_hash(password));
                true
            }
        };
        // The addresses need only the app: allocated alongside the whole volume →
        // machine → started chain (a slot holds them already). `reconcile` allocates
        // any a crash left missing.
        let addresses = async {
            if app_made {
                let ips = self
                    .ensure_ips(journal, &record)
                    .await
                    .map_err(|error| ("ips", error))?;
                progress(&CreateStep::Ips {
                    addresses: ips.iter().map(|ip| ip.address.clone()).collect(),
                });
            }
            Ok::<_, (&'static str, Error)>(())
        };
        let machine_chain = async {
            let (volume_id, volume_step) = match &slot {
                Some(slot) => (
                    self.grow_slot_volume(&record, slot)
                        .await
                        .map_err(|error| ("volume", error))?,
                    None,
                ),
                None => {
                    // `app_created` is committed while the volume is made (its
                    // `app_creating` note already covers the app).
                    let ((), volume) = tokio::try_join!(
                        async {
                            journal
                                .step(
                                    "app_created",
                                    json!({ "app": record.app_name() }),
                                    Some("after_app"),
                                    |updated| updated.app = Some(record.app_name().to_owned()),
                                )
                                .await
                                .map(drop)
                                .map_err(|error| ("app", error.into()))
                        },
                        async {
                            self.ensure_volume(&record)
                                .await
                                .map_err(|error| ("volume", error))
                        },
                    )?;
                    progress(&CreateStep::Volume {
                        id: volume.0.clone(),
                        adopted: volume.1,
                    });
                    (volume.0.clone(), Some(volume))
                }
            };
            let hashed_password = hashing
                .unwrap_or_else(|| start_hash(password))
                .await
                .map_err(|error| password::PasswordError::Hash(error.to_string()))
                .and_then(|hashed| hashed)
                .map_err(|error| ("machine", Error::from(error)))?;
            // The volume id is committed while the machine is made: its note is in, and
            // a crash before the commit finds the volume by its name.
            let record_volume = async {
                match &volume_step {
                    Some((id, adopted)) => journal
                        .step(
                            "volume_created",
                            json!({ "volume": id, "adopted": adopted }),
                            Some("after_volume"),
                            |record| record.volume_id = Some(id.clone()),
                        )
                        .await
                        .map(drop),
                    None => Ok(()),
                }
            };
            // The `machine_creating` note went out with `app_creating`. A slot's stopped
            // machine is adopted by one update instead (pool.rs).
            let slot_machine = slot.as_ref().and_then(|slot| slot.machine.clone());
            let make_machine = async {
                match &slot_machine {
                    Some(id) => self
                        .adopt_slot_machine(&record, id, &volume_id, &hashed_password)
                        .await
                        .map(|machine| (machine, true)),
                    None => {
                        self.ensure_machine(
                            journal,
                            &record,
                            &volume_id,
                            &hashed_password,
                            app_made,
                        )
                        .await
                    }
                }
            };
            let (volume_recorded, machine) = tokio::join!(record_volume, make_machine);
            volume_recorded.map_err(|error| ("volume", error.into()))?;
            let machine = machine.map_err(|error| ("machine", error))?;
            progress(&CreateStep::Machine {
                id: machine.0.id.clone(),
                adopted: machine.1,
            });
            let machine_id = machine.0.id.clone();
            // Recording the machine overlaps the wait for it to start (a read): the
            // wait takes seconds (image preparation, boot), the write milliseconds.
            let (recorded, started) = tokio::join!(
                journal.step(
                    "machine_created",
                    json!({ "machine": machine_id, "adopted": machine.1 }),
                    Some("after_machine"),
                    |record| {
                        record.machine_id = Some(machine_id.clone());
                    },
                ),
                self.wait_for(
                    &record,
                    record.app_name(),
                    &machine_id,
                    MachineState::Started,
                    self.config.start_timeout,
                ),
            );
            recorded.map_err(|error| ("machine", error.into()))?;
            started.map_err(|error| ("started", error))?;
            Ok(machine)
        };
        let ((), machine) = tokio::try_join!(addresses, machine_chain)?;
        let app_name = record.app_name().to_owned();
        let machine_id = machine.0.id.clone();
        // Create's answer already names the version and the resolved image digest
        // (starting does not change either); ask again only when it did not.
        let (digest, machine_version) =
            if machine.0.version.is_some() && machine.0.image_digest.is_some() {
                (machine.0.image_digest.clone(), machine.0.version.clone())
            } else {
                let machine = self
                    .retry("get machine", || {
                        self.provider.get_machine(&app_name, &machine_id)
                    })
                    .await
                    .ok()
                    .flatten();
                let digest = machine.as_ref().and_then(|m| m.image_digest.clone());
                (digest, machine.and_then(|machine| machine.version))
            };
        // `started`, the operation's end and the lock's release in one write: one
        // fsync before the create returns instead of three.
        let record = journal
            .last_step(
                "started",
                json!({ "machine": machine_id }),
                Some("after_started"),
                "ok",
                lock,
                |record| {
                    record.status = WorkspaceStatus::Running;
                    if let Some(first) = record.image_versions.first_mut() {
                        first.machine_version = machine_version;
                        first.digest = digest;
                    }
                },
            )
            .await
            .map_err(|error| ("started", error.into()))?;
        progress(&CreateStep::Started { machine_id });
        Ok(record)
    }

    /// Whether the existing app named like `record` may be treated as ours: our record
    /// holds it, our journal shows its create succeeded, Fly hands it back to a repeat
    /// of the create under the key our journal noted, or it holds a resource tagged
    /// with our id. An app name belongs to at most one live record: an older record of
    /// the same name (deleted, its create interrupted) never claims the app of a newer
    /// one.
    pub(crate) async fn app_is_ours(&self, record: &WorkspaceRecord, app: &str) -> Result<bool> {
        if let Some(live) = self.store.workspace_by_name(app).await?
            && live.id != record.id
        {
            return Ok(false);
        }
        if record.app.as_deref() == Some(app) {
            return Ok(true);
        }
        let mut create_key = None;
        for operation in self.store.operations_of(record.id).await? {
            for step in self.store.operation_steps(operation.id).await? {
                match step.step.as_str() {
                    "app_created" => return Ok(true),
                    // Fly refused our key: the name was someone else's.
                    "app_taken" => return Ok(false),
                    "app_creating" => match step.detail.get("idempotency_key") {
                        Some(key) => create_key = key.as_str().map(str::to_owned),
                        // Journals older than keyed creates noted `app_creating` only
                        // after a lookup found no app of the name: the app is ours.
                        None => return Ok(true),
                    },
                    _ => {}
                }
            }
        }
        if let Some(key) = create_key {
            // A repeat of our create: Fly answers with the app our create made, or
            // `name_taken` if the name was someone else's (or Fly forgot the key:
            // then only our tags below can tell).
            match self
                .retry("create app", || {
                    self.provider.create_app(app, &record.spec.org, &key)
                })
                .await
            {
                Ok(_) => return Ok(true),
                Err(error) if error.kind == ProviderErrorKind::NameTaken => {}
                Err(error) => return Err(self.provider_error(error, record)),
            }
        }
        let id = record.id.to_string();
        let machines = self
            .retry("list machines", || {
                self.provider
                    .list_machines(app, Some((TAG_WORKSPACE_ID, &id)))
            })
            .await
            .map_err(|error| self.provider_error(error, record))?;
        if !machines.is_empty() {
            return Ok(true);
        }
        let volumes = self
            .retry("list volumes", || self.provider.list_volumes(app))
            .await
            .map_err(|error| self.provider_error(error, record))?;
        Ok(volumes
            .iter()
            .any(|volume| volume.name == record.volume_name()))
    }

    /// Creates the workspace's app under the workspace id as idempotency key; its
    /// `app_creating` note is already committed. A repeat after an ambiguous failure
    /// gets our app back; `name_taken` means the name is someone else's, and the note
    /// `app_taken` says so before the create is undone (which then leaves that app
    /// alone, see [`Swarm::app_is_ours`]).
    async fn create_app(&self, journal: &Journal<S>, record: &WorkspaceRecord) -> Result<String> {
        let name = record.app_name();
        let key = record.id.to_string();
        let mut attempt = 1;
        loop {
            match self.provider.create_app(name, &record.spec.org, &key).await {
                Ok(app) => {
                    crash_point("create", "after_app_create");
                    return Ok(app.name);
                }
                Err(error) if error.kind == ProviderErrorKind::NameTaken => {
                    // Not in CREATE_POINTS: the name must be someone else's.
                    crash_point("create", "after_app_refused");
                    journal.note("app_taken", json!({ "app": name })).await?;
                    return Err(Error::NameTaken {
                        name: name.to_owned(),
                    });
                }
                Err(error) if self.backoff(attempt, "create app", &error).await => attempt += 1,
                Err(error) => return Err(self.provider_error(error, record)),
            }
        }
    }

    /// Creates the volume (named from the workspace id) in the app just made, whose
    /// note `volume_creating` is journaled; after a failed attempt, adopts the volume
    /// it may have made. Returns (id, adopted); the caller commits `volume_created`.
    async fn ensure_volume(&self, record: &WorkspaceRecord) -> Result<(String, bool)> {
        let app = record.app_name();
        let volume_name = record.volume_name();
        let request = VolumeRequest {
            name: volume_name.clone(),
            region: record.spec.region.clone(),
            size_gb: record.spec.storage_gb,
            source: None,
        };
        let mut sent = false;
        let mut attempt = 1;
        loop {
            let volumes = if !sent {
                Vec::new()
            } else {
                match self.provider.list_volumes(app).await {
                    Ok(volumes) => volumes,
                    Err(error) if self.backoff(attempt, "list volumes", &error).await => {
                        attempt += 1;
                        continue;
                    }
                    Err(error) => return Err(self.provider_error(error, record)),
                }
            };
            let mut ours: Vec<_> = volumes
                .into_iter()
                .filter(|v| v.name == volume_name && v.is_live())
                .collect();
            if !ours.is_empty() {
                // Keep the first; an ambiguous retry may have made a twin.
                let keep = ours.remove(0);
                for twin in ours {
                    tracing::warn!(volume = %twin.id, "removing a duplicate volume left by a retried create");
                    let _ = self
                        .retry("delete volume", || {
                            self.provider.delete_volume(app, &twin.id)
                        })
                        .await;
                }
                return Ok((keep.id, sent));
            }
            sent = true;
            match self.provider.create_volume(app, &request).await {
                Ok(volume) => return Ok((volume.id, false)),
                Err(error) if self.backoff(attempt, "create volume", &error).await => attempt += 1,
                Err(error) => return Err(self.provider_error(error, record)),
            }
        }
    }

    /// Allocates the IP mode's addresses in the app just made (the note
    /// `ips_allocating` is journaled), adopting after a failed attempt what it made.
    async fn ensure_ips(
        &self,
        journal: &Journal<S>,
        record: &WorkspaceRecord,
    ) -> Result<Vec<IpRecord>> {
        // Each kind is independent of the others: allocate them concurrently.
        let held = futures::future::try_join_all(
            record
                .spec
                .ip_mode
                .ip_kinds()
                .iter()
                .map(|kind| self.ensure_ip(record, *kind)),
        )
        .await?;
        let detail: Vec<String> = held
            .iter()
            .map(|ip| format!("{} {}", ip.kind.as_str(), ip.address))
            .collect();
        let ips = held.clone();
        journal
            .step(
                "ips_allocated",
                json!({ "ips": detail }),
                Some("after_ips"),
                move |record| record.ips = ips,
            )
            .await?;
        Ok(held)
    }

    /// One address of `kind`: adopted if the app has one, else allocated.
    pub(crate) async fn ensure_ip(
        &self,
        record: &WorkspaceRecord,
        kind: IpKind,
    ) -> Result<IpRecord> {
        let app = record.app_name();
        let mut attempt = 1;
        loop {
            // In an app we just made there is nothing to adopt until an attempt failed.
            let listed = if attempt == 1 {
                Vec::new()
            } else {
                match self.provider.list_ips(app).await {
                    Ok(listed) => listed,
                    Err(error) if self.backoff(attempt, "list ips", &error).await => {
                        attempt += 1;
                        continue;
                    }
                    Err(error) => return Err(self.provider_error(error, record)),
                }
            };
            if let Some(found) = listed.into_iter().find(|ip| ip.kind == kind) {
                return Ok(found);
            }
            match self
                .provider
                .allocate_ip(app, kind, &record.spec.region)
                .await
            {
                Ok(ip) => return Ok(ip),
                Err(error) if self.backoff(attempt, "allocate ip", &error).await => attempt += 1,
                Err(error) => return Err(self.provider_error(error, record)),
            }
        }
    }

    pub(crate) fn machine_request(
        &self,
        record: &WorkspaceRecord,
        volume_id: &str,
        hashed_password: &str,
    ) -> MachineRequest {
        let spec = &record.spec;
        let mut env: BTreeMap<String, String> = spec.env.clone();
        env.insert("HASHED_PASSWORD".to_owned(), hashed_password.to_owned());
        if spec.idle_policy.is_stop() {
            // With `suspend` Fly's proxy puts it to rest; code-server must not exit first.
            env.insert(
                "CODE_SERVER_IDLE_TIMEOUT_SECONDS".to_owned(),
                spec.idle_timeout_secs.to_string(),
            );
        }
        for (key, value) in persistent_env(&self.config.mount_path) {
            env.insert(key.to_owned(), value);
        }
        if let Some(url) = &spec.dotfiles {
            env.insert(first_boot::DOTFILES_ENV.to_owned(), url.clone());
        }
        let files = spec
            .init_script
            .iter()
            .map(|script| GuestFile {
                path: first_boot::INIT_SCRIPT_PATH.to_owned(),
                contents: script.as_bytes().to_vec(),
                mode: 0o644,
            })
            .collect();
        let mut metadata = spec.metadata.clone();
        metadata.insert(TAG_WORKSPACE_ID.to_owned(), record.id.to_string());
        metadata.insert(TAG_WORKSPACE.to_owned(), spec.name.as_str().to_owned());
        metadata.insert(TAG_VERSION.to_owned(), env!("CARGO_PKG_VERSION").to_owned());
        MachineRequest {
            name: machine_name(record),
            region: spec.region.clone(),
            image: spec.image.clone(),
            guest: spec.guest,
            env,
            volume_id: volume_id.to_owned(),
            mount_path: self.config.mount_path.clone(),
            metadata,
            files,
            idle_policy: spec.idle_policy,
        }
    }

    /// Creates the machine (tagged with the workspace id) in an app that holds none of
    /// this workspace's; after a failed attempt, adopts the machine it may have made.
    /// With `noted`, its `machine_creating` note is already journaled. The caller
    /// records `machine_created`.
    async fn ensure_machine(
        &self,
        journal: &Journal<S>,
        record: &WorkspaceRecord,
        volume_id: &str,
        hashed_password: &str,
        noted: bool,
    ) -> Result<(MachineInfo, bool)> {
        let app = record.app_name();
        let id = record.id.to_string();
        let request = self.machine_request(record, volume_id, hashed_password);
        let mut sent = false;
        let mut attempt = 1;
        let mut claim_deadline = None;
        loop {
            let machines = if !sent {
                Vec::new()
            } else {
                match self
                    .provider
                    .list_machines(app, Some((TAG_WORKSPACE_ID, &id)))
                    .await
                {
                    Ok(machines) => machines,
                    Err(error) if self.backoff(attempt, "list machines", &error).await => {
                        attempt += 1;
                        continue;
                    }
                    Err(error) => return Err(self.provider_error(error, record)),
                }
            };
            let mut live: Vec<_> = machines
                .into_iter()
                .filter(|m| !matches!(m.state, MachineState::Destroying | MachineState::Destroyed))
                .collect();
            if !live.is_empty() {
                let keep = live.remove(0);
                for twin in live {
                    tracing::warn!(machine = %twin.id, "destroying a duplicate machine left by a retried create");
                    let _ = self
                        .retry("destroy machine", || {
                            self.provider.destroy_machine(app, &twin.id)
                        })
                        .await;
                }
                return Ok((keep, sent));
            }
            if !sent {
                if !noted {
                    journal
                        .note("machine_creating", json!({ "name": request.name }))
                        .await?;
                }
                sent = true;
            }
            match self.provider.create_machine(app, &request).await {
                Ok(machine) => return Ok((machine, false)),
                // "volume already claimed": Fly can hold a volume's claim a moment after
                // its machine was destroyed (REFERENCE S10), as a pool slot's volume
                // right after its warm-up. Refused, so nothing was made: ask again.
                Err(error)
                    if error.status == Some(412)
                        && *claim_deadline
                            .get_or_insert_with(|| Instant::now() + self.config.start_timeout)
                            > Instant::now() =>
                {
                    tokio::time::sleep(self.config.step_backoff).await;
                }
                Err(error) if self.backoff(attempt, "create machine", &error).await => attempt += 1,
                Err(error) => return Err(self.provider_error(error, record)),
            }
        }
    }

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

    /// Undoes a failed create and returns the error to report.
    async fn compensate(&self, journal: &Journal<S>, step: &'static str, error: Error) -> Error {
        let record = journal.record().await;
        tracing::warn!(workspace = %record.name, step, %error, "create failed; removing what was made");
        let _ = journal
            .note(
                "compensating",
                json!({ "step": step, "error": error.to_string() }),
            )
            .await;
        let cleanup = match self.teardown(journal, &record, false).await {
            Ok(removed) => {
                let message = error.to_string();
                let saved = journal
                    .step(
                        "compensated",
                        json!({ "removed": removed }),
                        None,
                        |record| {
                            record.status = WorkspaceStatus::Deleted;
                            record.last_error = Some(message);
                        },
                    )
                    .await;
                match saved {
                    Ok(_) => {
                        let _ = journal.finish("failed; compensated").await;
                        if removed.is_empty() {
                            "nothing was left behind".to_owned()
                        } else {
                            format!("removed what was made ({})", removed.join(", "))
                        }
                    }
                    Err(store) => {
                        format!("cleanup done but not recorded ({store}); run `swarm reconcile`")
                    }
                }
            }
            Err(cleanup_error) => {
                let message = format!("{error}; cleanup failed: {cleanup_error}");
                let _ = journal
                    .step(
                        "compensation_failed",
                        json!({ "error": cleanup_error.to_string() }),
                        None,
                        |record| {
                            record.status = WorkspaceStatus::Failed;
                            record.last_error = Some(message);
                        },
                    )
                    .await;
                format!(
                    "cleanup failed too ({cleanup_error}); run `swarm reconcile` to remove what remains"
                )
            }
        };
        Error::CreateFailed {
            name: record.name.as_str().to_owned(),
            step,
            source: Box::new(error),
            cleanup,
        }
    }

    // ---------------------------------------------------------------- teardown

    /// Removes everything of the workspace on the provider: machine, volume, IPs, app;
    /// then checks the app is gone. Idempotent. Returns what was removed.
    pub(crate) async fn teardown(
        &self,
        journal: &Journal<S>,
        record: &WorkspaceRecord,
        crash_points: bool,
    ) -> Result<Vec<String>> {
        let point = |name: &'static str| if crash_points { Some(name) } else { None };
        let app = record.app_name();
        let mut removed = Vec::new();
        let exists = self
            .retry("get app", || self.provider.get_app(app))
            .await
            .or_else(|error| {
                if error.kind == ProviderErrorKind::NameTaken {
                    Ok(None)
                } else {
                    Err(error)
                }
            })
            .map_err(|error| self.provider_error(error, record))?
            .is_some();
        if !exists || !self.app_is_ours(record, app).await? {
            journal
                .step(
                    "app_deleted",
                    json!({ "app": app, "existed": false }),
                    point("after_app"),
                    |_| {},
                )
                .await?;
            return Ok(removed);
        }
        // Machines: ours by id or tag (an interrupted create may not have recorded it).
        let id = record.id.to_string();
        let mut machines = self
            .retry("list machines", || self.provider.list_machines(app, None))
            .await
            .map_err(|error| self.provider_error(error, record))?;
        machines.retain(|machine| {
            machine.metadata.get(TAG_WORKSPACE_ID) == Some(&id)
                || record.machine_id.as_deref() == Some(&machine.id)
        });
        for machine in machines
            .iter()
            .filter(|machine| machine.state == MachineState::Started)
        {
            self.retry("stop machine", || {
                self.provider.stop_machine(app, &machine.id, false)
            })
            .await
            .map_err(|error| self.provider_error(error, record))?;
            // A slow stop does not block teardown: destroy kills what is left.
            let _ = self
                .wait_for(
                    record,
                    app,
                    &machine.id,
                    MachineState::Stopped,
                    self.config.stop_timeout.min(Duration::from_secs(30)),
                )
                .await;
        }
        journal
            .step("stopped", json!({}), point("after_stop"), |_| {})
            .await?;
        for machine in &machines {
            if machine.state != MachineState::Destroyed {
                self.retry("destroy machine", || {
                    self.provider.destroy_machine(app, &machine.id)
                })
                .await
                .map_err(|error| self.provider_error(error, record))?;
                removed.push(format!("machine {}", machine.id));
            }
        }
        for machine in &machines {
            let _ = self
                .wait_for(
                    record,
                    app,
                    &machine.id,
                    MachineState::Destroyed,
                    self.config.stop_timeout,
                )
                .await;
        }
        journal
            .step(
                "machine_destroyed",
                json!({ "machines": removed }),
                point("after_machine"),
                |_| {},
            )
            .await?;
        // Volumes: retried while still bound to a machine being destroyed.
        let volume_name = record.volume_name();
        let volumes = self
            .retry("list volumes", || self.provider.list_volumes(app))
            .await
            .map_err(|error| self.provider_error(error, record))?;
        for volume in volumes.iter().filter(|volume| volume.is_live()) {
            // Moves and restores name their volumes `<volume_name>_<operation>`.
            if !volume.name.starts_with(&volume_name)
                && record.volume_id.as_deref() != Some(&volume.id)
            {
                continue;
            }
            let deadline = Instant::now() + self.config.stop_timeout;
            loop {
                match self
                    .retry("delete volume", || {
                        self.provider.delete_volume(app, &volume.id)
                    })
                    .await
                {
                    Ok(()) => break,
                    Err(error)
                        if error.kind == ProviderErrorKind::Conflict
                            && Instant::now() < deadline =>
                    {
                        tokio::time::sleep(self.config.step_backoff).await;
                    }
                    Err(error) => return Err(self.provider_error(error, record)),
                }
            }
            removed.push(format!("volume {}", volume.id));
        }
        journal
            .step("volume_deleted", json!({}), point("after_volume"), |_| {})
            .await?;
        let ips = self
            .retry("list ips", || self.provider.list_ips(app))
            .await
            .map_err(|error| self.provider_error(error, record))?;
        for ip in &ips {
            self.retry("release ip", || self.provider.release_ip(app, ip))
                .await
                .map_err(|error| self.provider_error(error, record))?;
            removed.push(format!("ip {}", ip.address));
        }
        journal
            .step("ips_released", json!({}), point("after_ips"), |_| {})
            .await?;
        self.retry("delete app", || self.provider.delete_app(app))
            .await
            .map_err(|error| self.provider_error(error, record))?;
        // Deletion continues in the background on Fly: wait until the app is gone.
        let deadline = Instant::now() + self.config.stop_timeout;
        loop {
            match self.provider.get_app(app).await {
                Ok(None) => break,
                Ok(Some(_)) | Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Ok(Some(_)) => {
                    return Err(Error::Timeout {
                        name: app.to_owned(),
                        waiting_for: "deleted (its app still exists)".to_owned(),
                        after_secs: self.config.stop_timeout.as_secs(),
                    });
                }
                Err(error) => return Err(self.provider_error(error, record)),
            }
        }
        removed.push(format!("app {app}"));
        journal
            .step(
                "app_deleted",
                json!({ "app": app, "existed": true }),
                point("after_app"),
                |_| {},
            )
            .await?;
        Ok(removed)
    }

    // ---------------------------------------------------------------- delete

    /// Deletes the workspace completely (machine, volume, IPs, app) and marks the
    /// record deleted. Repeatable: deleting a deleted workspace reports no change.
    pub async fn delete(&self, name: &str) -> Result<Deleted> {
        let span = tracing::info_span!("delete", workspace = name);
        async {
            let lock = self.lock_settled(name, "delete").await?;
            let Some(mut record) = self.store.workspace_by_name(name).await? else {
                let deleted = self
                    .store
                    .list_workspaces(true)
                    .await?
                    .into_iter()
                    .rev()
                    .find(|record| record.name.as_str() == name);
                lock.release().await?;
                return match deleted {
                    Some(record) => Ok(Deleted {
                        name: name.to_owned(),
                        id: record.id,
                        changed: false,
                        removed: Vec::new(),
                    }),
                    None => Err(Error::NotFound {
                        name: name.to_owned(),
                    }),
                };
            };
            record.status = WorkspaceStatus::Deleting;
            let journal = Journal::begin(
                Arc::clone(&self.store),
                record.clone(),
                OperationKind::Delete,
                &owner_id(),
            )
            .await?;
            let removed = self.teardown(&journal, &record, true).await?;
            journal
                .step("deleted", json!({ "removed": removed }), None, |record| {
                    record.status = WorkspaceStatus::Deleted
                })
                .await?;
            journal.finish("ok").await?;
            lock.release().await?;
            Ok(Deleted {
                name: name.to_owned(),
                id: record.id,
                changed: true,
                removed,
            })
        }
        .instrument(span)
        .await
    }

    // ---------------------------------------------------------------- start / stop

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

    /// Starts a stopped workspace and waits until its machine runs.
    pub async fn start(&self, name: &str) -> Result<StateChange> {
        self.change_state(name, OperationKind::Start, false)
            .instrument(tracing::info_span!("start", workspace = name))
            .await
    }

    /// Stops a workspace (`force`: SIGKILL) and waits until its machine is stopped.
    /// The machine and volume are kept; `start` reuses them.
    pub async fn stop(&self, name: &str, force: bool) -> Result<StateChange> {
        self.change_state(name, OperationKind::Stop, force)
            .instrument(tracing::info_span!("stop", workspace = name))
            .await
    }

    async fn change_state(
        &self,
        name: &str,
        kind: OperationKind,
        force: bool,
    ) -> Result<StateChange> {
        // An unknown name is refused before the lock is written to the store.
        self.show(name).await?;
        let lock = self.lock_settled(name, kind.as_str()).await?;
        let record = self.show(name).await?;
        let (app, machine_id) = self.require_machine(&record, kind.as_str())?;
        let previous = record.status;
        let (target, transient, final_status) = match kind {
            OperationKind::Start => (
                MachineState::Started,
                WorkspaceStatus::Starting,
                WorkspaceStatus::Running,
            ),
            _ => (
                MachineState::Stopped,
                WorkspaceStatus::Stopping,
                WorkspaceStatus::Stopped,
            ),
        };
        let current = self
            .retry("get machine", || {
                self.provider.get_machine(&app, &machine_id)
            })
            .await
            .map_err(|error| self.provider_error(error, &record))?;
        let Some(current) = current else {
            return Err(Error::InvalidState {
                name: name.to_owned(),
                status: record.status,
                operation: kind.as_str(),
                hint: format!("its machine {machine_id} is gone from Fly; run `swarm reconcile`"),
            });
        };
        if current.state == target {
            let mut record = record;
            let changed = record.status != final_status;
            if changed {
                record.status = final_status;
                record.updated_at = OffsetDateTime::now_utc();
                self.store.update_workspace(&record).await?;
            }
            lock.release().await?;
            return Ok(StateChange {
                workspace: record,
                previous,
                changed: false,
            });
        }
        let mut in_flight = record.clone();
        in_flight.status = transient;
        let journal = Journal::begin(Arc::clone(&self.store), in_flight, kind, &owner_id()).await?;
        let deadline = Instant::now() + self.config.start_timeout;
        loop {
            let call = match kind {
                OperationKind::Start => {
                    self.retry("start machine", || {
                        self.provider.start_machine(&app, &machine_id)
                    })
                    .await
                }
                _ => {
                    self.retry("stop machine", || {
                        self.provider.stop_machine(&app, &machine_id, force)
                    })
                    .await
                }
            };
            match call {
                Ok(()) => break,
                // e.g. 412 "machine still active, refusing to start" right after a stop.
                Err(error)
                    if error.kind == ProviderErrorKind::Conflict && Instant::now() < deadline =>
                {
                    tokio::time::sleep(self.config.step_backoff).await;
                }
                Err(error) => return Err(self.provider_error(error, &record)),
            }
        }
        let timeout = match kind {
            OperationKind::Start => self.config.start_timeout,
            _ => self.config.stop_timeout,
        };
        self.wait_for(&record, &app, &machine_id, target, timeout)
            .await?;
        let record = journal
            .step("settled", json!({}), None, |record| {
                record.status = final_status
            })
            .await?;
        journal.finish("ok").await?;
        lock.release().await?;
        Ok(StateChange {
            workspace: record,
            previous,
            changed: true,
        })
    }

    // ---------------------------------------------------------------- health / logs

    /// Machine state plus an HTTP probe of code-server's `/healthz`. A stopped
    /// workspace is not probed (the request would wake it through autostart).
    pub async fn health(&self, name: &str) -> Result<Health> {
        let record = self.show(name).await?;
        let (Some(app), Some(machine_id)) = (&record.app, &record.machine_id) else {
            return Ok(Health {
                name: name.to_owned(),
                status: HealthStatus::Unhealthy,
                machine_state: None,
                uptime_secs: None,
                idle_since: None,
                probe: None,
                summary: format!("workspace is {} and has no machine", record.status),
            });
        };
        let machine = self
            .retry("get machine", || self.provider.get_machine(app, machine_id))
            .await
            .map_err(|error| self.provider_error(error, &record))?;
        let Some(machine) = machine else {
            return Ok(Health {
                name: name.to_owned(),
                status: HealthStatus::Unhealthy,
                machine_state: None,
                uptime_secs: None,
                idle_since: None,
                probe: None,
                summary: format!("machine {machine_id} is missing on Fly; run `swarm reconcile`"),
            });
        };
        let now = OffsetDateTime::now_utc();
        let started_at = machine.updated_at.as_deref().and_then(|at| {
            OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
        });
        let uptime_secs = (machine.state == MachineState::Started)
            .then(|| started_at.map(|at| u64::try_from((now - at).whole_seconds()).unwrap_or(0)))
            .flatten();
        let probe = if machine.state == MachineState::Started {
            Some(
                self.provider
                    .probe(app)
                    .instrument(tracing::debug_span!("swarm_step", step = "health probe"))
                    .await,
            )
        } else {
            None
        };
        let answered = probe
            .as_ref()
            .is_some_and(|probe| probe.http_status == Some(200));
        let status = match machine.state {
            MachineState::Started if answered => HealthStatus::Healthy,
            // Booting code-server: give it two minutes before calling it unhealthy.
            MachineState::Started if uptime_secs.is_none_or(|secs| secs < 120) => {
                HealthStatus::Recovering
            }
            MachineState::Created
            | MachineState::Starting
            | MachineState::Restarting
            | MachineState::Replacing
            | MachineState::Updating => HealthStatus::Recovering,
            _ => HealthStatus::Unhealthy,
        };
        let idle_since = probe.as_ref().and_then(|probe| {
            (probe.status.as_deref() == Some("expired")).then(|| match probe.last_heartbeat_ms {
                Some(ms) if ms > 0 => {
                    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
                }
                _ => started_at,
            })?
        });
        let probe_text = match &probe {
            None => "not probed (machine not started)".to_owned(),
            Some(probe) => match (&probe.http_status, &probe.status, &probe.error) {
                // code-server says "expired" for "up, but nobody used it lately".
                (Some(200), Some(status), _) if status == "expired" => {
                    "code-server up, idle".to_owned()
                }
                (Some(200), Some(status), _) => format!("code-server {status}"),
                (Some(code), _, _) => format!("code-server answered HTTP {code}"),
                (None, _, Some(error)) => format!("code-server unreachable: {error}"),
                _ => "code-server unreachable".to_owned(),
            },
        };
        let summary = match uptime_secs {
            Some(secs) => format!("machine {} for {secs} s; {probe_text}", machine.state),
            None => format!("machine {}; {probe_text}", machine.state),
        };
        Ok(Health {
            name: name.to_owned(),
            status,
            machine_state: Some(machine.state),
            uptime_secs,
            idle_since,
            probe,
            summary,
        })
    }

    /// The last `limit` log lines.
    pub async fn logs(&self, name: &str, limit: usize) -> Result<Vec<LogLine>> {
        let record = self.show(name).await?;
        let app = record.app_name().to_owned();
        self.retry("logs", || self.provider.logs(&app, limit))
            .await
            .map_err(|error| self.provider_error(error, &record))
    }

    /// New log lines as they arrive, until dropped.
    pub async fn follow_logs(&self, name: &str) -> Result<BoxStream<'static, Result<LogLine>>> {
        let record = self.show(name).await?;
        let app = record.app_name().to_owned();
        let regions = self.config.regions.clone();
        let region = record.spec.region.clone();
        Ok(self
            .provider
            .follow_logs(&app)
            .map(move |line| {
                line.map_err(|error| Error::from_provider(error, &app, &region, &regions))
            })
            .boxed())
    }

    /// Password handling is exposed for callers that verify logins (tests, the controller).
    pub fn verify_password(password: &str, hash: &str) -> bool {
        password::verify(password, hash)
    }
}

/// The notes of a normal create's whole plan, committed before the app's create so no
/// later Fly create waits on a note of its own. `app_creating` carries the idempotency
/// key the app is created under: what later proves an app of this name ours.
fn plan_notes(record: &WorkspaceRecord) -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (
            "app_creating",
            json!({ "app": record.app_name(), "idempotency_key": record.id.to_string() }),
        ),
        ("volume_creating", json!({ "name": record.volume_name() })),
        ("ips_allocating", json!({ "mode": record.spec.ip_mode })),
        ("machine_creating", json!({ "name": machine_name(record) })),
    ]
}

/// A password's argon2id hash, computed on a blocking thread.
type Hashing = tokio::task::JoinHandle<std::result::Result<String, password::PasswordError>>;

fn start_hash(password: &OneTimePassword) -> Hashing {
    let password = password.clone();
    let span = tracing::debug_span!("swarm_step", step = "argon2id hash");
    tokio::task::spawn_blocking(move || span.in_scope(|| password::hash(&password)))
}

/// The machine's name: the workspace's, suffixed.
fn machine_name(record: &WorkspaceRecord) -> String {
    format!("{}-ws", record.spec.name)
}
