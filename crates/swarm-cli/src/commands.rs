//! One function per command: call `swarm`, print the result.

use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::Context as _;
use futures::StreamExt as _;
use serde_json::json;
use swarm::{
    CreateOptions, CreateStep, Health, ImageChanged, ReconcileAction, Replaced, WorkspaceRecord,
};

use crate::Failure;
use crate::backend::Target;
use crate::cli::{
    CreateArgs, DeleteArgs, LogsArgs, MoveArgs, PasswordArgs, ResizeArgs, RestoreArgs,
    RollbackArgs, SnapshotAction, SnapshotArgs, StopArgs, UpdateArgs,
};
use crate::output::{self, Output};
use crate::remote::ServerTarget;
use crate::settings::{Settings, SettingsError};
use crate::workspaces::Workspaces;

pub async fn create(backend: &Workspaces, out: &Output, args: CreateArgs) -> Result<(), Failure> {
    let options = create_options(&args)?;
    let notes = backend.create_notes(&options)?;
    for note in &notes {
        out.note(format!("note: {note}"));
    }
    let bar = out.spinner(format!("creating workspace {}", options.name));
    let progress = |step: &CreateStep| {
        let (done, next) = match step {
            CreateStep::IntentRecorded { .. } => {
                ("recorded the workspace".to_owned(), "creating the Fly app")
            }
            CreateStep::App { name, adopted } => (
                format!("app {name}{}", adopted_note(*adopted)),
                "volume and IPs",
            ),
            CreateStep::Volume { id, adopted } => {
                (format!("volume {id}{}", adopted_note(*adopted)), "IPs")
            }
            CreateStep::Ips { addresses } => (format!("IPs {}", addresses.join(", ")), "machine"),
            CreateStep::Machine { id, adopted } => (
                format!("machine {id}{}", adopted_note(*adopted)),
                "waiting for code-server to start",
            ),
            CreateStep::Started { machine_id } => (format!("machine {machine_id} started"), "done"),
            CreateStep::PoolSlot {
                app,
                volume,
                addresses,
            } => (
                format!(
                    "took warm-pool slot {app} (volume {}, IPs {})",
                    volume.as_deref().unwrap_or("none"),
                    addresses.join(", ")
                ),
                "machine",
            ),
        };
        out.step(&bar, done);
        bar.set_message(next);
    };
    let result = backend.create(&options, &progress).await;
    bar.finish_and_clear();
    let created = result?;
    if out.json {
        out.json(&created)?;
        return Ok(());
    }
    let ws = &created.workspace;
    out.line(format!("Workspace {} is running.", ws.name.as_str()));
    out.line(format!("  URL:       {}", ws.url));
    out.line(format!("  Password:  {}", created.password.expose()));
    out.line(format!("  Size:      {}", size(ws)));
    out.note("The password is shown only this once and is not stored anywhere: keep it now.");
    // Through a server the notes come with the result.
    for note in created.notes.iter().filter(|note| !notes.contains(note)) {
        out.note(format!("note: {note}"));
    }
    if backend.on_local_fly() {
        out.note(
            "This workspace lives on the local Fly.io (a simulation on this machine): its URL is not served on the internet. \
             Set FLY_API_TOKEN to create real workspaces.",
        );
    }
    Ok(())
}

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

/// The operation that replaced a machine config, as the user typed it.
fn change_name(operation: &str) -> &str {
    match operation {
        "machine_rollback" => "machine rollback",
        other => other,
    }
}

fn guest(guest: &swarm::GuestSize) -> String {
    format!(
        "{}x{} {}",
        guest.cpus,
        guest.cpu_kind,
        output::memory(guest.memory_mb)
    )
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

/// RFC 3339 to the second: precise enough to tell versions apart, short in a table.
fn fmt_time(t: time::OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn adopted_note(adopted: bool) -> &'static str {
    if adopted {
        " (found from an earlier attempt)"
    } else {
        ""
    }
}

pub fn create_options(args: &CreateArgs) -> Result<CreateOptions, Failure> {
    let mut env = BTreeMap::new();
    for pair in &args.env {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(Failure::usage(format!(
                "invalid env {pair:?}: use KEY=VALUE, e.g. --env GIT_AUTHOR_NAME=Alice"
            )));
        };
        if env.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(Failure::usage(format!("invalid env {key:?}: given twice")));
        }
    }
    Ok(CreateOptions {
        name: args.name.clone(),
        region: args.region.clone(),
        cpus: args.cpus,
        cpu_kind: args.cpu_kind.clone(),
        memory_mb: args.memory,
        storage_gb: args.storage,
        image: args.image.clone(),
        env,
        ip: args.ip.clone(),
        idle_timeout: args.idle_timeout.clone(),
        dotfiles: args.dotfiles.clone(),
        init: args.init.as_deref().map(read_init_script).transpose()?,
        idle_policy: args.idle_policy.clone(),
        ..CreateOptions::default()
    })
}

