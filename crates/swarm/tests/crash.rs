//! A real abort of a separate process at every step boundary of create, delete,
//! resize, password, update, rollback, machine rollback, move and restore; `reconcile` then leaves a
//! complete running workspace (or, for create, possibly nothing), its files, and no
//! orphan, and the record agrees with Fly. The sim runs in this (parent) process and
//! survives the child's crash.
//!
//! The child is this test binary re-executed with `child_process_entry` selected
//! (`--ignored --exact`) and its job in env vars.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_sim_empty, start_sim, swarm_at};
use swarm::failpoint::{
    CRASH_AT_ENV, CREATE_POINTS, DELETE_POINTS, IMAGE_POINTS, MACHINE_ROLLBACK_POINTS,
    PASSWORD_POINTS, REPLACE_POINTS, RESIZE_POINTS,
};
use swarm::{CreateOptions, MachineState, Provider as _, ReconcileAction, Store, WorkspaceStatus};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_every_create_and_delete_step_then_reconcile_converges() {
    let sim = start_sim().await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("swarm.db");
    let swarm = swarm_at(&url, &db).await;
    let mut outcomes = Vec::new();

    for (index, point) in CREATE_POINTS.iter().enumerate() {
        let name = format!("crash-create-{index}");
        run_child_until_crash(&url, &db, "create", &name, point);
        // No lost record: the intent was committed before anything else.
        let intent = swarm.store().list_workspaces(true).await.expect("list");
        let record = intent
            .iter()
            .find(|record| record.name.as_str() == name)
            .expect("record survives the crash");
        assert_eq!(
            record.status,
            if *point == "after_started" {
                WorkspaceStatus::Running
            } else {
                WorkspaceStatus::Creating
            }
        );

        let report = swarm.reconcile().await.expect("reconcile");
        assert!(report.converged(), "{point}: {report:?}");
        let after = swarm
            .store()
            .workspace(record.id)
            .await
            .expect("get")
            .expect("record kept");
        let app = app_on_sim(&sim, &name);
        match after.status {
            WorkspaceStatus::Running => {
                // `started` is committed with the operation's end: nothing is left to
                // finish after it.
                if *point == "after_started" {
                    assert!(report.actions.is_empty(), "{point}: {report:?}");
                } else {
                    assert!(
                        report
                            .actions
                            .iter()
                            .any(|a| matches!(a, ReconcileAction::FinishedCreate { .. })),
                        "{report:?}"
                    );
                }
                let app = app.expect("a running workspace has its app");
                assert_eq!(
                    app["machines"].as_array().map(Vec::len),
                    Some(1),
                    "{point}: {app}"
                );
                assert_eq!(app["machines"][0]["state"], "started", "{point}: {app}");
                assert_eq!(
                    app["volumes"].as_array().map(Vec::len),
                    Some(1),
                    "{point}: {app}"
                );
                assert_eq!(
                    after.machine_id.as_deref(),
                    app["machines"][0]["id"].as_str()
                );
                assert_eq!(after.ips.len(), 2, "{point}: {after:?}");
                let health = swarm.health(&name).await.expect("health");
                assert_eq!(
                    health.status,
                    swarm::HealthStatus::Healthy,
                    "{point}: {health:?}"
                );
            }
            WorkspaceStatus::Deleted => {
                assert!(app.is_none(), "{point}: undone create left {app:?}");
                assert!(
                    report
                        .actions
                        .iter()
                        .any(|a| matches!(a, ReconcileAction::UndidCreate { .. })),
                    "{point}: {report:?}"
                );
            }
            other => panic!("{point}: record ended {other}"),
        }
        assert!(
            swarm
                .store()
                .unfinished_operations()
                .await
                .expect("ops")
                .is_empty()
        );
        // Level-triggered: a second pass finds nothing to do.
        let again = swarm.reconcile().await.expect("reconcile again");
        assert!(again.actions.is_empty(), "{point}: {again:?}");
        outcomes.push(format!("create.{point} -> {}", after.status));
    }

    for (index, point) in DELETE_POINTS.iter().enumerate() {
        let name = format!("crash-delete-{index}");
        let created = swarm.create(&options(&name)).await.expect("create");
        run_child_until_crash(&url, &db, "delete", &name, point);
        let report = swarm.reconcile().await.expect("reconcile");
        assert!(report.converged(), "{point}: {report:?}");
        assert!(
            report
                .actions
                .iter()
                .any(|a| matches!(a, ReconcileAction::FinishedDelete { .. })),
            "{point}: {report:?}"
        );
        let after = swarm
            .store()
            .workspace(created.workspace.id)
            .await
            .expect("get")
            .expect("record kept");
        assert_eq!(after.status, WorkspaceStatus::Deleted, "{point}");
        assert!(
            app_on_sim(&sim, &name).is_none(),
            "{point}: app left behind"
        );
        outcomes.push(format!("delete.{point} -> {}", after.status));
    }

    // Remove the workspaces that were finished, then nothing may remain anywhere.
    for record in swarm.list().await.expect("list") {
        swarm.delete(record.name.as_str()).await.expect("delete");
    }
    assert_sim_empty(&sim);
    let records = swarm.store().list_workspaces(true).await.expect("records");
    assert_eq!(
        records.len(),
        CREATE_POINTS.len() + DELETE_POINTS.len(),
        "every intent kept its record"
    );
    assert!(
        records
            .iter()
            .all(|record| record.status == WorkspaceStatus::Deleted)
    );
    eprintln!("crash outcomes: {outcomes:#?}");
    sim.shutdown().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_every_resize_and_password_step_then_reconcile_converges() {
    let sim = start_sim().await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("swarm.db");
    let swarm = swarm_at(&url, &db).await;
    let jobs = RESIZE_POINTS
        .iter()
        .map(|point| ("resize", *point))
        .chain(PASSWORD_POINTS.iter().map(|point| ("password", *point)));
    for (index, (op, point)) in jobs.enumerate() {
        let name = format!("crash-{op}-{index}");
        let created = swarm.create(&options(&name)).await.expect("create");
        assert_eq!(created.workspace.spec.storage_gb, 10, "test assumes 10 GB");
        sim_file(&sim, &name, Some("precious")).await;
        run_child_until_crash(&url, &db, op, &name, point);

        let report = swarm.reconcile().await.expect("reconcile");
        assert!(report.converged(), "{op} at {point}: {report:?}");
        assert!(
            report.actions.iter().any(|action| matches!(
                action,
                ReconcileAction::SettledOperation { name: settled, .. } if *settled == name
            )),
            "{op} at {point}: {report:?}"
        );
        let again = swarm.reconcile().await.expect("reconcile again");
        assert!(again.actions.is_empty(), "{op} at {point}: {again:?}");

        let record = swarm.show(&name).await.expect("record");
        assert_eq!(record.status, WorkspaceStatus::Running, "{op} at {point}");
        if op == "resize" {
            // Rolled forward once the plan was journaled (after the intent).
            let expected = if point == "after_intent" {
                (1, 10)
            } else {
                (2, 12)
            };
            assert_eq!(
                (record.spec.guest.cpus, record.spec.storage_gb),
                expected,
                "{op} at {point}"
            );
        }
        assert_eq!(
            sim_file(&sim, &name, None).await.as_deref(),
            Some("precious"),
            "{op} at {point}: data kept"
        );
        assert_eq!(
            swarm.health(&name).await.expect("health").status,
            swarm::HealthStatus::Healthy,
            "{op} at {point}"
        );
        // Still exactly one machine and one volume: nothing orphaned.
        let stats = sim.stats();
        assert_eq!(
            (stats.machines, stats.volumes),
            (index + 1, index + 1),
            "{op} at {point}"
        );
    }
    for record in swarm.list().await.expect("list") {
        swarm.delete(record.name.as_str()).await.expect("delete");
    }
    assert_sim_empty(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_every_move_restore_update_and_rollback_step_then_reconcile_converges() {
    let sim = start_sim().await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("swarm.db");
    let swarm = swarm_at(&url, &db).await;
    let jobs = ["move", "restore"]
        .iter()
        .flat_map(|op| REPLACE_POINTS.iter().map(move |point| (*op, *point)))
        .chain(
            ["update", "rollback"]
                .iter()
                .flat_map(|op| IMAGE_POINTS.iter().map(move |point| (*op, *point))),
        );
    for (index, (op, point)) in jobs.enumerate() {
        let name = format!("crash-{op}-{index}");
        let created = swarm.create(&options(&name)).await.expect("create");
        let first_image = created.workspace.spec.image.clone();
        let mut arg = String::new();
        match op {
            "restore" => {
                sim_file(&sim, &name, Some("precious")).await;
                let snapshot = swarm.create_snapshot(&name).await.expect("snapshot");
                arg = snapshot.expect("listed at once").id;
                sim_file(&sim, &name, Some("scribbled over")).await;
            }
            "rollback" => {
                swarm
                    .update_image(&name, "codercom/code-server:4.107.0")
                    .await
                    .expect("update before rollback");
                sim_file(&sim, &name, Some("precious")).await;
            }
            _ => {
                sim_file(&sim, &name, Some("precious")).await;
            }
        }
        run_child_with(&url, &db, op, &name, point, &arg);

        let report = swarm.reconcile().await.expect("reconcile");
        assert!(report.converged(), "{op} at {point}: {report:?}");
        let finished = report.actions.iter().any(|action| {
            matches!(action, ReconcileAction::FinishedOperation { name: n, .. } if *n == name)
        });
        let undone = report.actions.iter().any(|action| {
            matches!(action, ReconcileAction::UndidOperation { name: n, .. } if *n == name)
        });
        assert!(finished || undone, "{op} at {point}: {report:?}");
        let again = swarm.reconcile().await.expect("reconcile again");
        assert!(again.actions.is_empty(), "{op} at {point}: {again:?}");

        // Forward once the change took effect on Fly, back before.
        let forward = match op {
            "move" | "restore" => matches!(point, "after_switch" | "after_cleanup"),
            _ => point == "after_machine",
        };
        assert_eq!(finished, forward, "{op} at {point}: {report:?}");
        let record = swarm.show(&name).await.expect("record");
        assert_eq!(record.status, WorkspaceStatus::Running, "{op} at {point}");
        match op {
            "move" => assert_eq!(
                record.spec.region,
                if forward { "fra" } else { "ams" },
                "{op} at {point}"
            ),
            "update" => assert_eq!(
                record.spec.image,
                if forward {
                    "codercom/code-server:4.107.0"
                } else {
                    first_image.as_str()
                },
                "{op} at {point}"
            ),
            "rollback" => assert_eq!(
                record.spec.image,
                if forward {
                    first_image.as_str()
                } else {
                    "codercom/code-server:4.107.0"
                },
                "{op} at {point}"
            ),
            _ => {}
        }
        let expected = if op == "restore" && !forward {
            "scribbled over"
        } else {
            "precious"
        };
        assert_eq!(
            sim_file(&sim, &name, None).await.as_deref(),
            Some(expected),
            "{op} at {point}: data kept"
        );
        assert_eq!(
            swarm.health(&name).await.expect("health").status,
            swarm::HealthStatus::Healthy,
            "{op} at {point}"
        );
        // One machine and one volume per workspace: nothing orphaned, and the record
        // names exactly those.
        let stats = sim.stats();
        assert_eq!(
            (stats.machines, stats.volumes),
            (index + 1, index + 1),
            "{op} at {point}"
        );
        let app = app_on_sim(&sim, &name).expect("app");
        let world = app.to_string();
        assert!(
            world.contains(record.machine_id.as_deref().expect("machine")),
            "{op} at {point}"
        );
        assert!(
            world.contains(record.volume_id.as_deref().expect("volume")),
            "{op} at {point}"
        );
    }
    for record in swarm.list().await.expect("list") {
        swarm.delete(record.name.as_str()).await.expect("delete");
    }
    assert_sim_empty(&sim);
}

/// A machine rollback aborted at each step, undoing an image update (snapshot, image
/// and guest) or a resize (guest only): reconcile records it when Fly's machine runs
/// the plan and closes it otherwise, and the record then agrees with Fly's machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_every_machine_rollback_step_then_reconcile_converges() {
    let sim = start_sim().await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("swarm.db");
    let swarm = swarm_at(&url, &db).await;
    let jobs = MACHINE_ROLLBACK_POINTS
        .iter()
        .map(|point| ("update", *point))
        .chain(
            ["after_intent", "after_machine"]
                .iter()
                .map(|point| ("resize", *point)),
        );
    for (index, (undoing, point)) in jobs.enumerate() {
        let name = format!("crash-machine-{index}");
        let created = swarm.create(&options(&name)).await.expect("create");
        let before = created.workspace.spec.clone();
        let changed = if undoing == "update" {
            swarm
                .update_image(&name, "codercom/code-server:4.107.0")
                .await
                .expect("update")
                .workspace
        } else {
            swarm
                .resize(
                    &name,
                    &swarm::ResizeOptions {
                        cpus: Some(2),
                        ..swarm::ResizeOptions::default()
                    },
                )
                .await
                .expect("resize")
                .workspace
        };
        sim_file(&sim, &name, Some("precious")).await;
        run_child_until_crash(&url, &db, "machine_rollback", &name, point);

        let report = swarm.reconcile().await.expect("reconcile");
        assert!(report.converged(), "{undoing} at {point}: {report:?}");
        let finished = report.actions.iter().any(|action| {
            matches!(action, ReconcileAction::FinishedOperation { name: n, .. } if *n == name)
        });
        let undone = report.actions.iter().any(|action| {
            matches!(action, ReconcileAction::UndidOperation { name: n, .. } if *n == name)
        });
        assert_eq!(
            (finished, undone),
            (point == "after_machine", point != "after_machine"),
            "{undoing} at {point}: {report:?}"
        );
        let again = swarm.reconcile().await.expect("reconcile again");
        assert!(again.actions.is_empty(), "{undoing} at {point}: {again:?}");

        let record = swarm.show(&name).await.expect("record");
        let expected = if finished { &before } else { &changed.spec };
        assert_eq!(
            (&record.spec.image, record.spec.guest),
            (&expected.image, expected.guest),
            "{undoing} at {point}"
        );
        // The record agrees with Fly's machine.
        let app = record.app.clone().expect("app");
        let machine = swarm
            .provider()
            .get_machine(&app, record.machine_id.as_deref().expect("machine"))
            .await
            .expect("get machine")
            .expect("machine exists");
        assert_eq!(
            machine.guest,
            Some(record.spec.guest),
            "{undoing} at {point}"
        );
        if undoing == "update" {
            let image = if finished {
                created.workspace.image_versions[0].pinned_image()
            } else {
                "codercom/code-server:4.107.0".to_owned()
            };
            assert_eq!(machine.image, Some(image), "{undoing} at {point}");
        }
        assert_eq!(
            record.status,
            WorkspaceStatus::Running,
            "{undoing} at {point}"
        );
        assert_eq!(
            record.volume_id, created.workspace.volume_id,
            "{undoing} at {point}: same volume"
        );
        assert_eq!(
            sim_file(&sim, &name, None).await.as_deref(),
            Some("precious"),
            "{undoing} at {point}: data kept"
        );
        let stats = sim.stats();
        assert_eq!(
            (stats.machines, stats.volumes),
            (index + 1, index + 1),
            "{undoing} at {point}"
        );
    }
    for record in swarm.list().await.expect("list") {
        swarm.delete(record.name.as_str()).await.expect("delete");
    }
    assert_sim_empty(&sim);
}

/// A move interrupted after its volume fork, the old machine stopped: a request to the
/// workspace's URL must not wake that machine (Fly's proxy autostarts a stopped one),
/// or what it wrote after the fork would be lost when the move goes forward. The move
/// cordons the old machine; undoing the move uncordons it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_during_a_move_does_not_wake_the_old_machine() {
    let sim = start_sim().await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("swarm.db");
    let swarm = swarm_at(&url, &db).await;
    let name = "wake-me";
    let created = swarm.create(&options(name)).await.expect("create");
    let old_machine = created.workspace.machine_id.clone().expect("machine");
    sim_file(&sim, name, Some("precious")).await;
    run_child_until_crash(&url, &db, "move", name, "after_volume");

    // The user opens the workspace meanwhile.
    assert_eq!(
        sim_file(&sim, name, None).await,
        None,
        "nothing serves the workspace mid-move"
    );
    let machine = swarm
        .provider()
        .get_machine(name, &old_machine)
        .await
        .expect("get machine")
        .expect("the old machine is there");
    assert_eq!(machine.state, MachineState::Stopped, "the proxy woke it");

    let report = swarm.reconcile().await.expect("reconcile");
    assert!(report.converged(), "{report:?}");
    let record = swarm.show(name).await.expect("record");
    assert_eq!(record.status, WorkspaceStatus::Running);
    assert_eq!(record.machine_id.as_deref(), Some(old_machine.as_str()));
    assert_eq!(
        sim_file(&sim, name, None).await.as_deref(),
        Some("precious")
    );
    // Uncordoned: stopped again, the next request wakes it as before.
    swarm.stop(name, false).await.expect("stop");
    assert_eq!(
        sim_file(&sim, name, None).await.as_deref(),
        Some("precious"),
        "autostart works again"
    );
    swarm.delete(name).await.expect("delete");
    assert_sim_empty(&sim);
}

/// Found by the model test: a create interrupted after its app was made, its record
/// then deleted without settling it (as a delete did before operations settled what a
/// crash left), and the name created anew. Reconciling the old create must not claim
/// (and tear down) the new workspace's app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciling_an_old_interrupted_create_leaves_a_new_workspace_of_that_name_alone() {
    let sim = start_sim().await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("swarm.db");
    run_child_until_crash(&url, &db, "create", "again", "after_app");
    let swarm = swarm_at(&url, &db).await;
    let mut old = swarm.show("again").await.expect("half-made record");
    old.status = WorkspaceStatus::Deleted;
    swarm
        .store()
        .update_workspace(&old)
        .await
        .expect("mark deleted");
    swarm
        .provider()
        .delete_app("again")
        .await
        .expect("remove its app");
    assert!(
        common::eventually(std::time::Duration::from_secs(10), || sim.stats().apps == 0).await,
        "the old app is gone"
    );
    let created = swarm.create(&options("again")).await.expect("create anew");
    sim_file(&sim, "again", Some("new work")).await;

    let report = swarm.reconcile().await.expect("reconcile");
    assert!(report.converged(), "{report:?}");
    let record = swarm.show("again").await.expect("record");
    assert_eq!(record.id, created.workspace.id);
    assert_eq!(record.status, WorkspaceStatus::Running);
    assert_eq!(
        swarm.health("again").await.expect("health").status,
        swarm::HealthStatus::Healthy
    );
    assert_eq!(
        sim_file(&sim, "again", None).await.as_deref(),
        Some("new work")
    );
    assert!(
        swarm
            .store()
            .unfinished_operations()
            .await
            .expect("journal")
            .is_empty()
    );
    swarm.delete("again").await.expect("delete");
    assert_sim_empty(&sim);
}

