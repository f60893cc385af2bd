//! The workspace's volume: move it to another region, restore it, snapshot it.

use anyhow::Context as _;
use serde_json::json;
use swarm::Replaced;

use crate::Failure;
use crate::cli::{MoveArgs, RestoreArgs, SnapshotAction, SnapshotArgs};
use crate::output::{self, Output};
use crate::workspaces::Workspaces;

use super::confirm::confirm;
use super::format::list_or_nothing;

pub async fn move_region(
    backend: &Workspaces,
    out: &Output,
    args: MoveArgs,
) -> Result<(), Failure> {
    // A bad or same region is refused before any Fly call.
    backend.validate_move(&args.name, &args.region).await?;
    let bar = out.spinner(format!("moving {} to {}", args.name, args.region));
    let result = backend.move_region(&args.name, &args.region).await;
    bar.finish_and_clear();
    let moved = result?;
    replaced(
        out,
        &moved,
        &format!(
            "Workspace {} moved from {} to {}.",
            args.name, moved.previous_region, moved.workspace.spec.region
        ),
    )
}

pub async fn restore(backend: &Workspaces, out: &Output, args: RestoreArgs) -> Result<(), Failure> {
    backend.validate_restore(&args.name, &args.snapshot).await?;
    confirm(
        out,
        args.yes,
        &format!("restore {}", args.name),
        &format!(
            "Replace the files of {} with those of snapshot {}? Files written since the snapshot are lost.",
            args.name, args.snapshot
        ),
        &args.name,
    )?;
    let bar = out.spinner(format!("restoring {} from {}", args.name, args.snapshot));
    let result = backend.restore(&args.name, &args.snapshot).await;
    bar.finish_and_clear();
    let restored = result?;
    replaced(
        out,
        &restored,
        &format!(
            "Workspace {} restored from snapshot {}.",
            args.name, args.snapshot
        ),
    )
}

fn replaced(out: &Output, replaced: &Replaced, headline: &str) -> Result<(), Failure> {
    if out.json {
        out.json(replaced)?;
        return Ok(());
    }
    let ws = &replaced.workspace;
    out.line(headline);
    out.line(format!("  URL:       {}", ws.url));
    out.line(format!("  Region:    {}", ws.spec.region));
    out.line(format!("  Status:    {}", ws.status));
    out.line(format!(
        "  Volume:    {} ({} GB)",
        ws.volume_id.as_deref().unwrap_or("-"),
        ws.spec.storage_gb
    ));
    out.note(format!(
        "Removed the old {}.",
        list_or_nothing(&replaced.removed)
    ));
    Ok(())
}

pub async fn snapshot(
    backend: &Workspaces,
    out: &Output,
    args: SnapshotArgs,
) -> Result<(), Failure> {
    match args.action {
        SnapshotAction::Create(args) => {
            let bar = out.spinner(format!("snapshotting the volume of {}", args.name));
            let result = backend.create_snapshot(&args.name).await;
            bar.finish_and_clear();
            let snapshot = result?;
            if out.json {
                out.json(&json!({ "snapshot": snapshot }))?;
                return Ok(());
            }
            match snapshot {
                Some(s) => out.line(format!("Snapshot {} of {} taken.", s.id, args.name)),
                None => out.line(format!(
                    "Snapshot of {} requested; Fly lists it once it is made (`swarm snapshot list {}`).",
                    args.name, args.name
                )),
            }
            Ok(())
        }
        SnapshotAction::List(args) => {
            let snapshots = backend.snapshots(&args.name).await?;
            if out.json {
                out.json(&snapshots)?;
                return Ok(());
            }
            if snapshots.is_empty() {
                out.note(format!(
                    "No snapshots of {} yet. Take one with `swarm snapshot create {}`.",
                    args.name, args.name
                ));
                return Ok(());
            }
            let rows = snapshots
                .iter()
                .map(|s| {
                    vec![
                        s.id.clone(),
                        s.created_at.clone().unwrap_or_default(),
                        s.size_bytes.map_or_else(String::new, output::bytes),
                        s.volume_size_gb
                            .map_or_else(String::new, |g| format!("{g} GB")),
                        s.volume_id.clone(),
                        s.status.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            out.table(
                &["id", "created", "stored", "size", "from volume", "status"],
                rows,
            )
            .context("writing the snapshots")?;
            Ok(())
        }
    }
}
