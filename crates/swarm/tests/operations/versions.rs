//! Image update and rollback, and machine rollback, with every version recorded.

use swarm::{Error, ResizeOptions, WorkspaceStatus};

use crate::common::{assert_sim_empty, machine_config, start_sim, swarm_at};
use crate::{get_file, login_accepts, options, placement, put_file};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_and_rollback_record_every_version_and_keep_the_files() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let created = swarm.create(&options("img")).await.expect("create");
    let machine_id = created.workspace.machine_id.clone().expect("machine");
    let volume_id = created.workspace.volume_id.clone().expect("volume");
    let password = created.password.expose().to_owned();
    put_file(&sim, "img", "project/main.rs", "fn main() {}").await;
    let first = created.workspace.image_versions[0].clone();
    assert!(
        first.digest.is_some(),
        "the digest Fly resolved is recorded"
    );

    let updated = swarm
        .update_image("img", "codercom/code-server:4.107.0")
        .await
        .expect("update");
    assert_eq!((updated.from, updated.to.version), (Some(1), 2));
    assert_eq!(updated.to.image, "codercom/code-server:4.107.0");
    assert!(updated.to.snapshot_before.is_some(), "snapshot taken first");
    assert_eq!(updated.workspace.spec.image, "codercom/code-server:4.107.0");
    assert_eq!(updated.workspace.status, WorkspaceStatus::Running);
    // In place: same machine, same volume, only the image changed on Fly.
    assert_eq!(
        updated.workspace.machine_id.as_deref(),
        Some(machine_id.as_str())
    );
    assert_eq!(
        updated.workspace.volume_id.as_deref(),
        Some(volume_id.as_str())
    );
    assert_eq!(
        machine_config(&sim, &machine_id)["image"],
        "codercom/code-server:4.107.0"
    );
    let snapshots = swarm.snapshots("img").await.expect("snapshots");
    assert_eq!(snapshots.len(), 1);
    assert_eq!(Some(&snapshots[0].id), updated.to.snapshot_before.as_ref());
    assert_eq!(
        get_file(&sim, "img", "project/main.rs").await.as_deref(),
        Some("fn main() {}")
    );
    assert!(login_accepts(&sim, "img", &password).await, "password kept");

    // Default rollback: the version before the current one, pinned by its digest.
    let rolled = swarm.rollback("img", None).await.expect("rollback");
    assert_eq!(
        (rolled.from, rolled.to.version, rolled.to.rollback_of),
        (Some(2), 3, Some(1))
    );
    assert_eq!(rolled.to.image, first.image);
    assert_eq!(rolled.workspace.spec.image, first.image);
    let sent = machine_config(&sim, &machine_id)["image"]
        .as_str()
        .expect("image")
        .to_owned();
    assert_eq!(
        sent,
        format!(
            "codercom/code-server@{}",
            first.digest.clone().expect("digest")
        )
    );
    assert_eq!(
        get_file(&sim, "img", "project/main.rs").await.as_deref(),
        Some("fn main() {}")
    );

    // --to a named version; the history keeps growing.
    let again = swarm.rollback("img", Some(2)).await.expect("rollback to 2");
    assert_eq!(again.to.image, "codercom/code-server:4.107.0");
    let versions = swarm.versions("img").await.expect("versions");
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.version, v.rollback_of))
            .collect::<Vec<_>>(),
        vec![(1, None), (2, None), (3, Some(1)), (4, Some(2))]
    );
    assert_eq!(
        swarm.health("img").await.expect("health").status,
        swarm::HealthStatus::Healthy
    );

    // A stopped workspace is updated but stays stopped.
    swarm.stop("img", false).await.expect("stop");
    let stopped = swarm
        .update_image("img", "codercom/code-server:4.108.0")
        .await
        .expect("update stopped");
    assert_eq!(stopped.workspace.status, WorkspaceStatus::Stopped);
    assert_eq!(placement(&sim, "img").0[0].2, "stopped");
    assert_eq!(swarm.reconcile().await.expect("reconcile").actions, vec![]);
    swarm.delete("img").await.expect("delete");
    assert_sim_empty(&sim);
}

