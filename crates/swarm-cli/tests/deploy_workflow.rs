//! The scripts the GitHub workflows run. `scripts/deploy-workspace.sh` (deploy-workspace.yml's
//! run step) runs as the workflow runs it: bash, the inputs as env vars, the secret in
//! FLY_API_TOKEN, a step summary file; the `swarm` binary reaches a fly-sim that accepts
//! only the canary token. `scripts/release-notes.sh` (release.yml) on a changelog fixture.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{CANARY_TOKEN, Home, Run, run, runtime};
use fly_sim::{Sim, SimConfig, SimHandle};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fly-sim that refuses every token but the canary, so a run that gets anything done
/// has really sent it.
fn start_sim(rt: &tokio::runtime::Runtime) -> SimHandle {
    let config = SimConfig {
        token: Some(CANARY_TOKEN.to_owned()),
        ..SimConfig::default()
    };
    rt.block_on(Sim::start(config, "127.0.0.1:0")).unwrap()
}

/// One runner: its own home, store and step summary, as a fresh GitHub runner has.
struct Runner {
    home: Home,
    /// Everything the script's `swarm` printed on stdout (a tap between the two), so the
    /// test knows the password that must not show.
    tap: PathBuf,
}

impl Runner {
    fn new() -> Self {
        let home = Home::new();
        let tap = home.path().join("swarm-stdout");
        let wrapper = home.path().join("swarm-tapped");
        std::fs::write(
            &wrapper,
            format!(
                "#!/usr/bin/env bash\n\"{}\" \"$@\" | tee -a \"{}\"\nexit \"${{PIPESTATUS[0]}}\"\n",
                assert_cmd::cargo::cargo_bin("swarm").display(),
                tap.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { home, tap }
    }

    fn db(&self) -> String {
        format!(
            "sqlite://{}",
            self.home.path().join("store/swarm.db").display()
        )
    }

    fn summary_path(&self) -> PathBuf {
        self.home.path().join("step-summary.md")
    }

    fn summary(&self) -> String {
        std::fs::read_to_string(self.summary_path()).unwrap_or_default()
    }

    fn tapped(&self) -> String {
        std::fs::read_to_string(&self.tap).unwrap_or_default()
    }

    /// `bash scripts/deploy-workspace.sh` with the workflow's env: inputs, token, store.
    fn deploy_with_token(&self, sim: &SimHandle, token: &str, inputs: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new("bash");
        cmd.arg(repo().join("scripts/deploy-workspace.sh"))
            .current_dir(repo())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("XDG_STATE_HOME", self.home.path().join("state"))
            .env("XDG_DATA_HOME", self.home.path().join("data"))
            .env("NO_COLOR", "1")
            .env("CI", "true")
            .env("SWARM_BIN", self.home.path().join("swarm-tapped"))
            .env("SWARM_DB", self.db())
            .env("FLY_API_TOKEN", token)
            .env("FLY_FLAPS_BASE_URL", sim.base_url())
            .env("FLY_API_BASE_URL", sim.base_url())
            .env("GITHUB_STEP_SUMMARY", self.summary_path())
            .env("GITHUB_OUTPUT", self.home.path().join("step-output"));
        for (key, value) in inputs {
            cmd.env(format!("INPUT_{}", key.to_uppercase()), value);
        }
        // `run` fails the test if the canary shows on stdout or stderr.
        run(cmd, &[] as &[&str])
    }

    fn deploy(&self, sim: &SimHandle, inputs: &[(&str, &str)]) -> Run {
        self.deploy_with_token(sim, CANARY_TOKEN, inputs)
    }

    /// `swarm` on this runner's store, against `sim`.
    fn swarm(&self, sim: &SimHandle, args: &[&str]) -> Run {
        let mut cmd = self.home.swarm_at(sim);
        cmd.env("SWARM_DB", self.db());
        run(cmd, args)
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.home.path().join("step-output")).unwrap_or_default()
    }
}

/// The password of the one workspace `swarm create --json` made on this runner.
fn created_password(runner: &Runner) -> String {
    let tapped = runner.tapped();
    let doc: serde_json::Value = serde_json::from_str(&tapped)
        .unwrap_or_else(|e| panic!("swarm's stdout is not one JSON document ({e}):\n{tapped}"));
    let password = doc["password"].as_str().unwrap_or_default().to_owned();
    assert!(password.len() >= 16, "no password in swarm's answer");
    password
}

fn assert_nowhere(what: &str, secret: &str, run: &Run, summary: &str) {
    for (place, text) in [
        ("stdout", &run.stdout),
        ("stderr", &run.stderr),
        ("summary", &summary.to_owned()),
    ] {
        assert!(
            !text.contains(secret),
            "the {what} is in the {place}:\n{text}"
        );
    }
}

#[test]
fn deploy_creates_the_workspace_and_shows_its_url_but_no_secret() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let runner = Runner::new();
    let deployed = runner
        .deploy(
            &sim,
            &[
                ("name", "wf-alice"),
                ("region", "fra"),
                ("cpus", "2"),
                ("memory", "4096"),
                ("storage", "20"),
                ("image", "codercom/code-server:4.96.4"),
                ("ip", "shared"),
                ("idle_timeout", "30m"),
            ],
        )
        .ok();
    let summary = runner.summary();
    let url = "https://wf-alice.fly.dev";
    assert!(summary.contains(url), "summary:\n{summary}");
    assert!(deployed.stdout.contains(url), "{}", deployed.stdout);
    assert!(
        summary.contains("swarm password wf-alice --rotate"),
        "the summary tells how to get a password:\n{summary}"
    );
    assert!(
        runner
            .output()
            .contains(&format!("url={url}\ncreated=true")),
        "{}",
        runner.output()
    );

