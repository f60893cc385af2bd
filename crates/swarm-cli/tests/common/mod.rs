//! Helpers shared by the corpus, canary and store-damage tests: a user's home with no
//! Fly token, the `swarm` binary run as a real process, and a fly-sim in this process.
#![allow(dead_code, clippy::unwrap_used)] // each test file uses a part; a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use fly_sim::{Sim, SimConfig, SimHandle};
use serde_json::Value;

/// A Fly token that must never be seen anywhere.
pub const CANARY_TOKEN: &str = "fm2_canary-token-6b1d0e57c3a94f28";

/// A user's machine: its own home, config and state folders, and no Fly token.
pub struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `swarm` with a clean environment: only PATH, HOME and the XDG folders.
    pub fn swarm(&self) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("swarm"));
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

    /// `swarm` pointed at `sim` through flyctl's env vars, with the canary token; the
    /// store is the default one for a real Fly: `state/swarm/swarm.db`.
    pub fn swarm_at(&self, sim: &SimHandle) -> Command {
        let mut cmd = self.swarm();
        cmd.env("FLY_API_TOKEN", CANARY_TOKEN)
            .env("FLY_FLAPS_BASE_URL", sim.base_url())
            .env("FLY_API_BASE_URL", sim.base_url());
        cmd
    }

    /// The store `swarm_at` uses by default.
    pub fn default_db(&self) -> PathBuf {
        self.path().join("state/swarm/swarm.db")
    }

    /// The config file read by default.
    pub fn default_config(&self) -> PathBuf {
        self.path().join("config/swarm/config.toml")
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `cmd` with `args`; fails the test on a panic or a leaked canary token.
pub fn run<S: AsRef<OsStr>>(mut cmd: Command, args: &[S]) -> Run {
    let output = cmd.args(args).output().unwrap();
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
    assert!(
        !run.stderr.contains("panicked"),
        "swarm panicked on {shown:?}:\n{}",
        run.stderr
    );
    assert!(
        !run.stdout.contains(CANARY_TOKEN) && !run.stderr.contains(CANARY_TOKEN),
        "token leaked on {shown:?}:\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    run
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub fn start_sim(rt: &tokio::runtime::Runtime) -> SimHandle {
    rt.block_on(Sim::start(SimConfig::default(), "127.0.0.1:0"))
        .unwrap()
}

/// Every file under `dir`, recursively.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
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

/// What a folder holds: every folder and file under it, with each file's mode and bytes.
pub type Tree = BTreeMap<PathBuf, Option<(u32, Vec<u8>)>>;

pub fn tree(dir: &Path) -> Tree {
    use std::os::unix::fs::PermissionsExt as _;
    let mut out = Tree::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
                out.insert(path, None);
            } else if meta.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path, Some((meta.permissions().mode() & 0o7777, bytes)));
            } else {
                out.insert(path, Some((meta.permissions().mode(), Vec::new())));
            }
        }
    }
    out
}

/// The first difference between two trees, for a readable failure.
pub fn tree_diff(before: &Tree, after: &Tree) -> Option<String> {
    for (path, was) in before {
        match after.get(path) {
            None => return Some(format!("{} was removed", path.display())),
            Some(now) if now != was => return Some(format!("{} changed", path.display())),
            Some(_) => {}
        }
    }
    after
        .keys()
        .find(|path| !before.contains_key(*path))
        .map(|path| format!("{} was created", path.display()))
}

/// True when `needle` occurs in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
