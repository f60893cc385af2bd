//! Issue #6 against fly-sim in-process: password rotation, resize, image update and
//! rollback, region move, snapshots and restore — the change lands on Fly, the rest
//! of the machine config is kept, files on the volume survive (or come back from the
//! snapshot), nothing is left behind, and invalid input changes nothing.

mod common;

use common::{assert_sim_empty, machine_config, start_sim, swarm_at, swarm_with, test_config};
use fly_sim::SimHandle;
use serde_json::Value;
use swarm::{CpuKind, CreateOptions, Error, ResizeOptions, WorkspaceStatus};

fn options(name: &str) -> CreateOptions {
    CreateOptions {
        name: name.to_owned(),
        image: Some("codercom/code-server:4.106.3".to_owned()),
        env: [("GIT_AUTHOR_NAME".to_owned(), "Alice".to_owned())].into(),
        ..CreateOptions::default()
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http")
}

/// True when the sim's code-server login accepts `password` for `app`.
async fn login_accepts(sim: &SimHandle, app: &str, password: &str) -> bool {
    let response = http()
        .post(format!("{}/login", sim.base_url()))
        .header(reqwest::header::HOST, format!("{app}.fly.dev"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(format!("password={password}"))
        .send()
        .await
        .expect("login");
    response.status().is_redirection()
        && response
            .headers()
            .get(reqwest::header::SET_COOKIE)
            .is_some()
}

async fn put_file(sim: &SimHandle, app: &str, path: &str, body: &str) {
    let response = http()
        .put(format!("{}/__sim/fs/{path}", sim.base_url()))
        .header(reqwest::header::HOST, format!("{app}.fly.dev"))
        .body(body.to_owned())
        .send()
        .await
        .expect("put file");
    assert_eq!(response.status(), 204);
}

async fn get_file(sim: &SimHandle, app: &str, path: &str) -> Option<String> {
    let response = http()
        .get(format!("{}/__sim/fs/{path}", sim.base_url()))
        .header(reqwest::header::HOST, format!("{app}.fly.dev"))
        .send()
        .await
        .expect("get file");
    if response.status() == 200 {
        Some(response.text().await.expect("body"))
    } else {
        None
    }
}

fn without(mut config: Value, paths: &[&[&str]]) -> Value {
    for path in paths {
        let (last, parents) = path.split_last().expect("path");
        let mut at = &mut config;
        for key in parents {
            at = &mut at[*key];
        }
        if let Some(map) = at.as_object_mut() {
            map.remove(*last);
        }
    }
    config
}

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

/// A live machine on the sim: (id, region, state).
type SimMachine = (String, String, String);
/// A live volume on the sim: (id, region).
type SimVolume = (String, String);

/// The live machines and volumes of `app` on the sim.
fn placement(sim: &SimHandle, app: &str) -> (Vec<SimMachine>, Vec<SimVolume>) {
    let world = sim.world();
    let Some(found) = world["apps"]
        .as_array()
        .and_then(|apps| apps.iter().find(|a| a["name"] == app))
    else {
        return (Vec::new(), Vec::new());
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let listed = |key: &str| -> Vec<Value> {
        match &found[key] {
            Value::Array(items) => items.clone(),
            Value::Object(map) => map.values().cloned().collect(),
            _ => Vec::new(),
        }
    };
    let machines = listed("machines")
        .iter()
        .filter(|m| !matches!(m["state"].as_str(), Some("destroyed" | "destroying")))
        .map(|m| (text(&m["id"]), text(&m["region"]), text(&m["state"])))
        .collect();
    let volumes = listed("volumes")
        .iter()
        .filter(|v| {
            !matches!(
                v["state"].as_str(),
                Some("destroyed" | "destroying" | "pending_destroy")
            )
        })
        .map(|v| (text(&v["id"]), text(&v["region"])))
        .collect();
    (machines, volumes)
}

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
