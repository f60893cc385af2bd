//! Operations on a workspace's life after create: password rotation and resize.
//! Each takes the workspace lock, journals its intent and steps, and leaves an
//! unfinished operation that `reconcile` can finish after a crash.

use std::collections::BTreeMap;

use serde_json::json;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::provider::{MachineChange, Provider, ProviderErrorKind};
use crate::swarm::{Swarm, owner_id};
use swarm_core::model::{
    MachineState, PasswordRotated, ResizeOptions, ResizePlan, Resized, WorkspaceRecord,
    WorkspaceStatus,
};
use swarm_core::password;
use swarm_core::quota::Usage;
use swarm_core::validate::validate_resize;
use swarm_store::{OperationKind, Store};

/// The journal note holding resize's target, read back by `reconcile`.
pub(crate) const RESIZE_PLAN_STEP: &str = "plan";

impl<S: Store, P: Provider> Swarm<S, P> {
    // ---------------------------------------------------------------- password

    /// Gives the workspace a new random password: its argon2id hash replaces
    /// `HASHED_PASSWORD` in the machine's config (the rest of the config is kept as Fly
    /// has it), the machine restarts with it if it was running, and the old password
    /// stops working. The new one is returned to be shown once.
    pub async fn rotate_password(&self, name: &str) -> Result<PasswordRotated> {
        let span = tracing::info_span!("password", workspace = name);
        self.rotate_password_locked(name).instrument(span).await
    }

    async fn rotate_password_locked(&self, name: &str) -> Result<PasswordRotated> {
        // An unknown name is refused before the lock is written to the store.
        self.show(name).await?;
        let lock = self
            .lock_settled(name, OperationKind::RotatePassword.as_str())
            .await?;
        let record = self.show(name).await?;
        let (app, machine_id) = self.require_machine(&record, "password")?;
        let password = password::generate()?;
        let hashed = {
            let password = password.clone();
            tokio::task::spawn_blocking(move || password::hash(&password))
                .await
                .map_err(|error| password::PasswordError::Hash(error.to_string()))??
        };
        let journal = Journal::begin(
            self.store_arc(),
            record.clone(),
            OperationKind::RotatePassword,
            &owner_id(),
        )
        .await?;
        let change = MachineChange {
            env: BTreeMap::from([("HASHED_PASSWORD".to_owned(), hashed)]),
            ..MachineChange::default()
        };
        let machine = self
            .retry("update machine", || {
                self.provider().update_machine(&app, &machine_id, &change)
            })
            .await
            .map_err(|error| self.provider_error(error, &record))?;
        journal
            .step(
                "machine_updated",
                json!({ "machine": machine_id, "machine_version": machine.version }),
                Some("after_machine"),
                |_| {},
            )
            .await?;
        let status = self.settle_after_update(&record, &app, &machine_id).await?;
        let workspace = journal
            .step("settled", json!({}), None, |record| record.status = status)
            .await?;
        journal.finish("ok").await?;
        lock.release().await?;
        Ok(PasswordRotated {
            workspace,
            password,
        })
    }

    /// After a config update: a running workspace comes back up with the new config
    /// (waited for), a stopped one stays stopped.
    pub(crate) async fn settle_after_update(
        &self,
        record: &WorkspaceRecord,
        app: &str,
        machine_id: &str,
    ) -> Result<WorkspaceStatus> {
        let target = if record.status == WorkspaceStatus::Running {
            MachineState::Started
        } else {
            MachineState::Stopped
        };
        let status = if target == MachineState::Started {
            WorkspaceStatus::Running
        } else {
            WorkspaceStatus::Stopped
        };
        self.wait_for(record, app, machine_id, target, self.config().start_timeout)
            .await?;
        Ok(status)
    }

    // ---------------------------------------------------------------- resize

    /// Checks a resize against the workspace's current size without changing anything.
    pub async fn validate_resize(&self, name: &str, options: &ResizeOptions) -> Result<ResizePlan> {
        let record = self.show(name).await?;
        validate_resize(&record.spec, options, self.config()).map_err(Error::Invalid)
    }

