//! The warm pool against an in-process fly-sim with a real SQLite store: fill, list,
//! create from a slot (and the workspace's whole life afterwards), fallback, drain,
//! reconcile, concurrent takes, and a real abort at every crash point of fill, drain
//! and create-from-pool.
//!
//! The crash child is this test binary re-executed with `child_process_entry`.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{assert_sim_empty, start_sim, swarm_at, swarm_with};
use fly_sim::Knob;
use swarm::failpoint::{
    CRASH_AT_ENV, POOL_CREATE_POINTS, POOL_DRAIN_POINTS, POOL_FILL_POINTS, POOL_REFRESH_POINTS,
};
use swarm::{
    CreateOptions, HealthStatus, POOL_APP_PREFIX, PoolSlotState, Provider as _, ReconcileAction,
    Store as _, WorkspaceStatus,
};

const CHILD_SIM: &str = "SWARM_POOL_CHILD_SIM";
const CHILD_DB: &str = "SWARM_POOL_CHILD_DB";
const CHILD_OP: &str = "SWARM_POOL_CHILD_OP";
const CHILD_NAME: &str = "SWARM_POOL_CHILD_NAME";

fn options(name: &str) -> CreateOptions {
    CreateOptions {
        name: name.to_owned(),
        image: Some("codercom/code-server:4.106.3".to_owned()),
        ..CreateOptions::default()
    }
}

fn stats(sim: &fly_sim::SimHandle) -> (usize, usize, usize, usize) {
    let stats = sim.stats();
    (stats.apps, stats.machines, stats.volumes, stats.ips)
}