/// A create that finds its name taken by an app of our own organisation that is not
/// ours, and crashes before it journals so: reconcile undoes the create and asks Fly,
/// by repeating the create under the noted key, whose the app is; it stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_create_on_a_name_taken_in_our_org_leaves_that_app_alone() {
    let sim = start_sim().await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("swarm.db");
    let swarm = swarm_at(&url, &db).await;
    swarm
        .provider()
        .create_app("theirs", "personal", "their-own-key")
        .await
        .expect("someone else's app");
    run_child_until_crash(&url, &db, "create", "theirs", "after_app_refused");

    let report = swarm.reconcile().await.expect("reconcile");
    assert!(report.converged(), "{report:?}");
    assert!(
        report
            .actions
            .iter()
            .any(|action| matches!(action, ReconcileAction::UndidCreate { .. })),
        "{report:?}"
    );
    assert!(
        app_on_sim(&sim, "theirs").is_some(),
        "their app was deleted"
    );
    let records = swarm.store().list_workspaces(true).await.expect("records");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, WorkspaceStatus::Deleted);
    // Later passes only report it (named like a deleted record, left alone).
    let again = swarm.reconcile().await.expect("reconcile again");
    assert!(
        again.actions.iter().all(
            |action| matches!(action, ReconcileAction::OrphanApp { app, .. } if app == "theirs")
        ),
        "{again:?}"
    );
    assert!(
        app_on_sim(&sim, "theirs").is_some(),
        "their app was deleted"
    );
    sim.shutdown().await;
}

