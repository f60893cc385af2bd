//! Replacing a workspace's volume and machine: `move` (the volume forked into another
//! region) and `restore` (a volume made from a snapshot), plus `snapshot create|list`.
//!
//! Both follow one plan: cordon and stop the old machine → new volume → new machine
//! cloned from the old one's config → started and healthy → switch the record →
//! remove the old machine and volume. Until the switch the old pair stays intact, so
//! any failure (or a crash, through `reconcile`) undoes the new pair and uncordons and
//! restarts the old one;
//! after the switch, only removing the old pair is left, and `reconcile` finishes it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::time::Instant;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::provider::{
    CloneRequest, MachineInfo, Provider, ProviderErrorKind, SnapshotInfo, VolumeRequest,
    VolumeSource,
};
use crate::swarm::{Swarm, owner_id};
use swarm_core::model::{
    MachineState, ReconcileAction, Replaced, WorkspaceRecord, WorkspaceStatus,
};
use swarm_core::validate::{ValidationError, validate_move, validate_snapshot_id};
use swarm_store::{Operation, OperationKind, Store};

/// Machine metadata key holding the id of the operation that made the machine.
pub const TAG_OPERATION: &str = "swarm_operation";
/// The journal note holding the plan, read back by `reconcile`.
pub(crate) const REPLACE_PLAN_STEP: &str = "plan";
const SWITCHED_STEP: &str = "switched";
/// Former volumes whose snapshots stay reachable.
const MAX_FORMER_VOLUMES: usize = 10;

/// Everything a move or restore needs to finish or undo it later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReplacePlan {
    pub region: String,
    pub source: VolumeSource,
    pub size_gb: u32,
    /// `<volume name>_<operation id>`: found again after an ambiguous create.
    pub volume_name: String,
    pub machine_name: String,
    /// The operation id, as the new machine's [`TAG_OPERATION`].
    pub tag: String,
    pub old_region: String,
    pub old_machine: String,
    pub old_volume: String,
    pub was_running: bool,
}

/// What to put in place.
enum Target {
    Region(String),
    Snapshot(SnapshotInfo),
}

impl<S: Store, P: Provider> Swarm<S, P> {
    // ---------------------------------------------------------------- snapshots

    /// The snapshots of the workspace's volume and of the volumes a move or restore
    /// replaced (Fly keeps those for their retention), oldest first.
    pub async fn snapshots(&self, name: &str) -> Result<Vec<SnapshotInfo>> {
        let record = self.show(name).await?;
        let app = record.app_name();
        let current = self.require_volume(&record, "list snapshots of")?;
        let mut all = Vec::new();
        for volume in record
            .former_volumes
            .iter()
            .chain(std::iter::once(&current))
        {
            match self
                .retry("list snapshots", || {
                    self.provider().list_snapshots(app, volume)
                })
                .await
            {
                Ok(listed) => all.extend(listed),
                // Past retention: nothing left of that volume.
                Err(error) if error.is_not_found() && *volume != current => {}
                Err(error) => return Err(self.provider_error(error, &record)),
            }
        }
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(all)
    }

    /// Takes a snapshot of the workspace's volume now (Fly also takes one daily).
    pub async fn create_snapshot(&self, name: &str) -> Result<Option<SnapshotInfo>> {
        let span = tracing::info_span!("snapshot", workspace = name);
        async {
            self.show(name).await?;
            let lock = self
                .lock_settled(name, OperationKind::Snapshot.as_str())
                .await?;
            let record = self.show(name).await?;
            let (app, _) = self.require_machine(&record, "snapshot")?;
            let volume_id = self.require_volume(&record, "snapshot")?;
            let journal = Journal::begin(
                self.store_arc(),
                record.clone(),
                OperationKind::Snapshot,
                &owner_id(),
            )
            .await?;
            let snapshot = self
                .provider()
                .create_snapshot(&app, &volume_id)
                .await
                .map_err(|error| self.provider_error(error, &record))?;
            journal
                .note(
                    "snapshot_taken",
                    json!({ "snapshot": snapshot.as_ref().map(|s| &s.id) }),
                )
                .await?;
            journal.finish("ok").await?;
            lock.release().await?;
            Ok(snapshot)
        }
        .instrument(span)
        .await
    }

    // ---------------------------------------------------------------- move / restore

    /// Checks a move without changing anything.
    pub async fn validate_move(&self, name: &str, region: &str) -> Result<()> {
        let record = self.show(name).await?;
        validate_move(&record.spec, region, self.config()).map_err(|e| Error::Invalid(vec![e]))
    }

