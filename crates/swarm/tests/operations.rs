//! Issue #6 against fly-sim in-process: password rotation and resize — the change
//! lands on Fly, the rest of the machine config is kept, files on the volume
//! survive, and invalid input changes nothing (no Fly API call).

mod common;

use common::{start_sim, swarm_at};
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

/// The machine's config as the sim holds it.
fn machine_config(sim: &SimHandle, machine_id: &str) -> Value {
    fn find(value: &Value, machine_id: &str) -> Option<Value> {
        match value {
            Value::Object(map) => {
                if map.get("id").and_then(Value::as_str) == Some(machine_id)
                    && let Some(config) = map.get("config")
                {
                    return Some(config.clone());
                }
                map.values().find_map(|v| find(v, machine_id))
            }
            Value::Array(items) => items.iter().find_map(|v| find(v, machine_id)),
            _ => None,
        }
    }
    find(&sim.world(), machine_id).expect("machine config in the sim's world")
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
