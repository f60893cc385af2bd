//! `create`: options from the flags, the steps as they happen.

use std::collections::BTreeMap;

use swarm::{CreateOptions, CreateStep};

use crate::Failure;
use crate::cli::CreateArgs;
use crate::output::Output;
use crate::workspaces::Workspaces;

use super::format::size;

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
