//! `start` and `stop`: the machine's state changed and waited for.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::provider::{Provider, ProviderErrorKind};
use swarm_core::model::{MachineState, StateChange, WorkspaceStatus};
use swarm_store::{OperationKind, Store};

use crate::swarm::{Swarm, owner_id};

impl<S: Store, P: Provider> Swarm<S, P> {
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

    pub(crate) async fn change_state(
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
}
