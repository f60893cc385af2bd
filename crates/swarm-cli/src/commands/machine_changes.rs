//! Commands that give a workspace's machine a new config: password, resize, update,
//! rollback, and the version history they leave.

use anyhow::Context as _;
use swarm::ImageChanged;

use crate::Failure;
use crate::cli::{PasswordArgs, ResizeArgs, RollbackArgs, UpdateArgs};
use crate::output::{self, Output};
use crate::workspaces::Workspaces;

use super::format::{change_name, fmt_time, guest, size};

pub async fn password(
    backend: &Workspaces,
    out: &Output,
    args: PasswordArgs,
) -> Result<(), Failure> {
    let bar = out.spinner(format!("rotating the password of {}", args.name));
    let result = backend.rotate_password(&args.name).await;
    bar.finish_and_clear();
    let rotated = result?;
    if out.json {
        out.json(&rotated)?;
        return Ok(());
    }
    let ws = &rotated.workspace;
    out.line(format!(
        "Workspace {} has a new password; the old one no longer works.",
        ws.name.as_str()
    ));
    out.line(format!("  URL:       {}", ws.url));
    out.line(format!("  Password:  {}", rotated.password.expose()));
    out.note("The password is shown only this once and is not stored anywhere: keep it now.");
    Ok(())
}

pub async fn resize(backend: &Workspaces, out: &Output, args: ResizeArgs) -> Result<(), Failure> {
    let options = swarm::ResizeOptions {
        cpus: args.cpus,
        cpu_kind: args.cpu_kind.clone(),
        memory_mb: args.memory,
        storage_gb: args.storage,
    };
    // Bad sizes are refused before any Fly call.
    let notes = backend.resize_notes(&args.name, &options).await?;
    for note in &notes {
        out.note(format!("note: {note}"));
    }
    let bar = out.spinner(format!("resizing {}", args.name));
    let result = backend.resize(&args.name, &options).await;
    bar.finish_and_clear();
    let resized = result?;
    if out.json {
        out.json(&resized)?;
        return Ok(());
    }
    let ws = &resized.workspace;
    if resized.changed {
        out.line(format!("Workspace {} resized.", ws.name.as_str()));
    } else {
        out.line(format!(
            "Workspace {} already has this size; nothing changed.",
            ws.name.as_str()
        ));
    }
    out.line(format!("  Size:      {}", size(ws)));
    for note in resized.notes.iter().filter(|note| !notes.contains(note)) {
        out.note(format!("note: {note}"));
    }
    if resized.restarted_for_volume {
        out.note("The machine was restarted so it sees the grown volume.");
    }
    Ok(())
}

pub async fn update(backend: &Workspaces, out: &Output, args: UpdateArgs) -> Result<(), Failure> {
    let bar = out.spinner(format!("updating {} to {}", args.name, args.image));
    let result = backend.update_image(&args.name, &args.image).await;
    bar.finish_and_clear();
    image_changed(out, &result?)
}

pub async fn rollback(
    backend: &Workspaces,
    out: &Output,
    args: RollbackArgs,
) -> Result<(), Failure> {
    if args.machine {
        return rollback_machine(backend, out, &args.name).await;
    }
    // An unknown version is refused before any Fly call.
    let target = backend.rollback_target(&args.name, args.to).await?;
    let bar = out.spinner(format!(
        "rolling {} back to version {} ({})",
        args.name, target.version, target.image
    ));
    let result = backend.rollback(&args.name, args.to).await;
    bar.finish_and_clear();
    image_changed(out, &result?)
}

async fn rollback_machine(backend: &Workspaces, out: &Output, name: &str) -> Result<(), Failure> {
    // Nothing to return to is refused before any Fly call.
    let target = backend.machine_rollback_target(name).await?;
    let bar = out.spinner(format!(
        "rolling {name}'s machine back to before its last {} ({}, {})",
        change_name(&target.replaced_by),
        target.image,
        guest(&target.guest)
    ));
    let result = backend.rollback_machine(name).await;
    bar.finish_and_clear();
    let done = result?;
    if out.json {
        out.json(&done)?;
        return Ok(());
    }
    let ws = &done.workspace;
    out.line(format!(
        "Workspace {} runs its machine config from before its last {} again.",
        ws.name.as_str(),
        change_name(&done.to.replaced_by)
    ));
    out.line(format!("  Image:     {}", ws.spec.image));
    if let Some(version) = &done.version {
        out.line(format!(
            "  Version:   {} (new image version)",
            version.version
        ));
    }
    out.line(format!("  Size:      {}", size(ws)));
    out.line(format!("  Status:    {}", ws.status));
    if let Some(snapshot) = &done.snapshot_before {
        out.note(format!("The volume was snapshotted first ({snapshot})."));
    }
    out.note(format!(
        "`swarm rollback {} --machine` again returns to {} with {}.",
        ws.name.as_str(),
        done.from.image,
        guest(&done.from.guest)
    ));
    Ok(())
}

fn image_changed(out: &Output, changed: &ImageChanged) -> Result<(), Failure> {
    if out.json {
        out.json(changed)?;
        return Ok(());
    }
    let ws = &changed.workspace;
    let to = &changed.to;
    let how = match to.rollback_of {
        Some(of) => format!(" (a rollback to version {of})"),
        None => String::new(),
    };
    out.line(format!(
        "Workspace {} runs version {}{how}: {}",
        ws.name.as_str(),
        to.version,
        to.image
    ));
    if let Some(digest) = &to.digest {
        out.line(format!("  Digest:    {digest}"));
    }
    out.line(format!("  Size:      {}", size(ws)));
    out.line(format!("  Status:    {}", ws.status));
    if let Some(snapshot) = &to.snapshot_before {
        out.note(format!(
            "The volume was snapshotted first ({snapshot}); `swarm rollback {}` goes back.",
            ws.name.as_str()
        ));
    }
    Ok(())
}

pub async fn versions(backend: &Workspaces, out: &Output, name: &str) -> Result<(), Failure> {
    let versions = backend.versions(name).await?;
    if out.json {
        out.json(&versions)?;
        return Ok(());
    }
    let last = versions.last().map(|v| v.version);
    let rows = versions
        .iter()
        .map(|v| {
            vec![
                format!(
                    "{}{}",
                    v.version,
                    if Some(v.version) == last { " *" } else { "" }
                ),
                v.image.clone(),
                v.guest.map_or_else(
                    || "-".to_owned(),
                    |g| format!("{}x{} {}", g.cpus, g.cpu_kind, output::memory(g.memory_mb)),
                ),
                fmt_time(v.at),
                match v.rollback_of {
                    Some(of) => format!("rollback to {of}"),
                    None => String::new(),
                },
            ]
        })
        .collect();
    out.table(&["version", "image", "size", "since", "note"], rows)
        .context("writing the versions")?;
    out.note("* runs now");
    Ok(())
}
