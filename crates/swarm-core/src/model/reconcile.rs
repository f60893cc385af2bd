//! What `reconcile` changed or found.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::*;

/// One change `reconcile` made or one finding it reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReconcileAction {
    /// An interrupted create whose machine had started: marked running.
    FinishedCreate { name: String, id: Uuid },
    /// An interrupted create rolled back: everything it made was removed.
    UndidCreate {
        name: String,
        id: Uuid,
        removed: Vec<String>,
    },
    /// An interrupted delete finished.
    FinishedDelete {
        name: String,
        id: Uuid,
        removed: Vec<String>,
    },
    /// An interrupted start or stop settled; the record follows Fly.
    SettledOperation {
        name: String,
        operation: String,
        status: WorkspaceStatus,
    },
    /// The record disagreed with Fly; the record now follows Fly.
    StatusDrift {
        name: String,
        from: WorkspaceStatus,
        to: WorkspaceStatus,
        reason: String,
    },
    /// A Fly app carries a deleted workspace's name (and our tags); left alone.
    OrphanApp { app: String, reason: String },
    /// A machine tagged with a workspace id unknown to this store; left alone.
    OrphanMachine {
        app: String,
        machine_id: String,
        workspace_id: String,
    },
    /// An interrupted update, rollback, move or restore whose change had taken effect:
    /// finished (record switched, what it replaced removed).
    FinishedOperation {
        name: String,
        operation: String,
        removed: Vec<String>,
    },
    /// An interrupted update, rollback, move or restore that had not taken effect:
    /// what it had made was removed and the workspace is as before.
    UndidOperation {
        name: String,
        operation: String,
        removed: Vec<String>,
    },
    /// A pool slot that was half-made (fill interrupted), half-removed (drain
    /// interrupted) or whose app vanished: what it held was removed, the slot forgotten.
    PoolSlotRemoved {
        app: String,
        reason: String,
        removed: Vec<String>,
    },
    /// A ready pool slot made for an image no longer configured: its stopped machine
    /// was brought to the configured one (Fly prepared it on the volume's host).
    PoolSlotRefreshed {
        app: String,
        from: String,
        to: String,
    },
    /// Reconcile could not finish this workspace; it will be retried next run.
    Failed { name: String, error: String },
}

/// `reconcile`'s report.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReconcileReport {
    pub checked: usize,
    /// Ready warm-pool slots (each a Fly app with a volume and IPs), after settling.
    pub pool_slots: usize,
    pub actions: Vec<ReconcileAction>,
}

impl ReconcileReport {
    /// True when nothing failed (orphans are findings, not failures).
    pub fn converged(&self) -> bool {
        !self
            .actions
            .iter()
            .any(|action| matches!(action, ReconcileAction::Failed { .. }))
    }
}
