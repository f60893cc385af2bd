//! Reading workspaces: list, cost, show.

use anyhow::Context as _;
use swarm::WorkspaceRecord;

use crate::Failure;
use crate::output::{self, Output};
use crate::workspaces::Workspaces;

use super::format::{change_name, guest, size};

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
