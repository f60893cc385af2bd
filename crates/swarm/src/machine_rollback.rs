//! Machine rollback (`swarm rollback NAME --machine`): back to the machine config the
//! workspace had before its last machine change (resize, update, rollback, or an
//! earlier machine rollback), by one in-place machine update; the volume stays.
//!
//! Each machine-changing operation saves the config it replaces in the record
//! (`WorkspaceRecord::previous_machine`) in the same journal step that records the
//! change, so the record alone says what to return to. Fly's own machine version
//! history (`GET /machines/{id}/versions`) is not used: it also holds our password
//! rotations (returning to one would bring an old password back), ends with the
//! machine on a move or restore, and is capped by Fly.
//!
//! Like `update`: journaled (intent, plan, snapshot when the image changes, the
//! change), crash-safe (`reconcile` asks Fly whether the machine runs the plan and
//! records it, or closes the operation with nothing changed).

use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::image::SNAPSHOT_STEP;
use crate::journal::Journal;
use crate::provider::{MachineChange, MachineInfo, Provider};
use crate::swarm::{Swarm, owner_id};
use swarm_core::model::{
    ImageVersion, MachineConfig, MachineRolledBack, ReconcileAction, WorkspaceRecord,
};
use swarm_core::quota::Usage;
use swarm_core::validate::machine_rollback_target;
use swarm_store::{Operation, OperationKind, Store};

const PLAN_STEP: &str = "plan";
const CHANGE_STEP: &str = "machine_updated";

/// What a machine rollback is about to do, noted before any Fly call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct MachinePlan {
    /// The config it returns to.
    target: MachineConfig,
    /// The config it leaves (becomes `previous_machine`).
    current: MachineConfig,
    /// The image sent to Fly, when the image changes (pinned by digest when known).
    send: Option<String>,
}

impl<S: Store, P: Provider> Swarm<S, P> {
    /// The config `rollback_machine` would return to, checked without changing anything.
    pub async fn validate_machine_rollback(&self, name: &str) -> Result<MachineConfig> {
        let record = self.show(name).await?;
        machine_rollback_target(&record)
            .cloned()
            .map_err(|error| Error::Invalid(vec![error]))
    }

    /// Returns the workspace's machine to the config it had before its last machine
    /// change (image, digest and guest; the current password and env are kept). The
    /// config it leaves becomes the previous one, so a second call undoes the first.
    pub async fn rollback_machine(&self, name: &str) -> Result<MachineRolledBack> {
        self.validate_machine_rollback(name).await?;
        let span = tracing::info_span!("machine_rollback", workspace = name);
        self.rollback_machine_locked(name).instrument(span).await
    }

    async fn rollback_machine_locked(&self, name: &str) -> Result<MachineRolledBack> {
        let kind = OperationKind::MachineRollback;
        let lock = self.lock_settled(name, kind.as_str()).await?;
        let record = self.show(name).await?;
        // Checked again under the lock: another process may have changed the machine.
        let target = machine_rollback_target(&record)
            .cloned()
            .map_err(|error| Error::Invalid(vec![error]))?;
        let (app, machine_id) = self.require_machine(&record, kind.as_str())?;
        let now = time::OffsetDateTime::now_utc();
        let current = record.current_machine(kind.as_str(), now);
        let image_changes = target.image != current.image || target.digest != current.digest;
        let plan = MachinePlan {
            send: image_changes.then(|| target.pinned_image()),
            target,
            current,
        };
        // Undoing a shrink grows the machine: the size is reserved against the quota.
        let size = Usage::workspace(
            plan.target.guest,
            record.spec.storage_gb,
            record.spec.ip_mode,
        );
        let quota = self.quota_guard(record.spec.owner.as_deref());
        let journal = Journal::begin_reserving(
            self.store_arc(),
            record.clone(),
            kind,
            &owner_id(),
            size,
            quota.as_ref(),
        )
        .await?;
        journal.note(PLAN_STEP, json!(plan)).await?;

        // Another image may read the files differently: snapshot first, as `rollback` does.
        let mut snapshot = None;
        if plan.send.is_some() {
            let volume_id = self.require_volume(&record, kind.as_str())?;
            snapshot = self
                .snapshot_first(&journal, &record, &app, &volume_id)
                .await?;
        }

        let change = MachineChange {
            image: plan.send.clone(),
            guest: (plan.target.guest != record.spec.guest).then_some(plan.target.guest),
            ..MachineChange::default()
        };
        let machine = match self
            .retry("update machine", || {
                self.provider().update_machine(&app, &machine_id, &change)
            })
            .await
        {
            Ok(machine) => machine,
            Err(error) => {
                let definite = !error.is_retryable();
                let error = self.provider_error(error, &record);
                if definite {
                    journal
                        .finish(&format!("failed, nothing changed: {error}"))
                        .await?;
                }
                return Err(error);
            }
        };
        self.record_machine_rollback(
            &journal,
            &plan,
            &machine,
            snapshot.clone(),
            Some("after_machine"),
        )
        .await?;
        let status = self.settle_after_update(&record, &app, &machine_id).await?;
        let workspace = journal
            .step("settled", json!({}), None, |record| record.status = status)
            .await?;
        journal.finish("ok").await?;
        lock.release().await?;
        let version = plan
            .send
            .is_some()
            .then(|| workspace.image_versions.last().cloned())
            .flatten();
        Ok(MachineRolledBack {
            workspace,
            from: plan.current,
            to: plan.target,
            version,
            snapshot_before: snapshot,
        })
    }