    let password = created_password(&runner);
    assert_nowhere("password", &password, &deployed, &summary);
    assert_nowhere("Fly token", CANARY_TOKEN, &deployed, &summary);

    // On Fly as asked, and in the store the workflow keeps as its artifact.
    let shown = runner
        .swarm(&sim, &["show", "wf-alice", "--json"])
        .ok()
        .json();
    assert_eq!(shown["status"], "running", "{shown}");
    assert_eq!(shown["url"], url);
    assert_eq!(shown["spec"]["region"], "fra", "{shown}");
    assert_eq!(shown["spec"]["guest"]["cpus"], 2, "{shown}");
    assert_eq!(shown["spec"]["guest"]["memory_mb"], 4096, "{shown}");
    assert_eq!(shown["spec"]["storage_gb"], 20, "{shown}");
    let stats = sim.stats();
    assert_eq!((stats.apps, stats.machines, stats.volumes), (1, 1, 1));
    // What the summary tells the user to do with that store.
    let rotated = runner
        .swarm(&sim, &["password", "wf-alice", "--rotate", "--json"])
        .ok()
        .json();
    let new_password = rotated["password"].as_str().unwrap();
    assert!(new_password.len() >= 16 && new_password != password);
    rt.block_on(sim.shutdown());
}

#[test]
fn a_token_the_sim_does_not_accept_fails_and_is_not_shown() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let runner = Runner::new();
    let other = "fm2_other-token-93c1f0a7d2b84e65";
    let refused = runner.deploy_with_token(&sim, other, &[("name", "wf-bob")]);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("refused the API token"),
        "{}",
        refused.stderr
    );
    assert_nowhere("Fly token", other, &refused, &runner.summary());
    assert!(
        runner.summary().contains("was not deployed"),
        "{}",
        runner.summary()
    );
    assert_eq!(sim.stats().apps, 0);
    rt.block_on(sim.shutdown());
}