/// Found by the model test: an operation on a workspace whose move a crash left
/// unfinished first settles that move, so the later operation never runs on a
/// half-moved workspace and the old plan never resurfaces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_operation_settles_an_interrupted_one_first() {
    let sim = start_sim().await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("swarm.db");
    let swarm = swarm_at(&url, &db).await;
    swarm.create(&options("halfway")).await.expect("create");
    sim_file(&sim, "halfway", Some("keep")).await;
    run_child_until_crash(&url, &db, "move", "halfway", "after_machine");
    assert_eq!(sim.stats().machines, 2, "the crash left the new machine");

    let stopped = swarm.stop("halfway", false).await.expect("stop");
    assert_eq!(stopped.workspace.status, WorkspaceStatus::Stopped);
    assert_eq!(
        stopped.workspace.spec.region, "ams",
        "the move was undone first"
    );
    assert_eq!((sim.stats().machines, sim.stats().volumes), (1, 1));
    assert!(
        swarm
            .store()
            .unfinished_operations()
            .await
            .expect("journal")
            .is_empty()
    );
    assert!(
        swarm
            .reconcile()
            .await
            .expect("reconcile")
            .actions
            .is_empty()
    );
    swarm.start("halfway").await.expect("start");
    assert_eq!(
        sim_file(&sim, "halfway", None).await.as_deref(),
        Some("keep")
    );
    swarm.delete("halfway").await.expect("delete");
    assert_sim_empty(&sim);
}