    /// Moves the workspace to `region`: its volume forked there, a new machine with the
    /// same config, the old ones removed once the new one is healthy.
    pub async fn move_region(&self, name: &str, region: &str) -> Result<Replaced> {
        self.validate_move(name, region).await?;
        let span = tracing::info_span!("move", workspace = name, region);
        self.replace(name, OperationKind::Move, Target::Region(region.to_owned()))
            .instrument(span)
            .await
    }

    /// Checks a restore without changing anything: the snapshot must be one of the
    /// workspace volume's.
    pub async fn validate_restore(&self, name: &str, snapshot: &str) -> Result<SnapshotInfo> {
        validate_snapshot_id(snapshot).map_err(|e| Error::Invalid(vec![e]))?;
        self.snapshots(name)
            .await?
            .into_iter()
            .find(|s| s.id == snapshot)
            .ok_or_else(|| {
                Error::Invalid(vec![ValidationError {
                    field: "snapshot",
                    value: snapshot.to_owned(),
                    rule: format!(
                        "is not a snapshot of {name}'s volumes; `swarm snapshot list {name}` lists them"
                    ),
                }])
            })
    }

    /// Restores the workspace's files from `snapshot` into a new volume and swaps it
    /// in; the old volume is removed only once the restored workspace is healthy.
    pub async fn restore(&self, name: &str, snapshot: &str) -> Result<Replaced> {
        let found = self.validate_restore(name, snapshot).await?;
        let span = tracing::info_span!("restore", workspace = name, snapshot);
        self.replace(name, OperationKind::Restore, Target::Snapshot(found))
            .instrument(span)
            .await
    }

    async fn replace(&self, name: &str, kind: OperationKind, target: Target) -> Result<Replaced> {
        let lock = self.lock_settled(name, kind.as_str()).await?;
        let record = self.show(name).await?;
        if let Target::Region(region) = &target {
            validate_move(&record.spec, region, self.config())
                .map_err(|e| Error::Invalid(vec![e]))?;
        }
        let (app, old_machine) = self.require_machine(&record, kind.as_str())?;
        let old_volume = self.require_volume(&record, kind.as_str())?;
        let journal = Journal::begin(self.store_arc(), record.clone(), kind, &owner_id()).await?;
        let operation = journal.operation();
        let (region, source, size_gb) = match target {
            Target::Region(region) => (
                region,
                VolumeSource::Volume(old_volume.clone()),
                record.spec.storage_gb,
            ),
            Target::Snapshot(snapshot) => (
                record.spec.region.clone(),
                VolumeSource::Snapshot(snapshot.id),
                snapshot
                    .volume_size_gb
                    .unwrap_or(0)
                    .max(record.spec.storage_gb),
            ),
        };
        let plan = ReplacePlan {
            region,
            source,
            size_gb,
            volume_name: format!("{}_{operation}", record.volume_name()),
            machine_name: format!("{}-ws-{operation}", record.name),
            tag: operation.to_string(),
            old_region: record.spec.region.clone(),
            old_machine,
            old_volume,
            was_running: record.status == WorkspaceStatus::Running,
        };
        journal.note(REPLACE_PLAN_STEP, json!(plan)).await?;

        let switched = match self.build_replacement(&journal, &record, &app, &plan).await {
            Ok(switched) => switched,
            Err(error) => {
                tracing::warn!(%error, "replacement failed; undoing it");
                return match self.undo_replacement(&journal, &record, &app, &plan).await {
                    Ok(_) => {
                        journal.finish(&format!("failed, undone: {error}")).await?;
                        lock.release().await?;
                        Err(error)
                    }
                    // Left for reconcile, which undoes it the same way.
                    Err(undo) => {
                        tracing::warn!(%undo, "undoing the replacement failed");
                        Err(error)
                    }
                };
            }
        };
        let removed = self
            .finish_replacement(&journal, &switched, &app, &plan, true)
            .await?;
        let workspace = journal.record().await;
        journal.finish("ok").await?;
        lock.release().await?;
        Ok(Replaced {
            workspace,
            previous_region: plan.old_region,
            previous_volume: Some(plan.old_volume),
            previous_machine: Some(plan.old_machine),
            removed,
        })
    }

