//! Image versions: `update` to a new image, `rollback` to a recorded one, `versions`.
//! The machine is updated in place (the volume stays); a volume snapshot is taken
//! first; every change adds an [`ImageVersion`]. A crash leaves a journal entry that
//! `reconcile` finishes when Fly applied the change and closes when it did not.

use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::provider::{MachineChange, MachineInfo, Provider};
use crate::swarm::{Swarm, owner_id};
use swarm_core::model::{GuestSize, ImageChanged, ImageVersion, ReconcileAction, WorkspaceRecord};
use swarm_core::validate::{rollback_target, validate_image};
use swarm_store::{Operation, OperationKind, Store};

/// The journal note holding an image change's target, read back by `reconcile`.
pub(crate) const IMAGE_PLAN_STEP: &str = "plan";
pub(crate) const SNAPSHOT_STEP: &str = "snapshot_taken";

/// What an update or rollback is about to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ImagePlan {
    /// The image as the user named it (kept in the record).
    pub image: String,
    /// What is sent to Fly: the digest-pinned form for a rollback when known.
    pub send: String,
    pub guest: GuestSize,
    pub rollback_of: Option<u32>,
}

impl<S: Store, P: Provider> Swarm<S, P> {
    /// The workspace's image history, oldest first (the last entry runs now).
    pub async fn versions(&self, name: &str) -> Result<Vec<ImageVersion>> {
        Ok(self.show(name).await?.image_versions)
    }

    /// Runs `image` on the workspace's machine (volume kept, snapshot taken first).
    pub async fn update_image(&self, name: &str, image: &str) -> Result<ImageChanged> {
        validate_image(image).map_err(|error| Error::Invalid(vec![error]))?;
        // Known workspace before waiting for its lock.
        self.show(name).await?;
        let span = tracing::info_span!("update", workspace = name, image);
        self.change_image(name, OperationKind::Update, |record| {
            Ok(ImagePlan {
                image: image.to_owned(),
                send: image.to_owned(),
                guest: record.spec.guest,
                rollback_of: None,
            })
        })
        .instrument(span)
        .await
    }

    /// Checks a rollback target without changing anything.
    pub async fn validate_rollback(&self, name: &str, to: Option<u32>) -> Result<ImageVersion> {
        let record = self.show(name).await?;
        rollback_target(&record.image_versions, to)
            .cloned()
            .map_err(|error| Error::Invalid(vec![error]))
    }

    /// Returns to a recorded version (default: the one before the current): its image,
    /// pinned by digest when known, and its guest size. Recorded as a new version.
    pub async fn rollback(&self, name: &str, to: Option<u32>) -> Result<ImageChanged> {
        self.validate_rollback(name, to).await?;
        let span = tracing::info_span!("rollback", workspace = name);
        self.change_image(name, OperationKind::Rollback, |record| {
            let target = rollback_target(&record.image_versions, to)
                .map_err(|error| Error::Invalid(vec![error]))?;
            Ok(ImagePlan {
                image: target.image.clone(),
                send: target.pinned_image(),
                guest: target.guest.unwrap_or(record.spec.guest),
                rollback_of: Some(target.version),
            })
        })
        .instrument(span)
        .await
    }