/// `--init FILE`: the script's text (the rules on it are `validate_create`'s).
fn read_init_script(path: &std::path::Path) -> Result<String, Failure> {
    let bytes = std::fs::read(path).map_err(|e| {
        Failure::usage(format!(
            "invalid init {:?}: cannot read it: {e}",
            path.display()
        ))
    })?;
    if bytes.len() > swarm::first_boot::MAX_INIT_SCRIPT_BYTES {
        return Err(Failure::usage(format!(
            "invalid init {:?}: must be at most 64 KiB ({} bytes); put a longer setup in a dotfiles repository",
            path.display(),
            bytes.len()
        )));
    }
    String::from_utf8(bytes).map_err(|_| {
        Failure::usage(format!(
            "invalid init {:?}: must be a text script (UTF-8)",
            path.display()
        ))
    })
}

fn size(ws: &WorkspaceRecord) -> String {
    let g = &ws.spec.guest;
    format!(
        "{} × {} CPU, {} memory, {} GB volume, region {}",
        g.cpus,
        g.cpu_kind,
        output::memory(g.memory_mb),
        ws.spec.storage_gb,
        ws.spec.region
    )
}

pub async fn list(backend: &Workspaces, out: &Output) -> Result<(), Failure> {
    if out.json {
        // Whole records: the JSON document is the full record of each workspace.
        out.json_document(&backend.list_json().await?)
            .context("writing the list")?;
        return Ok(());
    }
    let workspaces = backend.list_summaries().await?;
    if workspaces.is_empty() {
        out.note("No workspaces yet. Create one with `swarm create NAME`.");
        return Ok(());
    }
    let rows = workspaces
        .into_iter()
        .map(|ws| {
            let g = ws.guest;
            let cost = ws.cost_now();
            vec![
                ws.name.as_str().to_owned(),
                ws.status.to_string(),
                ws.region,
                format!("{}x{} {}", g.cpus, g.cpu_kind, output::memory(g.memory_mb)),
                format!("{} GB", ws.storage_gb),
                cost.to_string(),
                ws.url,
            ]
        })
        .collect();
    out.table(
        &[
            "name", "status", "region", "size", "volume", "cost/mo", "url",
        ],
        rows,
    )
    .context("writing the list")?;
    Ok(())
}

pub async fn cost(backend: &Workspaces, out: &Output, name: Option<&str>) -> Result<(), Failure> {
    let report = backend.cost(name).await?;
    if out.json {
        out.json(&report)?;
        return Ok(());
    }
    if report.workspaces.is_empty() {
        out.note("No workspaces yet, so nothing to pay for. Create one with `swarm create NAME`.");
        return Ok(());
    }
    let mut rows = report
        .workspaces
        .iter()
        .map(|w| {
            let mut row = vec![
                w.name.clone(),
                w.status.to_string(),
                format!("{}/mo", w.now),
                w.monthly.running.to_string(),
                w.monthly.stopped.to_string(),
                w.monthly.suspended.to_string(),
            ];
            if name.is_some() {
                row.push(match (w.snapshots_gb, w.snapshots) {
                    (Some(gb), Some(cost)) => format!("{gb:.2} GB, {cost}/mo"),
                    _ => "-".into(),
                });
            }
            row
        })
        .collect::<Vec<_>>();
    let mut headers = vec!["name", "status", "now", "running", "stopped", "suspended"];
    if name.is_some() {
        headers.push("snapshots");
    }
    // The sums: NOW as things stand (snapshots past the free allowance included),
    // RUNNING if every workspace ran all month (what a budget is held to).
    let mut total = vec![
        "total".to_owned(),
        String::new(),
        format!("{}/mo", report.total_now),
        report.total_running.to_string(),
        String::new(),
        String::new(),
    ];
    if name.is_some() {
        total.push(String::new());
    }
    rows.push(total);
    out.table(&headers, rows).context("writing the costs")?;
    if name.is_none() {
        out.note("Snapshots are not counted here: `swarm cost NAME` lists them.");
    }
    out.note(format!(
        "An estimate from Fly.io's published prices ({}, region {}, taken {}); other regions can cost more.",
        report.prices.source, report.prices.region, report.prices.taken
    ));
    Ok(())
}