    /// Resizes the workspace: the guest (CPUs, kind, memory) by a machine update that
    /// keeps the rest of the config, then the volume (grow only; the machine restarts
    /// when Fly says the grown volume needs it). Invalid sizes change nothing; a guest
    /// Fly refuses leaves the workspace as it was; a failed volume extension puts the
    /// old guest back.
    pub async fn resize(&self, name: &str, options: &ResizeOptions) -> Result<Resized> {
        let span = tracing::info_span!("resize", workspace = name);
        async {
            // Reject bad input before waiting for the lock.
            self.validate_resize(name, options).await?;
            let lock = self
                .lock_settled(name, OperationKind::Resize.as_str())
                .await?;
            let record = self.show(name).await?;
            let plan =
                validate_resize(&record.spec, options, self.config()).map_err(Error::Invalid)?;
            let (app, machine_id) = self.require_machine(&record, "resize")?;
            let previous_guest = record.spec.guest;
            let previous_storage_gb = record.spec.storage_gb;
            if plan.guest == previous_guest && plan.storage_gb == previous_storage_gb {
                lock.release().await?;
                return Ok(Resized {
                    workspace: record,
                    previous_guest,
                    previous_storage_gb,
                    changed: false,
                    restarted_for_volume: false,
                    notes: plan.notes,
                });
            }
            // The new size is reserved with the intent, checked against the owner's quota.
            let size = Usage::workspace(plan.guest, plan.storage_gb, record.spec.ip_mode);
            let quota = self.quota_guard(record.spec.owner.as_deref());
            let journal = Journal::begin_reserving(
                self.store_arc(),
                record.clone(),
                OperationKind::Resize,
                &owner_id(),
                size,
                quota.as_ref(),
            )
            .await?;
            journal
                .note(
                    RESIZE_PLAN_STEP,
                    json!({ "guest": plan.guest, "storage_gb": plan.storage_gb }),
                )
                .await?;
            let restarted = match self
                .apply_resize(&journal, &record, &app, &machine_id, &plan, true)
                .await
            {
                Ok(restarted) => restarted,
                Err(error) => {
                    // Refused outright (or undone): nothing for reconcile to roll forward.
                    let now = journal.record().await;
                    let unchanged = now.spec.guest == previous_guest
                        && now.spec.storage_gb == previous_storage_gb;
                    let definite = !matches!(
                        &error,
                        Error::Provider(provider) if matches!(
                            provider.kind,
                            ProviderErrorKind::Ambiguous | ProviderErrorKind::Timeout
                        )
                    ) && !matches!(error, Error::Timeout { .. } | Error::Store(_));
                    if unchanged && definite {
                        journal
                            .finish(&format!("failed, nothing changed: {error}"))
                            .await?;
                    }
                    return Err(error);
                }
            };
            let status = if record.status == WorkspaceStatus::Running {
                WorkspaceStatus::Running
            } else {
                WorkspaceStatus::Stopped
            };
            let workspace = journal
                .step("settled", json!({}), None, |record| record.status = status)
                .await?;
            journal.finish("ok").await?;
            lock.release().await?;
            Ok(Resized {
                workspace,
                previous_guest,
                previous_storage_gb,
                changed: true,
                restarted_for_volume: restarted,
                notes: plan.notes,
            })
        }
        .instrument(span)
        .await
    }

