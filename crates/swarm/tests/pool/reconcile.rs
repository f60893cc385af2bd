//! Reconcile over the pool: counting and forgetting slots, and refreshing old images.

use fly_sim::Knob;
use swarm::{
    CreateOptions, POOL_APP_PREFIX, PoolSlotState, Provider as _, ReconcileAction, Store as _,
};

use crate::common::{self, assert_sim_empty, start_sim, swarm_at, swarm_with};
use crate::{NEWER_IMAGE, app_names_on_sim, machines_on_sim, newer_image_config, stats};

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
