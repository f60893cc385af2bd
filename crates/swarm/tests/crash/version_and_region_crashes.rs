//! A crash at every step of move, restore, update, rollback and machine rollback.

use swarm::failpoint::{IMAGE_POINTS, MACHINE_ROLLBACK_POINTS, REPLACE_POINTS};
use swarm::{Provider as _, ReconcileAction, WorkspaceStatus};

use crate::common::{assert_sim_empty, start_sim, swarm_at};
use crate::{app_on_sim, options, run_child_until_crash, run_child_with, sim_file};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_every_move_restore_update_and_rollback_step_then_reconcile_converges() {
    let sim = start_sim().await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("swarm.db");
    let swarm = swarm_at(&url, &db).await;
    let jobs = ["move", "restore"]
        .iter()
        .flat_map(|op| REPLACE_POINTS.iter().map(move |point| (*op, *point)))
        .chain(
            ["update", "rollback"]
                .iter()
                .flat_map(|op| IMAGE_POINTS.iter().map(move |point| (*op, *point))),
        );
    for (index, (op, point)) in jobs.enumerate() {
        let name = format!("crash-{op}-{index}");
        let created = swarm.create(&options(&name)).await.expect("create");
        let first_image = created.workspace.spec.image.clone();
        let mut arg = String::new();
        match op {
            "restore" => {
                sim_file(&sim, &name, Some("precious")).await;
                let snapshot = swarm.create_snapshot(&name).await.expect("snapshot");
                arg = snapshot.expect("listed at once").id;
                sim_file(&sim, &name, Some("scribbled over")).await;
            }
            "rollback" => {
                swarm
                    .update_image(&name, "codercom/code-server:4.107.0")
                    .await
                    .expect("update before rollback");
                sim_file(&sim, &name, Some("precious")).await;
            }
            _ => {
                sim_file(&sim, &name, Some("precious")).await;
            }
        }
        run_child_with(&url, &db, op, &name, point, &arg);

        let report = swarm.reconcile().await.expect("reconcile");
        assert!(report.converged(), "{op} at {point}: {report:?}");
        let finished = report.actions.iter().any(|action| {
            matches!(action, ReconcileAction::FinishedOperation { name: n, .. } if *n == name)
        });
        let undone = report.actions.iter().any(|action| {
            matches!(action, ReconcileAction::UndidOperation { name: n, .. } if *n == name)
        });
        assert!(finished || undone, "{op} at {point}: {report:?}");
        let again = swarm.reconcile().await.expect("reconcile again");
        assert!(again.actions.is_empty(), "{op} at {point}: {again:?}");

        // Forward once the change took effect on Fly, back before.
        let forward = match op {
            "move" | "restore" => matches!(point, "after_switch" | "after_cleanup"),
            _ => point == "after_machine",
        };
        assert_eq!(finished, forward, "{op} at {point}: {report:?}");
        let record = swarm.show(&name).await.expect("record");
        assert_eq!(record.status, WorkspaceStatus::Running, "{op} at {point}");
        match op {
            "move" => assert_eq!(
                record.spec.region,
                if forward { "fra" } else { "ams" },
                "{op} at {point}"
            ),
            "update" => assert_eq!(
                record.spec.image,
                if forward {
                    "codercom/code-server:4.107.0"
                } else {
                    first_image.as_str()
                },
                "{op} at {point}"
            ),
            "rollback" => assert_eq!(
                record.spec.image,
                if forward {
                    first_image.as_str()
                } else {
                    "codercom/code-server:4.107.0"
                },
                "{op} at {point}"
            ),
            _ => {}
        }
        let expected = if op == "restore" && !forward {
            "scribbled over"
        } else {
            "precious"
        };
        assert_eq!(
            sim_file(&sim, &name, None).await.as_deref(),
            Some(expected),
            "{op} at {point}: data kept"
        );
        assert_eq!(
            swarm.health(&name).await.expect("health").status,
            swarm::HealthStatus::Healthy,
            "{op} at {point}"
        );
        // One machine and one volume per workspace: nothing orphaned, and the record
        // names exactly those.
        let stats = sim.stats();
        assert_eq!(
            (stats.machines, stats.volumes),
            (index + 1, index + 1),
            "{op} at {point}"
        );
        let app = app_on_sim(&sim, &name).expect("app");
        let world = app.to_string();
        assert!(
            world.contains(record.machine_id.as_deref().expect("machine")),
            "{op} at {point}"
        );
        assert!(
            world.contains(record.volume_id.as_deref().expect("volume")),
            "{op} at {point}"
        );
    }
    for record in swarm.list().await.expect("list") {
        swarm.delete(record.name.as_str()).await.expect("delete");
    }
    assert_sim_empty(&sim);
}

