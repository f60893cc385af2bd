//! A crash at every step of create, delete, resize and password rotation.

use swarm::failpoint::{CREATE_POINTS, DELETE_POINTS, PASSWORD_POINTS, RESIZE_POINTS};
use swarm::{ReconcileAction, Store, WorkspaceStatus};

use crate::common::{assert_sim_empty, start_sim, swarm_at};
use crate::{app_on_sim, options, run_child_until_crash, sim_file};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_every_create_and_delete_step_then_reconcile_converges() {
    let sim = start_sim().await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("swarm.db");
    let swarm = swarm_at(&url, &db).await;
    let mut outcomes = Vec::new();

    for (index, point) in CREATE_POINTS.iter().enumerate() {
        let name = format!("crash-create-{index}");
        run_child_until_crash(&url, &db, "create", &name, point);
        // No lost record: the intent was committed before anything else.
        let intent = swarm.store().list_workspaces(true).await.expect("list");
        let record = intent
            .iter()
            .find(|record| record.name.as_str() == name)
            .expect("record survives the crash");
        assert_eq!(
            record.status,
            if *point == "after_started" {
                WorkspaceStatus::Running
            } else {
                WorkspaceStatus::Creating
            }
        );

        let report = swarm.reconcile().await.expect("reconcile");
        assert!(report.converged(), "{point}: {report:?}");
        let after = swarm
            .store()
            .workspace(record.id)
            .await
            .expect("get")
            .expect("record kept");
        let app = app_on_sim(&sim, &name);
        match after.status {
            WorkspaceStatus::Running => {
                // `started` is committed with the operation's end: nothing is left to
                // finish after it.
                if *point == "after_started" {
                    assert!(report.actions.is_empty(), "{point}: {report:?}");
                } else {
                    assert!(
                        report
                            .actions
                            .iter()
                            .any(|a| matches!(a, ReconcileAction::FinishedCreate { .. })),
                        "{report:?}"
                    );
                }
                let app = app.expect("a running workspace has its app");
                assert_eq!(
                    app["machines"].as_array().map(Vec::len),
                    Some(1),
                    "{point}: {app}"
                );
                assert_eq!(app["machines"][0]["state"], "started", "{point}: {app}");
                assert_eq!(
                    app["volumes"].as_array().map(Vec::len),
                    Some(1),
                    "{point}: {app}"
                );
                assert_eq!(
                    after.machine_id.as_deref(),
                    app["machines"][0]["id"].as_str()
                );
                assert_eq!(after.ips.len(), 2, "{point}: {after:?}");
                let health = swarm.health(&name).await.expect("health");
                assert_eq!(
                    health.status,
                    swarm::HealthStatus::Healthy,
                    "{point}: {health:?}"
                );
            }
            WorkspaceStatus::Deleted => {
                assert!(app.is_none(), "{point}: undone create left {app:?}");
                assert!(
                    report
                        .actions
                        .iter()
                        .any(|a| matches!(a, ReconcileAction::UndidCreate { .. })),
                    "{point}: {report:?}"
                );
            }
            other => panic!("{point}: record ended {other}"),
        }
        assert!(
            swarm
                .store()
                .unfinished_operations()
                .await
                .expect("ops")
                .is_empty()
        );
        // Level-triggered: a second pass finds nothing to do.
        let again = swarm.reconcile().await.expect("reconcile again");
        assert!(again.actions.is_empty(), "{point}: {again:?}");
        outcomes.push(format!("create.{point} -> {}", after.status));
    }

    for (index, point) in DELETE_POINTS.iter().enumerate() {
        let name = format!("crash-delete-{index}");
        let created = swarm.create(&options(&name)).await.expect("create");
        run_child_until_crash(&url, &db, "delete", &name, point);
        let report = swarm.reconcile().await.expect("reconcile");
        assert!(report.converged(), "{point}: {report:?}");
        assert!(
            report
                .actions
                .iter()
                .any(|a| matches!(a, ReconcileAction::FinishedDelete { .. })),
            "{point}: {report:?}"
        );
        let after = swarm
            .store()
            .workspace(created.workspace.id)
            .await
            .expect("get")
            .expect("record kept");
        assert_eq!(after.status, WorkspaceStatus::Deleted, "{point}");
        assert!(
            app_on_sim(&sim, &name).is_none(),
            "{point}: app left behind"
        );
        outcomes.push(format!("delete.{point} -> {}", after.status));
    }

    // Remove the workspaces that were finished, then nothing may remain anywhere.
    for record in swarm.list().await.expect("list") {
        swarm.delete(record.name.as_str()).await.expect("delete");
    }
    assert_sim_empty(&sim);
    let records = swarm.store().list_workspaces(true).await.expect("records");
    assert_eq!(
        records.len(),
        CREATE_POINTS.len() + DELETE_POINTS.len(),
        "every intent kept its record"
    );
    assert!(
        records
            .iter()
            .all(|record| record.status == WorkspaceStatus::Deleted)
    );
    eprintln!("crash outcomes: {outcomes:#?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_every_resize_and_password_step_then_reconcile_converges() {
    let sim = start_sim().await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("swarm.db");
    let swarm = swarm_at(&url, &db).await;
    let jobs = RESIZE_POINTS
        .iter()
        .map(|point| ("resize", *point))
        .chain(PASSWORD_POINTS.iter().map(|point| ("password", *point)));
    for (index, (op, point)) in jobs.enumerate() {
        let name = format!("crash-{op}-{index}");
        let created = swarm.create(&options(&name)).await.expect("create");
        assert_eq!(created.workspace.spec.storage_gb, 10, "test assumes 10 GB");
        sim_file(&sim, &name, Some("precious")).await;
        run_child_until_crash(&url, &db, op, &name, point);

        let report = swarm.reconcile().await.expect("reconcile");
        assert!(report.converged(), "{op} at {point}: {report:?}");
        assert!(
            report.actions.iter().any(|action| matches!(
                action,
                ReconcileAction::SettledOperation { name: settled, .. } if *settled == name
            )),
            "{op} at {point}: {report:?}"
        );
        let again = swarm.reconcile().await.expect("reconcile again");
        assert!(again.actions.is_empty(), "{op} at {point}: {again:?}");

        let record = swarm.show(&name).await.expect("record");
        assert_eq!(record.status, WorkspaceStatus::Running, "{op} at {point}");
        if op == "resize" {
            // Rolled forward once the plan was journaled (after the intent).
            let expected = if point == "after_intent" {
                (1, 10)
            } else {
                (2, 12)
            };
            assert_eq!(
                (record.spec.guest.cpus, record.spec.storage_gb),
                expected,
                "{op} at {point}"
            );
        }
        assert_eq!(
            sim_file(&sim, &name, None).await.as_deref(),
            Some("precious"),
            "{op} at {point}: data kept"
        );
        assert_eq!(
            swarm.health(&name).await.expect("health").status,
            swarm::HealthStatus::Healthy,
            "{op} at {point}"
        );
        // Still exactly one machine and one volume: nothing orphaned.
        let stats = sim.stats();
        assert_eq!(
            (stats.machines, stats.volumes),
            (index + 1, index + 1),
            "{op} at {point}"
        );
    }
    for record in swarm.list().await.expect("list") {
        swarm.delete(record.name.as_str()).await.expect("delete");
    }
    assert_sim_empty(&sim);
}
