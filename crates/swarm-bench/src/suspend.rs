//! S9 (issue 19): time to usable after `stop` vs after `suspend`: `swarm start` until
//! the machine is started, then code-server's `/healthz` through the proxy until it
//! answers 200, on `fly-sim --latency fly`.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fly_sim::{Knob, Latency, Sim, SimConfig, SimHandle};
use swarm::{CreateOptions, Provider as _};

use crate::cli_runs::{median, ms};
use crate::scenarios::open_swarm;

/// One start measured: until `started`, and until code-server answered.
struct Usable {
    started_ms: f64,
    usable_ms: f64,
}

async fn start_and_probe(
    swarm: &crate::scenarios::BenchSwarm,
    name: &str,
    app: &str,
) -> anyhow::Result<Usable> {
    let began = Instant::now();
    swarm.start(name).await.context("start")?;
    let started_ms = ms(began.elapsed());
    let deadline = began + Duration::from_secs(60);
    loop {
        let probe = swarm.provider().probe(app).await;
        if probe.http_status == Some(200) {
            break;
        }
        if Instant::now() > deadline {
            bail!("code-server did not answer within 60 s: {probe:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Usable {
        started_ms,
        usable_ms: ms(began.elapsed()),
    })
}

/// The knob draws made for `machine` since `from` (an index into the draw log).
fn drawn(sim: &SimHandle, machine: &str, from: usize) -> String {
    let parts: Vec<String> = sim.draws()[from..]
        .iter()
        .filter(|d| d.label == machine)
        .filter(|d| matches!(d.knob, Knob::Boot | Knob::Resume | Knob::AppBoot))
        .map(|d| format!("{:?} {} ms", d.knob, d.model_ms))
        .collect();
    parts.join(" + ")
}

pub async fn suspend(runs: usize, seed: u64) -> anyhow::Result<()> {
    let sim = Sim::start(
        SimConfig {
            latency: Latency::Fly,
            rate_limits: true,
            seed,
            record_draws: true,
            ..SimConfig::default()
        },
        "127.0.0.1:0",
    )
    .await?;
    let url = sim.base_url();
    let dir = tempfile::tempdir()?;
    let swarm = open_swarm(&url, &dir.path().join("swarm.db")).await?;
    let name = "s9";
    let created = swarm
        .create(&CreateOptions {
            name: name.to_owned(),
            ..CreateOptions::default()
        })
        .await
        .context("create")?;
    let app = created.workspace.app_name().to_owned();
    let machine = created
        .workspace
        .machine_id
        .clone()
        .context("the workspace has a machine")?;
    println!(
        "## S9: time to usable after stop vs after suspend (latency fly, rate limits fly, seed {seed}), {runs} runs"
    );
    println!(
        "| run | after | start → started ms | start → healthz 200 ms | model draws (machine {machine}) |"
    );
    println!("| --- | --- | --- | --- | --- |");
    let mut stop_usable = Vec::new();
    let mut stop_started = Vec::new();
    let mut suspend_usable = Vec::new();
    let mut suspend_started = Vec::new();
    for i in 0..runs {
        // Alternate which goes first, so neither always follows the other.
        let order = if i % 2 == 0 {
            ["stop", "suspend"]
        } else {
            ["suspend", "stop"]
        };
        for how in order {
            if how == "stop" {
                swarm.stop(name, false).await.context("stop")?;
            } else {
                let change = swarm.suspend(name).await.context("suspend")?;
                if change.workspace.status != swarm::WorkspaceStatus::Suspended {
                    bail!("Fly stopped the workspace instead of suspending it");
                }
            }
            let from = sim.draws().len();
            let usable = start_and_probe(&swarm, name, &app).await?;
            println!(
                "| {i} | {how} | {:.0} | {:.0} | {} |",
                usable.started_ms,
                usable.usable_ms,
                drawn(&sim, &machine, from)
            );
            let (started, usable_all) = if how == "stop" {
                (&mut stop_started, &mut stop_usable)
            } else {
                (&mut suspend_started, &mut suspend_usable)
            };
            started.push(usable.started_ms);
            usable_all.push(usable.usable_ms);
        }
    }
    println!();
    println!("| median of {runs} | after stop | after suspend | ratio |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| start → started ms | {:.0} | {:.0} | {:.2} |",
        median(&stop_started),
        median(&suspend_started),
        median(&stop_started) / median(&suspend_started)
    );
    println!(
        "| start → healthz 200 ms | {:.0} | {:.0} | {:.2} |",
        median(&stop_usable),
        median(&suspend_usable),
        median(&stop_usable) / median(&suspend_usable)
    );
    sim.shutdown().await;
    Ok(())
}
