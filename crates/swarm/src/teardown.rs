//! Teardown and `delete`: machine, volume, IPs, app, each gone for sure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::provider::{Provider, ProviderErrorKind, TAG_WORKSPACE_ID};
use swarm_core::model::{Deleted, MachineState, WorkspaceRecord, WorkspaceStatus};
use swarm_store::{OperationKind, Store};

use crate::swarm::{Swarm, owner_id};

impl<S: Store, P: Provider> Swarm<S, P> {
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
}