    /// The resize steps; also how `reconcile` rolls an interrupted resize forward
    /// (each step is skipped when the record already shows it done).
    pub(crate) async fn apply_resize(
        &self,
        journal: &Journal<S>,
        record: &WorkspaceRecord,
        app: &str,
        machine_id: &str,
        plan: &ResizePlan,
        crash_points: bool,
    ) -> Result<bool> {
        let point = |name: &'static str| if crash_points { Some(name) } else { None };
        let previous_guest = record.spec.guest;
        let volume_id = record.volume_id.clone();
        if plan.guest != previous_guest {
            let change = MachineChange {
                guest: Some(plan.guest),
                ..MachineChange::default()
            };
            let machine = self
                .retry("update machine", || {
                    self.provider().update_machine(app, machine_id, &change)
                })
                .await
                .map_err(|error| self.provider_error(error, record))?;
            let guest = plan.guest;
            journal
                .step(
                    "machine_updated",
                    json!({ "machine": machine_id, "machine_version": machine.version, "guest": guest }),
                    point("after_machine"),
                    |record| {
                        let now = time::OffsetDateTime::now_utc();
                        record.previous_machine = Some(record.current_machine("resize", now));
                        record.spec.guest = guest;
                    },
                )
                .await?;
            self.settle_after_update(record, app, machine_id).await?;
        }
        let mut restarted = false;
        if plan.storage_gb > record.spec.storage_gb {
            let Some(volume_id) = volume_id else {
                return Err(Error::InvalidState {
                    name: record.name.to_string(),
                    status: record.status,
                    operation: "resize",
                    hint: "the record holds no volume; run `swarm reconcile`".to_owned(),
                });
            };
            let size = plan.storage_gb;
            let extended = self
                .retry("extend volume", || {
                    self.provider().extend_volume(app, &volume_id, size)
                })
                .await;
            let extended = match extended {
                // A lost answer (or a crash) after Fly grew it: the retry is refused as
                // "not greater than the current size". Fly's volume says what happened.
                Err(error) if error.kind == ProviderErrorKind::Invalid => {
                    match self.volume_size(app, &volume_id).await {
                        // Whether it needs a restart was in the lost answer: assume so.
                        Some(current) if current >= size => Ok(true),
                        _ => Err(error),
                    }
                }
                other => other,
            };
            let needs_restart = match extended {
                Ok(needs_restart) => needs_restart,
                Err(error) => {
                    let error = self.provider_error(error, record);
                    if plan.guest != previous_guest {
                        self.restore_guest(journal, record, app, machine_id, previous_guest)
                            .await;
                    }
                    return Err(error);
                }
            };
            journal
                .step(
                    "volume_extended",
                    json!({ "volume": volume_id, "size_gb": size, "needs_restart": needs_restart }),
                    point("after_volume"),
                    |record| record.spec.storage_gb = size,
                )
                .await?;
            if needs_restart && record.status == WorkspaceStatus::Running {
                self.retry("restart machine", || {
                    self.provider().restart_machine(app, machine_id)
                })
                .await
                .map_err(|error| self.provider_error(error, record))?;
                self.wait_for(
                    record,
                    app,
                    machine_id,
                    MachineState::Started,
                    self.config().start_timeout,
                )
                .await?;
                restarted = true;
            }
        }
        Ok(restarted)
    }

    /// The volume's size as Fly has it, if it can be read.
    async fn volume_size(&self, app: &str, volume_id: &str) -> Option<u32> {
        let volumes = self
            .retry("list volumes", || self.provider().list_volumes(app))
            .await
            .ok()?;
        volumes
            .into_iter()
            .find(|volume| volume.id == volume_id)
            .map(|volume| volume.size_gb)
    }

    /// Compensation: puts the old guest back after a later resize step failed.
    async fn restore_guest(
        &self,
        journal: &Journal<S>,
        record: &WorkspaceRecord,
        app: &str,
        machine_id: &str,
        guest: swarm_core::model::GuestSize,
    ) {
        let change = MachineChange {
            guest: Some(guest),
            ..MachineChange::default()
        };
        let restored = self
            .retry("update machine", || {
                self.provider().update_machine(app, machine_id, &change)
            })
            .await;
        match restored {
            Ok(_) => {
                let _ = journal
                    .step(
                        "guest_restored",
                        json!({ "guest": guest }),
                        None,
                        // Undone: the config before the resize is again the previous one.
                        |updated| {
                            updated.spec.guest = guest;
                            updated.previous_machine = record.previous_machine.clone();
                        },
                    )
                    .await;
                let _ = self.settle_after_update(record, app, machine_id).await;
            }
            Err(error) => {
                tracing::warn!(%error, "restoring the previous guest failed; reconcile will retry")
            }
        }
    }
}
