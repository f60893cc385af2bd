//! Bringing the store and Fly back into agreement: finish or undo interrupted
//! operations, fix drifted status, report orphans that carry our tags.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::StreamExt as _;
use serde_json::json;

use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::provider::{MachineInfo, Provider, ProviderErrorKind, TAG_WORKSPACE_ID};
use crate::swarm::Swarm;
use swarm_core::model::{
    MachineState, ReconcileAction, ReconcileReport, WorkspaceRecord, WorkspaceStatus,
};
use swarm_store::lock::{LockError, WorkspaceLock};
use swarm_store::{Operation, OperationKind, Store};

/// Workspaces (drift checks) or apps (the orphan scan) a reconcile pass reads at once.
const READS_AT_ONCE: usize = 8;

impl<S: Store, P: Provider> Swarm<S, P> {
    /// Compares every record with Fly and reports each change. Level-triggered and
    /// idempotent: running it twice changes nothing the second time.
    pub async fn reconcile(&self) -> Result<ReconcileReport> {
        self.reconcile_scoped(None).await
    }

    /// The same pass over `owner`'s workspaces only (a controller user's own
    /// reconcile). The pool and the orphan scan belong to no user, so they are left
    /// out, and `pool_slots` is 0.
    pub async fn reconcile_owned_by(&self, owner: &str) -> Result<ReconcileReport> {
        self.reconcile_scoped(Some(owner)).await
    }

    async fn reconcile_scoped(&self, owner: Option<&str>) -> Result<ReconcileReport> {
        let owns = |record: &WorkspaceRecord| {
            owner.is_none_or(|o| record.spec.owner.as_deref() == Some(o))
        };
        // Interrupted operations are found by workspace id; a user's are those of the
        // records they own (a create in progress has its record already).
        let owned_ids: Option<BTreeSet<_>> = match owner {
            None => None,
            Some(_) => Some(
                self.store()
                    .list_workspaces(false)
                    .await?
                    .iter()
                    .filter(|record| owns(record))
                    .map(|record| record.id)
                    .collect(),
            ),
        };
        let mut report = ReconcileReport::default();
        let mut settled = BTreeSet::new();
        for operation in self.store().unfinished_operations().await? {
            if owned_ids
                .as_ref()
                .is_some_and(|ids| !ids.contains(&operation.workspace_id))
            {
                continue;
            }
            settled.insert(operation.workspace_id);
            let name = operation.workspace_name.clone();
            match self.resolve_operation(&operation).await {
                Ok(Some(action)) => report.actions.push(action),
                Ok(None) => {}
                Err(error) => report.actions.push(ReconcileAction::Failed {
                    name,
                    error: error.to_string(),
                }),
            }
        }
        let records: Vec<WorkspaceRecord> = self
            .store()
            .list_workspaces(false)
            .await?
            .into_iter()
            .filter(|record| owns(record))
            .collect();
        report.checked = records.len();
        // A few workspaces at a time: each check is one or two reads of its own
        // machine, so Fly's per-machine limits are not shared and the client's throttle
        // holds the rest. Results come back in record order.
        let mut pending = records
            .iter()
            .filter(|record| !settled.contains(&record.id));
        let mut in_flight = futures::stream::FuturesOrdered::new();
        let mut drifts = Vec::with_capacity(records.len());
        loop {
            while in_flight.len() < READS_AT_ONCE {
                let Some(record) = pending.next() else { break };
                in_flight.push_back(async move { (record, self.check_drift(record).await) });
            }
            match in_flight.next().await {
                Some(drift) => drifts.push(drift),
                None => break,
            }
        }
        for (record, drift) in drifts {
            match drift {
                Ok(Some(action)) => report.actions.push(action),
                Ok(None) => {}
                Err(error) => report.actions.push(ReconcileAction::Failed {
                    name: record.name.to_string(),
                    error: error.to_string(),
                }),
            }
        }
        if owner.is_some() {
            for action in &report.actions {
                tracing::info!(?action, owner, "reconcile");
            }
            return Ok(report);
        }
        match self.reconcile_pool().await {
            Ok((actions, ready)) => {
                report.actions.extend(actions);
                report.pool_slots = ready;
            }
            Err(error) => report.actions.push(ReconcileAction::Failed {
                name: "(pool)".to_owned(),
                error: error.to_string(),
            }),
        }
        match self.find_orphans().await {
            Ok(orphans) => report.actions.extend(orphans),
            Err(error) => report.actions.push(ReconcileAction::Failed {
                name: "(orphan scan)".to_owned(),
                error: error.to_string(),
            }),
        }
        for action in &report.actions {
            tracing::info!(?action, "reconcile");
        }
        Ok(report)
    }