pub async fn show(backend: &Workspaces, out: &Output, name: &str) -> Result<(), Failure> {
    let ws = backend.show(name).await?;
    if out.json {
        out.json(&ws)?;
        return Ok(());
    }
    let fmt_time = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| t.to_string())
    };
    let mut rows = vec![
        ("name", ws.name.as_str().to_owned()),
        ("status", ws.status.to_string()),
        ("url", ws.url.clone()),
        ("size", size(&ws)),
        ("image", ws.spec.image.clone()),
        ("ip", ws.spec.ip_mode.to_string()),
        ("idle timeout", output::duration(ws.spec.idle_timeout_secs)),
        (
            "dotfiles",
            ws.spec.dotfiles.clone().unwrap_or_else(|| "-".into()),
        ),
        (
            "init script",
            ws.spec
                .init_script
                .as_ref()
                .map_or_else(|| "-".into(), |s| format!("{} bytes", s.len())),
        ),
        ("idle policy", ws.spec.idle_policy.as_str().to_owned()),
        ("app", ws.app.clone().unwrap_or_else(|| "-".into())),
        (
            "machine",
            ws.machine_id.clone().unwrap_or_else(|| "-".into()),
        ),
        ("volume", ws.volume_id.clone().unwrap_or_else(|| "-".into())),
        (
            "addresses",
            ws.ips
                .iter()
                .map(|ip| format!("{} ({})", ip.address, ip.kind.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("id", ws.id.to_string()),
        ("created", fmt_time(ws.created_at)),
        ("updated", fmt_time(ws.updated_at)),
    ];
    if !ws.spec.env.is_empty() {
        rows.push((
            "env",
            ws.spec.env.keys().cloned().collect::<Vec<_>>().join(", "),
        ));
    }
    if let Some(previous) = &ws.previous_machine {
        rows.push((
            "before",
            format!(
                "{}, {} (until its {}; `swarm rollback {} --machine`)",
                previous.image,
                guest(&previous.guest),
                change_name(&previous.replaced_by),
                ws.name.as_str()
            ),
        ));
    }
    if let Some(error) = &ws.last_error {
        rows.push(("last error", error.clone()));
    }
    rows.extend(first_boot_rows(backend, &ws).await);
    for (key, value) in rows {
        out.line(format!("{:<13} {value}", format!("{key}:")));
    }
    Ok(())
}

/// How the dotfiles and init script of the last boot ended, read from the volume with
/// one `exec` while the workspace runs (the files are the image's `first-boot.sh`'s).
async fn first_boot_rows(
    backend: &Workspaces,
    ws: &WorkspaceRecord,
) -> Vec<(&'static str, String)> {
    let steps = swarm::first_boot::configured_steps(&ws.spec);
    if steps.is_empty() {
        return Vec::new();
    }
    if ws.status != swarm::WorkspaceStatus::Running {
        return vec![(
            "first boot",
            "read while it runs (the outcome of each boot is kept on its volume)".to_owned(),
        )];
    }
    let options = swarm::ExecOptions {
        command: swarm::first_boot::outcome_command(swarm::config::DEFAULT_MOUNT_PATH, &steps),
        timeout_secs: Some(10),
        start_first: false,
    };
    match backend.exec(ws.name.as_str(), &options).await {
        Ok(done) => swarm::first_boot::describe_outcomes(&steps, &done.output.stdout)
            .into_iter()
            .map(|(step, said)| {
                let key = if step == "init" {
                    "init ran"
                } else {
                    "dotfiles ran"
                };
                (key, said)
            })
            .collect(),
        Err(failure) => vec![("first boot", format!("(not read: {})", failure.message))],
    }
}

pub async fn start(backend: &Workspaces, out: &Output, name: &str) -> Result<(), Failure> {
    let bar = out.spinner(format!("starting {name}"));
    let result = backend.start(name).await;
    bar.finish_and_clear();
    let change = result?;
    if out.json {
        out.json(&change)?;
    } else if change.changed && change.previous == swarm::WorkspaceStatus::Suspended {
        out.line(format!(
            "Workspace {name} resumed: {}",
            change.workspace.url
        ));
    } else if change.changed {
        out.line(format!(
            "Workspace {name} started: {}",
            change.workspace.url
        ));
    } else {
        out.line(format!(
            "Workspace {name} was already running: {}",
            change.workspace.url
        ));
    }
    Ok(())
}

pub async fn suspend(backend: &Workspaces, out: &Output, name: &str) -> Result<(), Failure> {
    let bar = out.spinner(format!("suspending {name}"));
    let result = backend.suspend(name).await;
    bar.finish_and_clear();
    let change = result?;
    if out.json {
        out.json(&change)?;
    } else if !change.changed {
        out.line(format!("Workspace {name} was already suspended."));
    } else if change.workspace.status == swarm::WorkspaceStatus::Suspended {
        out.line(format!(
            "Workspace {name} suspended. `swarm start {name}` resumes it where it was."
        ));
    } else {
        out.line(format!(
            "Workspace {name} could not be suspended and Fly stopped it instead; `swarm start {name}` boots it."
        ));
    }
    Ok(())
}

pub async fn stop(backend: &Workspaces, out: &Output, args: StopArgs) -> Result<(), Failure> {
    let bar = out.spinner(format!("stopping {}", args.name));
    let result = backend.stop(&args.name, args.force).await;
    bar.finish_and_clear();
    let change = result?;
    if out.json {
        out.json(&change)?;
    } else if change.changed {
        out.line(format!(
            "Workspace {} stopped. Its files are kept; `swarm start {}` resumes it.",
            args.name, args.name
        ));
    } else {
        out.line(format!("Workspace {} was already stopped.", args.name));
    }
    Ok(())
}

pub async fn delete(backend: &Workspaces, out: &Output, args: DeleteArgs) -> Result<(), Failure> {
    // Existence first, so a typo is an error before any question is asked.
    let ws = backend.show(&args.name).await?;
    confirm(
        out,
        args.yes,
        &format!("delete {}", args.name),
        &format!(
            "Delete workspace {} and its volume with all its files? This cannot be undone.",
            args.name
        ),
        &args.name,
    )?;
    let bar = out.spinner(format!("deleting {}", ws.name.as_str()));
    let result = backend.delete(&args.name).await;
    bar.finish_and_clear();
    let deleted = result?;
    if out.json {
        out.json(&deleted)?;
    } else if deleted.changed {
        out.line(format!(
            "Workspace {} deleted ({}).",
            args.name,
            deleted.removed.join(", ")
        ));
    } else {
        out.line(format!("Workspace {} was already deleted.", args.name));
    }
    Ok(())
}

/// Asks on a terminal for a destructive command (the user types `expected`); refuses
/// off a terminal unless `--yes` was given. Nothing has changed when this fails.
fn confirm(
    out: &Output,
    yes: bool,
    action: &str,
    question: &str,
    expected: &str,
) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() || out.json {
        return Err(Failure::usage(format!(
            "{action} needs confirmation: pass --yes (nothing was changed)"
        )));
    }
    eprint!("{question} Type {expected} to confirm: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the confirmation")?;
    if answer.trim() != expected {
        out.note("Not confirmed.");
        return Err(Failure {
            code: 1,
            message: format!("not confirmed; nothing was changed ({action})"),
        });
    }
    Ok(())
}

pub async fn health(backend: &Workspaces, out: &Output, name: &str) -> Result<(), Failure> {
    let health: Health = backend.health(name).await?;
    if out.json {
        out.json(&health)?;
        return Ok(());
    }
    let status = serde_json::to_value(health.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned));
    out.line(format!("{}: {}", name, status.unwrap_or_default()));
    out.line(format!("  {}", health.summary));
    if let Some(uptime) = health.uptime_secs {
        out.line(format!("  uptime: {}", output::duration(uptime)));
    }
    if let Some(idle) = health.idle_since {
        let idle = idle
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        out.line(format!("  idle since: {idle}"));
    }
    Ok(())
}

