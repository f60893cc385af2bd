#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test
//! The `swarm` binary as users run it: real processes, a real SQLite file, real HTTP to a
//! local Fly (embedded, or a fly-sim in this test process reached through the env vars).

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

/// The whole life of a workspace, each step a separate invocation, both output modes.
fn lifecycle(home: &Home, swarm: &dyn Fn() -> Command) {
    let created = run(swarm(), &["create", "demo", "--json"]).ok().json();
    let password = created["password"]
        .as_str()
        .expect("password in JSON")
        .to_owned();
    assert!(password.len() >= 20, "password too short: {password}");
    assert_eq!(created["workspace"]["name"], "demo");
    assert_eq!(created["workspace"]["status"], "running");
    assert_eq!(created["workspace"]["url"], "https://demo.fly.dev");

    // The password is never stored.
    for entry in walk(home.path()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&password),
            "the password is written in {}",
            entry.display()
        );
    }

    let human = run(
        swarm(),
        &["create", "demo2", "--region", "fra", "--cpus", "2"],
    )
    .ok();
    assert!(
        human.stdout.contains("Workspace demo2 is running."),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("Password:"), "{}", human.stdout);
    assert!(
        human.stdout.contains("performance"),
        "2 CPUs are performance: {}",
        human.stdout
    );

    let list = run(swarm(), &["list", "--json"]).ok().json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["demo", "demo2"]);
    let table = run(swarm(), &["list"]).ok();
    let mut lines = table.stdout.lines();
    assert!(
        lines.next().unwrap().starts_with("NAME"),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains("demo2") && table.stdout.contains("fra"),
        "{}",
        table.stdout
    );
    // The table (read from the store's list columns) says what the records say.
    assert_eq!(table.stdout, table_of(&list));

    let shown = run(swarm(), &["show", "demo", "--json"]).ok().json();
    assert_eq!(shown["spec"]["region"], "ams");
    assert!(
        run(swarm(), &["show", "demo"])
            .ok()
            .stdout
            .contains("https://demo.fly.dev")
    );

    let health = run(swarm(), &["health", "demo", "--json"]).ok().json();
    assert_eq!(health["status"], "healthy", "{health}");
    assert!(
        run(swarm(), &["health", "demo"])
            .ok()
            .stdout
            .starts_with("demo: healthy")
    );

    let logs = run(swarm(), &["logs", "demo", "-n", "5", "--json"])
        .ok()
        .json();
    assert!(
        !logs.as_array().unwrap().is_empty(),
        "a started machine has log lines"
    );
    assert!(logs.as_array().unwrap().len() <= 5);
    assert!(
        !run(swarm(), &["logs", "demo", "-n", "5"])
            .ok()
            .stdout
            .is_empty()
    );

    let stopped = run(swarm(), &["stop", "demo", "--json"]).ok().json();
    assert_eq!(stopped["workspace"]["status"], "stopped");
    assert!(
        run(swarm(), &["stop", "demo"])
            .ok()
            .stdout
            .contains("already stopped")
    );
    let health = run(swarm(), &["health", "demo", "--json"]).ok().json();
    assert_eq!(health["status"], "unhealthy");

    let started = run(swarm(), &["start", "demo", "--json"]).ok().json();
    assert_eq!(started["workspace"]["status"], "running");
    assert!(
        run(swarm(), &["start", "demo"])
            .ok()
            .stdout
            .contains("already running")
    );
    assert!(
        run(swarm(), &["stop", "demo2", "--force"])
            .ok()
            .stdout
            .contains("stopped")
    );

    let report = run(swarm(), &["reconcile", "--json"]).ok().json();
    assert_eq!(report["checked"], 2, "{report}");
    assert!(
        run(swarm(), &["reconcile"])
            .ok()
            .stdout
            .contains("Checked 2")
    );

    let deleted = run(swarm(), &["delete", "demo", "--yes", "--json"])
        .ok()
        .json();
    assert_eq!(deleted["changed"], true);
    assert!(
        run(swarm(), &["delete", "demo2", "--yes"])
            .ok()
            .stdout
            .contains("deleted")
    );
    assert_eq!(
        run(swarm(), &["list", "--json"]).ok().json(),
        serde_json::json!([])
    );
    assert!(
        run(swarm(), &["list"])
            .ok()
            .stderr
            .contains("No workspaces yet")
    );
}

/// `swarm list`'s table, computed from `swarm list --json`'s records: columns padded to
/// the widest cell, two spaces apart, no trailing spaces.
fn table_of(records: &Value) -> String {
    let memory = |mb: u64| {
        if mb.is_multiple_of(1024) {
            format!("{} GB", mb / 1024)
        } else {
            format!("{mb} MB")
        }
    };
    let mut rows = vec![
        [
            "NAME", "STATUS", "REGION", "SIZE", "VOLUME", "COST/MO", "URL",
        ]
        .map(str::to_owned),
    ];
    for ws in records.as_array().unwrap() {
        let guest = &ws["spec"]["guest"];
        let record: swarm::WorkspaceRecord = serde_json::from_value(ws.clone()).unwrap();
        let cost = swarm::cost::MonthlyCost::of_record(&record)
            .at(swarm::cost::MonthlyCost::billed_as(record.status));
        rows.push([
            ws["name"].as_str().unwrap().to_owned(),
            ws["status"].as_str().unwrap().to_owned(),
            ws["spec"]["region"].as_str().unwrap().to_owned(),
            format!(
                "{}x{} {}",
                guest["cpus"],
                guest["cpu_kind"].as_str().unwrap(),
                memory(guest["memory_mb"].as_u64().unwrap())
            ),
            format!("{} GB", ws["spec"]["storage_gb"]),
            cost.to_string(),
            ws["url"].as_str().unwrap().to_owned(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|row| row[i].chars().count()).max().unwrap())
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            format!("{}\n", cells.join("  ").trim_end())
        })
        .collect()
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

#[test]
fn without_a_token_the_local_fly_runs_the_whole_lifecycle_across_invocations() {
    let home = Home::new();
    let first = run(home.swarm(), &["list"]).ok();
    assert!(
        first.stderr.contains("using the local Fly.io"),
        "{}",
        first.stderr
    );
    lifecycle(&home, &|| home.swarm());
    // The local Fly's world and the local store live apart from real records.
    let state = home.path().join("state/swarm");
    assert!(
        state.join("local.db").is_file(),
        "local store in {}",
        state.display()
    );
    assert!(
        state.join("local.fly.json").is_file(),
        "local Fly world in {}",
        state.display()
    );
    assert!(
        !state.join("swarm.db").exists(),
        "no real store was touched"
    );
    let world: Value =
        serde_json::from_slice(&std::fs::read(state.join("local.fly.json")).unwrap()).unwrap();
    let text = world.to_string();
    assert!(
        !text.contains("\"demo\""),
        "the local Fly still holds demo after delete: {text:.400}"
    );
}

#[test]
fn pointed_at_a_separate_fly_sim_through_flyctl_env_vars_the_same_commands_work() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let home = Home::new();
    let first = run(home.swarm_at(&sim), &["list"]).ok();
    assert!(
        !first.stderr.contains("local Fly"),
        "a token means the real path: {}",
        first.stderr
    );
    lifecycle(&home, &|| home.swarm_at(&sim));
    let stats = sim.stats();
    assert_eq!(
        (stats.apps, stats.machines, stats.volumes, stats.ips),
        (0, 0, 0, 0),
        "{stats:?}"
    );
    assert!(stats.requests_total > 20);
    rt.block_on(sim.shutdown());
}