/// The volumes of `app` on the sim: (id, size in GB).
fn volumes_on_sim(sim: &fly_sim::SimHandle, app: &str) -> Vec<(String, u64)> {
    let world = sim.world();
    world["apps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|candidate| candidate["name"] == app)
        .flat_map(|app| app["volumes"].as_array().cloned().unwrap_or_default())
        .map(|volume| {
            (
                volume["id"].as_str().unwrap_or_default().to_owned(),
                volume["size_gb"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

fn app_names_on_sim(sim: &fly_sim::SimHandle) -> BTreeSet<String> {
    sim.world()["apps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|app| app["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fill_list_take_then_the_workspace_lives_and_drain_leaves_nothing() {
    let sim = start_sim().await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&url, &dir.path().join("swarm.db")).await;

    let filled = swarm.pool_fill("ams", 2).await.expect("fill");
    assert_eq!(filled.created.len(), 2);
    assert_eq!(filled.ready, 2);
    // Each slot: an app, a 10 GB volume, a shared IPv4, an IPv6 and a stopped machine.
    assert_eq!(stats(&sim), (2, 2, 2, 4), "{:?}", sim.stats());
    for slot in &filled.created {
        assert!(slot.app.starts_with(POOL_APP_PREFIX), "{}", slot.app);
        assert_eq!(slot.state, PoolSlotState::Ready);
        assert_eq!(slot.region, "ams");
        let volumes = volumes_on_sim(&sim, &slot.app);
        assert_eq!(volumes.len(), 1, "{volumes:?}");
        assert_eq!(Some(&volumes[0].0), slot.volume_id.as_ref());
        assert_eq!(volumes[0].1, 10);
        assert_eq!(slot.ips.len(), 2, "{:?}", slot.ips);
        assert!(slot.machine.is_some(), "{slot:?}");
    }
    // Topping up to the size already there makes nothing.
    let again = swarm.pool_fill("ams", 2).await.expect("fill again");
    assert!(again.created.is_empty());
    assert_eq!(stats(&sim), (2, 2, 2, 4));

    let listing = swarm.pool_list().await.expect("list");
    assert_eq!(listing.ready, 2);
    assert_eq!(listing.slots.len(), 2);
    // From the shared price model: 10 GB at $0.15/GB-month, the stopped machine's
    // 1 GB rootfs at $0.15/GB-month; shared IPv4 and IPv6 are free; no CPU or memory.
    for view in &listing.slots {
        assert_eq!(
            view.monthly_cost_usd,
            swarm::cost::Cost::from_usd(1.65),
            "{view:?}"
        );
    }
    assert_eq!(
        listing.monthly_cost_usd,
        swarm::cost::Cost::from_usd(3.30),
        "{listing:?}"
    );
    assert!(listing.prices_source.contains("fly.io"), "{listing:?}");

    let created = swarm.create(&options("alice")).await.expect("create");
    let ws = &created.workspace;
    let app = ws.app.clone().expect("app recorded");
    assert!(app.starts_with(POOL_APP_PREFIX), "{app}");
    assert!(filled.created.iter().any(|slot| slot.app == app));
    let slot = filled
        .created
        .iter()
        .find(|slot| slot.app == app)
        .expect("slot");
    assert_eq!(ws.url, format!("https://{app}.fly.dev"));
    assert_eq!(ws.volume_id, slot.volume_id, "the slot's volume is used");
    assert_eq!(ws.ips, slot.ips);
    assert_eq!(ws.status, WorkspaceStatus::Running);
    assert_eq!(swarm.pool_list().await.expect("list").ready, 1);
    // No app named like the workspace was made.
    assert!(!app_names_on_sim(&sim).contains("alice"));
    assert_eq!(
        stats(&sim),
        (2, 2, 2, 4),
        "the slot's machine was adopted, not a new one"
    );
    assert_eq!(
        ws.machine_id, slot.machine,
        "the slot's machine is the workspace's"
    );
    let machines = swarm
        .provider()
        .list_machines(&app, None)
        .await
        .expect("machines");
    assert_eq!(machines.len(), 1);
    assert_eq!(
        machines[0].metadata.get("swarm_workspace_id"),
        Some(&ws.id.to_string())
    );

    // The workspace works through its record: health, show, logs, stop, start.
    let health = swarm.health("alice").await.expect("health");
    assert_eq!(health.status, HealthStatus::Healthy, "{health:?}");
    assert!(
        health
            .probe
            .as_ref()
            .is_some_and(|probe| probe.url.contains(&format!("{app}.fly.dev"))
                || probe.url.ends_with("/healthz")),
        "{health:?}"
    );
    assert_eq!(
        swarm.show("alice").await.expect("show").app,
        Some(app.clone())
    );
    assert!(!swarm.logs("alice", 10).await.expect("logs").is_empty());
    let stopped = swarm.stop("alice", false).await.expect("stop");
    assert_eq!(stopped.workspace.status, WorkspaceStatus::Stopped);
    let started = swarm.start("alice").await.expect("start");
    assert_eq!(started.workspace.status, WorkspaceStatus::Running);
    let report = swarm.reconcile().await.expect("reconcile");
    assert!(report.actions.is_empty(), "{report:?}");
    assert_eq!(report.pool_slots, 1);

    let deleted = swarm.delete("alice").await.expect("delete");
    assert!(
        deleted.removed.contains(&format!("app {app}")),
        "{deleted:?}"
    );
    assert!(!app_names_on_sim(&sim).contains(&app));
    assert_eq!(stats(&sim), (1, 1, 1, 2), "only the other slot remains");

    let drained = swarm.pool_drain().await.expect("drain");
    assert_eq!(drained.removed.len(), 1);
    assert_sim_empty(&sim);
    assert!(swarm.pool_list().await.expect("list").slots.is_empty());
    let report = swarm.reconcile().await.expect("reconcile");
    assert!(report.actions.is_empty(), "{report:?}");
    assert_eq!(report.pool_slots, 0);
}

/// The machines of `app` on the sim, destroyed ones too, as the sim dumps them.
fn machines_on_sim(sim: &fly_sim::SimHandle, app: &str) -> Vec<serde_json::Value> {
    sim.world()["apps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|candidate| candidate["name"] == app)
        .flat_map(|app| app["machines"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// The image preparations the sim drew for machine `id`.
fn preparations(sim: &fly_sim::SimHandle, id: &str) -> Vec<Knob> {
    sim.draws()
        .into_iter()
        .filter(|draw| {
            draw.label == id
                && matches!(
                    draw.knob,
                    Knob::ImagePrepareFirst | Knob::ImagePrepareCached
                )
        })
        .map(|draw| draw.knob)
        .collect()
}

/// `pool fill` leaves a stopped machine in each slot: on the default image (prepared
/// on the slot volume's host), never booted, no env, no services. A create adopts it
/// with one machine update carrying the workspace's whole config, which starts it: no
/// machine create, no second image preparation, and no replace (the machine was
/// stopped, so the sim draws no `replace`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_holds_a_stopped_machine_that_a_create_adopts_with_one_update() {
    let sim = common::start_sim_with(fly_sim::SimConfig {
        record_draws: true,
        ..fly_sim::SimConfig::default()
    })
    .await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&url, &dir.path().join("swarm.db")).await;
    let image = swarm.config().default_image.clone();
    assert!(sim.draws().is_empty(), "a fresh sim: {:?}", sim.draws());

    let filled = swarm.pool_fill("ams", 1).await.expect("fill");
    let slot = &filled.created[0];
    assert_eq!(slot.state, PoolSlotState::Ready);
    assert_eq!(slot.warmed_image.as_deref(), Some(image.as_str()));
    let slot_machine = slot.machine.clone().expect("the slot holds a machine");
    assert_eq!(stats(&sim), (1, 1, 1, 2), "{:?}", sim.stats());
    let machines = machines_on_sim(&sim, &slot.app);
    assert_eq!(machines.len(), 1, "{machines:?}");
    let waiting = &machines[0];
    assert_eq!(waiting["id"], slot_machine.as_str());
    assert_eq!(waiting["state"], "stopped", "{waiting}");
    assert_eq!(
        waiting["config"]["metadata"]["swarm_pool_warmup"],
        slot.id.to_string()
    );
    assert!(
        waiting["config"]["metadata"]["swarm_workspace_id"].is_null(),
        "no workspace's tags while it waits: {waiting}"
    );
    assert_eq!(waiting["config"]["image"], image.as_str());
    assert_eq!(
        waiting["config"]["mounts"][0]["volume"].as_str(),
        slot.volume_id.as_deref()
    );
    // Safe while waiting: no env (no password), no services (Fly's proxy has nothing
    // to route to it, so nothing autostarts it), never booted.
    assert!(
        waiting["config"]["env"]
            .as_object()
            .is_none_or(serde_json::Map::is_empty),
        "{waiting}"
    );
    assert!(
        waiting["config"]["services"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{waiting}"
    );
    let statuses: Vec<&str> = waiting["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|event| event["status"].as_str())
        .collect();
    assert!(statuses.contains(&"created"), "{statuses:?}");
    assert!(
        !statuses.iter().any(|status| status.starts_with("start")),
        "never booted: {statuses:?}"
    );
    assert_eq!(preparations(&sim, &slot_machine), [Knob::ImagePrepareFirst]);

    let before = sim.model_now_ms();
    let created = swarm
        .create(&CreateOptions {
            name: "warm".to_owned(),
            ..CreateOptions::default()
        })
        .await
        .expect("create");
    let ws = &created.workspace;
    assert_eq!(ws.app.as_deref(), Some(slot.app.as_str()), "took the slot");
    assert_eq!(ws.spec.image, image);
    assert_eq!(ws.machine_id.as_deref(), Some(slot_machine.as_str()));
    assert_eq!(ws.status, WorkspaceStatus::Running);
    // One update of the slot's machine, no machine create, no replace, no second
    // preparation of the image.
    let calls: Vec<String> = sim
        .draws()
        .into_iter()
        .filter(|draw| draw.at_ms >= before && draw.knob == Knob::ApiRtt)
        .map(|draw| draw.label)
        .collect();
    let update = format!("POST /v1/apps/{}/machines/{slot_machine}", slot.app);
    assert_eq!(
        calls.iter().filter(|call| **call == update).count(),
        1,
        "{calls:?}"
    );
    let create_machine = format!("POST /v1/apps/{}/machines", slot.app);
    assert!(!calls.contains(&create_machine), "{calls:?}");
    assert!(
        !sim.draws()
            .iter()
            .any(|draw| draw.knob == Knob::Replace && draw.label == slot_machine),
        "a stopped machine's update is not a replace"
    );
    assert_eq!(preparations(&sim, &slot_machine), [Knob::ImagePrepareFirst]);
    // It now carries the workspace's own config.
    let machines = machines_on_sim(&sim, &slot.app);
    let adopted = &machines[0];
    assert_eq!(adopted["state"], "started", "{adopted}");
    assert_eq!(
        adopted["config"]["metadata"]["swarm_workspace_id"],
        ws.id.to_string()
    );
    assert!(
        adopted["config"]["env"]["HASHED_PASSWORD"]
            .as_str()
            .is_some_and(|hash| hash.starts_with("$argon2id$")),
        "{adopted}"
    );
    assert!(
        !adopted["config"]["services"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{adopted}"
    );
    let health = swarm.health("warm").await.expect("health");
    assert_eq!(health.status, HealthStatus::Healthy, "{health:?}");
    swarm.delete("warm").await.expect("delete");
    assert_sim_empty(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_falls_back_without_a_matching_slot_and_grows_a_smaller_one() {
    let sim = start_sim().await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&url, &dir.path().join("swarm.db")).await;

    // No pool at all: the normal path, the app named like the workspace.
    let plain = swarm.create(&options("plain")).await.expect("create");
    assert_eq!(plain.workspace.app.as_deref(), Some("plain"));
    assert_eq!(plain.workspace.url, "https://plain.fly.dev");

    swarm.pool_fill("ams", 1).await.expect("fill");
    // Another region, a smaller volume, another IP mode: none can take the ams slot.
    let fra = swarm
        .create(&CreateOptions {
            region: Some("fra".to_owned()),
            ..options("in-fra")
        })
        .await
        .expect("create fra");
    assert_eq!(fra.workspace.app.as_deref(), Some("in-fra"));
    let small = swarm
        .create(&CreateOptions {
            storage_gb: Some(5),
            ..options("small")
        })
        .await
        .expect("create small");
    assert_eq!(small.workspace.app.as_deref(), Some("small"));
    let private = swarm
        .create(&CreateOptions {
            ip: Some("private".to_owned()),
            ..options("private-one")
        })
        .await
        .expect("create private");
    assert_eq!(private.workspace.app.as_deref(), Some("private-one"));
    assert_eq!(swarm.pool_list().await.expect("list").ready, 1);

    // A bigger volume takes the slot and grows its volume.
    let big = swarm
        .create(&CreateOptions {
            storage_gb: Some(20),
            ..options("big")
        })
        .await
        .expect("create big");
    let app = big.workspace.app.clone().expect("app");
    assert!(app.starts_with(POOL_APP_PREFIX), "{app}");
    let volumes = volumes_on_sim(&sim, &app);
    assert_eq!(volumes.len(), 1);
    assert_eq!(volumes[0].1, 20, "grown to the asked size");
    assert_eq!(swarm.pool_list().await.expect("list").ready, 0);

    // The pool is empty now: the next create falls back again.
    let after = swarm.create(&options("after")).await.expect("create");
    assert_eq!(after.workspace.app.as_deref(), Some("after"));

    for name in ["plain", "in-fra", "small", "private-one", "big", "after"] {
        swarm.delete(name).await.expect("delete");
    }
    assert_sim_empty(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_never_take_the_same_slot() {
    let sim = start_sim().await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("swarm.db");
    swarm_at(&url, &db)
        .await
        .pool_fill("ams", 3)
        .await
        .expect("fill");
    // Six creates at once, each with its own Swarm (its own connections, as separate
    // processes would have), racing for three slots.
    let mut tasks = Vec::new();
    for index in 0..6 {
        let url = url.clone();
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let swarm = swarm_at(&url, &db).await;
            swarm
                .create(&options(&format!("racer-{index}")))
                .await
                .expect("create")
                .workspace
        }));
    }
    let mut from_pool = BTreeSet::new();
    let mut own = 0;
    for task in tasks {
        let ws = task.await.expect("join");
        let app = ws.app.clone().expect("app");
        if app.starts_with(POOL_APP_PREFIX) {
            assert!(from_pool.insert(app.clone()), "slot {app} taken twice");
        } else {
            assert_eq!(app, ws.name.as_str());
            own += 1;
        }
    }
    assert_eq!(from_pool.len(), 3, "every slot taken once");
    assert_eq!(own, 3);
    let swarm = swarm_at(&url, &db).await;
    assert_eq!(swarm.pool_list().await.expect("list").slots.len(), 0);
    assert_eq!(stats(&sim).0, 6, "six apps, one per workspace");
    for index in 0..6 {
        swarm
            .delete(&format!("racer-{index}"))
            .await
            .expect("delete");
    }
    assert_sim_empty(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_counts_slots_forgets_vanished_ones_and_reports_foreign_pool_apps() {
    let sim = start_sim().await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&url, &dir.path().join("swarm.db")).await;
    let filled = swarm.pool_fill("ams", 2).await.expect("fill");
    let report = swarm.reconcile().await.expect("reconcile");
    assert!(report.actions.is_empty(), "{report:?}");
    assert_eq!(report.pool_slots, 2);

    // One slot's app removed behind our back: reconcile forgets the slot.
    let gone = &filled.created[0].app;
    swarm.provider().delete_app(gone).await.expect("delete app");
    assert!(
        common::eventually(std::time::Duration::from_secs(10), || !app_names_on_sim(
            &sim
        )
        .contains(gone))
        .await
    );
    let report = swarm.reconcile().await.expect("reconcile");
    assert_eq!(report.pool_slots, 1);
    assert!(
        report.actions.iter().any(|action| matches!(
            action,
            ReconcileAction::PoolSlotRemoved { app, .. } if app == gone
        )),
        "{report:?}"
    );
    // An app named like a slot that no store of ours knows: reported, left alone.
    let foreign = format!("{POOL_APP_PREFIX}0000deadbeef");
    swarm
        .provider()
        .create_app(&foreign, "personal", "someone-else")
        .await
        .expect("create app");
    let report = swarm.reconcile().await.expect("reconcile");
    assert!(
        report.actions.iter().any(|action| matches!(
            action,
            ReconcileAction::OrphanApp { app, .. } if *app == foreign
        )),
        "{report:?}"
    );
    assert!(app_names_on_sim(&sim).contains(&foreign));
    swarm.provider().delete_app(&foreign).await.expect("delete");
    swarm.pool_drain().await.expect("drain");
    assert!(
        common::eventually(std::time::Duration::from_secs(10), || stats(&sim)
            == (0, 0, 0, 0))
        .await,
        "{:?}",
        sim.stats()
    );
}

/// The configuration of a deployment that moved on to a newer default image.
fn newer_image_config(sim_url: &str) -> swarm::SwarmConfig {
    swarm::SwarmConfig {
        default_image: NEWER_IMAGE.to_owned(),
        ..common::test_config(sim_url)
    }
}

const NEWER_IMAGE: &str = "codercom/code-server:4.106.3";

/// A ready slot made for an image no longer configured is refreshed in place: its
/// stopped machine is updated to the new image (still stopped, never booted), by
/// reconcile and by `pool fill` alike, and a create from it then pays no preparation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_on_an_old_image_is_refreshed_in_place_by_reconcile_and_fill() {
    let sim = common::start_sim_with(fly_sim::SimConfig {
        record_draws: true,
        ..fly_sim::SimConfig::default()
    })
    .await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("swarm.db");
    let old = swarm_at(&url, &db).await;
    let filled = old.pool_fill("ams", 2).await.expect("fill");
    let old_image = old.config().default_image.clone();
    assert_ne!(old_image, NEWER_IMAGE);

    let newer = swarm_with(&url, &db, newer_image_config(&url)).await;
    let report = newer.reconcile().await.expect("reconcile");
    assert!(report.converged(), "{report:?}");
    let refreshed: Vec<&str> = report
        .actions
        .iter()
        .filter_map(|action| match action {
            ReconcileAction::PoolSlotRefreshed { app, from, to } => {
                assert_eq!(
                    (from.as_str(), to.as_str()),
                    (old_image.as_str(), NEWER_IMAGE)
                );
                Some(app.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(refreshed.len(), 2, "{report:?}");
    assert_eq!(report.pool_slots, 2, "{report:?}");
    for slot in newer.store().pool_slots().await.expect("slots") {
        assert_eq!(slot.state, PoolSlotState::Ready);
        assert_eq!(slot.warmed_image.as_deref(), Some(NEWER_IMAGE));
        let machine = slot.machine.clone().expect("machine");
        assert!(
            filled
                .created
                .iter()
                .any(|made| made.machine.as_deref() == Some(machine.as_str()))
        );
        let on_sim = machines_on_sim(&sim, &slot.app);
        assert_eq!(on_sim.len(), 1, "{on_sim:?}");
        assert_eq!(on_sim[0]["state"], "stopped", "{}", on_sim[0]);
        assert_eq!(on_sim[0]["config"]["image"], NEWER_IMAGE);
        let statuses: Vec<&str> = on_sim[0]["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|event| event["status"].as_str())
            .collect();
        assert!(
            !statuses.iter().any(|status| status.starts_with("start")),
            "never booted: {statuses:?}"
        );
    }
    // Nothing left to refresh; the next create pays no preparation for its image.
    let again = newer.reconcile().await.expect("reconcile again");
    assert!(again.actions.is_empty(), "{again:?}");
    let before = sim.model_now_ms();
    let created = newer
        .create(&CreateOptions {
            name: "fresh".to_owned(),
            ..CreateOptions::default()
        })
        .await
        .expect("create");
    assert_eq!(created.workspace.spec.image, NEWER_IMAGE);
    assert!(
        !sim.draws().iter().any(|draw| draw.at_ms >= before
            && matches!(
                draw.knob,
                Knob::ImagePrepareFirst | Knob::ImagePrepareCached
            )),
        "the refreshed slot had the image on its host already"
    );

    // `pool fill` refreshes too: back to the old image with the old configuration.
    let topped = old.pool_fill("ams", 1).await.expect("fill");
    assert!(topped.created.is_empty(), "{topped:?}");
    let slots = old.store().pool_slots().await.expect("slots");
    assert_eq!(slots.len(), 1);
    assert_eq!(slots[0].warmed_image.as_deref(), Some(old_image.as_str()));
    old.delete("fresh").await.expect("delete");
    old.pool_drain().await.expect("drain");
    assert_sim_empty(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pool_input_is_refused_and_changes_nothing() {
    let sim = start_sim().await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&url, &dir.path().join("swarm.db")).await;
    for (region, size, field) in [
        ("ams", 0, "size"),
        ("ams", 51, "size"),
        ("xyz", 1, "region"),
    ] {
        let error = swarm.pool_fill(region, size).await.expect_err("invalid");
        assert_eq!(error.exit_code(), 2, "{error}");
        assert!(
            error.to_string().starts_with(&format!("invalid {field} ")),
            "{error}"
        );
    }
    assert_sim_empty(&sim);
    assert!(swarm.store().pool_slots().await.expect("slots").is_empty());
}

// ------------------------------------------------------------------ crash tests

/// Runs in the child: one pool operation against the parent's sim, crashing where told.
#[test]
#[ignore = "child process of the pool crash tests; run by them"]
fn child_process_entry() {
    let sim = std::env::var(CHILD_SIM).expect("child needs the sim url");
    let db = std::env::var(CHILD_DB).expect("child needs the store path");
    let op = std::env::var(CHILD_OP).expect("child needs an operation");
    let name = std::env::var(CHILD_NAME).unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let swarm = swarm_at(&sim, Path::new(&db)).await;
        match op.as_str() {
            "pool_fill" => drop(swarm.pool_fill("ams", 1).await.expect("fill")),
            "pool_drain" => drop(swarm.pool_drain().await.expect("drain")),
            "pool_refresh" => {
                let swarm = swarm_with(&sim, Path::new(&db), newer_image_config(&sim)).await;
                drop(swarm.pool_fill("ams", 1).await.expect("fill"));
            }
            "create" => drop(swarm.create(&options(&name)).await.expect("create")),
            other => panic!("unknown child operation {other}"),
        }
    });
}

fn run_child_until_crash(sim: &str, db: &Path, op: &str, name: &str, point: &str) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_every_pool_step_then_reconcile_leaks_nothing() {
    let sim = start_sim().await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("swarm.db");
    let swarm = swarm_at(&url, &db).await;

    for point in POOL_FILL_POINTS {
        run_child_until_crash(&url, &db, "pool_fill", "", point);
        let slots = swarm.store().pool_slots().await.expect("slots");
        assert_eq!(slots.len(), 1, "{point}: the intent survives the crash");
        let report = swarm.reconcile().await.expect("reconcile");
        assert!(report.converged(), "{point}: {report:?}");
        let slots = swarm.store().pool_slots().await.expect("slots");
        if point == "after_ready" {
            // Complete before the crash: a good slot, kept and counted.
            assert_eq!(report.pool_slots, 1, "{point}: {report:?}");
            assert!(report.actions.is_empty(), "{point}: {report:?}");
            assert_eq!(stats(&sim), (1, 1, 1, 2), "{point}");
            swarm.pool_drain().await.expect("drain");
        } else {
            assert!(slots.is_empty(), "{point}: half-made slot kept: {slots:?}");
            assert!(
                report
                    .actions
                    .iter()
                    .any(|a| matches!(a, ReconcileAction::PoolSlotRemoved { .. })),
                "{point}: {report:?}"
            );
        }
        assert_sim_empty(&sim);
        let again = swarm.reconcile().await.expect("reconcile again");
        assert!(again.actions.is_empty(), "{point}: {again:?}");
    }

    for point in POOL_DRAIN_POINTS {
        swarm.pool_fill("ams", 1).await.expect("fill");
        run_child_until_crash(&url, &db, "pool_drain", "", point);
        let report = swarm.reconcile().await.expect("reconcile");
        assert!(report.converged(), "{point}: {report:?}");
        assert_eq!(report.pool_slots, 0, "{point}: {report:?}");
        assert!(swarm.store().pool_slots().await.expect("slots").is_empty());
        assert_sim_empty(&sim);
    }

    // A refresh interrupted after its update: the slot reads `filling` with its lock
    // free, so reconcile removes it whole; nothing is left behind or kept twice.
    for point in POOL_REFRESH_POINTS {
        swarm.pool_fill("ams", 1).await.expect("fill");
        run_child_until_crash(&url, &db, "pool_refresh", "", point);
        let report = swarm.reconcile().await.expect("reconcile");
        assert!(report.converged(), "{point}: {report:?}");
        assert!(
            report
                .actions
                .iter()
                .any(|a| matches!(a, ReconcileAction::PoolSlotRemoved { .. })),
            "{point}: {report:?}"
        );
        assert!(swarm.store().pool_slots().await.expect("slots").is_empty());
        assert_sim_empty(&sim);
    }

    for (index, point) in POOL_CREATE_POINTS.iter().enumerate() {
        let name = format!("crash-pool-{index}");
        let filled = swarm.pool_fill("ams", 1).await.expect("fill");
        let slot_app = filled.created[0].app.clone();
        run_child_until_crash(&url, &db, "create", &name, point);
        let report = swarm.reconcile().await.expect("reconcile");
        assert!(report.converged(), "{point}: {report:?}");
        let record = swarm
            .store()
            .list_workspaces(true)
            .await
            .expect("records")
            .into_iter()
            .find(|record| record.name.as_str() == name)
            .expect("record survives the crash");
        let slots = swarm.store().pool_slots().await.expect("slots");
        match record.status {
            WorkspaceStatus::Running => {
                assert_eq!(record.app.as_deref(), Some(slot_app.as_str()), "{point}");
                assert!(slots.is_empty(), "{point}: the slot was taken");
                let health = swarm.health(&name).await.expect("health");
                assert_eq!(health.status, HealthStatus::Healthy, "{point}: {health:?}");
                swarm.delete(&name).await.expect("delete");
            }
            WorkspaceStatus::Deleted => {
                // Crashed before the take: the slot is still in the pool. After: the
                // undone create removed the slot's app with everything in it.
                if *point == "after_intent" {
                    assert_eq!(slots.len(), 1, "{point}");
                } else {
                    assert!(slots.is_empty(), "{point}: {slots:?}");
                    assert!(!app_names_on_sim(&sim).contains(&slot_app), "{point}");
                }
            }
            other => panic!("{point}: record ended {other}"),
        }
        swarm.pool_drain().await.expect("drain");
        assert_sim_empty(&sim);
        let again = swarm.reconcile().await.expect("reconcile again");
        assert!(again.actions.is_empty(), "{point}: {again:?}");
    }
}

/// Under 20 % failed calls and 5 % lost responses, fill, take and drain converge (with
/// reconcile after a failure) without a slot taken twice, a duplicate volume, or a leak.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_converges_under_faults_without_duplicates_or_leaks() {
    let sim = common::start_sim_with(fly_sim::SimConfig {
        latency: fly_sim::Latency::Zero,
        fault_rate: 0.2,
        ambiguous_rate: 0.05,
        seed: 7,
        ..fly_sim::SimConfig::default()
    })
    .await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&url, &dir.path().join("swarm.db")).await;

    async fn converge<T, Fut: std::future::Future<Output = swarm::Result<T>>>(
        swarm: &common::TestSwarm,
        what: &str,
        mut op: impl FnMut() -> Fut,
    ) -> T {
        let mut last = None;
        for _ in 0..6 {
            match op().await {
                Ok(value) => return value,
                Err(error) => {
                    last = Some(error.to_string());
                    let _ = swarm.reconcile().await;
                }
            }
        }
        panic!("{what} did not converge: {last:?}");
    }

    converge(&swarm, "fill", || swarm.pool_fill("ams", 4)).await;
    let slots = swarm.store().pool_slots().await.expect("slots");
    assert_eq!(slots.len(), 4);
    for slot in &slots {
        assert_eq!(slot.state, PoolSlotState::Ready);
        let volumes = volumes_on_sim(&sim, &slot.app);
        assert_eq!(volumes.len(), 1, "no duplicate volume: {volumes:?}");
    }
    let mut taken = BTreeSet::new();
    for index in 0..4 {
        let create = options(&format!("chaos-{index}"));
        let created = converge(&swarm, "create", || swarm.create(&create)).await;
        taken.insert(created.workspace.app.clone().expect("app"));
    }
    // Every create that took a slot took its own (a failed one may have used one up).
    assert!(taken.len() == 4, "{taken:?}");
    for index in 0..4 {
        let name = format!("chaos-{index}");
        converge(&swarm, "delete", || swarm.delete(&name)).await;
    }
    converge(&swarm, "drain", || swarm.pool_drain()).await;
    let report = converge(&swarm, "reconcile", || swarm.reconcile()).await;
    assert_eq!(report.pool_slots, 0, "{report:?}");
    assert!(
        common::eventually(std::time::Duration::from_secs(10), || stats(&sim)
            == (0, 0, 0, 0))
        .await,
        "{:?}",
        sim.stats()
    );
}
