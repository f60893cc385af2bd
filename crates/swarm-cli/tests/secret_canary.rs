#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! Secret hygiene (issue 8): a canary Fly token and the workspace passwords go through
//! every command of the `swarm` binary at the most verbose log level (`-vvv` and
//! `SWARM_LOG=trace`). Neither may appear anywhere but where it is meant to: the
//! password once on the stdout of the `create` (and `password --rotate`) that made
//! it. Not in any other output, not in the store files (db, -wal, -shm), not in any
//! request or response the Fly API saw, not in the Fly world (machine env holds only
//! `HASHED_PASSWORD`, an argon2id hash that verifies). The store files are mode 0600.
//!
//! `crates/swarm/tests/security.rs` checks the library (tracing captured in-process);
//! this checks the binary as users run it: its own log setup, every command, and the
//! token from both places flyctl keeps it (env and `~/.fly/config.yml`).

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{CANARY_TOKEN, Home, Run, contains_bytes, run, runtime, walk};
use fly_sim::{Sim, SimConfig, SimHandle};
use serde_json::Value;

/// Every output of the run, labelled with its command.
#[derive(Default)]
struct Outputs(Vec<(String, String)>);

impl Outputs {
    fn add(&mut self, args: &[&str], run: &Run) {
        let label = args.join(" ");
        self.0
            .push((format!("stdout of `{label}`"), run.stdout.clone()));
        self.0
            .push((format!("stderr of `{label}`"), run.stderr.clone()));
    }

    /// `secret` appears exactly once, in `allowed`, and nowhere else.
    fn assert_only_in(&self, secret: &str, allowed: &str) {
        let mut seen = 0;
        for (label, text) in &self.0 {
            let count = text.matches(secret).count();
            if label == allowed {
                seen += count;
            } else {
                assert_eq!(count, 0, "the secret appears in the {label}:\n{text}");
            }
        }
        assert_eq!(
            seen, 1,
            "the secret should be shown exactly once, in the {allowed}"
        );
    }
}

fn password_line(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Password:"))
        .unwrap_or_else(|| panic!("no password line in:\n{stdout}"))
        .trim()
        .to_owned()
}

