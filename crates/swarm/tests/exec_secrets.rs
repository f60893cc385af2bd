//! `Swarm::exec` and the user secrets against fly-sim in-process: the command's output
//! and exit status come back as they are, a stopped workspace is refused or started
//! first, and a secret reaches the machine (through Fly, not our config) when it boots.

mod common;

use common::{start_sim, swarm_at};
use secrecy::SecretString;
use swarm::{CreateOptions, Error, ExecOptions, SecretAction, WorkspaceStatus};

const CANARY: &str = "canary-7f3a9c1e-not-for-eyes";

fn options(name: &str) -> CreateOptions {
    CreateOptions {
        name: name.to_owned(),
        image: Some("codercom/code-server:4.106.3".to_owned()),
        ..CreateOptions::default()
    }
}

fn command(words: &[&str]) -> ExecOptions {
    ExecOptions {
        command: words.iter().map(|w| (*w).to_owned()).collect(),
        ..ExecOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_passes_output_and_exit_status_and_refuses_a_stopped_workspace() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    swarm.create(&options("alice")).await.expect("create");

    let done = swarm
        .exec("alice", &command(&["echo", "hello", "world"]))
        .await
        .expect("exec");
    assert_eq!(done.output.stdout, "hello world\n");
    assert_eq!((done.output.exit_code, done.started), (0, false));
    // A failing command is a result, with its code.
    let failed = swarm
        .exec("alice", &command(&["sh", "-c", "exit 7"]))
        .await
        .expect("exec");
    assert_eq!(failed.output.shell_exit_code(), 7);
    let unsupported = swarm
        .exec("alice", &command(&["make", "test"]))
        .await
        .expect("exec");
    assert_eq!(unsupported.output.exit_code, 127);
    assert!(unsupported.output.stderr.contains("not supported"));
    // The volume is mounted where the workspace says.
    let ls = swarm
        .exec("alice", &command(&["ls", "/home/coder/project"]))
        .await
        .expect("exec");
    assert_eq!(ls.output.exit_code, 0, "{}", ls.output.stderr);

    let empty = swarm.exec("alice", &command(&[])).await.unwrap_err();
    assert!(
        matches!(&empty, Error::Invalid(e) if e[0].field == "command"),
        "{empty}"
    );
    assert_eq!(empty.exit_code(), 2);
    let missing = swarm.exec("nobody", &command(&["true"])).await.unwrap_err();
    assert!(matches!(missing, Error::NotFound { .. }), "{missing}");

    swarm.stop("alice", false).await.expect("stop");
    let refused = swarm.exec("alice", &command(&["true"])).await.unwrap_err();
    assert!(matches!(refused, Error::NotRunning { .. }), "{refused}");
    assert_eq!(refused.exit_code(), 2);
    assert!(refused.to_string().contains("--start"), "{refused}");
    assert_eq!(
        swarm.show("alice").await.expect("show").status,
        WorkspaceStatus::Stopped,
        "a refused exec changes nothing"
    );

    let mut start_first = command(&["hostname"]);
    start_first.start_first = true;
    let woke = swarm
        .exec("alice", &start_first)
        .await
        .expect("exec --start");
    assert!(woke.started);
    let record = swarm.show("alice").await.expect("show");
    assert_eq!(record.status, WorkspaceStatus::Running);
    assert_eq!(
        woke.output.stdout.trim(),
        record.machine_id.as_deref().unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_goes_to_fly_only_and_reaches_the_machine_at_its_next_boot() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("swarm.db");
    let swarm = swarm_at(&sim.base_url(), &db).await;
    swarm.create(&options("bob")).await.expect("create");
    let printenv = command(&["printenv", "API_TOKEN"]);

    let set = swarm
        .set_secret("bob", "API_TOKEN", &SecretString::from(CANARY))
        .await
        .expect("set");
    assert_eq!(set.action, SecretAction::Set);
    assert!(set.restart_needed, "{set:?}");
    assert!(set.note.contains("swarm stop bob"), "{}", set.note);
    // Not yet in the running machine.
    let before = swarm.exec("bob", &printenv).await.expect("exec");
    assert_eq!(
        (before.output.exit_code, before.output.stdout.as_str()),
        (1, "")
    );

    swarm.stop("bob", false).await.expect("stop");
    swarm.start("bob").await.expect("start");
    let after = swarm.exec("bob", &printenv).await.expect("exec");
    assert_eq!(after.output.stdout, format!("{CANARY}\n"));

    let listed = swarm.list_secrets("bob").await.expect("list");
    assert_eq!(listed.secrets.len(), 1);
    assert_eq!(listed.secrets[0].key, "API_TOKEN");
    assert!(
        !serde_json::to_string(&listed)
            .expect("json")
            .contains(CANARY)
    );
    assert!(!format!("{listed:?} {set:?}").contains(CANARY));

    // Only Fly holds it: not the machine config we sent, not the store.
    let world = sim.world().to_string();
    assert!(!world.contains(CANARY), "the sim's dump shows the value");
    let record = swarm.show("bob").await.expect("show");
    assert!(
        !serde_json::to_string(&record)
            .expect("json")
            .contains(CANARY)
    );
    drop(swarm);
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            stored.extend(std::fs::read(&path).expect("read"));
        }
    }
    assert!(!stored.is_empty());
    assert!(
        !stored.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
        "the value is in the store's files"
    );

    let swarm = swarm_at(&sim.base_url(), &db).await;
    // Bad names change nothing.
    for bad in ["1X", "FLY_TOKEN", "HASHED_PASSWORD", "A-B"] {
        let error = swarm
            .set_secret("bob", bad, &SecretString::from("x"))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::Invalid(e) if e[0].field == "key"),
            "{bad}: {error}"
        );
    }
    assert_eq!(
        swarm.list_secrets("bob").await.expect("list").secrets.len(),
        1
    );

    let unset = swarm.unset_secret("bob", "API_TOKEN").await.expect("unset");
    assert_eq!(unset.action, SecretAction::Unset);
    let again = swarm.unset_secret("bob", "API_TOKEN").await.unwrap_err();
    assert!(matches!(again, Error::SecretNotFound { .. }), "{again}");
    assert_eq!(again.exit_code(), 2);
    swarm.stop("bob", false).await.expect("stop");
    let mut start_first = printenv.clone();
    start_first.start_first = true;
    let gone = swarm.exec("bob", &start_first).await.expect("exec");
    assert_eq!(
        gone.output.exit_code, 1,
        "unset reaches the machine at boot"
    );
}
