//! Health checks and logs.

use futures::StreamExt as _;
use swarm::Health;

use crate::Failure;
use crate::cli::LogsArgs;
use crate::output::{self, Output};
use crate::workspaces::Workspaces;

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
