//! `reconcile`: what it changed, one line an action.

use swarm::ReconcileAction;

use crate::Failure;
use crate::output::Output;
use crate::workspaces::Workspaces;

use super::format::list_or_nothing;

pub async fn reconcile(backend: &Workspaces, out: &Output) -> Result<(), Failure> {
    let bar = out.spinner("reconciling");
    let result = backend.reconcile().await;
    bar.finish_and_clear();
    let report = result?;
    let converged = report.converged();
    if out.json {
        out.json(&report)?;
    } else {
        out.line(format!(
            "Checked {} workspace(s) and the pool ({} ready slot(s)); {} change(s) or finding(s).",
            report.checked,
            report.pool_slots,
            report.actions.len()
        ));
        for action in &report.actions {
            out.line(format!("  {}", describe(action)));
        }
    }
    if converged {
        Ok(())
    } else {
        Err(Failure {
            code: 1,
            message: "some workspaces could not be reconciled; run `swarm reconcile` again".into(),
        })
    }
}

fn describe(action: &ReconcileAction) -> String {
    match action {
        ReconcileAction::FinishedCreate { name, .. } => {
            format!("{name}: finished an interrupted create")
        }
        ReconcileAction::UndidCreate { name, removed, .. } => {
            format!(
                "{name}: undid an interrupted create (removed {})",
                list_or_nothing(removed)
            )
        }
        ReconcileAction::FinishedDelete { name, removed, .. } => {
            format!(
                "{name}: finished an interrupted delete (removed {})",
                list_or_nothing(removed)
            )
        }
        ReconcileAction::SettledOperation {
            name,
            operation,
            status,
        } => {
            format!("{name}: settled an interrupted {operation}; now {status}")
        }
        ReconcileAction::StatusDrift {
            name,
            from,
            to,
            reason,
        } => format!("{name}: {from} → {to} ({reason})"),
        ReconcileAction::OrphanApp { app, reason } => format!("orphan app {app}: {reason}"),
        ReconcileAction::PoolSlotRemoved {
            app,
            reason,
            removed,
        } => format!(
            "pool slot {app}: {reason}; removed {}",
            list_or_nothing(removed)
        ),
        ReconcileAction::PoolSlotRefreshed { app, from, to } => {
            format!("pool slot {app}: image {from} → {to} (its stopped machine updated)")
        }
        ReconcileAction::OrphanMachine {
            app,
            machine_id,
            workspace_id,
        } => {
            format!(
                "orphan machine {machine_id} in app {app} (workspace id {workspace_id} unknown here)"
            )
        }
        ReconcileAction::FinishedOperation {
            name,
            operation,
            removed,
        } => format!(
            "{name}: finished an interrupted {operation} (removed {})",
            list_or_nothing(removed)
        ),
        ReconcileAction::UndidOperation {
            name,
            operation,
            removed,
        } => format!(
            "{name}: undid an interrupted {operation}; the workspace is as before (removed {})",
            list_or_nothing(removed)
        ),
        ReconcileAction::Failed { name, error } => format!("{name}: FAILED: {error}"),
    }
}
