#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! `swarm create --dotfiles URL --init FILE` with the real binary on the local Fly:
//! the config file's default, the flag over it, what `show` tells, and `swarm config`.

mod common;

use common::{Home, run};

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