    /// Takes the workspace lock, then finishes or undoes whatever a crash left
    /// unfinished on it, so every operation starts from a settled workspace (an
    /// earlier move's plan would not fit the workspace once a later one ran).
    pub(crate) async fn lock_settled(
        &self,
        name: &str,
        operation: &str,
    ) -> Result<WorkspaceLock<S>> {
        let lock = self.lock(name, operation).await?;
        for pending in self.store().unfinished_operations().await? {
            if pending.workspace_name != name {
                continue;
            }
            tracing::info!(
                workspace = name,
                interrupted = pending.kind.as_str(),
                "settling an interrupted operation first"
            );
            if let Some(action) = self.resolve_locked(&pending).await? {
                tracing::info!(?action, "settled");
            }
        }
        Ok(lock)
    }

    /// An operation's journaled steps and the plan noted at `plan_step` (`None` when a
    /// crash came before it was written).
    pub(crate) async fn journaled_plan<T: serde::de::DeserializeOwned>(
        &self,
        operation: i64,
        plan_step: &str,
    ) -> Result<(Option<T>, Vec<swarm_store::StepEntry>)> {
        let steps = self.store().operation_steps(operation).await?;
        let plan = steps
            .iter()
            .find(|step| step.step == plan_step)
            .and_then(|step| serde_json::from_value(step.detail.clone()).ok());
        Ok((plan, steps))
    }