#[test]
fn config_shows_values_with_their_sources_and_never_the_token() {
    let home = Home::new();
    let dir = home.path().join("config/swarm");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), "region = \"fra\"\nstorage = 20\n").unwrap();
    let out = run(
        home.swarm()
            .env("FLY_API_TOKEN", CANARY_TOKEN)
            .env("FLY_ORG", "acme"),
        &["config"],
    )
    .ok();
    assert!(
        out.stdout.contains("fra") && out.stdout.contains("config.toml"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("env FLY_ORG"), "{}", out.stdout);
    assert!(out.stdout.contains("env FLY_API_TOKEN"), "{}", out.stdout);
    let json = run(
        home.swarm().env("FLY_API_TOKEN", CANARY_TOKEN),
        &["config", "--json", "--region-x"],
    );
    assert_eq!(json.code, 2, "unknown flag");
    let json = run(
        home.swarm().env("FLY_API_TOKEN", CANARY_TOKEN),
        &["config", "--json"],
    )
    .ok()
    .json();
    assert_eq!(json["settings"]["region"]["value"], "fra");
    assert_eq!(json["token"]["set"], true);
    let local = run(home.swarm(), &["config", "--json"]).ok().json();
    assert_eq!(local["fly"]["mode"], "local");
}

/// Every default the config file sets reaches the workspace, `ip` and `cpu_kind` too.
#[test]
fn a_create_takes_its_defaults_from_the_config_file() {
    let home = Home::new();
    let dir = home.path().join("config/swarm");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        "region = \"fra\"\nstorage = 20\ncpu_kind = \"performance\"\nip = \"dedicated\"\nidle_timeout = \"45m\"\n",
    )
    .unwrap();
    let created = run(home.swarm(), &["create", "conf", "--json"]).ok().json();
    let spec = &created["workspace"]["spec"];
    assert_eq!(spec["region"], "fra", "{created}");
    assert_eq!(spec["storage_gb"], 20, "{created}");
    assert_eq!(spec["guest"]["cpu_kind"], "performance", "{created}");
    assert_eq!(spec["ip_mode"], "dedicated", "{created}");
    assert_eq!(spec["idle_timeout_secs"], 45 * 60, "{created}");
    // A flag still wins over the file.
    let shared = run(
        home.swarm(),
        &["create", "flag", "--cpu-kind", "shared", "--json"],
    )
    .ok()
    .json();
    assert_eq!(shared["workspace"]["spec"]["guest"]["cpu_kind"], "shared");
    for name in ["conf", "flag"] {
        run(home.swarm(), &["delete", name, "--yes"]).ok();
    }
}

#[test]
fn every_command_has_help_with_an_example_and_completions_print() {
    let home = Home::new();
    for cmd in [
        "create",
        "list",
        "show",
        "start",
        "stop",
        "delete",
        "health",
        "logs",
        "password",
        "resize",
        "update",
        "versions",
        "rollback",
        "move",
        "snapshot",
        "snapshot create",
        "snapshot list",
        "restore",
        "reconcile",
        "pool",
        "pool fill",
        "pool list",
        "pool drain",
        "config",
        "completions",
        "exec",
        "secret",
        "secret set",
        "secret list",
        "secret unset",
    ] {
        let mut args: Vec<&str> = cmd.split(' ').collect();
        args.push("--help");
        let out = run(home.swarm(), &args).ok();
        assert!(
            out.stdout.contains("Example"),
            "`swarm {cmd} --help` has no example:\n{}",
            out.stdout
        );
    }
    let bash = run(home.swarm(), &["completions", "bash"]).ok();
    assert!(
        bash.stdout.contains("swarm") && bash.stdout.contains("complete"),
        "{}",
        bash.stdout
    );
    assert_eq!(run(home.swarm(), &["completions", "tcsh"]).code, 2);
}

