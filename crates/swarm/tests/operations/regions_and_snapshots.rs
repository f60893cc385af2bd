//! Region moves (also one Fly refuses), snapshots and restore, and their bad input.

use swarm::{Error, WorkspaceStatus};

use crate::common::{
    assert_sim_empty, machine_config, start_sim, swarm_at, swarm_with, test_config,
};
use crate::{get_file, login_accepts, options, placement, put_file, without};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_forks_the_volume_into_the_new_region_and_removes_the_old_pair() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let created = swarm.create(&options("nomad")).await.expect("create");
    assert_eq!(created.workspace.spec.region, "ams");
    let password = created.password.expose().to_owned();
    let old_machine = created.workspace.machine_id.clone().expect("machine");
    let before = machine_config(&sim, &old_machine);
    put_file(&sim, "nomad", "project/todo.txt", "pack").await;

    let moved = swarm.move_region("nomad", "fra").await.expect("move");
    let ws = &moved.workspace;
    assert_eq!(
        (moved.previous_region.as_str(), ws.spec.region.as_str()),
        ("ams", "fra")
    );
    assert_eq!(ws.status, WorkspaceStatus::Running);
    assert_eq!(ws.url, created.workspace.url, "same URL");
    let new_machine = ws.machine_id.clone().expect("machine");
    let new_volume = ws.volume_id.clone().expect("volume");
    assert_ne!(new_machine, old_machine);
    assert_ne!(Some(new_volume.clone()), created.workspace.volume_id);
    assert_eq!(moved.removed.len(), 2, "{:?}", moved.removed);

    // Exactly one machine and one volume, both in fra.
    let (machines, volumes) = placement(&sim, "nomad");
    assert_eq!(
        machines,
        vec![(new_machine.clone(), "fra".to_owned(), "started".to_owned())]
    );
    assert_eq!(volumes, vec![(new_volume.clone(), "fra".to_owned())]);
    // The same config (image, env with the password hash, services), new mount.
    let after = machine_config(&sim, &new_machine);
    assert_eq!(after["mounts"][0]["volume"], new_volume.as_str());
    let strip: &[&[&str]] = &[&["mounts"], &["metadata", swarm::TAG_OPERATION]];
    assert_eq!(without(before, strip), without(after, strip));
    assert_eq!(
        get_file(&sim, "nomad", "project/todo.txt").await.as_deref(),
        Some("pack")
    );
    assert!(login_accepts(&sim, "nomad", &password).await);
    assert_eq!(
        swarm.health("nomad").await.expect("health").status,
        swarm::HealthStatus::Healthy
    );

    // A stopped workspace moves and stays stopped.
    swarm.stop("nomad", false).await.expect("stop");
    let back = swarm.move_region("nomad", "ams").await.expect("move back");
    assert_eq!(back.workspace.status, WorkspaceStatus::Stopped);
    let (machines, volumes) = placement(&sim, "nomad");
    assert_eq!(machines.len(), 1);
    assert_eq!(
        (machines[0].1.as_str(), machines[0].2.as_str()),
        ("ams", "stopped")
    );
    assert_eq!(volumes.len(), 1);
    swarm.start("nomad").await.expect("start");
    assert_eq!(
        get_file(&sim, "nomad", "project/todo.txt").await.as_deref(),
        Some("pack")
    );
    assert_eq!(swarm.reconcile().await.expect("reconcile").actions, vec![]);
    swarm.delete("nomad").await.expect("delete");
    assert_sim_empty(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_fly_refuses_is_undone_and_the_workspace_runs_where_it_was() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(&sim.base_url());
    // A region we offer but Fly does not know: the volume create is refused.
    config.regions.push("zzz".to_owned());
    let swarm = swarm_with(&sim.base_url(), &dir.path().join("swarm.db"), config).await;
    let created = swarm.create(&options("stay")).await.expect("create");
    put_file(&sim, "stay", "project/a.txt", "here").await;

    let error = swarm.move_region("stay", "zzz").await.expect_err("refused");
    assert_eq!(error.exit_code(), 1, "{error}");
    let record = swarm.show("stay").await.expect("show");
    assert_eq!(record.status, WorkspaceStatus::Running);
    assert_eq!(record.spec.region, "ams");
    assert_eq!(record.machine_id, created.workspace.machine_id);
    assert_eq!(record.volume_id, created.workspace.volume_id);
    let (machines, volumes) = placement(&sim, "stay");
    assert_eq!(machines.len(), 1);
    assert_eq!(machines[0].2, "started", "the old machine runs again");
    assert_eq!(volumes.len(), 1);
    assert_eq!(
        get_file(&sim, "stay", "project/a.txt").await.as_deref(),
        Some("here")
    );
    assert_eq!(swarm.reconcile().await.expect("reconcile").actions, vec![]);
    swarm.delete("stay").await.expect("delete");
    assert_sim_empty(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_brings_back_the_snapshot_files_in_a_new_volume() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let created = swarm.create(&options("undo")).await.expect("create");
    let password = created.password.expose().to_owned();
    assert!(swarm.snapshots("undo").await.expect("list").is_empty());
    put_file(&sim, "undo", "project/essay.md", "first draft").await;
    let snapshot = swarm
        .create_snapshot("undo")
        .await
        .expect("snapshot")
        .expect("the sim lists it at once");
    put_file(&sim, "undo", "project/essay.md", "ruined").await;
    let listed = swarm.snapshots("undo").await.expect("list");
    assert_eq!(
        listed.iter().map(|s| &s.id).collect::<Vec<_>>(),
        vec![&snapshot.id]
    );

    let restored = swarm.restore("undo", &snapshot.id).await.expect("restore");
    assert_eq!(restored.workspace.status, WorkspaceStatus::Running);
    assert_eq!(restored.workspace.spec.region, "ams");
    assert_ne!(restored.workspace.volume_id, created.workspace.volume_id);
    assert_eq!(
        get_file(&sim, "undo", "project/essay.md").await.as_deref(),
        Some("first draft")
    );
    let (machines, volumes) = placement(&sim, "undo");
    assert_eq!((machines.len(), volumes.len()), (1, 1));
    assert!(login_accepts(&sim, "undo", &password).await);
    assert_eq!(swarm.reconcile().await.expect("reconcile").actions, vec![]);
    swarm.delete("undo").await.expect("delete");
    assert_sim_empty(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_versions_regions_and_snapshots_exit_2_and_change_nothing() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let created = swarm.create(&options("firm")).await.expect("create");
    let world = sim.world();

    let expect_invalid = |error: Error, field: &str, rule: &str| {
        assert_eq!(error.exit_code(), 2, "{error}");
        let Error::Invalid(errors) = &error else {
            panic!("not Invalid: {error}");
        };
        assert_eq!(errors[0].field, field, "{error}");
        assert!(error.to_string().contains(rule), "{error}");
    };
    let requests = sim.stats().requests_total;
    expect_invalid(
        swarm.rollback("firm", None).await.expect_err("no earlier"),
        "version",
        "no earlier version",
    );
    expect_invalid(
        swarm.rollback("firm", Some(7)).await.expect_err("unknown"),
        "version",
        "must be one of this workspace's versions (1)",
    );
    expect_invalid(
        swarm.rollback("firm", Some(1)).await.expect_err("current"),
        "version",
        "runs now",
    );
    expect_invalid(
        swarm
            .move_region("firm", "ams")
            .await
            .expect_err("same region"),
        "region",
        "already in ams",
    );
    expect_invalid(
        swarm
            .move_region("firm", "mars")
            .await
            .expect_err("unknown region"),
        "region",
        "must be one of",
    );
    expect_invalid(
        swarm
            .update_image("firm", "Bad Image!")
            .await
            .expect_err("bad image"),
        "image",
        "",
    );
    expect_invalid(
        swarm.restore("firm", "../etc").await.expect_err("bad id"),
        "snapshot",
        "Fly snapshot id",
    );
    assert_eq!(sim.stats().requests_total, requests, "no Fly call so far");
    // A well-formed id that is not one of this volume's snapshots: looked up, refused.
    expect_invalid(
        swarm
            .restore("firm", "vs_doesnotexist")
            .await
            .expect_err("unknown snapshot"),
        "snapshot",
        "swarm snapshot list firm",
    );
    assert_eq!(sim.world(), world, "nothing changed on Fly");
    let record = swarm.show("firm").await.expect("show");
    assert_eq!(record, created.workspace);
    swarm.delete("firm").await.expect("delete");
}
