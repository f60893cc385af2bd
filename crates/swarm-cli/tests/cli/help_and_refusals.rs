//! Help and completions; a wrong token, an unconfirmed delete, a taken name.

use fly_sim::{Sim, SimConfig};

use crate::{Home, run, runtime, start_sim};

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
