//! `fly-sim`: a local Fly.io on a port. Prints `listening on http://HOST:PORT` first.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use fly_sim::{Latency, Sim, SimConfig};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LatencyArg {
    Zero,
    Fly,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RateLimitsArg {
    Fly,
    Off,
}

fn unit_interval(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} must be between 0 and 1"))
    }
}

fn positive(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{v} must be a positive number"))
    }
}

/// A local Fly.io: Machines REST, GraphQL, logs and the <app>.fly.dev proxy.
#[derive(Debug, Parser)]
#[command(name = "fly-sim", version)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:4280")]
    listen: String,
    /// Latency profile: `fly` models Fly's timings, `zero` answers at once.
    #[arg(long, value_enum, default_value = "fly")]
    latency: LatencyArg,
    /// Share of requests that fail before doing anything (500/502/503/429/reset).
    #[arg(long, default_value = "0", value_parser = unit_interval)]
    fault_rate: f64,
    /// Share of mutations applied whose response is then lost (500 or reset).
    #[arg(long, default_value = "0", value_parser = unit_interval)]
    ambiguous_rate: f64,
    /// Fly's documented rate limits, or none.
    #[arg(long, value_enum, default_value = "fly")]
    rate_limits: RateLimitsArg,
    /// Add `Retry-After: 1` to 429 answers.
    #[arg(long)]
    retry_after: bool,
    /// Seed for faults, latency draws and ids.
    #[arg(long, default_value = "0")]
    seed: u64,
    /// Persist the world here (JSON, mode 0600) and reload it on start.
    #[arg(long)]
    state_file: Option<PathBuf>,
    /// Wait for another sim to release the state file instead of failing.
    #[arg(long)]
    wait_lock: bool,
    /// Accept only this token (Bearer or FlyV1). Without it, any token is accepted.
    #[arg(long, env = "FLY_SIM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The organisation slug of the simulated account.
    #[arg(long, default_value = "personal")]
    org: String,
    /// Model durations are multiplied by this (0.01 = 100x faster).
    #[arg(long, default_value = "1", value_parser = positive)]
    time_scale: f64,
    /// App names owned by "other organisations" (any `taken-*` name is too). Repeatable.
    #[arg(long = "taken-name")]
    taken_names: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FLY_SIM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    // Handlers first, so a signal right after the first line is never fatal.
    let signals = Signals::install()?;
    let config = SimConfig {
        latency: match args.latency {
            LatencyArg::Zero => Latency::Zero,
            LatencyArg::Fly => Latency::Fly,
        },
        fault_rate: args.fault_rate,
        ambiguous_rate: args.ambiguous_rate,
        rate_limits: matches!(args.rate_limits, RateLimitsArg::Fly),
        seed: args.seed,
        state_file: args.state_file,
        token: args.token,
        org: args.org,
        time_scale: args.time_scale,
        retry_after: args.retry_after,
        taken_names: args.taken_names,
        wait_lock: args.wait_lock,
        record: false,
        record_draws: false,
        latency_p50_only: false,
    };
    let sim = match Sim::start(config, &args.listen).await {
        Ok(sim) => sim,
        Err(e @ fly_sim::SimError::Config(_)) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
        Err(e) => return Err(e).context("fly-sim could not start"),
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", sim.base_url())?;
        out.flush()?;
    }
    signals.wait().await;
    sim.shutdown().await;
    Ok(())
}

/// SIGTERM and SIGINT (Ctrl-C elsewhere), registered before serving.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
                int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