#[test]
fn an_empty_token_secret_is_refused_before_anything() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let runner = Runner::new();
    let refused = runner.deploy_with_token(&sim, "", &[("name", "wf-gina")]);
    assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("FLY_API_TOKEN"),
        "{}",
        refused.stderr
    );
    assert!(
        runner.tapped().is_empty(),
        "swarm ran (on its local Fly):\n{}",
        runner.tapped()
    );
    assert_eq!(sim.stats().requests_total, 0);
    rt.block_on(sim.shutdown());
}

#[test]
fn bad_input_exits_2_naming_the_field_and_creates_nothing() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("name", "Alice")], "name"),
        (&[("name", "")], "name"),
        (&[("name", "--help")], "name"),
        (&[("name", "wf-carol"), ("region", "mars")], "region"),
        (&[("name", "wf-carol"), ("region", "--json")], "region"),
        (&[("name", "wf-carol"), ("cpus", "two")], "cpus"),
        (&[("name", "wf-carol"), ("ip", "public")], "ip"),
        (&[("name", "wf-carol"), ("storage", "-5")], "storage"),
    ];
    for (inputs, field) in cases {
        let runner = Runner::new();
        let refused = runner.deploy(&sim, inputs);
        assert_eq!(
            refused.code, 2,
            "{inputs:?}\nstdout:\n{}\nstderr:\n{}",
            refused.stdout, refused.stderr
        );
        assert!(
            refused.stderr.contains(field),
            "{inputs:?}: the message names {field}:\n{}",
            refused.stderr
        );
        assert!(
            runner.summary().contains("was not deployed"),
            "{inputs:?}: {}",
            runner.summary()
        );
        let stats = sim.stats();
        assert_eq!(
            (stats.apps, stats.machines, stats.volumes, stats.ips),
            (0, 0, 0, 0),
            "{inputs:?} created something"
        );
    }
    rt.block_on(sim.shutdown());
}

#[test]
fn a_rerun_reports_the_workspace_an_earlier_run_made_and_changes_nothing() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let first = Runner::new();
    first.deploy(&sim, &[("name", "wf-dave")]).ok();
    let before = sim.stats();

    // A new runner: no store, so swarm has no record of wf-dave.
    let again = Runner::new();
    let rerun = again
        .deploy(&sim, &[("name", "wf-dave"), ("cpus", "4")])
        .ok();
    assert!(rerun.stdout.contains("already exists"), "{}", rerun.stdout);
    assert!(
        rerun.stdout.contains("https://wf-dave.fly.dev"),
        "{}",
        rerun.stdout
    );
    assert!(
        !rerun.stderr.contains("not one of your workspaces"),
        "the misleading name-taken message is not shown:\n{}",
        rerun.stderr
    );
    let summary = again.summary();
    assert!(summary.contains("already exists"), "{summary}");
    assert!(summary.contains("https://wf-dave.fly.dev"), "{summary}");
    assert!(
        again.output().contains("created=false"),
        "{}",
        again.output()
    );
    let after = sim.stats();
    assert_eq!(
        (after.apps, after.machines, after.volumes, after.ips),
        (before.apps, before.machines, before.volumes, before.ips),
        "the rerun changed what is on Fly"
    );
    let shown = first
        .swarm(&sim, &["show", "wf-dave", "--json"])
        .ok()
        .json();
    assert_eq!(
        shown["spec"]["guest"]["cpus"], 1,
        "the rerun's inputs were not applied"
    );
    rt.block_on(sim.shutdown());
}

#[test]
fn a_name_taken_by_someone_else_fails_clearly() {
    let rt = runtime();
    // `taken-*` names belong to another organisation on the sim.
    let sim = start_sim(&rt);
    // A workspace of ours that the new runner has no record of either: not this name's.
    Runner::new().deploy(&sim, &[("name", "wf-frank")]).ok();
    let runner = Runner::new();
    let refused = runner.deploy(&sim, &[("name", "taken-eve")]);
    assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("already taken"),
        "{}",
        refused.stderr
    );
    assert!(
        !refused.stdout.contains("already exists"),
        "{}",
        refused.stdout
    );
    assert!(
        runner.summary().contains("already taken"),
        "{}",
        runner.summary()
    );
    assert_eq!(sim.stats().apps, 1, "only wf-frank");
    rt.block_on(sim.shutdown());
}

