//! Running the real `swarm` binary as a child process: wall time, and peak RSS read
//! the honest way (the kernel's `ru_maxrss` of the child, via GNU time's `wait4`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// `nproc` and the CPU model, for the report.
pub fn machine_line() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!("machine: {cores} cores, {model}; load average {load}")
}

/// The `swarm` binary: the given path, else the one beside this executable.
pub fn swarm_bin(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(p) => p,
        None => std::env::current_exe()?
            .parent()
            .context("no folder for the current executable")?
            .join("swarm"),
    };
    if !path.is_file() {
        bail!(
            "{} not found: build it first (cargo build --release -p swarm-cli) or pass --swarm-bin",
            path.display()
        );
    }
    Ok(path)
}

/// Environment of a `swarm` run against `fly_url` with the store at `db`.
pub fn swarm_env(fly_url: &str, db: &Path) -> Vec<(String, String)> {
    vec![
        ("FLY_API_TOKEN".into(), "bench-token".into()),
        ("FLY_FLAPS_BASE_URL".into(), fly_url.into()),
        ("FLY_API_BASE_URL".into(), fly_url.into()),
        ("SWARM_DB".into(), format!("sqlite://{}", db.display())),
        ("SWARM_CONFIG".into(), "/dev/null".into()),
    ]
}

/// One finished run.
#[derive(Debug)]
pub struct Run {
    pub wall: Duration,
    /// Peak resident set of the `swarm` process, KiB (`None` without GNU time).
    pub max_rss_kib: Option<u64>,
    pub stdout: Vec<u8>,
}

const GNU_TIME: &str = "/usr/bin/time";

/// Runs `bin args` with `env`; with `measure_rss`, under GNU time (`%M`: the child's
/// `ru_maxrss` from `wait4`). Fails on a non-zero exit.
pub async fn run(
    bin: &Path,
    args: &[&str],
    env: &[(String, String)],
    measure_rss: bool,
) -> anyhow::Result<Run> {
    let rss_file = tempfile::NamedTempFile::new()?;
    let use_time = measure_rss && Path::new(GNU_TIME).is_file();
    let mut cmd = if use_time {
        let mut c = tokio::process::Command::new(GNU_TIME);
        c.arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(rss_file.path())
            .arg(bin);
        c
    } else {
        tokio::process::Command::new(bin)
    };
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::null());
    let start = Instant::now();
    let out = cmd.output().await.context("run swarm")?;
    let wall = start.elapsed();
    if !out.status.success() {
        bail!(
            "swarm {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let max_rss_kib = if use_time {
        std::fs::read_to_string(rss_file.path())
            .ok()
            .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()))
    } else {
        None
    };
    Ok(Run {
        wall,
        max_rss_kib,
        stdout: out.stdout,
    })
}

/// Median of a sample.
pub fn median<T: Copy + PartialOrd>(values: &[T]) -> T {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