    async fn change_image(
        &self,
        name: &str,
        kind: OperationKind,
        plan_for: impl FnOnce(&WorkspaceRecord) -> Result<ImagePlan>,
    ) -> Result<ImageChanged> {
        // An unknown name is refused before the lock is written to the store.
        self.show(name).await?;
        let lock = self.lock_settled(name, kind.as_str()).await?;
        let record = self.show(name).await?;
        // Planned again under the lock: another process may have changed the history.
        let plan = plan_for(&record)?;
        let (app, machine_id) = self.require_machine(&record, kind.as_str())?;
        let volume_id = self.require_volume(&record, kind.as_str())?;
        let from = record.image_versions.last().map(|v| v.version);
        let journal = Journal::begin(self.store_arc(), record.clone(), kind, &owner_id()).await?;
        journal.note(IMAGE_PLAN_STEP, json!(plan)).await?;

        let snapshot = self
            .snapshot_first(&journal, &record, &app, &volume_id)
            .await?;

        let change = MachineChange {
            image: Some(plan.send.clone()),
            guest: (plan.guest != record.spec.guest).then_some(plan.guest),
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
        self.record_image_change(&journal, &plan, &machine, snapshot, Some("after_machine"))
            .await?;
        let status = self.settle_after_update(&record, &app, &machine_id).await?;
        let workspace = journal
            .step("settled", json!({}), None, |record| record.status = status)
            .await?;
        journal.finish("ok").await?;
        lock.release().await?;
        let to = workspace.image_versions.last().cloned().ok_or_else(|| {
            Error::Store(swarm_store::StoreError::Corrupt(
                "image history empty after a change".to_owned(),
            ))
        })?;
        Ok(ImageChanged {
            workspace,
            from,
            to,
        })
    }

    /// Commits the new version to the record (also how `reconcile` rolls forward).
    async fn record_image_change(
        &self,
        journal: &Journal<S>,
        plan: &ImagePlan,
        machine: &MachineInfo,
        snapshot: Option<String>,
        crash_at: Option<&str>,
    ) -> Result<WorkspaceRecord> {
        let now = time::OffsetDateTime::now_utc();
        Ok(journal
            .step(
                "machine_updated",
                json!({ "machine": machine.id, "machine_version": machine.version, "image": plan.image }),
                crash_at,
                |record| {
                    let by = if plan.rollback_of.is_some() { "rollback" } else { "update" };
                    record.previous_machine = Some(record.current_machine(by, now));
                    let version = record.image_versions.last().map_or(1, |v| v.version + 1);
                    record.image_versions.push(ImageVersion {
                        version,
                        image: plan.image.clone(),
                        digest: machine.image_digest.clone(),
                        guest: Some(plan.guest),
                        machine_version: machine.version.clone(),
                        snapshot_before: snapshot,
                        rollback_of: plan.rollback_of,
                        at: now,
                    });
                    record.spec.image = plan.image.clone();
                    record.spec.guest = plan.guest;
                },
            )
            .await?)
    }

    /// `reconcile` of an interrupted update or rollback: Fly's machine decides. If it
    /// runs the planned image the version is recorded; if not, nothing changed.
    pub(crate) async fn resolve_image_change(
        &self,
        journal: &Journal<S>,
        operation: &Operation,
        record: &WorkspaceRecord,
    ) -> Result<ReconcileAction> {
        let kind = operation.kind.as_str().to_owned();
        let (plan, steps) = self
            .journaled_plan::<ImagePlan>(operation.id, IMAGE_PLAN_STEP)
            .await?;
        let recorded = steps.iter().any(|step| step.step == "machine_updated");
        let snapshot = steps
            .iter()
            .find(|step| step.step == SNAPSHOT_STEP)
            .and_then(|step| step.detail.get("snapshot")?.as_str().map(str::to_owned));
        let machine = match (&record.app, &record.machine_id) {
            (Some(app), Some(id)) => self
                .provider()
                .get_machine(app, id)
                .await
                .map_err(|error| self.provider_error(error, record))?,
            _ => None,
        };
        let applied = match (&plan, &machine) {
            (Some(plan), Some(machine)) => machine.image.as_deref() == Some(plan.send.as_str()),
            _ => false,
        };
        let finished = if recorded {
            true
        } else if let (true, Some(plan), Some(machine)) = (applied, &plan, &machine) {
            self.record_image_change(journal, plan, machine, snapshot, None)
                .await?;
            true
        } else {
            false
        };
        self.settle_in_place_change(journal, record, kind, finished)
            .await
    }

    /// The volume's snapshot before an in-place machine change, journaled; when it
    /// cannot be taken the operation ends with nothing changed: the safety net first.
    pub(crate) async fn snapshot_first(
        &self,
        journal: &Journal<S>,
        record: &WorkspaceRecord,
        app: &str,
        volume_id: &str,
    ) -> Result<Option<String>> {
        let snapshot = match self
            .retry("snapshot volume", || {
                self.provider().create_snapshot(app, volume_id)
            })
            .await
        {
            Ok(snapshot) => snapshot.map(|s| s.id),
            Err(error) => {
                let error = self.provider_error(error, record);
                journal
                    .finish(&format!("failed, nothing changed: {error}"))
                    .await?;
                return Err(error);
            }
        };
        journal
            .step(
                SNAPSHOT_STEP,
                json!({ "snapshot": snapshot, "volume": volume_id }),
                Some("after_snapshot"),
                |_| {},
            )
            .await?;
        Ok(snapshot)
    }

    /// The end of reconciling an in-place machine change (update, rollback, machine
    /// rollback): the observed status recorded, the operation finished if Fly applied
    /// the change, else closed with nothing changed.
    pub(crate) async fn settle_in_place_change(
        &self,
        journal: &Journal<S>,
        record: &WorkspaceRecord,
        kind: String,
        finished: bool,
    ) -> Result<ReconcileAction> {
        let name = record.name.to_string();
        let status = self.observed_status(record).await?;
        journal
            .step("settled_by_reconcile", json!({}), None, |record| {
                record.status = status
            })
            .await?;
        if finished {
            journal.finish("finished by reconcile").await?;
            Ok(ReconcileAction::FinishedOperation {
                name,
                operation: kind,
                removed: Vec::new(),
            })
        } else {
            journal
                .finish("not applied on Fly; closed by reconcile, nothing changed")
                .await?;
            Ok(ReconcileAction::UndidOperation {
                name,
                operation: kind,
                removed: Vec::new(),
            })
        }
    }
}