const CHANGELOG: &str = "\
# Changelog

All notable changes to this project are documented here.

## [Unreleased]

### Added
- Something not released yet.

## [0.2.0] - 2026-12-07

### Added
- GitHub workflows: ci, image, release, deploy-workspace.

### Fixed
- A [linked](https://example.invalid/17) fix.

## [0.2.0-rc.1] - 2026-12-01

- The release candidate.

## [0.1.0] - 2026-11-01

- First release.

[Unreleased]: https://example.invalid/compare/v0.2.0...HEAD
[0.2.0]: https://example.invalid/compare/v0.1.0...v0.2.0
[0.1.0]: https://example.invalid/releases/tag/v0.1.0
";

fn release_notes(args: &[&str], changelog_env: Option<&Path>) -> Run {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("scripts/release-notes.sh"))
        .env_remove("CHANGELOG");
    if let Some(path) = changelog_env {
        cmd.env("CHANGELOG", path);
    }
    run(cmd, args)
}

#[test]
fn release_notes_are_the_versions_changelog_section() {
    let dir = tempfile::tempdir().unwrap();
    let changelog = dir.path().join("CHANGELOG.md");
    std::fs::write(&changelog, CHANGELOG).unwrap();
    let path = changelog.to_str().unwrap();

    let notes = release_notes(&["0.2.0", path], None).ok();
    assert_eq!(
        notes.stdout,
        "### Added\n- GitHub workflows: ci, image, release, deploy-workspace.\n\n### Fixed\n- A [linked](https://example.invalid/17) fix.\n"
    );
    // The tag's form, and the changelog from the env; the last section stops at the links.
    let first = release_notes(&["v0.1.0"], Some(&changelog)).ok();
    assert_eq!(first.stdout, "- First release.\n");
    let rc = release_notes(&["0.2.0-rc.1", path], None).ok();
    assert_eq!(rc.stdout, "- The release candidate.\n");
}

#[test]
fn release_notes_fail_clearly_for_a_version_not_in_the_changelog() {
    let dir = tempfile::tempdir().unwrap();
    let changelog = dir.path().join("CHANGELOG.md");
    std::fs::write(&changelog, CHANGELOG).unwrap();
    let path = changelog.to_str().unwrap();
    // 0.2 is a prefix of 0.2.0, not a version of its own.
    for version in ["0.3.0", "0.2", "v0.2.1"] {
        let missing = release_notes(&[version, path], None);
        assert_eq!(missing.code, 1, "{version}: {}", missing.stdout);
        assert!(missing.stdout.is_empty(), "{version}: {}", missing.stdout);
        let bare = version.trim_start_matches('v');
        assert!(
            missing
                .stderr
                .contains(&format!("has no section for version {bare}")),
            "{version}: {}",
            missing.stderr
        );
    }
    let empty = dir.path().join("EMPTY.md");
    std::fs::write(
        &empty,
        "# Changelog\n\n## [0.4.0] - 2026-12-24\n\n## [0.3.0] - 2026-12-20\n- x\n",
    )
    .unwrap();
    let hollow = release_notes(&["0.4.0", empty.to_str().unwrap()], None);
    assert_eq!(hollow.code, 1);
    assert!(hollow.stderr.contains("is empty"), "{}", hollow.stderr);
    let unreadable = release_notes(&["0.2.0", "/nonexistent/CHANGELOG.md"], None);
    assert_eq!(unreadable.code, 1);
    assert!(
        unreadable.stderr.contains("cannot read"),
        "{}",
        unreadable.stderr
    );
}