    async fn resolve_operation(&self, operation: &Operation) -> Result<Option<ReconcileAction>> {
        // A live process holding the lock is still working on it: not ours to touch,
        // and not waited for either (it may finish it any moment; the next pass sees).
        let acquired = WorkspaceLock::acquire(
            self.store_arc(),
            &operation.workspace_name,
            "reconcile",
            self.config().lock_ttl,
            Duration::ZERO,
        )
        .await;
        let lock = match acquired {
            Ok(lock) => lock,
            Err(LockError::Busy { .. }) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        // Read again under the lock: the operation read before it may have ended
        // since, and acting on that stale copy would undo a finished create.
        let still_open = self
            .store()
            .operations_of(operation.workspace_id)
            .await?
            .iter()
            .any(|current| current.id == operation.id && current.outcome.is_none());
        let result = if still_open {
            self.resolve_locked(operation).await
        } else {
            Ok(None)
        };
        lock.release().await?;
        result
    }

    async fn resolve_locked(&self, operation: &Operation) -> Result<Option<ReconcileAction>> {
        let Some(record) = self.store().workspace(operation.workspace_id).await? else {
            self.store()
                .finish_operation(operation.id, "record missing; nothing to do")
                .await?;
            return Ok(None);
        };
        if record.status == WorkspaceStatus::Deleted
            && !matches!(
                operation.kind,
                OperationKind::Create | OperationKind::Delete
            )
        {
            // Deleted since (the delete removed everything): nothing left to finish,
            // and the name may already belong to a new workspace.
            self.store()
                .finish_operation(operation.id, "superseded: the workspace was deleted since")
                .await?;
            return Ok(None);
        }
        let name = record.name.to_string();
        let id = record.id;
        let journal = Journal::resume(
            self.store_arc(),
            operation.id,
            operation.kind,
            record.clone(),
        );
        match operation.kind {
            OperationKind::Create => {
                if let Some(machine) = self.started_machine_of(&record).await? {
                    let app = record.app_name().to_owned();
                    let volume_name = record.volume_name();
                    let volumes = self
                        .provider()
                        .list_volumes(&app)
                        .await
                        .map_err(|e| self.provider_error(e, &record))?;
                    let mut ips = self
                        .provider()
                        .list_ips(&app)
                        .await
                        .map_err(|e| self.provider_error(e, &record))?;
                    // The addresses are allocated alongside the machine: a crash may
                    // have come before them. Allocate what the IP mode still lacks.
                    for kind in record.spec.ip_mode.ip_kinds() {
                        if !ips.iter().any(|ip| ip.kind == *kind) {
                            ips.push(self.ensure_ip(&record, *kind).await?);
                        }
                    }
                    let volume_id = volumes
                        .into_iter()
                        .find(|v| v.name == volume_name && v.is_live())
                        .map(|v| v.id);
                    journal
                        .step(
                            "finished_by_reconcile",
                            json!({ "machine": machine.id }),
                            None,
                            |record| {
                                record.status = WorkspaceStatus::Running;
                                record.app = Some(app.clone());
                                record.machine_id = Some(machine.id.clone());
                                record.volume_id = volume_id.or(record.volume_id.take());
                                record.ips = ips;
                                if let Some(first) = record.image_versions.first_mut() {
                                    first.machine_version =
                                        first.machine_version.take().or(machine.version.clone());
                                    first.digest =
                                        first.digest.take().or(machine.image_digest.clone());
                                }
                            },
                        )
                        .await?;
                    journal.finish("finished by reconcile").await?;
                    return Ok(Some(ReconcileAction::FinishedCreate { name, id }));
                }
                let removed = self.teardown(&journal, &record, false).await?;
                journal
                    .step(
                        "undone_by_reconcile",
                        json!({ "removed": removed }),
                        None,
                        |record| {
                            record.status = WorkspaceStatus::Deleted;
                            record.last_error =
                                Some("create was interrupted; undone by reconcile".to_owned());
                        },
                    )
                    .await?;
                journal.finish("undone by reconcile").await?;
                Ok(Some(ReconcileAction::UndidCreate { name, id, removed }))
            }
            OperationKind::Delete => {
                let removed = self.teardown(&journal, &record, false).await?;
                journal
                    .step("deleted", json!({ "removed": removed }), None, |record| {
                        record.status = WorkspaceStatus::Deleted
                    })
                    .await?;
                journal.finish("finished by reconcile").await?;
                Ok(Some(ReconcileAction::FinishedDelete { name, id, removed }))
            }
            OperationKind::Resize => {
                let steps = self.store().operation_steps(operation.id).await?;
                let plan = steps
                    .iter()
                    .find(|step| step.step == crate::lifecycle::RESIZE_PLAN_STEP)
                    .and_then(|step| {
                        Some(swarm_core::model::ResizePlan {
                            guest: serde_json::from_value(step.detail.get("guest")?.clone())
                                .ok()?,
                            storage_gb: u32::try_from(step.detail.get("storage_gb")?.as_u64()?)
                                .ok()?,
                            notes: Vec::new(),
                        })
                    });
                let status = self.observed_status(&record).await?;
                if let (Some(plan), Some(app), Some(machine_id)) =
                    (plan, record.app.clone(), record.machine_id.clone())
                    && status != WorkspaceStatus::Failed
                {
                    // Roll forward: the record shows which steps were committed.
                    let mut current = record.clone();
                    current.status = status;
                    self.apply_resize(&journal, &current, &app, &machine_id, &plan, false)
                        .await?;
                }
                let status = self.observed_status(&record).await?;
                journal
                    .step("settled_by_reconcile", json!({}), None, |record| {
                        record.status = status
                    })
                    .await?;
                journal.finish("finished by reconcile").await?;
                Ok(Some(ReconcileAction::SettledOperation {
                    name,
                    operation: operation.kind.as_str().to_owned(),
                    status,
                }))
            }
            OperationKind::Update | OperationKind::Rollback => self
                .resolve_image_change(&journal, operation, &record)
                .await
                .map(Some),
            OperationKind::MachineRollback => self
                .resolve_machine_rollback(&journal, operation, &record)
                .await
                .map(Some),
            OperationKind::Move | OperationKind::Restore => self
                .resolve_replacement(&journal, operation, &record)
                .await
                .map(Some),
            OperationKind::Start
            | OperationKind::Stop
            | OperationKind::Suspend
            | OperationKind::RotatePassword
            | OperationKind::Snapshot => {
                let status = self.observed_status(&record).await?;
                journal
                    .step("settled_by_reconcile", json!({}), None, |record| {
                        record.status = status
                    })
                    .await?;
                journal.finish("settled by reconcile").await?;
                Ok(Some(ReconcileAction::SettledOperation {
                    name,
                    operation: operation.kind.as_str().to_owned(),
                    status,
                }))
            }
        }
    }

    /// The workspace's machine if it exists, waiting (up to the start timeout) while
    /// it is on its way up; `None` if there is none or it never started.
    async fn started_machine_of(&self, record: &WorkspaceRecord) -> Result<Option<MachineInfo>> {
        let app = record.app_name();
        let exists = match self.provider().get_app(app).await {
            Ok(found) => found.is_some(),
            Err(error) if error.kind == ProviderErrorKind::NameTaken => false,
            Err(error) => return Err(self.provider_error(error, record)),
        };
        if !exists || !self.app_is_ours(record, app).await? {
            return Ok(None);
        }
        let id = record.id.to_string();
        let machines = self
            .provider()
            .list_machines(app, Some((TAG_WORKSPACE_ID, &id)))
            .await
            .map_err(|e| self.provider_error(e, record))?;
        let Some(machine) = machines.into_iter().find(|m| {
            !matches!(
                m.state,
                MachineState::Destroying | MachineState::Destroyed | MachineState::Failed
            )
        }) else {
            return Ok(None);
        };
        if machine.state == MachineState::Started {
            return Ok(Some(machine));
        }
        if matches!(
            machine.state,
            MachineState::Created | MachineState::Starting
        ) {
            let waited = self
                .provider()
                .wait_machine(
                    app,
                    &machine.id,
                    MachineState::Started,
                    self.config().start_timeout,
                )
                .await;
            if waited.is_ok() {
                return Ok(Some(machine));
            }
        }
        Ok(None)
    }

    /// The record status Fly's view implies.
    pub(crate) async fn observed_status(
        &self,
        record: &WorkspaceRecord,
    ) -> Result<WorkspaceStatus> {
        let (Some(app), Some(machine_id)) = (&record.app, &record.machine_id) else {
            return Ok(WorkspaceStatus::Failed);
        };
        let machine = self
            .provider()
            .get_machine(app, machine_id)
            .await
            .map_err(|e| self.provider_error(e, record))?;
        Ok(machine.map_or(WorkspaceStatus::Failed, |machine| {
            machine.state.workspace_status()
        }))
    }

    async fn check_drift(&self, record: &WorkspaceRecord) -> Result<Option<ReconcileAction>> {
        if record.status == WorkspaceStatus::Creating {
            return self.settle_unjournaled_create(record).await;
        }
        if matches!(
            record.status,
            WorkspaceStatus::Creating | WorkspaceStatus::Deleting | WorkspaceStatus::Deleted
        ) {
            return Ok(None);
        }
        let observed = self.observed_status(record).await?;
        // Transient states settle by themselves; only persistent disagreement is drift.
        if observed == record.status
            || matches!(
                observed,
                WorkspaceStatus::Starting | WorkspaceStatus::Stopping
            )
        {
            return Ok(None);
        }
        let reason = if observed == WorkspaceStatus::Failed {
            "machine missing or failed on Fly".to_owned()
        } else {
            format!("Fly reports the machine {observed}")
        };
        let mut updated = record.clone();
        updated.status = observed;
        updated.last_error = (observed == WorkspaceStatus::Failed).then(|| reason.clone());
        updated.updated_at = time::OffsetDateTime::now_utc();
        self.store().update_workspace(&updated).await?;
        Ok(Some(ReconcileAction::StatusDrift {
            name: record.name.to_string(),
            from: record.status,
            to: observed,
            reason,
        }))
    }

    /// A `creating` record whose create never got its journal entry (the write failed:
    /// disk full, or a crash between the two writes) made no Fly call, since every Fly
    /// call of a create comes after that entry. Undone, so the name is free again.
    async fn settle_unjournaled_create(
        &self,
        record: &WorkspaceRecord,
    ) -> Result<Option<ReconcileAction>> {
        let lock = self.lock(record.name.as_str(), "reconcile").await?;
        let result = async {
            let current = self.store().workspace(record.id).await?;
            let unjournaled = current
                .as_ref()
                .is_some_and(|r| r.status == WorkspaceStatus::Creating)
                && self.store().operations_of(record.id).await?.is_empty();
            if !unjournaled {
                return Ok(None);
            }
            let mut undone = record.clone();
            undone.status = WorkspaceStatus::Deleted;
            undone.last_error = Some("create interrupted before any Fly call".to_owned());
            undone.updated_at = time::OffsetDateTime::now_utc();
            self.store().update_workspace(&undone).await?;
            Ok(Some(ReconcileAction::UndidCreate {
                name: record.name.to_string(),
                id: record.id,
                removed: Vec::new(),
            }))
        }
        .await;
        lock.release().await?;
        result
    }

    async fn find_orphans(&self) -> Result<Vec<ReconcileAction>> {
        let all = self.store().list_workspaces(true).await?;
        // Keyed by app, not name: a workspace made from a pool slot lives in the slot's app.
        let live: BTreeMap<&str, &WorkspaceRecord> = all
            .iter()
            .filter(|record| record.status != WorkspaceStatus::Deleted)
            .map(|record| (record.app_name(), record))
            .collect();
        let deleted: BTreeSet<&str> = all
            .iter()
            .filter(|record| record.status == WorkspaceStatus::Deleted)
            .map(|record| record.app_name())
            .collect();
        let known_ids: BTreeSet<String> = all.iter().map(|record| record.id.to_string()).collect();
        let apps = self
            .provider()
            .list_apps(&self.config().org)
            .await
            .map_err(|error| Error::from_provider(error, "(all)", "", &self.config().regions))?;
        // Read after the app list, so a slot filled meanwhile is known here.
        let pool_apps = self.pool_apps().await?;
        // A few apps at a time, as the drift checks: one machine list per app.
        let known = KnownApps {
            live: &live,
            deleted: &deleted,
            known_ids: &known_ids,
            pool_apps: &pool_apps,
        };
        let mut pending = apps.iter();
        let mut in_flight = futures::stream::FuturesOrdered::new();
        let mut findings = Vec::new();
        loop {
            while in_flight.len() < READS_AT_ONCE {
                let Some(app) = pending.next() else { break };
                in_flight.push_back(self.orphans_in_app(&app.name, &known));
            }
            match in_flight.next().await {
                Some(found) => findings.extend(found?),
                None => break,
            }
        }
        Ok(findings)
    }

    /// What one app on Fly holds that no record of ours accounts for.
    async fn orphans_in_app(
        &self,
        app: &str,
        known: &KnownApps<'_>,
    ) -> Result<Vec<ReconcileAction>> {
        let mut findings = Vec::new();
        if known.pool_apps.contains(app) {
            return Ok(findings);
        }
        if crate::pool::is_pool_app(app) && !known.live.contains_key(app) {
            findings.push(ReconcileAction::OrphanApp {
                app: app.to_owned(),
                reason: "named like a warm-pool slot, but neither this store's pool nor a workspace holds it".to_owned(),
            });
            return Ok(findings);
        }
        let machines = match self.provider().list_machines(app, None).await {
            Ok(machines) => machines,
            // Deleted since the app list was read.
            Err(error) if error.is_not_found() => return Ok(findings),
            Err(error) => {
                return Err(Error::from_provider(error, app, "", &self.config().regions));
            }
        };
        let live_id = known.live.get(app).map(|record| record.id.to_string());
        for machine in &machines {
            let Some(tag) = machine.metadata.get(TAG_WORKSPACE_ID) else {
                continue;
            };
            let belongs = live_id.as_deref() == Some(tag.as_str());
            if !belongs && !known.known_ids.contains(tag) {
                findings.push(ReconcileAction::OrphanMachine {
                    app: app.to_owned(),
                    machine_id: machine.id.clone(),
                    workspace_id: tag.clone(),
                });
            }
        }
        if live_id.is_none() && known.deleted.contains(app) {
            let tagged = machines
                .iter()
                .any(|machine| machine.metadata.contains_key(TAG_WORKSPACE_ID));
            findings.push(ReconcileAction::OrphanApp {
                app: app.to_owned(),
                reason: if tagged {
                    "named like a deleted workspace and holds machines tagged by swarm".to_owned()
                } else {
                    "named like a deleted workspace".to_owned()
                },
            });
        }
        Ok(findings)
    }
}

/// What the orphan scan compares Fly's apps with.
struct KnownApps<'a> {
    /// Live records by app (a workspace from a pool slot lives in the slot's app).
    live: &'a BTreeMap<&'a str, &'a WorkspaceRecord>,
    /// Apps of deleted records.
    deleted: &'a BTreeSet<&'a str>,
    /// Every record's id, deleted ones too.
    known_ids: &'a BTreeSet<String>,
    pool_apps: &'a BTreeSet<String>,
}