/// A machine rollback aborted at each step, undoing an image update (snapshot, image
/// and guest) or a resize (guest only): reconcile records it when Fly's machine runs
/// the plan and closes it otherwise, and the record then agrees with Fly's machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_every_machine_rollback_step_then_reconcile_converges() {
    let sim = start_sim().await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("swarm.db");
    let swarm = swarm_at(&url, &db).await;
    let jobs = MACHINE_ROLLBACK_POINTS
        .iter()
        .map(|point| ("update", *point))
        .chain(
            ["after_intent", "after_machine"]
                .iter()
                .map(|point| ("resize", *point)),
        );
    for (index, (undoing, point)) in jobs.enumerate() {
        let name = format!("crash-machine-{index}");
        let created = swarm.create(&options(&name)).await.expect("create");
        let before = created.workspace.spec.clone();
        let changed = if undoing == "update" {
            swarm
                .update_image(&name, "codercom/code-server:4.107.0")
                .await
                .expect("update")
                .workspace
        } else {
            swarm
                .resize(
                    &name,
                    &swarm::ResizeOptions {
                        cpus: Some(2),
                        ..swarm::ResizeOptions::default()
                    },
                )
                .await
                .expect("resize")
                .workspace
        };
        sim_file(&sim, &name, Some("precious")).await;
        run_child_until_crash(&url, &db, "machine_rollback", &name, point);

        let report = swarm.reconcile().await.expect("reconcile");
        assert!(report.converged(), "{undoing} at {point}: {report:?}");
        let finished = report.actions.iter().any(|action| {
            matches!(action, ReconcileAction::FinishedOperation { name: n, .. } if *n == name)
        });
        let undone = report.actions.iter().any(|action| {
            matches!(action, ReconcileAction::UndidOperation { name: n, .. } if *n == name)
        });
        assert_eq!(
            (finished, undone),
            (point == "after_machine", point != "after_machine"),
            "{undoing} at {point}: {report:?}"
        );
        let again = swarm.reconcile().await.expect("reconcile again");
        assert!(again.actions.is_empty(), "{undoing} at {point}: {again:?}");

        let record = swarm.show(&name).await.expect("record");
        let expected = if finished { &before } else { &changed.spec };
        assert_eq!(
            (&record.spec.image, record.spec.guest),
            (&expected.image, expected.guest),
            "{undoing} at {point}"
        );
        // The record agrees with Fly's machine.
        let app = record.app.clone().expect("app");
        let machine = swarm
            .provider()
            .get_machine(&app, record.machine_id.as_deref().expect("machine"))
            .await
            .expect("get machine")
            .expect("machine exists");
        assert_eq!(
            machine.guest,
            Some(record.spec.guest),
            "{undoing} at {point}"
        );
        if undoing == "update" {
            let image = if finished {
                created.workspace.image_versions[0].pinned_image()
            } else {
                "codercom/code-server:4.107.0".to_owned()
            };
            assert_eq!(machine.image, Some(image), "{undoing} at {point}");
        }
        assert_eq!(
            record.status,
            WorkspaceStatus::Running,
            "{undoing} at {point}"
        );
        assert_eq!(
            record.volume_id, created.workspace.volume_id,
            "{undoing} at {point}: same volume"
        );
        assert_eq!(
            sim_file(&sim, &name, None).await.as_deref(),
            Some("precious"),
            "{undoing} at {point}: data kept"
        );
        let stats = sim.stats();
        assert_eq!(
            (stats.machines, stats.volumes),
            (index + 1, index + 1),
            "{undoing} at {point}"
        );
    }
    for record in swarm.list().await.expect("list") {
        swarm.delete(record.name.as_str()).await.expect("delete");
    }
    assert_sim_empty(&sim);
}