#[test]
fn a_wrong_token_is_a_failure_that_says_what_to_do() {
    let rt = runtime();
    let sim = rt
        .block_on(Sim::start(
            SimConfig {
                token: Some("the-right-one".into()),
                ..SimConfig::default()
            },
            "127.0.0.1:0",
        ))
        .unwrap();
    let home = Home::new();
    let out = run(home.swarm_at(&sim), &["create", "demo"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("fly auth login") || out.stderr.contains("FLY_API_TOKEN"),
        "{}",
        out.stderr
    );
    // The create was undone: nothing is left on Fly, and the record is not running.
    assert_eq!(sim.stats().apps, 0);
    rt.block_on(sim.shutdown());
}

#[test]
fn delete_without_yes_off_a_terminal_refuses_and_keeps_the_workspace() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let home = Home::new();
    run(home.swarm_at(&sim), &["create", "keep"]).ok();
    let out = run(home.swarm_at(&sim), &["delete", "keep"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--yes"), "{}", out.stderr);
    assert_eq!(sim.stats().machines, 1);
    run(home.swarm_at(&sim), &["delete", "keep", "--yes"]).ok();
    rt.block_on(sim.shutdown());
}

#[test]
fn name_taken_on_fly_is_a_clear_error() {
    let rt = runtime();
    let sim = rt
        .block_on(Sim::start(
            SimConfig {
                taken_names: vec!["popular".into()],
                ..SimConfig::default()
            },
            "127.0.0.1:0",
        ))
        .unwrap();
    let home = Home::new();
    let out = run(home.swarm_at(&sim), &["create", "popular"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("already taken") && out.stderr.contains("another name"),
        "{}",
        out.stderr
    );
    assert_eq!(sim.stats().apps, 0, "nothing left behind");
    rt.block_on(sim.shutdown());
}

/// Bad input: exit 2, a message naming the problem, no panic, no API call, no store.
#[test]
fn invalid_inputs_exit_2_name_the_problem_and_change_nothing() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let home = Home::new();
    let long_name = "a".repeat(64);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["create", "Alice"], "name"),
        (vec!["create", "-alice"], "name"),
        (vec!["create", "alice-"], "name"),
        (vec!["create", "al_ice"], "name"),
        (vec!["create", "al.ice"], "name"),
        (vec!["create", ""], "name"),
        (vec!["create", &long_name], "name"),
        (vec!["create", "ålice"], "name"),
        (vec!["create", "a\u{7}b"], "name"),
        (vec!["create", "../etc"], "name"),
        (vec!["create", "9lives"], "name"),
        (vec!["create", "alice", "--region", "xyz"], "region"),
        (vec!["create", "alice", "--region", "AMS"], "region"),
        (vec!["create", "alice", "--region", ""], "region"),
        (vec!["create", "alice", "--cpus", "0"], "cpus"),
        (vec!["create", "alice", "--cpus", "3"], "cpus"),
        (vec!["create", "alice", "--cpus", "-1"], "-1"),
        (vec!["create", "alice", "--cpus", "two"], "cpus"),
        (vec!["create", "alice", "--cpus", "99999999999"], "cpus"),
        (vec!["create", "alice", "--memory", "100"], "memory"),
        (vec!["create", "alice", "--memory", "4096"], "memory"),
        (vec!["create", "alice", "--memory", "1000"], "memory"),
        (
            vec![
                "create",
                "alice",
                "--cpus",
                "2",
                "--cpu-kind",
                "performance",
                "--memory",
                "2048",
            ],
            "memory",
        ),
        (vec!["create", "alice", "--cpu-kind", "turbo"], "cpu"),
        (vec!["create", "alice", "--storage", "0"], "storage"),
        (vec!["create", "alice", "--storage", "501"], "storage"),
        (vec!["create", "alice", "--storage", "1e3"], "storage"),
        (vec!["create", "alice", "--env", "FLY_APP_NAME=x"], "FLY_"),
        (vec!["create", "alice", "--env", "1BAD=x"], "env"),
        (vec!["create", "alice", "--env", "NOEQUALS"], "env"),
        (
            vec!["create", "alice", "--env", "A=1", "--env", "A=2"],
            "env",
        ),
        (
            vec!["create", "alice", "--env", "HASHED_PASSWORD=x"],
            "HASHED_PASSWORD",
        ),
        (vec!["create", "alice", "--env", "BAD-KEY=x"], "env"),
        (vec!["create", "alice", "--image", ""], "image"),
        (vec!["create", "alice", "--image", "has space:1"], "image"),
        (vec!["create", "alice", "--image", "UPPER/case:1"], "image"),
        (vec!["create", "alice", "--image", "img:"], "image"),
        (vec!["create", "alice", "--ip", "v5"], "ip"),
        (
            vec!["create", "alice", "--idle-timeout", "30"],
            "idle_timeout",
        ),
        (
            vec!["create", "alice", "--idle-timeout", "soon"],
            "idle_timeout",
        ),
        (
            vec!["create", "alice", "--idle-timeout", "99999d"],
            "idle_timeout",
        ),
        (vec!["create", "alice", "--bogus"], "--bogus"),
        (vec!["create"], "NAME"),
        (vec!["show", "Bad_Name"], "name"),
        (vec!["start", "-x"], "-x"),
        (vec!["stop", "UPPER"], "name"),
        (vec!["delete", "a b", "--yes"], "name"),
        (vec!["logs", "alice", "-n", "-5"], "-5"),
        (vec!["logs", "alice", "-n", "0"], "lines"),
        (vec!["password", "alice"], "--rotate"),
        (vec!["password", "Bad_Name", "--rotate"], "name"),
        (vec!["resize", "UPPER", "--cpus", "2"], "name"),
        (vec!["resize", "alice", "--cpus", "two"], "cpus"),
        (vec!["resize", "alice", "--storage", "-3"], "-3"),
        (vec!["update", "alice"], "--image"),
        (vec!["update", "alice", "--image", "Not An Image"], "image"),
        (
            vec!["update", "alice", "--image", "img@sha256:xyz"],
            "image",
        ),
        (vec!["update", "Bad_Name", "--image", "img:1"], "name"),
        (vec!["versions", "v_1"], "name"),
        (vec!["rollback", "alice", "--to", "two"], "--to"),
        (vec!["rollback", "alice", "--to", "-1"], "-1"),
        (vec!["rollback", "UPPER"], "name"),
        (vec!["move", "alice"], "--region"),
        (vec!["move", "alice", "--region", "mars"], "region"),
        (vec!["move", "alice", "--region", "../ams"], "region"),
        (vec!["snapshot", "alice"], "alice"),
        (vec!["snapshot", "create"], "NAME"),
        (vec!["snapshot", "list", "Bad_Name"], "name"),
        (vec!["restore", "alice"], "--snapshot"),
        (
            vec!["restore", "alice", "--snapshot", "../../etc/passwd"],
            "snapshot",
        ),
        (vec!["restore", "alice", "--snapshot", "vs_"], "snapshot"),
        (vec!["frobnicate"], "frobnicate"),
        (vec!["list", "--db", "postgres://nope"], "sqlite"),
        (vec!["list", "--db", "/tmp/"], "db"),
        (vec!["list", "--org", "Bad Org"], "org"),
        (
            vec!["list", "--config", "/nonexistent/config.toml"],
            "/nonexistent/config.toml",
        ),
    ];
    assert!(cases.len() >= 30);
    for (args, needle) in &cases {
        for json in [false, true] {
            let before = sim.stats().requests_total;
            let mut args = args.clone();
            if json {
                args.push("--json");
            }
            let out = run(home.swarm_at(&sim), &args);
            assert_eq!(
                out.code, 2,
                "`swarm {args:?}` should exit 2\nstdout:{}\nstderr:{}",
                out.stdout, out.stderr
            );
            assert!(
                out.stderr.to_lowercase().contains(&needle.to_lowercase()),
                "`swarm {args:?}`: message should name {needle:?}:\n{}",
                out.stderr
            );
            assert_eq!(
                sim.stats().requests_total,
                before,
                "`swarm {args:?}` called the Fly API"
            );
            assert!(!home.db().exists(), "`swarm {args:?}` created the store");
            if json {
                // The error as one JSON document on stdout, usage errors included.
                let doc = out.json();
                assert_eq!(doc["exit_code"], 2, "`swarm {args:?}`");
                let error = doc["error"].as_str().unwrap_or_default().to_lowercase();
                assert!(
                    error.contains(&needle.to_lowercase()),
                    "`swarm {args:?}`: {doc}"
                );
            } else {
                assert_eq!(out.stdout, "", "`swarm {args:?}` printed on stdout");
            }
        }
    }
    rt.block_on(sim.shutdown());
}

#[test]
fn a_bad_config_file_is_refused_with_exit_2() {
    let home = Home::new();
    let dir = home.path().join("config/swarm");
    std::fs::create_dir_all(&dir).unwrap();
    for (text, needle) in [
        ("region = ", "config file"),
        ("region = 5", "region"),
        ("regoin = \"ams\"", "regoin"),
        ("storage = 9999", "storage"),
        ("idle_timeout = \"1s\"", "idle_timeout"),
        ("regions = []", "regions"),
        ("regions = [\"../../etc\"]", "regions"),
        ("cpu_kind = \"gpu\"", "cpu"),
    ] {
        std::fs::write(dir.join("config.toml"), text).unwrap();
        let out = run(home.swarm(), &["list"]);
        assert_eq!(out.code, 2, "{text}: {}", out.stderr);
        assert!(
            out.stderr.contains(needle),
            "{text}: message should name {needle}:\n{}",
            out.stderr
        );
    }
    assert!(!home.path().join("state").exists(), "nothing was created");
}

