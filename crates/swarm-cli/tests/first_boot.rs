#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! `swarm create --dotfiles URL --init FILE` with the real binary on the local Fly:
//! the config file's default, the flag over it, what `show` tells, and `swarm config`.

mod common;

use common::{Home, run, runtime, start_sim};

#[test]
fn dotfiles_from_the_config_or_the_flag_and_the_init_script_show_up_in_show() {
    let home = Home::new();
    std::fs::create_dir_all(home.default_config().parent().unwrap()).unwrap();
    std::fs::write(
        home.default_config(),
        "dotfiles = \"https://github.com/team/dotfiles\"\n",
    )
    .unwrap();
    let config = run(home.swarm(), &["config"]).ok();
    assert!(
        config.stdout.contains("https://github.com/team/dotfiles"),
        "{}",
        config.stdout
    );

    let script = home.path().join("init.sh");
    std::fs::write(&script, "#!/bin/sh\necho hello from init\n").unwrap();
    let created = run(
        home.swarm(),
        &[
            "create",
            "dots",
            "--init",
            script.to_str().unwrap(),
            "--json",
        ],
    )
    .ok()
    .json();
    let spec = &created["workspace"]["spec"];
    assert_eq!(
        spec["dotfiles"], "https://github.com/team/dotfiles",
        "{created}"
    );
    assert_eq!(spec["init_script"], "#!/bin/sh\necho hello from init\n");

    let shown = run(home.swarm(), &["show", "dots"]).ok().stdout;
    let line = |key: &str| {
        shown
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap_or_else(|| panic!("no {key} line in:\n{shown}"))
            .to_owned()
    };
    assert!(line("dotfiles").contains("https://github.com/team/dotfiles"));
    assert!(line("init script").contains("31 bytes"), "{shown}");

    // The flag wins over the file.
    let flagged = run(
        home.swarm(),
        &[
            "create",
            "mine",
            "--dotfiles",
            "https://github.com/alice/dotfiles",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        flagged["workspace"]["spec"]["dotfiles"],
        "https://github.com/alice/dotfiles"
    );
    assert!(flagged["workspace"]["spec"].get("init_script").is_none());
    for name in ["dots", "mine"] {
        run(home.swarm(), &["delete", name, "--yes"]).ok();
    }
}

/// What the image's `first-boot.sh` would leave on the volume, planted in the sim's
/// volume (the sim runs no image), then read back by `show` with one `exec`.
#[test]
fn show_reads_how_the_last_boot_ended_from_the_volume() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let home = Home::new();
    let script = home.path().join("init.sh");
    std::fs::write(&script, "echo hi\n").unwrap();
    run(
        home.swarm_at(&sim),
        &[
            "create",
            "booted",
            "--dotfiles",
            "https://github.com/alice/dotfiles",
            "--init",
            script.to_str().unwrap(),
        ],
    )
    .ok();
    let shown = run(home.swarm_at(&sim), &["show", "booted"]).ok().stdout;
    assert!(
        shown.contains("dotfiles ran:") && shown.contains("not reported yet"),
        "{shown}"
    );

    rt.block_on(async {
        let status = r#"{"step":"dotfiles","state":"failed","exit_code":3,"script":"install.sh","started_at":"2026-12-07T10:00:00Z","finished_at":"2026-12-07T10:00:04Z"}"#;
        let answer = reqwest::Client::new()
            .put(format!("{}/__sim/fs/.swarm/first-boot/dotfiles.json", sim.base_url()))
            .header(reqwest::header::HOST, "booted.fly.dev")
            .body(format!("{status}\n"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 204);
    });
    let shown = run(home.swarm_at(&sim), &["show", "booted"]).ok().stdout;
    let line = shown
        .lines()
        .find(|l| l.starts_with("dotfiles ran:"))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        line.contains("failed (install.sh, exit 3, 2026-12-07T10:00:04Z)"),
        "{line}"
    );
    let init = shown.lines().find(|l| l.starts_with("init ran:")).unwrap();
    assert!(init.contains("not reported yet"), "{init}");

    run(home.swarm_at(&sim), &["stop", "booted"]).ok();
    let stopped = run(home.swarm_at(&sim), &["show", "booted"]).ok().stdout;
    assert!(stopped.contains("read while it runs"), "{stopped}");
    run(home.swarm_at(&sim), &["delete", "booted", "--yes"]).ok();
}
