#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test
//! The `swarm` binary as users run it: real processes, a real SQLite file, real HTTP to a
//! local Fly (embedded, or a fly-sim in this test process reached through the env vars).

mod bad_input;
mod config;
mod help_and_refusals;
mod images_and_snapshots;
mod lifecycle;
mod password_and_resize;
mod pool;
mod server;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use fly_sim::{Sim, SimConfig, SimHandle};
use serde_json::Value;

const CANARY_TOKEN: &str = "fm2_canary-token-0123456789abcdef";

/// A user's machine: its own home, config and state folders, and no Fly token.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn swarm(&self) -> Command {
        Command::from_std(self.std_swarm())
    }

    fn std_swarm(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("swarm"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env("XDG_STATE_HOME", self.path().join("state"))
            .env("XDG_DATA_HOME", self.path().join("data"))
            .env("SWARM_LOCAL_LATENCY", "zero")
            .env("NO_COLOR", "1");
        cmd
    }

    /// `swarm` pointed at a separately started Fly through flyctl's env vars.
    fn swarm_at(&self, sim: &SimHandle) -> Command {
        Command::from_std(self.std_swarm_at(sim))
    }

    fn std_swarm_at(&self, sim: &SimHandle) -> std::process::Command {
        let mut cmd = self.std_swarm();
        cmd.env("FLY_API_TOKEN", CANARY_TOKEN)
            .env("FLY_FLAPS_BASE_URL", sim.base_url())
            .env("FLY_API_BASE_URL", sim.base_url())
            .env("SWARM_DB", format!("sqlite://{}", self.db().display()));
        cmd
    }

    fn db(&self) -> PathBuf {
        self.path().join("swarm.db")
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

fn run(mut cmd: impl std::borrow::BorrowMut<Command>, args: &[&str]) -> Run {
    let output = cmd.borrow_mut().args(args).output().unwrap();
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "swarm panicked on {args:?}:\n{}",
        run.stderr
    );
    assert!(
        !run.stdout.contains(CANARY_TOKEN) && !run.stderr.contains(CANARY_TOKEN),
        "token leaked on {args:?}"
    );
    run
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn start_sim(rt: &tokio::runtime::Runtime) -> SimHandle {
    rt.block_on(Sim::start(SimConfig::default(), "127.0.0.1:0"))
        .unwrap()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