/// Every `HASHED_PASSWORD` in the sim's world, and a check that no machine env holds
/// the plaintext under another name.
fn hashed_passwords(world: &Value, out: &mut Vec<String>) {
    match world {
        Value::Object(map) => {
            if let Some(Value::Object(env)) = map.get("env") {
                assert!(
                    !env.contains_key("PASSWORD"),
                    "a machine env sets PASSWORD: {env:?}"
                );
                if let Some(hash) = env.get("HASHED_PASSWORD").and_then(Value::as_str) {
                    out.push(hash.to_owned());
                }
            }
            for value in map.values() {
                hashed_passwords(value, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                hashed_passwords(item, out);
            }
        }
        _ => {}
    }
}

/// Every file under `dir` (but `except`) is free of `secrets`; store files are 0600.
fn assert_files_clean(dir: &Path, secrets: &[&str], except: &[&Path]) -> usize {
    let mut checked = 0;
    for path in walk(dir) {
        if except.contains(&path.as_path()) {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for secret in secrets {
            assert!(
                !contains_bytes(&bytes, secret.as_bytes()),
                "a secret is written in {}",
                path.display()
            );
        }
        checked += 1;
    }
    checked
}

fn assert_private(path: &Path) {
    let mode = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
}

/// `swarm -vvv` with tracing on for every crate, pointed at `sim` with the canary token.
fn loud(home: &Home, sim: &SimHandle) -> Command {
    let mut cmd = home.swarm_at(sim);
    cmd.env("SWARM_LOG", "trace").arg("-vvv");
    cmd
}

#[test]
fn a_canary_token_and_the_passwords_appear_nowhere_but_once_on_stdout() {
    let rt = runtime();
    let sim = rt
        .block_on(Sim::start(
            SimConfig {
                // Only the canary is accepted: every call below really carried it.
                token: Some(CANARY_TOKEN.to_owned()),
                record: true,
                ..SimConfig::default()
            },
            "127.0.0.1:0",
        ))
        .unwrap();
    let home = Home::new();
    // A config file (the CLI only reads it) and flyctl's, both holding settings only
    // the test wrote; their bytes must be the same at the end.
    std::fs::create_dir_all(home.default_config().parent().unwrap()).unwrap();
    std::fs::write(home.default_config(), "region = \"ams\"\nstorage = 2\n").unwrap();
    let flyctl = home.path().join(".fly/config.yml");
    std::fs::create_dir_all(flyctl.parent().unwrap()).unwrap();
    std::fs::write(&flyctl, format!("access_token: {CANARY_TOKEN}\n")).unwrap();
    let inputs_before = (
        std::fs::read(home.default_config()).unwrap(),
        std::fs::read(&flyctl).unwrap(),
    );

    let mut outputs = Outputs::default();
    let step = |outputs: &mut Outputs, args: &[&str]| -> Run {
        let out = run(loud(&home, &sim), args).ok();
        outputs.add(args, &out);
        out
    };

    step(&mut outputs, &["config"]);
    step(&mut outputs, &["config", "--json"]);
    let created = step(
        &mut outputs,
        &["create", "canary", "--env", "GIT_AUTHOR_NAME=Canary"],
    );
    let first = password_line(&created.stdout);
    assert!(
        created.stderr.contains("TRACE") && created.stderr.lines().count() > 50,
        "tracing is really on:\n{}",
        created.stderr
    );
    step(&mut outputs, &["list"]);
    step(&mut outputs, &["list", "--json"]);
    step(&mut outputs, &["show", "canary"]);
    step(&mut outputs, &["show", "canary", "--json"]);
    step(&mut outputs, &["health", "canary"]);
    step(&mut outputs, &["logs", "canary", "-n", "50"]);
    step(&mut outputs, &["stop", "canary"]);
    step(&mut outputs, &["start", "canary"]);
    let rotated = step(&mut outputs, &["password", "canary", "--rotate"]);
    let second = password_line(&rotated.stdout);
    assert_ne!(first, second);
    step(&mut outputs, &["resize", "canary", "--memory", "1024"]);
    step(
        &mut outputs,
        &[
            "update",
            "canary",
            "--image",
            "codercom/code-server:4.107.0",
        ],
    );
    step(&mut outputs, &["versions", "canary"]);
    step(&mut outputs, &["rollback", "canary"]);
    let snapshot = step(&mut outputs, &["snapshot", "create", "canary"]);
    let snapshot = snapshot
        .stdout
        .split_whitespace()
        .find(|word| word.starts_with("vs_"))
        .unwrap_or_else(|| panic!("no snapshot id in {}", snapshot.stdout))
        .to_owned();
    step(&mut outputs, &["snapshot", "list", "canary"]);
    step(&mut outputs, &["move", "canary", "--region", "fra"]);
    step(
        &mut outputs,
        &["restore", "canary", "--snapshot", &snapshot, "--yes"],
    );
    step(&mut outputs, &["reconcile"]);
    step(&mut outputs, &["completions", "bash"]);
    // JSON output carries the password in the document instead.
    let json = step(&mut outputs, &["create", "canary-json", "--json"]);
    let third = json.json()["password"].as_str().unwrap().to_owned();
    let json = step(
        &mut outputs,
        &["password", "canary-json", "--rotate", "--json"],
    );
    let fourth = json.json()["password"].as_str().unwrap().to_owned();

    // The token from flyctl's file instead of the environment.
    let mut from_file = loud(&home, &sim);
    from_file.env_remove("FLY_API_TOKEN");
    let listed = run(from_file, &["list", "--json"]).ok();
    assert_eq!(listed.json().as_array().map(Vec::len), Some(2));
    outputs.add(&["list --json (token from ~/.fly/config.yml)"], &listed);
    // flyctl's file given as swarm's config by mistake: refused without quoting it.
    let mistaken = run(
        loud(&home, &sim),
        &["list", "--config", flyctl.to_str().unwrap()],
    );
    assert_eq!(mistaken.code, 2, "{}", mistaken.stderr);
    outputs.add(&["list --config ~/.fly/config.yml"], &mistaken);

    // While a command runs, the store's WAL and shared-memory files exist: all 0600.
    let db = home.default_db();
    // Its output goes to files: trace lines would fill a pipe nobody reads yet.
    let logs = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (logs.path().join("stdout"), logs.path().join("stderr"));
    let mut follow = loud(&home, &sim);
    let mut child = follow
        .args(["logs", "canary", "-f"])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let wal = db.with_file_name("swarm.db-wal");
    let shm = db.with_file_name("swarm.db-shm");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(wal.exists() && shm.exists()) {
        assert!(
            Instant::now() < deadline,
            "the store was never opened by `logs -f`"
        );
        assert!(child.try_wait().unwrap().is_none(), "`logs -f` ended early");
        std::thread::sleep(Duration::from_millis(10));
    }
    for path in [&db, &wal, &shm] {
        assert_private(path);
    }
    let open_files = assert_files_clean(
        home.path(),
        &[CANARY_TOKEN, &first, &second, &third, &fourth],
        &[&flyctl],
    );
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    // Ctrl-C ends a follow (0), or the command itself if it came first (130).
    assert!(
        matches!(status.code(), Some(0 | 130)),
        "{status:?}: {stderr}"
    );
    outputs.0.push(("stdout of `logs -f`".into(), stdout));
    outputs.0.push(("stderr of `logs -f`".into(), stderr));

    let world_before_delete = sim.world();
    step(&mut outputs, &["delete", "canary-json", "--yes"]);
    step(&mut outputs, &["delete", "canary", "--yes"]);

    // Outputs: the token never; each password once, where it was made.
    for (_, text) in &outputs.0 {
        assert!(!text.contains(CANARY_TOKEN), "the token was printed");
    }
    outputs.assert_only_in(
        &first,
        "stdout of `create canary --env GIT_AUTHOR_NAME=Canary`",
    );
    outputs.assert_only_in(&second, "stdout of `password canary --rotate`");
    outputs.assert_only_in(&third, "stdout of `create canary-json --json`");
    outputs.assert_only_in(&fourth, "stdout of `password canary-json --rotate --json`");

    // Fly saw only hashes: in the world, and in every request and response body.
    let world_text = world_before_delete.to_string();
    for secret in [CANARY_TOKEN, &first, &second, &third, &fourth] {
        assert!(!world_text.contains(secret), "a secret is in Fly's world");
    }
    let mut hashes = Vec::new();
    hashed_passwords(&world_before_delete, &mut hashes);
    assert!(
        !hashes.is_empty(),
        "no HASHED_PASSWORD in the machines' env"
    );
    for hash in &hashes {
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(
            [&first, &second, &third, &fourth]
                .iter()
                .any(|p| swarm::password::verify(p, hash)),
            "a HASHED_PASSWORD verifies none of the passwords"
        );
    }
    assert!(
        hashes.iter().any(|h| swarm::password::verify(&second, h)),
        "the rotated password is the one the machine knows"
    );
    assert!(
        hashes.iter().any(|h| swarm::password::verify(&fourth, h)),
        "the rotated password (JSON run) is the one the machine knows"
    );
    let exchanges = sim.recorded();
    assert!(exchanges.len() > 50, "{} exchanges", exchanges.len());
    for exchange in &exchanges {
        let text = format!(
            "{} {} {} {}",
            exchange.path, exchange.query, exchange.request_body, exchange.response_body
        );
        for secret in [CANARY_TOKEN, &first, &second, &third, &fourth] {
            assert!(
                !text.contains(secret),
                "a secret went to Fly in {} {}",
                exchange.method,
                exchange.path
            );
        }
    }

    // Files: the store after close, the config files unchanged.
    assert_private(&db);
    let closed_files = assert_files_clean(
        home.path(),
        &[CANARY_TOKEN, &first, &second, &third, &fourth],
        &[&flyctl],
    );
    assert_eq!(
        (
            std::fs::read(home.default_config()).unwrap(),
            std::fs::read(&flyctl).unwrap()
        ),
        inputs_before,
        "swarm never writes a config file"
    );
    println!(
        "canary run: {} outputs, {} Fly exchanges, {} hashes, files checked {open_files} (store open) + {closed_files} (closed)",
        outputs.0.len(),
        exchanges.len(),
        hashes.len()
    );
    rt.block_on(sim.shutdown());
}

/// Without a token the local Fly keeps its world beside the store: that file holds the
/// machines' env, so it is private too, and holds only the hash.
#[test]
fn the_local_fly_world_file_is_private_and_holds_only_the_hash() {
    let home = Home::new();
    let loud = || {
        let mut cmd = home.swarm();
        cmd.env("SWARM_LOG", "trace").arg("-vvv");
        cmd
    };
    let created = run(loud(), &["create", "local"]).ok();
    let first = password_line(&created.stdout);
    let rotated = run(loud(), &["password", "local", "--rotate"]).ok();
    let second = password_line(&rotated.stdout);
    for (out, allowed) in [(&created, &first), (&rotated, &second)] {
        assert_eq!(out.stdout.matches(allowed.as_str()).count(), 1);
        assert!(!out.stderr.contains(&first) && !out.stderr.contains(&second));
    }
    assert!(!created.stdout.contains(&second) && !rotated.stdout.contains(&first));
    let state = home.path().join("state/swarm");
    let world_file = state.join("local.fly.json");
    for path in [state.join("local.db"), world_file.clone()] {
        assert_private(&path);
    }
    let world: Value = serde_json::from_slice(&std::fs::read(&world_file).unwrap()).unwrap();
    let mut hashes = Vec::new();
    hashed_passwords(&world, &mut hashes);
    assert!(hashes.iter().any(|h| swarm::password::verify(&second, h)));
    let files = assert_files_clean(home.path(), &[&first, &second], &[]);
    assert!(files >= 2, "{files} files");
    let deleted = run(loud(), &["delete", "local", "--yes"]).ok();
    assert!(!deleted.stderr.contains(&second));
}