pub async fn logs(backend: &Workspaces, out: &Output, args: LogsArgs) -> Result<(), Failure> {
    let lines = backend.logs(&args.name, args.lines as usize).await?;
    if !args.follow {
        if out.json {
            out.json(&lines)?;
        } else {
            for line in &lines {
                out.line(format_log(line));
            }
        }
        return Ok(());
    }
    // Following: JSON lines (one document per line) under --json, ended by Ctrl-C.
    for line in &lines {
        print_log(out, line)?;
    }
    let mut stream = backend.follow_logs(&args.name).await?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            next = stream.next() => match next {
                Some(Ok(line)) => print_log(out, &line)?,
                Some(Err(error)) => return Err(error),
                None => return Ok(()),
            },
        }
    }
}

fn print_log(out: &Output, line: &swarm::LogLine) -> anyhow::Result<()> {
    if out.json {
        out.line(serde_json::to_string(line)?);
    } else {
        out.line(format_log(line));
    }
    Ok(())
}

fn format_log(line: &swarm::LogLine) -> String {
    format!(
        "{} {} [{}] {}",
        line.timestamp, line.instance, line.level, line.message
    )
}

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

/// `pool fill`'s region and size: flags, else env or `[pool]` in the config file.
pub fn pool_fill_target(
    settings: &Settings,
    args: &crate::cli::PoolFillArgs,
) -> Result<(String, u32), Failure> {
    let region = args
        .region
        .clone()
        .or_else(|| settings.pool_region.value.clone())
        .unwrap_or_else(|| settings.region.value.clone());
    let size = args.size.or(settings.pool_size.value).ok_or_else(|| {
        Failure::usage(
            "invalid size: pool fill needs a size: give --size N (1 to 50), or set `size` under [pool] in the config file (or SWARM_POOL_SIZE)".to_owned(),
        )
    })?;
    Ok((region, size))
}

