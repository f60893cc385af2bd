//! Suspend: Fly keeps a snapshot of the machine's memory, and the next `start` resumes
//! from it in a few hundred ms with code-server still running (docs
//! reference/suspend-resume). Also the idle policy that picks who puts an idle
//! workspace to rest: code-server's own exit (`stop`) or Fly's proxy (`suspend`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use tokio::time::Instant;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::model::{GuestSize, MachineState, StateChange, WorkspaceStatus};
use crate::provider::{Provider, ProviderErrorKind};
use crate::store::{OperationKind, Store};
use crate::swarm::{Swarm, owner_id};
use crate::validate::ValidationError;

/// Fly suspends machines of at most this much memory (docs reference/suspend-resume,
/// "Requirements"); it stops a larger one instead.
pub const SUSPEND_MAX_MEMORY_MB: u32 = 2048;

/// How an idle workspace is put to rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdlePolicy {
    /// code-server exits after `idle_timeout` without use; the machine stops (a cold
    /// boot next time).
    #[default]
    Stop,
    /// Fly's proxy suspends the machine when no request reached it for a few minutes
    /// (service `autostop = "suspend"`); code-server's own exit is off.
    Suspend,
}

impl IdlePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Suspend => "suspend",
        }
    }

    pub fn is_stop(&self) -> bool {
        *self == Self::Stop
    }
}

/// `--idle-policy` / `idle_policy`: `stop` or `suspend`.
pub fn parse_idle_policy(text: &str) -> std::result::Result<IdlePolicy, ValidationError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "stop" => Ok(IdlePolicy::Stop),
        "suspend" => Ok(IdlePolicy::Suspend),
        _ => Err(ValidationError::new(
            "idle_policy",
            text,
            "must be stop or suspend",
        )),
    }
}

/// Refuses a guest Fly would not suspend, naming the rule.
pub fn check_suspendable(
    field: &'static str,
    value: &str,
    guest: GuestSize,
) -> std::result::Result<(), ValidationError> {
    if guest.memory_mb > SUSPEND_MAX_MEMORY_MB {
        return Err(ValidationError::new(
            field,
            value,
            format!(
                "Fly suspends machines of at most {SUSPEND_MAX_MEMORY_MB} MB of memory and stops a larger one instead (this workspace has {} MB); use stop, or resize to {SUSPEND_MAX_MEMORY_MB} MB or less",
                guest.memory_mb
            ),
        ));
    }
    Ok(())
}

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
        record: &crate::model::WorkspaceRecord,
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