/// Ctrl-C in the middle of a create: exit 130, and `reconcile` then either finishes the
/// workspace or removes every trace of it. Nothing is leaked on Fly either way.
#[test]
fn ctrl_c_during_create_leaves_a_state_reconcile_settles() {
    let rt = runtime();
    let config = SimConfig {
        latency: fly_sim::Latency::Fly,
        time_scale: 0.3,
        ..SimConfig::default()
    };
    let sim = rt.block_on(Sim::start(config, "127.0.0.1:0")).unwrap();
    let home = Home::new();
    let child = home
        .std_swarm_at(&sim)
        .args(["create", "interrupted"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the app exists on Fly, i.e. in the middle of provisioning.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sim.stats().apps == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "create never reached Fly"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("swarm reconcile"), "{stderr}");

    let report = run(home.swarm_at(&sim), &["reconcile", "--json"])
        .ok()
        .json();
    let stats = sim.stats();
    let list = run(home.swarm_at(&sim), &["list", "--json"]).ok().json();
    match list.as_array().unwrap().as_slice() {
        [] => assert_eq!(
            (stats.apps, stats.machines, stats.volumes, stats.ips),
            (0, 0, 0, 0),
            "{report}"
        ),
        [ws] => {
            assert_eq!(ws["status"], "running", "{report}");
            assert_eq!(
                (stats.apps, stats.machines, stats.volumes),
                (1, 1, 1),
                "{report}"
            );
            run(home.swarm_at(&sim), &["delete", "interrupted", "--yes"]).ok();
        }
        more => panic!("one create made {} records", more.len()),
    }
    rt.block_on(sim.shutdown());
}

/// True when the sim's code-server login accepts `password` for `app`.
fn login_accepts(rt: &tokio::runtime::Runtime, sim: &SimHandle, app: &str, password: &str) -> bool {
    rt.block_on(async {
        let response = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("{}/login", sim.base_url()))
            .header(reqwest::header::HOST, format!("{app}.fly.dev"))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(format!("password={password}"))
            .send()
            .await
            .unwrap();
        response.status().is_redirection()
            && response
                .headers()
                .get(reqwest::header::SET_COOKIE)
                .is_some()
    })
}

fn sim_file(
    rt: &tokio::runtime::Runtime,
    sim: &SimHandle,
    app: &str,
    path: &str,
    put: Option<&str>,
) -> Option<String> {
    rt.block_on(async {
        let http = reqwest::Client::new();
        let url = format!("{}/__sim/fs/{path}", sim.base_url());
        let host = format!("{app}.fly.dev");
        if let Some(body) = put {
            let response = http
                .put(&url)
                .header(reqwest::header::HOST, &host)
                .body(body.to_owned())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 204);
        }
        let response = http
            .get(&url)
            .header(reqwest::header::HOST, &host)
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            Some(response.text().await.unwrap())
        } else {
            None
        }
    })
}

fn password_line(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Password:"))
        .unwrap_or_else(|| panic!("no password line in:\n{stdout}"))
        .trim()
        .to_owned()
}

#[test]
fn password_rotate_and_resize_work_in_both_output_modes_and_keep_files() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let home = Home::new();
    password_and_resize(&rt, &sim, &|| home.swarm_at(&sim));
    rt.block_on(sim.shutdown());
}

/// Password rotation and resize of one workspace on `sim`, each step a separate invocation.
fn password_and_resize(rt: &tokio::runtime::Runtime, sim: &SimHandle, swarm: &dyn Fn() -> Command) {
    let created = run(swarm(), &["create", "ops", "--json"]).ok();
    let first = created.json()["password"].as_str().unwrap().to_owned();
    assert!(login_accepts(rt, sim, "ops", &first));
    assert_eq!(
        sim_file(rt, sim, "ops", "project/keep.txt", Some("still here")).as_deref(),
        Some("still here")
    );

    // Human output: the new password once, on stdout; the old one stops working.
    let human = run(swarm(), &["password", "ops", "--rotate"]).ok();
    let second = password_line(&human.stdout);
    assert_eq!(second.len(), 24);
    assert!(
        human.stdout.contains("old one no longer works"),
        "{}",
        human.stdout
    );
    assert!(login_accepts(rt, sim, "ops", &second));
    assert!(!login_accepts(rt, sim, "ops", &first));
    // JSON: one document holding the workspace and the new password.
    let json = run(swarm(), &["password", "ops", "--rotate", "--json"])
        .ok()
        .json();
    let third = json["password"].as_str().unwrap().to_owned();
    assert_eq!(json["workspace"]["name"], "ops");
    assert!(login_accepts(rt, sim, "ops", &third));
    assert!(!login_accepts(rt, sim, "ops", &second));

    // Resize, human then JSON.
    let human = run(swarm(), &["resize", "ops", "--memory", "1024"]).ok();
    assert!(human.stdout.contains("resized"), "{}", human.stdout);
    assert!(
        human.stdout.contains("1 GB memory") || human.stdout.contains("1024"),
        "{}",
        human.stdout
    );
    let storage = json["workspace"]["spec"]["storage_gb"].as_u64().unwrap();
    let bigger = (storage + 2).to_string();
    let resized = run(
        swarm(),
        &[
            "resize",
            "ops",
            "--cpus",
            "2",
            "--storage",
            &bigger,
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(resized["changed"], true);
    assert_eq!(resized["workspace"]["spec"]["guest"]["cpus"], 2);
    assert_eq!(
        resized["workspace"]["spec"]["guest"]["cpu_kind"],
        "performance"
    );
    assert_eq!(resized["workspace"]["spec"]["storage_gb"], storage + 2);
    assert_eq!(resized["workspace"]["status"], "running");
    assert_eq!(
        sim_file(rt, sim, "ops", "project/keep.txt", None).as_deref(),
        Some("still here"),
        "the file survives resize"
    );
    assert!(login_accepts(rt, sim, "ops", &third));

    // Refused sizes: exit 2, the field and rule named, no Fly call, nothing changed.
    let smaller = storage.to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["resize", "ops", "--storage", &smaller], "only grow"),
        (vec!["resize", "ops", "--storage", "501"], "storage"),
        (vec!["resize", "ops", "--cpus", "3"], "cpus"),
        (vec!["resize", "ops", "--memory", "100000"], "memory"),
        (vec!["resize", "ops", "--memory", "4100"], "multiple of 256"),
        (vec!["resize", "ops", "--cpu-kind", "turbo"], "cpu_kind"),
        (vec!["resize", "ops"], "at least one of"),
        (vec!["resize", "nobody", "--cpus", "2"], "nobody"),
        (vec!["password", "nobody", "--rotate"], "nobody"),
    ];
    for (args, needle) in &cases {
        for json in [false, true] {
            let mut args = args.clone();
            if json {
                args.push("--json");
            }
            let before = sim.stats().requests_total;
            let out = run(swarm(), &args);
            assert_eq!(
                out.code, 2,
                "`swarm {args:?}`\nstdout:{}\nstderr:{}",
                out.stdout, out.stderr
            );
            assert!(
                out.stderr.contains(needle),
                "`swarm {args:?}` should name {needle:?}:\n{}",
                out.stderr
            );
            assert_eq!(
                sim.stats().requests_total,
                before,
                "`swarm {args:?}` called the Fly API"
            );
        }
    }
    let shown = run(swarm(), &["show", "ops", "--json"]).ok().json();
    assert_eq!(shown["spec"], resized["workspace"]["spec"]);

    // Machine rollback: back to the guest before the last resize, on Fly's machine,
    // same volume, files kept; a second one returns to where the first left.
    let volume = shown["volume_id"].as_str().unwrap().to_owned();
    let human = run(swarm(), &["rollback", "ops", "--machine"]).ok();
    assert!(
        human.stdout.contains("before its last resize"),
        "{}",
        human.stdout
    );
    let guest = sim_machine_guest(sim, "ops");
    assert_eq!(
        (guest["cpus"].as_u64(), guest["memory_mb"].as_u64()),
        (Some(1), Some(1024)),
        "{guest}"
    );
    let back = run(swarm(), &["rollback", "ops", "--machine", "--json"])
        .ok()
        .json();
    assert_eq!(back["from"]["guest"]["cpus"], 1, "{back}");
    assert_eq!(back["to"]["guest"]["cpus"], 2, "{back}");
    assert_eq!(back["workspace"]["spec"]["guest"]["cpus"], 2, "{back}");
    assert_eq!(
        back["workspace"]["volume_id"].as_str(),
        Some(volume.as_str())
    );
    assert_eq!(sim_machine_guest(sim, "ops")["cpus"], 2);
    assert_eq!(
        sim_file(rt, sim, "ops", "project/keep.txt", None).as_deref(),
        Some("still here"),
        "the file survives a machine rollback"
    );
    assert!(login_accepts(rt, sim, "ops", &third), "password kept");
    // Nothing to roll back to, or both kinds at once: exit 2, no Fly call.
    run(swarm(), &["create", "fresh", "--json"]).ok();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["rollback", "fresh", "--machine"],
            "no earlier machine config",
        ),
        (vec!["rollback", "nobody", "--machine"], "nobody"),
        (vec!["rollback", "ops", "--machine", "--to", "1"], "--to"),
    ];
    for (args, needle) in &cases {
        let before = sim.stats().requests_total;
        let out = run(swarm(), args);
        assert_eq!(out.code, 2, "`swarm {args:?}`\nstderr:{}", out.stderr);
        assert!(out.stderr.contains(needle), "{needle:?} in {}", out.stderr);
        assert_eq!(
            sim.stats().requests_total,
            before,
            "`swarm {args:?}` called Fly"
        );
    }
    run(swarm(), &["delete", "fresh", "--yes"]).ok();
    run(swarm(), &["delete", "ops", "--yes"]).ok();
}

