//! The `fly-sim` binary: first stdout line, inspection over HTTP, clean exit on SIGTERM.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn binary_prints_its_address_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fly-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--latency",
            "zero",
            "--state-file",
        ])
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("first line")
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stats: serde_json::Value = rt.block_on(async {
        reqwest::get(format!("{url}/__sim/stats"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(stats["apps"], 0);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit {exit:?}");
    assert!(state.exists(), "state persisted on SIGTERM");
}

#[test]
fn bad_flags_exit_2_with_a_clear_message() {
    for args in [
        vec!["--fault-rate", "2"],
        vec!["--latency", "slow"],
        vec!["--time-scale", "0"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_fly-sim"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(args[0]), "{args:?}: {err}");
    }
}
