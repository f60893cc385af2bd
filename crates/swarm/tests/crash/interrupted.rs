//! What others see of an interrupted operation: requests during a move, a name
//! reused or taken after an interrupted create, and the next operation settling it.

use swarm::{MachineState, Provider as _, ReconcileAction, Store, WorkspaceStatus};

use crate::common::{self, assert_sim_empty, start_sim, swarm_at};
use crate::{app_on_sim, options, run_child_until_crash, sim_file};

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