pub async fn pool(
    backend: &Workspaces,
    out: &Output,
    settings: &Settings,
    args: crate::cli::PoolArgs,
) -> Result<(), Failure> {
    match args.action {
        crate::cli::PoolAction::Fill(fill) => {
            let (region, size) = pool_fill_target(settings, &fill)?;
            let bar = out.spinner(format!("filling the pool in {region} to {size} slot(s)"));
            let result = backend.local("pool")?.app.pool_fill(&region, size).await;
            bar.finish_and_clear();
            let filled = result?;
            if out.json {
                out.json(&filled)?;
                return Ok(());
            }
            out.line(format!(
                "Pool in {}: {} ready slot(s) (asked for {}); {} made now.",
                filled.region,
                filled.ready,
                filled.size,
                filled.created.len()
            ));
            pool_table(out, &filled.pool)
        }
        crate::cli::PoolAction::List => {
            let listing = backend.local("pool")?.app.pool_list().await?;
            if out.json {
                out.json(&listing)?;
                return Ok(());
            }
            if listing.slots.is_empty() {
                out.note("The pool is empty. Fill it with `swarm pool fill --region R --size N`.");
                return Ok(());
            }
            pool_table(out, &listing)
        }
        crate::cli::PoolAction::Drain => {
            let bar = out.spinner("draining the pool");
            let result = backend.local("pool")?.app.pool_drain().await;
            bar.finish_and_clear();
            let drained = result?;
            if out.json {
                out.json(&drained)?;
                return Ok(());
            }
            out.line(format!(
                "Pool drained: removed {} slot(s){}.",
                drained.removed.len(),
                if drained.removed.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", drained.removed.join(", "))
                }
            ));
            Ok(())
        }
    }
}

fn pool_table(out: &Output, listing: &swarm::PoolListing) -> Result<(), Failure> {
    let rows = listing
        .slots
        .iter()
        .map(|view| {
            let slot = &view.slot;
            vec![
                slot.app.clone(),
                slot.state.to_string(),
                slot.region.clone(),
                format!(
                    "{} GB {}",
                    slot.volume_size_gb,
                    slot.volume_id.as_deref().unwrap_or("-")
                ),
                slot.ips
                    .iter()
                    .map(|ip| ip.address.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                // The slot machine's image, prepared on the volume's host ("-": cold).
                slot.warmed_image.clone().unwrap_or_else(|| "-".to_owned()),
                slot.machine
                    .as_deref()
                    .map_or_else(|| "none".to_owned(), |id| format!("{id} (stopped)")),
                view.monthly_cost_usd.to_string(),
            ]
        })
        .collect();
    out.table(
        &[
            "app",
            "state",
            "region",
            "volume",
            "ips",
            "warm image",
            "machine",
            "per month",
        ],
        rows,
    )
    .context("writing the pool list")?;
    out.line(format!(
        "{} ready; about {} a month in all (stopped slots pay no CPU or memory). Prices: {}.",
        listing.ready, listing.monthly_cost_usd, listing.prices_source
    ));
    Ok(())
}

fn list_or_nothing(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".into()
    } else {
        items.join(", ")
    }
}