    /// Steps up to and including the switch of the record to the new pair.
    async fn build_replacement(
        &self,
        journal: &Journal<S>,
        record: &WorkspaceRecord,
        app: &str,
        plan: &ReplacePlan,
    ) -> Result<WorkspaceRecord> {
        // Writes to the old volume after the fork would be lost: the old machine is
        // cordoned, so no request reaches it or wakes it (Fly's proxy autostarts a
        // stopped machine), and stopped.
        self.cordon(record, app, &plan.old_machine, true).await?;
        if plan.was_running {
            self.bring_to(record, app, &plan.old_machine, MachineState::Stopped)
                .await?;
            journal
                .step("old_stopped", json!({}), Some("after_stop"), |record| {
                    record.status = WorkspaceStatus::Stopped
                })
                .await?;
        }
        let volume = self.ensure_replacement_volume(record, app, plan).await?;
        journal
            .step(
                "volume_created",
                json!({ "volume": volume }),
                Some("after_volume"),
                |_| {},
            )
            .await?;
        let machine = self
            .ensure_replacement_machine(record, app, plan, &volume)
            .await?;
        journal
            .step(
                "machine_created",
                json!({ "machine": machine.id }),
                Some("after_machine"),
                |_| {},
            )
            .await?;
        self.wait_for(
            record,
            app,
            &machine.id,
            MachineState::Started,
            self.config().start_timeout,
        )
        .await?;
        self.wait_healthy(record, app).await?;
        journal
            .step("healthy", json!({}), Some("after_healthy"), |_| {})
            .await?;
        let region = plan.region.clone();
        let size_gb = plan.size_gb;
        Ok(journal
            .step(
                SWITCHED_STEP,
                json!({ "machine": machine.id, "volume": volume }),
                Some("after_switch"),
                |record| {
                    record.machine_id = Some(machine.id.clone());
                    if let Some(old) = record.volume_id.replace(volume.clone()) {
                        record.former_volumes.push(old);
                    }
                    // Snapshots live at most 60 days; ten replacements reach far enough.
                    let excess = record
                        .former_volumes
                        .len()
                        .saturating_sub(MAX_FORMER_VOLUMES);
                    record.former_volumes.drain(..excess);
                    record.spec.region = region;
                    record.spec.storage_gb = size_gb;
                    record.status = WorkspaceStatus::Running;
                    record.last_error = None;
                },
            )
            .await?)
    }

    /// The new volume, made from the plan's source or found from an earlier attempt.
    async fn ensure_replacement_volume(
        &self,
        record: &WorkspaceRecord,
        app: &str,
        plan: &ReplacePlan,
    ) -> Result<String> {
        let request = VolumeRequest {
            name: plan.volume_name.clone(),
            region: plan.region.clone(),
            size_gb: plan.size_gb,
            source: Some(plan.source.clone()),
        };
        let mut attempt = 1;
        loop {
            let listed = self
                .retry("list volumes", || self.provider().list_volumes(app))
                .await
                .map_err(|error| self.provider_error(error, record))?;
            if let Some(found) = listed
                .into_iter()
                .find(|v| v.name == plan.volume_name && v.is_live())
            {
                return Ok(found.id);
            }
            match self.provider().create_volume(app, &request).await {
                Ok(volume) => return Ok(volume.id),
                Err(error) if error.is_retryable() && attempt < self.config().step_attempts => {
                    tracing::warn!(%error, attempt, "creating the new volume: looking again");
                    tokio::time::sleep(self.config().step_backoff * attempt).await;
                    attempt += 1;
                }
                Err(error) => return Err(self.provider_error(error, &self.in_region(record, plan))),
            }
        }
    }

    /// The new machine, cloned from the old one or found from an earlier attempt.
    async fn ensure_replacement_machine(
        &self,
        record: &WorkspaceRecord,
        app: &str,
        plan: &ReplacePlan,
        volume: &str,
    ) -> Result<MachineInfo> {
        let request = CloneRequest {
            name: plan.machine_name.clone(),
            region: plan.region.clone(),
            volume_id: volume.to_owned(),
            metadata: BTreeMap::from([(TAG_OPERATION.to_owned(), plan.tag.clone())]),
        };
        let mut attempt = 1;
        loop {
            if let Some(found) = self.replacement_machines(record, app, plan).await?.pop() {
                return Ok(found);
            }
            match self
                .provider()
                .clone_machine(app, &plan.old_machine, &request)
                .await
            {
                Ok(machine) => return Ok(machine),
                Err(error) if error.is_retryable() && attempt < self.config().step_attempts => {
                    tracing::warn!(%error, attempt, "creating the new machine: looking again");
                    tokio::time::sleep(self.config().step_backoff * attempt).await;
                    attempt += 1;
                }
                Err(error) => return Err(self.provider_error(error, &self.in_region(record, plan))),
            }
        }
    }

