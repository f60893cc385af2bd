//! Fill a pool, take its slots by creating workspaces (adopting, falling back,
//! concurrently), and drain it.

use std::collections::BTreeSet;

use fly_sim::Knob;
use swarm::{
    CreateOptions, HealthStatus, POOL_APP_PREFIX, PoolSlotState, Provider as _, WorkspaceStatus,
};

use crate::common::{self, assert_sim_empty, start_sim, swarm_at};
use crate::{app_names_on_sim, machines_on_sim, options, preparations, stats, volumes_on_sim};

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