/// The guest of `app`'s live machine, as the sim holds it.
fn sim_machine_guest(sim: &SimHandle, app: &str) -> Value {
    let world = sim.world();
    let found = world["apps"]
        .as_array()
        .and_then(|apps| apps.iter().find(|a| a["name"] == app))
        .unwrap_or_else(|| panic!("app {app} on the sim"));
    let machines: Vec<Value> = match &found["machines"] {
        Value::Array(items) => items.clone(),
        Value::Object(map) => map.values().cloned().collect(),
        _ => Vec::new(),
    };
    machines
        .into_iter()
        .find(|m| !matches!(m["state"].as_str(), Some("destroyed" | "destroying")))
        .map(|m| m["config"]["guest"].clone())
        .unwrap_or_else(|| panic!("a live machine in {app}"))
}

#[test]
fn update_rollback_move_snapshot_and_restore_work_in_both_output_modes_and_keep_files() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let home = Home::new();
    images_regions_and_snapshots(&rt, &sim, &|| home.swarm_at(&sim));
    rt.block_on(sim.shutdown());
}

/// Update, rollback, move, snapshot and restore of one workspace on `sim`.
fn images_regions_and_snapshots(
    rt: &tokio::runtime::Runtime,
    sim: &SimHandle,
    swarm: &dyn Fn() -> Command,
) {
    let created = run(swarm(), &["create", "life", "--json"]).ok();
    let password = created.json()["password"].as_str().unwrap().to_owned();
    let first_image = created.json()["workspace"]["spec"]["image"]
        .as_str()
        .unwrap()
        .to_owned();
    let keep = |put: Option<&str>| sim_file(rt, sim, "life", "project/keep.txt", put);
    assert_eq!(keep(Some("v1")).as_deref(), Some("v1"));

    // update: human, then versions in JSON.
    let human = run(
        swarm(),
        &["update", "life", "--image", "codercom/code-server:4.107.0"],
    )
    .ok();
    assert!(
        human.stdout.contains("runs version 2") && human.stdout.contains("4.107.0"),
        "{}",
        human.stdout
    );
    assert!(
        human.stderr.contains("snapshotted first"),
        "{}",
        human.stderr
    );
    let versions = run(swarm(), &["versions", "life", "--json"]).ok().json();
    assert_eq!(versions.as_array().map(Vec::len), Some(2));
    assert_eq!(versions[1]["image"], "codercom/code-server:4.107.0");
    let table = run(swarm(), &["versions", "life"]).ok();
    assert!(table.stdout.contains("2 *"), "{}", table.stdout);
    assert_eq!(keep(None).as_deref(), Some("v1"), "file survives update");

    // rollback: JSON, then human with --to.
    let rolled = run(swarm(), &["rollback", "life", "--json"]).ok().json();
    assert_eq!(rolled["to"]["version"], 3);
    assert_eq!(rolled["to"]["rollback_of"], 1);
    assert_eq!(rolled["workspace"]["spec"]["image"], first_image.as_str());
    let human = run(swarm(), &["rollback", "life", "--to", "2"]).ok();
    assert!(
        human.stdout.contains("a rollback to version 2"),
        "{}",
        human.stdout
    );
    assert_eq!(keep(None).as_deref(), Some("v1"), "file survives rollback");

    // snapshot create (human) and list (JSON); then the file changes.
    let human = run(swarm(), &["snapshot", "create", "life"]).ok();
    let snapshot = human
        .stdout
        .split_whitespace()
        .find(|word| word.starts_with("vs_"))
        .unwrap_or_else(|| panic!("no snapshot id in {}", human.stdout))
        .to_owned();
    let listed = run(swarm(), &["snapshot", "list", "life", "--json"])
        .ok()
        .json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == snapshot.as_str()),
        "{listed}"
    );
    let table = run(swarm(), &["snapshot", "list", "life"]).ok();
    assert!(table.stdout.contains(&snapshot), "{}", table.stdout);
    assert_eq!(keep(Some("v2")).as_deref(), Some("v2"));

    // move: human, then back in JSON.
    let human = run(swarm(), &["move", "life", "--region", "fra"]).ok();
    assert!(
        human.stdout.contains("moved from ams to fra"),
        "{}",
        human.stdout
    );
    assert_eq!(keep(None).as_deref(), Some("v2"), "file survives move");
    let moved = run(swarm(), &["move", "life", "--region", "ams", "--json"])
        .ok()
        .json();
    assert_eq!(moved["workspace"]["spec"]["region"], "ams");
    assert_eq!(moved["previous_region"], "fra");
    assert_eq!(keep(None).as_deref(), Some("v2"));

    // restore: the snapshot taken before both moves is still listed (Fly keeps a
    // replaced volume's snapshots); off a terminal restore needs --yes.
    let snapshots = run(swarm(), &["snapshot", "list", "life", "--json"])
        .ok()
        .json();
    assert!(
        snapshots
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == snapshot.as_str()
                && s["volume_id"] != moved["workspace"]["volume_id"]),
        "{snapshots}"
    );
    assert_eq!(keep(Some("v3")).as_deref(), Some("v3"));
    let refused = run(swarm(), &["restore", "life", "--snapshot", &snapshot]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert_eq!(keep(None).as_deref(), Some("v3"), "nothing restored");
    let restored = run(
        swarm(),
        &[
            "restore",
            "life",
            "--snapshot",
            &snapshot,
            "--yes",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(restored["workspace"]["status"], "running");
    assert_eq!(
        keep(None).as_deref(),
        Some("v1"),
        "the snapshot's files are back"
    );
    let human = run(
        swarm(),
        &["restore", "life", "--snapshot", &snapshot, "--yes"],
    )
    .ok();
    assert!(
        human.stdout.contains("restored from snapshot"),
        "{}",
        human.stdout
    );
    assert!(
        login_accepts(rt, sim, "life", &password),
        "password kept throughout"
    );

    // Refused after a look at the store or Fly: exit 2, named, nothing changed.
    let world = sim.world();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["rollback", "life", "--to", "9"],
            "versions (1, 2, 3, 4)",
        ),
        (vec!["rollback", "life", "--to", "4"], "runs now"),
        (vec!["move", "life", "--region", "ams"], "already in ams"),
        (
            vec!["restore", "life", "--snapshot", "vs_nothere", "--yes"],
            "snapshot list life",
        ),
        (vec!["update", "nobody", "--image", "img:1"], "nobody"),
        (vec!["versions", "nobody"], "nobody"),
    ];
    for (args, needle) in &cases {
        for json in [false, true] {
            let mut args = args.clone();
            if json {
                args.push("--json");
            }
            let out = run(swarm(), &args);
            assert_eq!(out.code, 2, "`swarm {args:?}`\nstderr:{}", out.stderr);
            assert!(
                out.stderr.contains(needle),
                "`swarm {args:?}`: {}",
                out.stderr
            );
        }
    }
    assert_eq!(sim.world(), world, "nothing changed on Fly");
    run(swarm(), &["delete", "life", "--yes"]).ok();
    assert_eq!(sim.stats().machines + sim.stats().volumes, 0);
}