    /// The record as it would be in the target region (errors name that region).
    fn in_region(&self, record: &WorkspaceRecord, plan: &ReplacePlan) -> WorkspaceRecord {
        let mut record = record.clone();
        record.spec.region = plan.region.clone();
        record
    }

    /// Live machines this operation made.
    async fn replacement_machines(
        &self,
        record: &WorkspaceRecord,
        app: &str,
        plan: &ReplacePlan,
    ) -> Result<Vec<MachineInfo>> {
        let machines = self
            .retry("list machines", || {
                self.provider()
                    .list_machines(app, Some((TAG_OPERATION, &plan.tag)))
            })
            .await
            .map_err(|error| self.provider_error(error, record))?;
        Ok(machines
            .into_iter()
            .filter(|m| {
                m.id != plan.old_machine
                    && !matches!(m.state, MachineState::Destroying | MachineState::Destroyed)
            })
            .collect())
    }

    /// Waits until code-server answers `/healthz` (alive, or up but idle).
    async fn wait_healthy(&self, record: &WorkspaceRecord, app: &str) -> Result<()> {
        let timeout = self.config().start_timeout;
        let deadline = Instant::now() + timeout;
        loop {
            let probe = self.provider().probe(app).await;
            if probe.http_status == Some(200)
                && matches!(probe.status.as_deref(), Some("alive" | "expired"))
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    name: record.name.to_string(),
                    waiting_for: "healthy (code-server answering /healthz)".to_owned(),
                    after_secs: timeout.as_secs(),
                });
            }
            tokio::time::sleep(self.config().step_backoff.max(Duration::from_millis(50))).await;
        }
    }

    /// After the switch: the old machine and volume go; a workspace that was stopped
    /// is stopped again.
    async fn finish_replacement(
        &self,
        journal: &Journal<S>,
        record: &WorkspaceRecord,
        app: &str,
        plan: &ReplacePlan,
        crash_points: bool,
    ) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        self.retry("destroy machine", || {
            self.provider().destroy_machine(app, &plan.old_machine)
        })
        .await
        .map_err(|error| self.provider_error(error, record))?;
        // Its volume is free once it is gone; a slow destroy only delays the delete.
        let _ = self
            .wait_for(
                record,
                app,
                &plan.old_machine,
                MachineState::Destroyed,
                self.config().stop_timeout,
            )
            .await;
        removed.push(format!("machine {}", plan.old_machine));
        self.delete_volume_when_free(record, app, &plan.old_volume)
            .await?;
        removed.push(format!("volume {}", plan.old_volume));
        journal
            .step(
                "old_removed",
                json!({ "removed": removed }),
                crash_points.then_some("after_cleanup"),
                |_| {},
            )
            .await?;
        let (Some(machine), false) = (record.machine_id.clone(), plan.was_running) else {
            return Ok(removed);
        };
        self.bring_to(record, app, &machine, MachineState::Stopped)
            .await?;
        journal
            .step("stopped_again", json!({}), None, |record| {
                record.status = WorkspaceStatus::Stopped
            })
            .await?;
        Ok(removed)
    }

    /// Cordons or uncordons the machine (repeatable; a machine already gone is fine).
    async fn cordon(
        &self,
        record: &WorkspaceRecord,
        app: &str,
        machine: &str,
        cordoned: bool,
    ) -> Result<()> {
        match self
            .retry("cordon machine", || {
                self.provider().cordon_machine(app, machine, cordoned)
            })
            .await
        {
            Err(error) if error.kind == ProviderErrorKind::NotFound => Ok(()),
            result => result.map_err(|error| self.provider_error(error, record)),
        }
    }

    /// Starts or stops the machine unless it already is in `state` (repeatable, as
    /// `reconcile` needs), then waits for it.
    async fn bring_to(
        &self,
        record: &WorkspaceRecord,
        app: &str,
        machine: &str,
        state: MachineState,
    ) -> Result<()> {
        let current = self
            .retry("get machine", || self.provider().get_machine(app, machine))
            .await
            .map_err(|error| self.provider_error(error, record))?
            .map(|m| m.state);
        let (timeout, settled) = match state {
            MachineState::Started => (
                self.config().start_timeout,
                current == Some(MachineState::Started),
            ),
            _ => (
                self.config().stop_timeout,
                current == Some(MachineState::Stopped),
            ),
        };
        if !settled {
            let call = if state == MachineState::Started {
                self.retry("start machine", || {
                    self.provider().start_machine(app, machine)
                })
                .await
            } else {
                self.retry("stop machine", || {
                    self.provider().stop_machine(app, machine, false)
                })
                .await
            };
            call.map_err(|error| self.provider_error(error, record))?;
        }
        self.wait_for(record, app, machine, state, timeout).await
    }

    /// Deletes a volume, waiting (quietly: it is expected) while Fly still reports it
    /// bound to a machine being destroyed.
    async fn delete_volume_when_free(
        &self,
        record: &WorkspaceRecord,
        app: &str,
        volume: &str,
    ) -> Result<()> {
        let deadline = Instant::now() + self.config().stop_timeout;
        let mut attempt = 1;
        loop {
            match self.provider().delete_volume(app, volume).await {
                Ok(()) => return Ok(()),
                Err(error)
                    if error.kind == ProviderErrorKind::Conflict && Instant::now() < deadline =>
                {
                    tokio::time::sleep(self.config().step_backoff).await;
                }
                Err(error) if self.backoff(attempt, "delete volume", &error).await => attempt += 1,
                Err(error) => return Err(self.provider_error(error, record)),
            }
        }
    }

    /// Before the switch: removes what the operation made and brings the old machine
    /// back up if it ran. Returns what was removed.
    async fn undo_replacement(
        &self,
        journal: &Journal<S>,
        record: &WorkspaceRecord,
        app: &str,
        plan: &ReplacePlan,
    ) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for machine in self.replacement_machines(record, app, plan).await? {
            self.retry("destroy machine", || {
                self.provider().destroy_machine(app, &machine.id)
            })
            .await
            .map_err(|error| self.provider_error(error, record))?;
            removed.push(format!("machine {}", machine.id));
        }
        let volumes = self
            .retry("list volumes", || self.provider().list_volumes(app))
            .await
            .map_err(|error| self.provider_error(error, record))?;
        for volume in volumes
            .iter()
            .filter(|v| v.name == plan.volume_name && v.id != plan.old_volume && v.is_live())
        {
            self.delete_volume_when_free(record, app, &volume.id)
                .await?;
            removed.push(format!("volume {}", volume.id));
        }
        self.cordon(record, app, &plan.old_machine, false).await?;
        let status = if plan.was_running {
            self.bring_to(record, app, &plan.old_machine, MachineState::Started)
                .await?;
            WorkspaceStatus::Running
        } else {
            record.status
        };
        journal
            .step("undone", json!({ "removed": removed }), None, |record| {
                record.status = status
            })
            .await?;
        Ok(removed)
    }

    /// `reconcile` of an interrupted move or restore: forward after the switch, back
    /// before it.
    pub(crate) async fn resolve_replacement(
        &self,
        journal: &Journal<S>,
        operation: &Operation,
        record: &WorkspaceRecord,
    ) -> Result<ReconcileAction> {
        let name = record.name.to_string();
        let kind = operation.kind.as_str().to_owned();
        let (plan, steps) = self
            .journaled_plan::<ReplacePlan>(operation.id, REPLACE_PLAN_STEP)
            .await?;
        let (Some(plan), Some(app)) = (plan, record.app.clone()) else {
            // Crashed before the plan was written: nothing was made.
            journal.finish("nothing done; closed by reconcile").await?;
            return Ok(ReconcileAction::UndidOperation {
                name,
                operation: kind,
                removed: Vec::new(),
            });
        };
        let switched = steps.iter().any(|step| step.step == SWITCHED_STEP);
        if switched {
            let removed = self
                .finish_replacement(journal, record, &app, &plan, false)
                .await?;
            let status = self.observed_status(record).await?;
            journal
                .step("settled_by_reconcile", json!({}), None, |record| {
                    record.status = status
                })
                .await?;
            journal.finish("finished by reconcile").await?;
            Ok(ReconcileAction::FinishedOperation {
                name,
                operation: kind,
                removed,
            })
        } else {
            let removed = self.undo_replacement(journal, record, &app, &plan).await?;
            journal.finish("undone by reconcile").await?;
            Ok(ReconcileAction::UndidOperation {
                name,
                operation: kind,
                removed,
            })
        }
    }
}