/// `swarm config`: every effective value and where it came from. Never the token itself.
pub fn config(
    out: &Output,
    settings: &Settings,
    target: &Target,
    server: Option<&ServerTarget>,
) -> Result<(), Failure> {
    let server_json = server.map(|server| {
        json!({
            "url": server.shown_url(),
            "source": server.source_name(),
            "token": {"set": true, "source": server.token_source.to_string()},
        })
    });
    let store = crate::backend::store_path(settings, target).map(|p| p.display().to_string());
    let (fly, token) = match target {
        Target::Fly {
            source,
            machines_url,
            api_url,
            ..
        } => (
            json!({"mode": "fly", "machines_api": machines_url, "graphql_api": api_url}),
            json!({"set": true, "source": source.to_string()}),
        ),
        Target::Local { reason } => (
            json!({"mode": "local", "reason": match reason {
                crate::backend::LocalReason::NoToken => "no Fly.io token found",
                crate::backend::LocalReason::Forced => "--local",
            }}),
            json!({"set": false}),
        ),
    };
    if out.json {
        out.json(&json!({"settings": settings, "fly": fly, "token": token, "store": store.as_ref().ok(), "server": server_json}))?;
        return Ok(());
    }
    let mut rows = vec![
        row("org", &settings.org.value, &settings.org.source),
        row("region", &settings.region.value, &settings.region.source),
        row(
            "regions",
            &settings.regions.value.join(" "),
            &settings.regions.source,
        ),
        row("image", &settings.image.value, &settings.image.source),
        row(
            "cpus",
            &settings.cpus.value.to_string(),
            &settings.cpus.source,
        ),
        row(
            "cpu_kind",
            settings.cpu_kind.value.as_deref().unwrap_or("(by cpus)"),
            &settings.cpu_kind.source,
        ),
        row(
            "memory",
            &format!("{} MB", settings.memory.value),
            &settings.memory.source,
        ),
        row(
            "storage",
            &format!("{} GB", settings.storage.value),
            &settings.storage.source,
        ),
        row(
            "idle_timeout",
            &settings.idle_timeout.value,
            &settings.idle_timeout.source,
        ),
        row("ip", &settings.ip.value, &settings.ip.source),
        row(
            "dotfiles",
            settings.dotfiles.value.as_deref().unwrap_or("(none)"),
            &settings.dotfiles.source,
        ),
        row(
            "pool.region",
            settings
                .pool_region
                .value
                .as_deref()
                .unwrap_or("(the default region)"),
            &settings.pool_region.source,
        ),
        row(
            "pool.size",
            &settings
                .pool_size
                .value
                .map_or("(none: pool fill needs --size)".to_owned(), |n| {
                    n.to_string()
                }),
            &settings.pool_size.source,
        ),
        vec![
            "db".into(),
            store.unwrap_or_else(|e| format!("({e})")),
            settings.db.source.to_string(),
        ],
        vec![
            "config file".into(),
            settings
                .config_file
                .value
                .as_ref()
                .map_or("(none)".into(), |p| p.display().to_string()),
            settings.config_file.source.to_string(),
        ],
    ];
    match target {
        Target::Fly {
            source,
            machines_url,
            api_url,
            ..
        } => {
            rows.push(vec!["fly".into(), "Fly.io API".into(), String::new()]);
            rows.push(vec![
                "machines api".into(),
                machines_url.clone(),
                "env FLY_FLAPS_BASE_URL or default".into(),
            ]);
            rows.push(vec![
                "graphql api".into(),
                api_url.clone(),
                "env FLY_API_BASE_URL or default".into(),
            ]);
            rows.push(vec![
                "token".into(),
                "(set, hidden)".into(),
                source.to_string(),
            ]);
        }
        Target::Local { .. } => {
            rows.push(vec![
                "fly".into(),
                "local (fly-sim, in-process)".into(),
                fly["reason"].as_str().unwrap_or("").into(),
            ]);
            rows.push(vec!["token".into(), "(none)".into(), String::new()]);
        }
    }
    if let Some(server) = server {
        rows.push(vec![
            "server".into(),
            server.shown_url().to_owned(),
            server.source_name().into(),
        ]);
        rows.push(vec![
            "server token".into(),
            "(set, hidden)".into(),
            server.token_source.to_string(),
        ]);
    }
    out.table(&["setting", "value", "source"], rows)
        .context("writing the configuration")?;
    if server.is_some() {
        out.note("Workspace commands go to the server; the Fly.io settings above apply on this machine only.");
    }
    Ok(())
}

fn row(key: &str, value: &str, source: &crate::settings::Source) -> Vec<String> {
    vec![key.to_owned(), value.to_owned(), source.to_string()]
}

impl From<SettingsError> for Failure {
    fn from(error: SettingsError) -> Self {
        Failure::usage(error.0)
    }
}