/// `rollback_machine` returns the machine to the config before its last machine change
/// (a resize: the guest; an update: the image, by digest), in place: same machine, same
/// volume, files kept, the password kept. A second one undoes the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machine_rollback_returns_to_the_config_before_the_last_machine_change() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let created = swarm.create(&options("mach")).await.expect("create");
    let machine_id = created.workspace.machine_id.clone().expect("machine");
    let volume_id = created.workspace.volume_id.clone().expect("volume");
    let password = created.password.expose().to_owned();
    let small = created.workspace.spec.guest;
    put_file(&sim, "mach", "project/notes.md", "keep me").await;
    let before = machine_config(&sim, &machine_id);

    let resized = swarm
        .resize(
            "mach",
            &ResizeOptions {
                cpus: Some(2),
                ..ResizeOptions::default()
            },
        )
        .await
        .expect("resize");
    let big = resized.workspace.spec.guest;
    assert_ne!(big, small);
    let previous = resized
        .workspace
        .previous_machine
        .clone()
        .expect("recorded");
    assert_eq!(
        (previous.guest, previous.replaced_by.as_str()),
        (small, "resize")
    );

    let back = swarm
        .rollback_machine("mach")
        .await
        .expect("machine rollback");
    assert_eq!((back.from.guest, back.to.guest), (big, small));
    assert_eq!(back.version, None, "the image did not change");
    assert_eq!(back.snapshot_before, None);
    assert_eq!(back.workspace.spec.guest, small);
    assert_eq!(back.workspace.status, WorkspaceStatus::Running);
    // Fly's machine has the old guest again, and only that changed.
    let after = machine_config(&sim, &machine_id);
    assert_eq!(after["guest"]["cpus"], 1);
    assert_eq!(after["guest"]["cpu_kind"], "shared");
    assert_eq!(after["guest"]["memory_mb"], small.memory_mb);
    assert_eq!(after, before, "the whole config is as before the resize");
    assert_eq!(
        back.workspace.machine_id.as_deref(),
        Some(machine_id.as_str())
    );
    assert_eq!(
        back.workspace.volume_id.as_deref(),
        Some(volume_id.as_str())
    );
    let (machines, volumes) = placement(&sim, "mach");
    assert_eq!((machines.len(), volumes.len()), (1, 1));
    assert_eq!(volumes[0].0, volume_id);
    assert_eq!(
        get_file(&sim, "mach", "project/notes.md").await.as_deref(),
        Some("keep me")
    );
    assert!(
        login_accepts(&sim, "mach", &password).await,
        "password kept"
    );
    assert_eq!(
        swarm.versions("mach").await.expect("versions").len(),
        1,
        "a size change adds no image version"
    );

    // Again: the rollback was itself the last machine change, so this undoes it.
    let redo = swarm.rollback_machine("mach").await.expect("again");
    assert_eq!(redo.workspace.spec.guest, big);
    assert_eq!(machine_config(&sim, &machine_id)["guest"]["cpus"], 2);

    // After an update: back to the image before it, pinned by the digest it ran as,
    // with a snapshot first and a new image version; the guest is kept.
    let first = created.workspace.image_versions[0].clone();
    swarm
        .update_image("mach", "codercom/code-server:4.107.0")
        .await
        .expect("update");
    let back = swarm.rollback_machine("mach").await.expect("after update");
    assert_eq!(back.workspace.spec.image, first.image);
    assert_eq!(back.workspace.spec.guest, big);
    assert_eq!(
        machine_config(&sim, &machine_id)["image"].as_str(),
        Some(first.pinned_image().as_str())
    );
    let version = back.version.clone().expect("an image version");
    assert_eq!((version.version, version.rollback_of), (3, Some(1)));
    let snapshot = back.snapshot_before.clone().expect("snapshot first");
    assert!(
        swarm
            .snapshots("mach")
            .await
            .expect("snapshots")
            .iter()
            .any(|s| s.id == snapshot)
    );
    assert_eq!(
        get_file(&sim, "mach", "project/notes.md").await.as_deref(),
        Some("keep me")
    );

    // A stopped workspace is changed and stays stopped.
    swarm.stop("mach", false).await.expect("stop");
    let stopped = swarm.rollback_machine("mach").await.expect("stopped");
    assert_eq!(stopped.workspace.status, WorkspaceStatus::Stopped);
    assert_eq!(placement(&sim, "mach").0[0].2, "stopped");
    // Back on the update's image, pinned by the digest it ran as.
    let updated = swarm.versions("mach").await.expect("versions")[1].clone();
    assert_eq!(updated.image, "codercom/code-server:4.107.0");
    assert_eq!(stopped.workspace.spec.image, updated.image);
    assert_eq!(
        machine_config(&sim, &machine_id)["image"].as_str(),
        Some(updated.pinned_image().as_str())
    );
    assert_eq!(swarm.reconcile().await.expect("reconcile").actions, vec![]);
    swarm.delete("mach").await.expect("delete");
    assert_sim_empty(&sim);
}

/// Nothing to go back to (a new workspace, or one whose previous config is the one it
/// runs): refused naming `machine`, exit 2, no Fly call, nothing changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn machine_rollback_with_nothing_to_return_to_exits_2_and_changes_nothing() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let created = swarm.create(&options("fresh")).await.expect("create");
    let world = sim.world();
    let requests = sim.stats().requests_total;

    let error = swarm.rollback_machine("fresh").await.expect_err("nothing");
    assert_eq!(error.exit_code(), 2, "{error}");
    let Error::Invalid(errors) = &error else {
        panic!("not Invalid: {error}");
    };
    assert_eq!(errors[0].field, "machine", "{error}");
    assert!(
        error.to_string().contains("no earlier machine config"),
        "{error}"
    );
    assert_eq!(sim.stats().requests_total, requests, "no Fly call");
    assert_eq!(sim.world(), world, "nothing changed on Fly");
    assert_eq!(swarm.show("fresh").await.expect("show"), created.workspace);

    let missing = swarm.rollback_machine("nobody").await.expect_err("unknown");
    assert_eq!(missing.exit_code(), 2, "{missing}");

    // An update to the image it already runs: the previous config is the current one.
    swarm
        .update_image("fresh", &created.workspace.spec.image)
        .await
        .expect("same image");
    let record = swarm.show("fresh").await.expect("show");
    let world = sim.world();
    let error = swarm.rollback_machine("fresh").await.expect_err("same");
    assert_eq!(error.exit_code(), 2, "{error}");
    assert!(error.to_string().contains("already runs"), "{error}");
    assert_eq!(sim.world(), world, "nothing changed on Fly");
    assert_eq!(swarm.show("fresh").await.expect("show"), record);
    swarm.delete("fresh").await.expect("delete");
}
