//! `swarm-bench`: the benchmarks of issue 7, against a real fly-sim over loopback HTTP,
//! a real SQLite store and, for the CLI scenarios, the real `swarm` binary as a child
//! process. Figures and how to read them: `docs/PERFORMANCE.md`.
//!
//! ```text
//! cargo build --release -p swarm-cli -p swarm-bench
//! target/release/swarm-bench create --runs 5      # S1: plan's sequence vs ours, cold/warm/pool
//! target/release/swarm-bench pool --runs 3        # S2: creates from a warm pool vs baseline
//! target/release/swarm-bench concurrent --n 100    # S3: 100 at once, stop, start, delete
//! target/release/swarm-bench reconcile --n 10000   # S4: reconcile of 10,000 (latency zero)
//! target/release/swarm-bench list --n 10000        # S5: swarm list / show with 10,000
//! target/release/swarm-bench serve --n 200         # S6: controller reconcile of 200 + API
//! target/release/swarm-bench suspend --runs 7      # S9: time to usable, stop vs suspend
//! ```

mod bound;
mod cli_runs;
mod create_bench;
mod dashboard;
mod scenarios;
mod spans;
mod suspend;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "swarm-bench", about = "Benchmarks of issue 7 against fly-sim")]
struct Args {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// S1: one create until started: the plan's sequence (image cold and warm) beside
    /// ours (image cold and warm, and from the pool), with a per-step breakdown
    /// (latency fly, rate limits fly).
    Create {
        #[arg(long, default_value = "5")]
        runs: usize,
        /// First sim seed; run i uses seed + i (same seed for swarm and baseline).
        #[arg(long, default_value = "1")]
        seed: u64,
        /// Every latency draw at its p50, so swarm and the baseline meet exactly the
        /// same latencies (the per-run bound is then the same for both).
        #[arg(long)]
        p50: bool,
    },
    /// S2: creates that take a warm-pool slot, against the sequential baseline
    /// (latency fly, rate limits fly).
    Pool {
        #[arg(long, default_value = "3")]
        runs: usize,
        #[arg(long, default_value = "1")]
        seed: u64,
        /// Slots filled, then taken by as many creates, per run.
        #[arg(long, default_value = "3")]
        slots: usize,
        /// Every latency draw at its p50.
        #[arg(long)]
        p50: bool,
    },
    /// S3: N workspaces created at once, then stopped, started and deleted
    /// (latency fly, rate limits fly).
    Concurrent {
        #[arg(long, default_value = "100")]
        n: usize,
        #[arg(long, default_value = "1")]
        runs: usize,
        #[arg(long, default_value = "1")]
        seed: u64,
    },
    /// S4: `swarm reconcile` (the binary, a child process) over N workspaces, latency zero.
    Reconcile {
        #[arg(long, default_value = "10000")]
        n: usize,
        #[arg(long, default_value = "3")]
        runs: usize,
        /// The `swarm` binary (default: beside this one).
        #[arg(long)]
        swarm_bin: Option<std::path::PathBuf>,
    },
    /// S6 (issue 9): one controller reconcile pass over N workspaces (latency fly,
    /// rate limits fly) while a client lists workspaces through the HTTP API.
    Serve {
        #[arg(long, default_value = "200")]
        n: usize,
        #[arg(long, default_value = "3")]
        runs: usize,
    },
    /// S10 (issue 20): the dashboard's list page over N workspaces: weight and answer time.
    Dashboard {
        #[arg(long, default_value = "1000")]
        n: usize,
        #[arg(long, default_value = "50")]
        runs: usize,
    },
    /// S9 (issue 19): time to usable (started, then code-server's /healthz answering)
    /// after `stop` vs after `suspend` (latency fly, rate limits fly).
    Suspend {
        #[arg(long, default_value = "7")]
        runs: usize,
        #[arg(long, default_value = "1")]
        seed: u64,
    },
    /// S5: `swarm list` and `swarm show` (the binary) over a store of N records.
    List {
        #[arg(long, default_value = "10000")]
        n: usize,
        #[arg(long, default_value = "21")]
        runs: usize,
        #[arg(long)]
        swarm_bin: Option<std::path::PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!("{}", cli_runs::machine_line());
    match args.scenario {
        Scenario::Create { runs, seed, p50 } => rt.block_on(create_bench::create(runs, seed, p50)),
        Scenario::Pool {
            runs,
            seed,
            slots,
            p50,
        } => rt.block_on(scenarios::pool(runs, seed, slots, p50)),
        Scenario::Serve { n, runs } => rt.block_on(scenarios::serve(n, runs)),
        Scenario::Suspend { runs, seed } => rt.block_on(suspend::suspend(runs, seed)),
        Scenario::Dashboard { n, runs } => rt.block_on(dashboard::dashboard(n, runs)),
        Scenario::Concurrent { n, runs, seed } => rt.block_on(scenarios::concurrent(n, runs, seed)),
        Scenario::Reconcile { n, runs, swarm_bin } => {
            let bin = cli_runs::swarm_bin(swarm_bin)?;
            rt.block_on(scenarios::reconcile(&bin, n, runs))
        }
        Scenario::List { n, runs, swarm_bin } => {
            let bin = cli_runs::swarm_bin(swarm_bin)?;
            rt.block_on(scenarios::list(&bin, n, runs))
        }
    }
}
