//! Password rotation and resize: the change lands on Fly, files survive, and a
//! resize Fly already half did completes.

use swarm::{CpuKind, Error, ResizeOptions, WorkspaceStatus};

use crate::common::{assert_sim_empty, machine_config, start_sim, swarm_at};
use crate::{get_file, login_accepts, options, put_file, without};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_password_replaces_the_hash_only_and_the_old_password_stops_working() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let created = swarm.create(&options("rot")).await.expect("create");
    let machine_id = created.workspace.machine_id.clone().expect("machine");
    let old = created.password.expose().to_owned();
    assert!(login_accepts(&sim, "rot", &old).await);
    let before = machine_config(&sim, &machine_id);

    let rotated = swarm.rotate_password("rot").await.expect("rotate");
    let new = rotated.password.expose().to_owned();
    assert_ne!(new, old);
    assert_eq!(new.len(), swarm::password::PASSWORD_LENGTH);
    assert_eq!(rotated.workspace.status, WorkspaceStatus::Running);
    assert!(!format!("{rotated:?}").contains(&new), "Debug hides it");

    assert!(login_accepts(&sim, "rot", &new).await, "new password works");
    assert!(!login_accepts(&sim, "rot", &old).await, "old one does not");

    // Only HASHED_PASSWORD changed; the rest of the config is exactly as it was.
    let after = machine_config(&sim, &machine_id);
    let hash = after["env"]["HASHED_PASSWORD"].as_str().expect("hash");
    assert!(swarm::password::verify(&new, hash));
    let strip: &[&[&str]] = &[&["env", "HASHED_PASSWORD"]];
    assert_eq!(without(before, strip), without(after, strip));
    assert_eq!(swarm.reconcile().await.expect("reconcile").actions, vec![]);

    // A stopped workspace stays stopped; the new password works once it starts.
    swarm.stop("rot", false).await.expect("stop");
    let rotated = swarm.rotate_password("rot").await.expect("rotate stopped");
    assert_eq!(rotated.workspace.status, WorkspaceStatus::Stopped);
    swarm.start("rot").await.expect("start");
    assert!(login_accepts(&sim, "rot", rotated.password.expose()).await);
    assert!(!login_accepts(&sim, "rot", &new).await);

    let missing = swarm.rotate_password("nobody").await.expect_err("unknown");
    assert_eq!(missing.exit_code(), 2);
    swarm.delete("rot").await.expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_changes_guest_and_grows_storage_and_files_survive() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let created = swarm.create(&options("grow")).await.expect("create");
    let machine_id = created.workspace.machine_id.clone().expect("machine");
    let volume_id = created.workspace.volume_id.clone().expect("volume");
    let password = created.password.expose().to_owned();
    put_file(&sim, "grow", "project/notes.md", "keep me").await;
    let before = machine_config(&sim, &machine_id);

    let resized = swarm
        .resize(
            "grow",
            &ResizeOptions {
                cpus: Some(2),
                storage_gb: Some(created.workspace.spec.storage_gb + 5),
                ..ResizeOptions::default()
            },
        )
        .await
        .expect("resize");
    assert!(resized.changed);
    let guest = resized.workspace.spec.guest;
    assert_eq!(
        (guest.cpus, guest.cpu_kind, guest.memory_mb),
        (2, CpuKind::Performance, 4096)
    );
    assert_eq!(
        resized.workspace.spec.storage_gb,
        created.workspace.spec.storage_gb + 5
    );
    assert_eq!(resized.workspace.status, WorkspaceStatus::Running);
    assert_eq!(
        resized.workspace.volume_id.as_deref(),
        Some(volume_id.as_str())
    );

    // Fly has the new guest and the grown volume; everything else is kept.
    let after = machine_config(&sim, &machine_id);
    assert_eq!(after["guest"]["cpus"], 2);
    assert_eq!(after["guest"]["cpu_kind"], "performance");
    assert_eq!(after["guest"]["memory_mb"], 4096);
    let strip: &[&[&str]] = &[&["guest"]];
    assert_eq!(without(before, strip), without(after, strip));
    let world = sim.world().to_string();
    assert!(world.contains(&volume_id));
    assert_eq!(swarm.show("grow").await.expect("show").spec.guest, guest);

    assert_eq!(
        get_file(&sim, "grow", "project/notes.md").await.as_deref(),
        Some("keep me")
    );
    assert!(login_accepts(&sim, "grow", &password).await);
    assert_eq!(
        swarm.health("grow").await.expect("health").status,
        swarm::HealthStatus::Healthy
    );

    // Same size again: nothing to do.
    let same = swarm
        .resize(
            "grow",
            &ResizeOptions {
                cpus: Some(2),
                ..ResizeOptions::default()
            },
        )
        .await
        .expect("same");
    assert!(!same.changed);
    assert_eq!(swarm.reconcile().await.expect("reconcile").actions, vec![]);
    swarm.delete("grow").await.expect("delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_resizes_exit_2_name_the_rule_and_call_no_fly_api() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let created = swarm.create(&options("fixed")).await.expect("create");
    let storage = created.workspace.spec.storage_gb;
    let cases: Vec<(ResizeOptions, &str, &str)> = vec![
        (
            ResizeOptions {
                storage_gb: Some(storage - 1),
                ..ResizeOptions::default()
            },
            "storage",
            "only grow",
        ),
        (
            ResizeOptions {
                storage_gb: Some(501),
                ..ResizeOptions::default()
            },
            "storage",
            "1 to 500",
        ),
        (
            ResizeOptions {
                cpus: Some(3),
                ..ResizeOptions::default()
            },
            "cpus",
            "counts of",
        ),
        (
            ResizeOptions {
                memory_mb: Some(100_000),
                ..ResizeOptions::default()
            },
            "memory",
            "take 256 to 2048 MB",
        ),
        (
            ResizeOptions {
                memory_mb: Some(1000),
                ..ResizeOptions::default()
            },
            "memory",
            "multiple of 256",
        ),
        (
            ResizeOptions {
                cpus: Some(1),
                cpu_kind: Some("turbo".to_owned()),
                ..ResizeOptions::default()
            },
            "cpu_kind",
            "",
        ),
        (ResizeOptions::default(), "resize", "at least one of"),
    ];
    for (options, field, rule) in cases {
        let requests = sim.stats().requests_total;
        let error = swarm.resize("fixed", &options).await.expect_err("invalid");
        assert_eq!(error.exit_code(), 2, "{error}");
        let Error::Invalid(errors) = &error else {
            panic!("not Invalid: {error}");
        };
        assert_eq!(errors[0].field, field, "{error}");
        assert!(error.to_string().contains(rule), "{error}");
        assert_eq!(
            sim.stats().requests_total,
            requests,
            "no Fly call for {options:?}"
        );
    }
    let record = swarm.show("fixed").await.expect("show");
    assert_eq!(record.spec, created.workspace.spec);
    swarm.delete("fixed").await.expect("delete");
}

/// Found by the model test: Fly grew the volume but its answer was lost (or the
/// process died before journaling it). Extending again is refused by Fly ("must be
/// greater than the current size"); resize reads the volume and carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_fly_already_grew_completes_the_resize() {
    use swarm::Provider as _;
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let created = swarm.create(&options("lost")).await.expect("create");
    let volume = created.workspace.volume_id.clone().expect("volume");
    let grown = created.workspace.spec.storage_gb + 2;
    swarm
        .provider()
        .extend_volume("lost", &volume, grown)
        .await
        .expect("grown behind the record's back");

    let resized = swarm
        .resize(
            "lost",
            &ResizeOptions {
                storage_gb: Some(grown),
                ..ResizeOptions::default()
            },
        )
        .await
        .expect("resize completes");
    assert_eq!(resized.workspace.spec.storage_gb, grown);
    assert_eq!(resized.workspace.status, WorkspaceStatus::Running);
    assert!(
        resized.restarted_for_volume,
        "restarted: the answer saying so was lost"
    );
    assert_eq!(swarm.reconcile().await.expect("reconcile").actions, vec![]);
    swarm.delete("lost").await.expect("delete");
    assert_sim_empty(&sim);
}
