//! Bad input, a crash at every pool step, and faults on the Fly API.

use std::collections::BTreeSet;

use swarm::failpoint::{
    POOL_CREATE_POINTS, POOL_DRAIN_POINTS, POOL_FILL_POINTS, POOL_REFRESH_POINTS,
};
use swarm::{HealthStatus, PoolSlotState, ReconcileAction, Store as _, WorkspaceStatus};

use crate::common::{self, assert_sim_empty, start_sim, swarm_at};
use crate::{app_names_on_sim, options, run_child_until_crash, stats, volumes_on_sim};

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