#[test]
fn pool_fill_list_create_and_drain_in_both_output_modes() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let home = Home::new();
    let swarm = || home.swarm_at(&sim);

    let filled = run(
        swarm(),
        &["pool", "fill", "--region", "ams", "--size", "2", "--json"],
    )
    .ok()
    .json();
    assert_eq!(filled["region"], "ams");
    assert_eq!(filled["ready"], 2);
    assert_eq!(filled["created"].as_array().map(Vec::len), Some(2));
    assert_eq!(filled["pool"]["monthly_cost_usd"], 3.3, "{filled}");
    let stats = sim.stats();
    // Each slot holds a stopped machine.
    assert_eq!((stats.apps, stats.machines, stats.volumes), (2, 2, 2));

    let listed = run(swarm(), &["pool", "list", "--json"]).ok().json();
    let slots = listed["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 2);
    for slot in slots {
        assert!(
            slot["app"].as_str().unwrap().starts_with("swarm-pool-"),
            "{slot}"
        );
        assert_eq!(slot["state"], "ready");
        assert_eq!(slot["region"], "ams");
        assert_eq!(slot["volume_size_gb"], 10);
        assert!(slot["volume_id"].as_str().is_some(), "{slot}");
        assert_eq!(slot["ips"].as_array().map(Vec::len), Some(2), "{slot}");
        assert!(slot["machine"].as_str().is_some(), "{slot}");
        assert!(
            slot["warmed_image"]
                .as_str()
                .is_some_and(|image| image.starts_with("codercom/code-server")),
            "the fill warmed the default image: {slot}"
        );
        assert_eq!(slot["monthly_cost_usd"], 1.65);
    }
    let warmed = slots[0]["warmed_image"].as_str().unwrap().to_owned();
    assert!(listed["prices_source"].as_str().unwrap().contains("fly.io"));
    let human = run(swarm(), &["pool", "list"]).ok();
    for word in [
        "APP",
        "STATE",
        "REGION",
        "VOLUME",
        "IPS",
        "WARM IMAGE",
        warmed.as_str(),
        "MACHINE",
        "PER MONTH",
        "(stopped)",
        "$1.65",
        "$3.30",
    ] {
        assert!(
            human.stdout.contains(word),
            "{word} missing:\n{}",
            human.stdout
        );
    }

    // create takes a slot: the URL is the slot's app.
    let created = run(swarm(), &["create", "alice", "--json"]).ok().json();
    let app = created["workspace"]["app"].as_str().unwrap().to_owned();
    assert!(app.starts_with("swarm-pool-"), "{created}");
    assert_eq!(
        created["workspace"]["url"],
        format!("https://{app}.fly.dev")
    );
    assert_eq!(
        run(swarm(), &["pool", "list", "--json"]).ok().json()["ready"],
        1
    );
    let shown = run(swarm(), &["show", "alice", "--json"]).ok().json();
    assert_eq!(shown["app"], app.as_str());
    run(swarm(), &["stop", "alice"]).ok();
    run(swarm(), &["start", "alice"]).ok();
    let reconciled = run(swarm(), &["reconcile", "--json"]).ok().json();
    assert_eq!(reconciled["pool_slots"], 1, "{reconciled}");
    run(swarm(), &["delete", "alice", "--yes"]).ok();

    let drained = run(swarm(), &["pool", "drain"]).ok();
    assert!(
        drained.stdout.contains("removed 1 slot"),
        "{}",
        drained.stdout
    );
    let empty = run(swarm(), &["pool", "list", "--json"]).ok().json();
    assert_eq!(empty["slots"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        run(swarm(), &["pool", "drain", "--json"]).ok().json()["removed"],
        serde_json::json!([])
    );
    let stats = sim.stats();
    assert_eq!(
        (stats.apps, stats.machines, stats.volumes, stats.ips),
        (0, 0, 0, 0),
        "{stats:?}"
    );
    rt.block_on(sim.shutdown());
}

#[test]
fn pool_fill_reads_the_config_file_and_bad_pool_input_exits_2_changing_nothing() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let home = Home::new();
    let config = home.path().join("swarm.toml");
    let config_arg = config.display().to_string();
    let swarm = || home.swarm_at(&sim);

    // (args, word the error must name, whether swarm (not clap's parser) refused it,
    // so `--json` gets the error as a JSON document)
    for (args, field, ours) in [
        (
            vec!["pool", "fill", "--region", "ams", "--size", "0"],
            "size",
            true,
        ),
        (
            vec!["pool", "fill", "--region", "ams", "--size", "51"],
            "size",
            true,
        ),
        (
            vec!["pool", "fill", "--region", "ams", "--size", "4294967295"],
            "size",
            true,
        ),
        (
            vec!["pool", "fill", "--region", "ams", "--size", "-1"],
            "-1",
            false,
        ),
        (
            vec!["pool", "fill", "--region", "ams", "--size", "two"],
            "size",
            false,
        ),
        (
            vec!["pool", "fill", "--region", "xyz", "--size", "1"],
            "region",
            true,
        ),
        (
            vec!["pool", "fill", "--region", "AMS", "--size", "1"],
            "region",
            true,
        ),
        (vec!["pool", "fill", "--region", "ams"], "size", true),
    ] {
        for json in [false, true] {
            let mut args = args.clone();
            if json {
                args.push("--json");
            }
            let out = run(swarm(), &args);
            assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
            assert!(out.stderr.contains(field), "{args:?}: {}", out.stderr);
            if json && ours {
                assert_eq!(out.json()["exit_code"], 2, "{args:?}");
            }
        }
    }
    assert_eq!(sim.stats().requests_total, 0, "bad input made Fly calls");
    assert!(!home.db().exists(), "bad input opened the store");

    // A bad [pool] table is refused too, naming the key.
    std::fs::write(&config, "[pool]\nregion = \"xyz\"\nsize = 1\n").unwrap();
    let out = run(swarm(), &["--config", &config_arg, "pool", "fill"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("pool region"), "{}", out.stderr);
    std::fs::write(&config, "[pool]\nsize = 0\n").unwrap();
    let out = run(swarm(), &["--config", &config_arg, "pool", "list"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("pool size"), "{}", out.stderr);
    std::fs::write(&config, "[pool]\nsise = 2\n").unwrap();
    let out = run(swarm(), &["--config", &config_arg, "pool", "list"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("sise"), "{}", out.stderr);
    assert_eq!(sim.stats().requests_total, 0);

    // `pool fill` without flags uses [pool]; flags beat it.
    std::fs::write(&config, "[pool]\nregion = \"fra\"\nsize = 1\n").unwrap();
    let shown = run(swarm(), &["--config", &config_arg, "config", "--json"])
        .ok()
        .json();
    assert_eq!(shown["settings"]["pool_region"]["value"], "fra", "{shown}");
    assert_eq!(shown["settings"]["pool_size"]["value"], 1, "{shown}");
    let filled = run(
        swarm(),
        &["--config", &config_arg, "pool", "fill", "--json"],
    )
    .ok()
    .json();
    assert_eq!(filled["region"], "fra");
    assert_eq!(filled["created"].as_array().map(Vec::len), Some(1));
    let filled = run(
        swarm(),
        &[
            "--config",
            &config_arg,
            "pool",
            "fill",
            "--size",
            "2",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        (filled["region"].as_str(), filled["ready"].as_u64()),
        (Some("fra"), Some(2))
    );
    let human = run(swarm(), &["--config", &config_arg, "pool", "fill"]).ok();
    assert!(human.stdout.contains("0 made now"), "{}", human.stdout);
    run(swarm(), &["pool", "drain"]).ok();
    let stats = sim.stats();
    assert_eq!(
        (stats.apps, stats.volumes, stats.ips),
        (0, 0, 0),
        "{stats:?}"
    );
    rt.block_on(sim.shutdown());
}

/// A `swarm serve` process of its own: killed if the test fails half-way.
struct ServerProcess {
    child: std::process::Child,
    base: String,
}

impl ServerProcess {
    /// `swarm serve` from `command` on 127.0.0.1:0, with no background reconcile pass
    /// (the test's own `reconcile` is the one that counts).
    fn spawn(mut command: std::process::Command) -> Self {
        use std::io::BufRead as _;
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0", "--reconcile-every", "0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let base = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {first:?}"))
            .to_owned();
        Self { child, base }
    }

    /// SIGTERM: a graceful stop, exit 0.
    fn stop(mut self) {
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        assert_eq!(self.child.wait().unwrap().code(), Some(0));
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A team's server on `sim` and a token for `user` made on its machine.
fn team_server(home: &Home, sim: &SimHandle, user: &str) -> (ServerProcess, String) {
    let made = run(
        home.swarm_at(sim),
        &["token", "create", "--user", user, "--json"],
    )
    .ok()
    .json();
    let token = made["token"].as_str().unwrap().to_owned();
    (ServerProcess::spawn(home.std_swarm_at(sim)), token)
}

#[test]
fn through_a_server_the_same_commands_run_the_same_lifecycle() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let server_home = Home::new();
    let (server, token) = team_server(&server_home, &sim, "alice");
    // A team member's machine: no Fly token, no store; only the server and a token.
    let member = Home::new();
    let through_server = || {
        let mut cmd = member.swarm();
        cmd.env("SWARM_SERVER", &server.base)
            .env("SWARM_TOKEN", &token);
        cmd
    };
    let first = run(through_server(), &["list"]).ok();
    assert!(
        !first.stderr.contains("local Fly"),
        "the server decides where workspaces live: {}",
        first.stderr
    );
    // The server's home is where a password could be written down: it is not.
    lifecycle(&server_home, &through_server);
    let stats = sim.stats();
    assert_eq!(
        (stats.apps, stats.machines, stats.volumes, stats.ips),
        (0, 0, 0, 0),
        "{stats:?}"
    );
    assert!(
        walk(member.path()).is_empty(),
        "nothing is kept on the member's machine: {:?}",
        walk(member.path())
    );
    server.stop();
    rt.block_on(sim.shutdown());
}

/// `logs -f` through a server: the tail, then new lines as the server streams them
/// (server-sent events), until Ctrl-C.
#[test]
fn through_a_server_logs_follow_streams_new_lines_until_interrupted() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let server_home = Home::new();
    let (server, token) = team_server(&server_home, &sim, "alice");
    let member = Home::new();
    let through_server = || {
        let mut cmd = member.swarm();
        cmd.env("SWARM_SERVER", &server.base)
            .env("SWARM_TOKEN", &token);
        cmd
    };
    run(through_server(), &["create", "tail"]).ok();

    // Output goes to a file: nobody reads a pipe while the test waits.
    let logs = tempfile::tempdir().unwrap();
    let out_path = logs.path().join("stdout");
    let mut child = member
        .std_swarm()
        .env("SWARM_SERVER", &server.base)
        .env("SWARM_TOKEN", &token)
        .args(["logs", "tail", "-f", "--json"])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let wait_for = |what: &str, found: &dyn Fn(&str) -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&out_path).unwrap_or_default();
            if found(&text) {
                return text;
            }
            assert!(std::time::Instant::now() < deadline, "no {what}: {text}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    // The tail first: the machine's start.
    wait_for("tail", &|text| text.contains("started"));
    // A stop made now shows up as new lines (Fly's log follow starts from the app's
    // recent lines, so none is lost while the stream connects).
    run(through_server(), &["stop", "tail"]).ok();
    let text = wait_for("new lines", &|text| text.contains("SIGTERM"));
    for line in text.lines() {
        let line: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(line["message"].is_string(), "{line}");
    }
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    assert!(matches!(status.code(), Some(0 | 130)), "{status:?}");
    run(through_server(), &["delete", "tail", "--yes"]).ok();
    assert_eq!(sim.stats().apps, 0);
    server.stop();
    rt.block_on(sim.shutdown());
}

#[test]
fn through_a_server_password_resize_update_rollback_move_snapshot_and_restore_work_the_same() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let server_home = Home::new();
    let (server, token) = team_server(&server_home, &sim, "alice");
    let member = Home::new();
    let through_server = || {
        let mut cmd = member.swarm();
        cmd.env("SWARM_SERVER", &server.base)
            .env("SWARM_TOKEN", &token);
        cmd
    };
    password_and_resize(&rt, &sim, &through_server);
    images_regions_and_snapshots(&rt, &sim, &through_server);
    assert!(
        walk(member.path()).is_empty(),
        "nothing kept on the member's machine"
    );
    server.stop();
    rt.block_on(sim.shutdown());
}

/// A create that outlasts one request's wait (`SWARM_SERVER_WAIT=1` against Fly's
/// timings): the CLI asks again until it ends, and the password still arrives.
#[test]
fn through_a_server_an_operation_longer_than_one_wait_is_waited_for() {
    let rt = runtime();
    let config = SimConfig {
        latency: fly_sim::Latency::Fly,
        time_scale: 0.3,
        ..SimConfig::default()
    };
    let sim = rt.block_on(Sim::start(config, "127.0.0.1:0")).unwrap();
    let server_home = Home::new();
    let (server, token) = team_server(&server_home, &sim, "alice");
    let member = Home::new();
    let through_server = || {
        let mut cmd = member.swarm();
        cmd.env("SWARM_SERVER", &server.base)
            .env("SWARM_TOKEN", &token)
            .env("SWARM_SERVER_WAIT", "1");
        cmd
    };
    let created = run(through_server(), &["create", "slow", "--json", "-vv"]).ok();
    assert!(
        created.stderr.contains("still running; waiting again"),
        "the create ended within one wait: {}",
        created.stderr
    );
    assert!(
        !created.stderr.contains(&token),
        "the token is in the debug log"
    );
    let json = created.json();
    assert_eq!(json["workspace"]["status"], "running", "{json}");
    assert!(
        json["password"].as_str().is_some_and(|p| p.len() >= 20),
        "{json}"
    );
    run(through_server(), &["delete", "slow", "--yes"]).ok();
    assert_eq!(sim.stats().apps, 0, "nothing left on Fly");
    server.stop();
    rt.block_on(sim.shutdown());
}

#[test]
fn through_a_server_bad_tokens_urls_and_input_fail_as_the_cli_does_and_never_show_the_token() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let server_home = Home::new();
    let (server, token) = team_server(&server_home, &sim, "alice");
    let member = Home::new();
    let with = |server_url: &str, token: &str| {
        let mut cmd = member.swarm();
        cmd.env("SWARM_SERVER", server_url)
            .env("SWARM_TOKEN", token);
        cmd
    };

    // A token the server does not know: exit 1, advice, and the token nowhere.
    let wrong = "swt_0000000000000000wrongtoken0000000000000000000000000000000000";
    for args in [&["list"][..], &["list", "--json", "-vvv"], &["show", "x"]] {
        let out = run(with(&server.base, wrong), args);
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("refused the API token")
                && out.stderr.contains("swarm token create"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            !out.stdout.contains(wrong) && !out.stderr.contains(wrong),
            "{args:?}: the token is echoed"
        );
    }
    let out = run(with(&server.base, &token), &["list", "-vvv"]).ok();
    assert!(
        !out.stdout.contains(&token) && !out.stderr.contains(&token),
        "the token is logged"
    );

    // Bad URLs: exit 2 naming where the URL came from; nothing is called.
    let out = run(with("not a url", &token), &["list"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("SWARM_SERVER"), "{}", out.stderr);
    let out = run(
        member.swarm().env("SWARM_TOKEN", &token),
        &["--server", "ftp://example.com", "list"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--server"), "{}", out.stderr);
    let out = run(member.swarm(), &["--server", &server.base, "list"]);
    assert_eq!(out.code, 2, "no token: {}", out.stderr);
    assert!(out.stderr.contains("SWARM_TOKEN"), "{}", out.stderr);

    // Nobody listening: a clear failure naming the URL.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let out = run(with(&closed, &token), &["list"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&closed) && out.stderr.contains("cannot reach"),
        "{}",
        out.stderr
    );

    // Invalid input: the server's check, exit 2, the field named, nothing created.
    for (args, field) in [
        (&["create", "bad", "--cpus", "3"][..], "cpus"),
        (&["create", "bad", "--region", "mars"], "region"),
        (&["create", "bad", "--memory", "100", "--json"], "memory"),
    ] {
        let out = run(with(&server.base, &token), args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(field), "{args:?}: {}", out.stderr);
    }
    let out = run(with(&server.base, &token), &["create", "BAD"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(sim.stats().apps, 0, "nothing was created");
    assert_eq!(
        run(with(&server.base, &token), &["list", "--json"])
            .ok()
            .json(),
        serde_json::json!([])
    );

    // An unknown workspace: the local CLI's words and exit code.
    let local = run(member.swarm(), &["show", "nope"]);
    let remote = run(with(&server.base, &token), &["show", "nope"]);
    assert_eq!((remote.code, local.code), (2, 2), "{}", remote.stderr);
    assert_eq!(
        remote.stderr.lines().last(),
        local.stderr.lines().last(),
        "{}",
        remote.stderr
    );

    // What runs only on the server's machine: exit 2, said so.
    for (args, needle) in [
        (&["pool", "list"][..], "not available through --server"),
        (
            &["token", "create", "--user", "bob"],
            "not available through --server",
        ),
        (&["serve"], "not available through --server"),
        (&["--local", "list"], "--local"),
    ] {
        let out = run(with(&server.base, &token), args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }

    // The token from a file works too; `config` names the server, never the token.
    let token_file = member.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let file_arg = token_file.to_string_lossy().into_owned();
    run(
        member.swarm(),
        &["--server", &server.base, "--token-file", &file_arg, "list"],
    )
    .ok();
    let config = run(with(&server.base, &token), &["config", "--json"])
        .ok()
        .json();
    assert_eq!(config["server"]["url"], server.base.as_str(), "{config}");
    assert!(!config.to_string().contains(&token), "{config}");

    server.stop();
    rt.block_on(sim.shutdown());
}
