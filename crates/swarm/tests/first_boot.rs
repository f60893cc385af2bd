//! Dotfiles and the init script against fly-sim in-process: what the machine config
//! carries (the URL as env, the script as a `files` entry), that it stays through an
//! image update and a move, and that bad input is refused before anything is made.

mod common;

use base64::Engine as _;
use common::{assert_sim_empty, machine_config, start_sim, swarm_at};
use serde_json::Value;
use swarm::{CreateOptions, Error};

const DOTFILES: &str = "https://github.com/alice/dotfiles";
const SCRIPT: &str = "#!/bin/sh\nsudo apt-get install -y ripgrep\n";

fn options(name: &str) -> CreateOptions {
    CreateOptions {
        name: name.to_owned(),
        image: Some("codercom/code-server:4.106.3".to_owned()),
        dotfiles: Some(DOTFILES.to_owned()),
        init: Some(SCRIPT.to_owned()),
        ..CreateOptions::default()
    }
}

/// The URL and the script text the machine would boot with.
fn first_boot_of(config: &Value) -> (Option<String>, Option<String>) {
    let url = config["env"][swarm::first_boot::DOTFILES_ENV]
        .as_str()
        .map(str::to_owned);
    let files = config["files"].as_array().cloned().unwrap_or_default();
    let script = files
        .iter()
        .find(|f| f["guest_path"] == swarm::first_boot::INIT_SCRIPT_PATH)
        .map(|f| {
            assert_eq!(f["mode"], 0o644, "readable, not executable: bash runs it");
            let raw = f["raw_value"].as_str().expect("raw_value");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(raw)
                .expect("base64");
            String::from_utf8(bytes).expect("text")
        });
    (url, script)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_machine_boots_with_the_dotfiles_and_the_script_through_update_and_move() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let created = swarm.create(&options("dots")).await.expect("create");
    let ws = &created.workspace;
    assert_eq!(ws.spec.dotfiles.as_deref(), Some(DOTFILES));
    assert_eq!(ws.spec.init_script.as_deref(), Some(SCRIPT));
    let machine = ws.machine_id.clone().expect("machine");
    let expected = (Some(DOTFILES.to_owned()), Some(SCRIPT.to_owned()));
    assert_eq!(first_boot_of(&machine_config(&sim, &machine)), expected);

    swarm
        .update_image("dots", "codercom/code-server:4.107.0")
        .await
        .expect("update");
    let shown = swarm.show("dots").await.expect("show");
    let machine = shown.machine_id.clone().expect("machine");
    assert_eq!(
        first_boot_of(&machine_config(&sim, &machine)),
        expected,
        "an image update keeps them"
    );

    let moved = swarm.move_region("dots", "fra").await.expect("move");
    let machine = moved.workspace.machine_id.clone().expect("machine");
    assert_eq!(
        first_boot_of(&machine_config(&sim, &machine)),
        expected,
        "the machine made in the new region has them"
    );

    swarm.delete("dots").await.expect("delete");
    assert_sim_empty(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_them_the_machine_gets_neither() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let plain = CreateOptions {
        dotfiles: None,
        init: None,
        ..options("plain")
    };
    let created = swarm.create(&plain).await.expect("create");
    let machine = created.workspace.machine_id.clone().expect("machine");
    assert_eq!(first_boot_of(&machine_config(&sim, &machine)), (None, None));
    swarm.delete("plain").await.expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_dotfiles_or_scripts_are_refused_before_anything_is_made() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let cases = [
        (
            CreateOptions {
                dotfiles: Some("https://alice:ghp_token@github.com/alice/dotfiles".to_owned()),
                ..options("bad")
            },
            "dotfiles",
            "credentials",
        ),
        (
            CreateOptions {
                dotfiles: Some("git@github.com:alice/dotfiles.git".to_owned()),
                ..options("bad")
            },
            "dotfiles",
            "https://",
        ),
        (
            CreateOptions {
                init: Some("  \n".to_owned()),
                ..options("bad")
            },
            "init",
            "empty",
        ),
        (
            CreateOptions {
                env: [(swarm::first_boot::DOTFILES_ENV.to_owned(), "x".to_owned())].into(),
                ..options("bad")
            },
            "env",
            "reserved",
        ),
    ];
    for (input, field, rule) in cases {
        let error = swarm.create(&input).await.expect_err("refused");
        let Error::Invalid(errors) = &error else {
            panic!("not Invalid: {error}");
        };
        assert_eq!(errors[0].field, field, "{error}");
        assert!(error.to_string().contains(rule), "{error}");
        assert!(
            !error.to_string().contains("ghp_token"),
            "a credential is not echoed back: {error}"
        );
    }
    assert!(swarm.list().await.expect("list").is_empty());
    assert_sim_empty(&sim);
}