    /// Commits the change to the record (also how `reconcile` rolls forward): the
    /// target's guest and image, a new image version when the image changed, and the
    /// config it left as the previous one.
    async fn record_machine_rollback(
        &self,
        journal: &Journal<S>,
        plan: &MachinePlan,
        machine: &MachineInfo,
        snapshot: Option<String>,
        crash_at: Option<&str>,
    ) -> Result<WorkspaceRecord> {
        let now = time::OffsetDateTime::now_utc();
        Ok(journal
            .step(
                CHANGE_STEP,
                json!({ "machine": machine.id, "machine_version": machine.version, "guest": plan.target.guest, "image": plan.send }),
                crash_at,
                |record| {
                    if plan.send.is_some() {
                        let version = record.image_versions.last().map_or(1, |v| v.version + 1);
                        record.image_versions.push(ImageVersion {
                            version,
                            image: plan.target.image.clone(),
                            digest: machine.image_digest.clone().or(plan.target.digest.clone()),
                            guest: Some(plan.target.guest),
                            machine_version: machine.version.clone(),
                            snapshot_before: snapshot,
                            rollback_of: plan.target.image_version,
                            at: now,
                        });
                        record.spec.image = plan.target.image.clone();
                    }
                    record.spec.guest = plan.target.guest;
                    record.previous_machine = Some(plan.current.clone());
                },
            )
            .await?)
    }

    /// `reconcile` of an interrupted machine rollback: Fly's machine decides. If it
    /// runs the planned image and guest the change is recorded; if not, nothing changed.
    pub(crate) async fn resolve_machine_rollback(
        &self,
        journal: &Journal<S>,
        operation: &Operation,
        record: &WorkspaceRecord,
    ) -> Result<ReconcileAction> {
        let kind = operation.kind.as_str().to_owned();
        let (plan, steps) = self
            .journaled_plan::<MachinePlan>(operation.id, PLAN_STEP)
            .await?;
        let recorded = steps.iter().any(|step| step.step == CHANGE_STEP);
        let snapshot = steps
            .iter()
            .find(|step| step.step == SNAPSHOT_STEP)
            .and_then(|step| step.detail.get("snapshot")?.as_str().map(str::to_owned));
        let machine = match (&record.app, &record.machine_id) {
            (Some(app), Some(id)) if !recorded => self
                .provider()
                .get_machine(app, id)
                .await
                .map_err(|error| self.provider_error(error, record))?,
            _ => None,
        };
        let finished = match (recorded, &plan, &machine) {
            (true, _, _) => true,
            (false, Some(plan), Some(machine)) if runs(machine, plan) => {
                self.record_machine_rollback(journal, plan, machine, snapshot, None)
                    .await?;
                true
            }
            _ => false,
        };
        self.settle_in_place_change(journal, record, kind, finished)
            .await
    }
}

/// True when Fly's machine runs what the plan asked for. An unknown guest is not
/// proof: the record then keeps what it has.
fn runs(machine: &MachineInfo, plan: &MachinePlan) -> bool {
    let image = match &plan.send {
        Some(send) => machine.image.as_deref() == Some(send.as_str()),
        None => true,
    };
    image && machine.guest == Some(plan.target.guest)
}
