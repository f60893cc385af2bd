//! A real abort of a separate process at every step boundary of create, delete,
//! resize, password, update, rollback, machine rollback, move and restore; `reconcile` then leaves a
//! complete running workspace (or, for create, possibly nothing), its files, and no
//! orphan, and the record agrees with Fly. The sim runs in this (parent) process and
//! survives the child's crash.
//!
//! The child is this test binary re-executed with `child_process_entry` selected
//! (`--ignored --exact`) and its job in env vars.

#[path = "../common/mod.rs"]
mod common;
mod interrupted;
mod lifecycle_crashes;
mod version_and_region_crashes;

use std::path::Path;
use std::process::Command;

use common::swarm_at;
use swarm::CreateOptions;
use swarm::failpoint::CRASH_AT_ENV;

const CHILD_SIM: &str = "SWARM_TEST_CHILD_SIM";
const CHILD_DB: &str = "SWARM_TEST_CHILD_DB";
const CHILD_OP: &str = "SWARM_TEST_CHILD_OP";
const CHILD_NAME: &str = "SWARM_TEST_CHILD_NAME";
/// The operation's argument (a snapshot id for restore).
const CHILD_ARG: &str = "SWARM_TEST_CHILD_ARG";

fn options(name: &str) -> CreateOptions {
    CreateOptions {
        name: name.to_owned(),
        image: Some("codercom/code-server:4.106.3".to_owned()),
        ..CreateOptions::default()
    }
}

/// Runs in the child: one operation against the parent's sim, crashing where told.
#[test]
#[ignore = "child process of the crash tests; run by them"]
fn child_process_entry() {
    let sim = std::env::var(CHILD_SIM).expect("child needs the sim url");
    let db = std::env::var(CHILD_DB).expect("child needs the store path");
    let op = std::env::var(CHILD_OP).expect("child needs an operation");
    let name = std::env::var(CHILD_NAME).expect("child needs a name");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let swarm = swarm_at(&sim, Path::new(&db)).await;
        match op.as_str() {
            "create" => drop(swarm.create(&options(&name)).await.expect("create")),
            "delete" => drop(swarm.delete(&name).await.expect("delete")),
            "resize" => drop(
                swarm
                    .resize(
                        &name,
                        &swarm::ResizeOptions {
                            cpus: Some(2),
                            storage_gb: Some(12),
                            ..swarm::ResizeOptions::default()
                        },
                    )
                    .await
                    .expect("resize"),
            ),
            "password" => drop(swarm.rotate_password(&name).await.expect("rotate")),
            "update" => drop(
                swarm
                    .update_image(&name, "codercom/code-server:4.107.0")
                    .await
                    .expect("update"),
            ),
            "rollback" => drop(swarm.rollback(&name, None).await.expect("rollback")),
            "machine_rollback" => drop(
                swarm
                    .rollback_machine(&name)
                    .await
                    .expect("machine rollback"),
            ),
            "move" => drop(swarm.move_region(&name, "fra").await.expect("move")),
            "restore" => {
                let snapshot = std::env::var(CHILD_ARG).expect("child needs a snapshot");
                drop(swarm.restore(&name, &snapshot).await.expect("restore"))
            }
            other => panic!("unknown child operation {other}"),
        }
    });
}

/// Runs the child and asserts it died by abort (SIGABRT), not by an error or exit.
fn run_child_until_crash(sim: &str, db: &Path, op: &str, name: &str, point: &str) {
    run_child_with(sim, db, op, name, point, "");
}

fn run_child_with(sim: &str, db: &Path, op: &str, name: &str, point: &str, arg: &str) {
    let exe = std::env::current_exe().expect("test binary");
    let output = Command::new(exe)
        .args([
            "child_process_entry",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_SIM, sim)
        .env(CHILD_DB, db)
        .env(CHILD_OP, op)
        .env(CHILD_NAME, name)
        .env(CHILD_ARG, arg)
        .env(CRASH_AT_ENV, format!("{op}.{point}"))
        .output()
        .expect("spawn child");
    use std::os::unix::process::ExitStatusExt;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.signal(),
        Some(6),
        "child {op} at {point} should abort (SIGABRT); status {:?}, stderr: {stderr}",
        output.status
    );
    assert!(
        stderr.contains(&format!("crash point {op}.{point} reached")),
        "{stderr}"
    );
}

fn app_on_sim(sim: &fly_sim::SimHandle, app: &str) -> Option<serde_json::Value> {
    let world = sim.world();
    world["apps"]
        .as_array()?
        .iter()
        .find(|candidate| candidate["name"] == app)
        .cloned()
}

async fn sim_file(sim: &fly_sim::SimHandle, app: &str, put: Option<&str>) -> Option<String> {
    let http = reqwest::Client::new();
    let url = format!("{}/__sim/fs/project/data.txt", sim.base_url());
    if let Some(body) = put {
        let response = http
            .put(&url)
            .header(reqwest::header::HOST, format!("{app}.fly.dev"))
            .body(body.to_owned())
            .send()
            .await
            .expect("put");
        assert_eq!(response.status(), 204);
    }
    let response = http
        .get(&url)
        .header(reqwest::header::HOST, format!("{app}.fly.dev"))
        .send()
        .await
        .expect("get");
    (response.status() == 200).then_some(response.text().await.expect("body"))
}
