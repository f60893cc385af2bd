//! `swarm suspend` and `--idle-policy` through the real binary, on the embedded local Fly.

mod common;

use common::{Home, run};

#[test]
fn suspend_then_start_resumes_and_bad_input_exits_2_changing_nothing() {
    let home = Home::new();
    let created = run(
        home.swarm(),
        &[
            "create",
            "alice",
            "--idle-policy",
            "suspend",
            "--image",
            "codercom/code-server:4.106.3",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        created["workspace"]["spec"]["idle_policy"], "suspend",
        "{created}"
    );

    let suspended = run(home.swarm(), &["suspend", "alice"]).ok();
    assert!(
        suspended.stdout.contains("Workspace alice suspended"),
        "{}",
        suspended.stdout
    );
    let shown = run(home.swarm(), &["show", "alice", "--json"]).ok().json();
    assert_eq!(shown["status"], "suspended", "{shown}");
    let listed = run(home.swarm(), &["list"]).ok();
    assert!(listed.stdout.contains("suspended"), "{}", listed.stdout);
    let again = run(home.swarm(), &["suspend", "alice"]).ok();
    assert!(
        again.stdout.contains("already suspended"),
        "{}",
        again.stdout
    );

    let started = run(home.swarm(), &["start", "alice"]).ok();
    assert!(
        started.stdout.contains("Workspace alice resumed"),
        "{}",
        started.stdout
    );
    let shown = run(home.swarm(), &["show", "alice", "--json"]).ok().json();
    assert_eq!(shown["status"], "running", "{shown}");

    // Bad input: exit 2, the field named, nothing made.
    let bad = run(
        home.swarm(),
        &["create", "bob", "--idle-policy", "hibernate"],
    );
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("idle_policy") && bad.stderr.contains("stop or suspend"),
        "{}",
        bad.stderr
    );
    let too_big = run(
        home.swarm(),
        &[
            "create",
            "carol",
            "--cpus",
            "2",
            "--memory",
            "4096",
            "--idle-policy",
            "suspend",
        ],
    );
    assert_eq!(too_big.code, 2, "{}", too_big.stderr);
    assert!(too_big.stderr.contains("2048 MB"), "{}", too_big.stderr);
    let names = run(home.swarm(), &["list", "--json"]).ok().json();
    let names: Vec<&str> = names
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w["spec"]["name"].as_str())
        .collect();
    assert_eq!(names, ["alice"], "nothing else was recorded");
    for args in [
        &["suspend", "nobody"][..],
        &["suspend", "Not_A_Name"][..],
        &["suspend"][..],
    ] {
        let refused = run(home.swarm(), args);
        assert_eq!(refused.code, 2, "{args:?}: {}", refused.stderr);
    }

    // A stopped workspace is refused with what to do instead.
    run(home.swarm(), &["stop", "alice"]).ok();
    let stopped = run(home.swarm(), &["suspend", "alice"]);
    assert_eq!(stopped.code, 2, "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("swarm start alice"),
        "{}",
        stopped.stderr
    );
}

#[test]
fn a_workspace_over_2_gb_is_refused_and_keeps_running() {
    let home = Home::new();
    run(
        home.swarm(),
        &["create", "big", "--cpus", "2", "--memory", "4096"],
    )
    .ok();
    let refused = run(home.swarm(), &["suspend", "big"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("memory") && refused.stderr.contains("2048 MB"),
        "{}",
        refused.stderr
    );
    let shown = run(home.swarm(), &["show", "big", "--json"]).ok().json();
    assert_eq!(shown["status"], "running", "{shown}");
}

#[test]
fn the_config_file_sets_the_default_idle_policy_and_a_bad_one_names_its_source() {
    let home = Home::new();
    let config = home.default_config();
    std::fs::create_dir_all(config.parent().expect("dir")).expect("mkdir");
    std::fs::write(&config, "idle_policy = \"suspend\"\n").expect("config");
    let created = run(home.swarm(), &["create", "dana", "--json"]).ok().json();
    assert_eq!(created["workspace"]["spec"]["idle_policy"], "suspend");
    std::fs::write(&config, "idle_policy = \"nap\"\n").expect("config");
    let bad = run(home.swarm(), &["list"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("idle_policy") && bad.stderr.contains("config"),
        "{}",
        bad.stderr
    );
}
