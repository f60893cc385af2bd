//! Suspend: Fly keeps a snapshot of the machine's memory, and the next `start` resumes
//! from it in a few hundred ms with code-server still running (docs
//! reference/suspend-resume). The idle policy itself is in the model
//! ([`swarm_core::model::IdlePolicy`]).

use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;
use tokio::time::Instant;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::provider::{Provider, ProviderErrorKind};
use crate::swarm::{Swarm, owner_id};
use swarm_core::model::{MachineState, StateChange, WorkspaceStatus, check_suspendable};
use swarm_store::{OperationKind, Store};

/// How often the suspend wait looks whether Fly stopped the machine instead.
const FALLBACK_CHECK: Duration = Duration::from_secs(5);

impl<S: Store, P: Provider> Swarm<S, P> {
    /// Suspends a running workspace and waits until Fly has its snapshot. A workspace
    /// Fly cannot suspend (more than 2 GB of memory) is refused and left running; if
    /// Fly stops the machine instead all the same, the workspace is recorded stopped.
    pub async fn suspend(&self, name: &str) -> Result<StateChange> {
        let span = tracing::info_span!("suspend", workspace = name);
        self.suspend_locked(name).instrument(span).await
    }

    async fn suspend_locked(&self, name: &str) -> Result<StateChange> {
        let record = self.show(name).await?;
        check_suspendable(
            "memory",
            &format!("{} MB", record.spec.guest.memory_mb),
            record.spec.guest,
        )
        .map_err(|e| Error::Invalid(vec![e]))?;
        let lock = self
            .lock_settled(name, OperationKind::Suspend.as_str())
            .await?;
        let record = self.show(name).await?;
        let (app, machine_id) = self.require_machine(&record, "suspend")?;
        let previous = record.status;
        let current = self
            .retry("get machine", || {
                self.provider().get_machine(&app, &machine_id)
            })
            .await
            .map_err(|error| self.provider_error(error, &record))?;
        let state = current.map(|machine| machine.state);
        match state {
            Some(MachineState::Suspended) => {
                let mut record = record;
                if record.status != WorkspaceStatus::Suspended {
                    record.status = WorkspaceStatus::Suspended;
                    record.updated_at = OffsetDateTime::now_utc();
                    self.store().update_workspace(&record).await?;
                }
                lock.release().await?;
                return Ok(StateChange {
                    workspace: record,
                    previous,
                    changed: false,
                });
            }
            Some(MachineState::Started) => {}
            Some(other) => {
                let status = other.workspace_status();
                return Err(Error::InvalidState {
                    name: name.to_owned(),
                    status,
                    operation: "suspend",
                    hint: format!(
                        "only a running workspace can be suspended (its machine is {other}); `swarm start {name}` first"
                    ),
                });
            }
            None => {
                return Err(Error::InvalidState {
                    name: name.to_owned(),
                    status: record.status,
                    operation: "suspend",
                    hint: format!(
                        "its machine {machine_id} is gone from Fly; run `swarm reconcile`"
                    ),
                });
            }
        }
        let mut in_flight = record.clone();
        in_flight.status = WorkspaceStatus::Stopping;
        let journal = Journal::begin(
            self.store_arc(),
            in_flight,
            OperationKind::Suspend,
            &owner_id(),
        )
        .await?;
        self.retry("suspend machine", || {
            self.provider().suspend_machine(&app, &machine_id)
        })
        .await
        .map_err(|error| self.provider_error(error, &record))?;
        let reached = self.wait_suspended(&record, &app, &machine_id).await?;
        let status = match reached {
            MachineState::Suspended => WorkspaceStatus::Suspended,
            _ => WorkspaceStatus::Stopped,
        };
        let workspace = journal
            .step(
                "settled",
                json!({ "machine_state": reached.as_str() }),
                None,
                |record| record.status = status,
            )
            .await?;
        journal.finish("ok").await?;
        lock.release().await?;
        Ok(StateChange {
            workspace,
            previous,
            changed: true,
        })
    }

    /// Waits for `suspended`, or `stopped` when Fly fell back to a stop.
    async fn wait_suspended(
        &self,
        record: &swarm_core::model::WorkspaceRecord,
        app: &str,
        machine_id: &str,
    ) -> Result<MachineState> {
        let timeout = self.config().stop_timeout;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout {
                    name: record.name.as_str().to_owned(),
                    waiting_for: "suspended".to_owned(),
                    after_secs: timeout.as_secs(),
                });
            }
            match self
                .provider()
                .wait_machine(
                    app,
                    machine_id,
                    MachineState::Suspended,
                    left.min(FALLBACK_CHECK),
                )
                .await
            {
                Ok(()) => return Ok(MachineState::Suspended),
                Err(error) if error.kind == ProviderErrorKind::Timeout || error.is_retryable() => {}
                Err(error) => return Err(self.provider_error(error, record)),
            }
            let machine = self
                .retry("get machine", || {
                    self.provider().get_machine(app, machine_id)
                })
                .await
                .map_err(|error| self.provider_error(error, record))?;
            match machine.map(|machine| machine.state) {
                Some(MachineState::Suspended) => return Ok(MachineState::Suspended),
                Some(MachineState::Stopped) => {
                    tracing::warn!("Fly stopped the machine instead of suspending it");
                    return Ok(MachineState::Stopped);
                }
                _ => {}
            }
        }
    }
}
