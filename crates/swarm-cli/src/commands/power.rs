//! Start, suspend, stop, delete.

use crate::Failure;
use crate::cli::{DeleteArgs, StopArgs};
use crate::output::Output;
use crate::workspaces::Workspaces;

use super::confirm::confirm;

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
