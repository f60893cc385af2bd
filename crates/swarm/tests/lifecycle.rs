//! Acceptance 1 (lifecycle), 5 (concurrent creates of one name) and the edge errors,
//! against fly-sim in-process.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{assert_sim_empty, start_sim, start_sim_with, swarm_at};
use swarm::{
    CreateOptions, CreateStep, Error, HealthStatus, IpMode, Provider as _, Store as _,
    WorkspaceStatus,
};

fn options(name: &str) -> CreateOptions {
    CreateOptions {
        name: name.to_owned(),
        image: Some("codercom/code-server:4.106.3".to_owned()),
        ..CreateOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_create_health_stop_start_delete_leaves_nothing() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;

    let steps = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&steps);
    let created = swarm
        .create_with_progress(&options("alice"), &move |step: &CreateStep| {
            seen.lock().expect("steps").push(step.clone());
        })
        .await
        .expect("create");
    let record = &created.workspace;
    assert_eq!(record.status, WorkspaceStatus::Running);
    assert_eq!(record.url, "https://alice.fly.dev");
    assert_eq!(record.app.as_deref(), Some("alice"));
    assert!(
        record
            .volume_id
            .as_deref()
            .is_some_and(|id| id.starts_with("vol_")),
        "{record:?}"
    );
    assert!(record.machine_id.is_some());
    let kinds: Vec<_> = record.ips.iter().map(|ip| ip.kind).collect();
    assert_eq!(kinds.len(), 2, "shared v4 + v6: {kinds:?}");
    let names: Vec<&str> = steps
        .lock()
        .expect("steps")
        .iter()
        .map(|step| match step {
            CreateStep::IntentRecorded { .. } => "intent",
            CreateStep::App { .. } => "app",
            CreateStep::Volume { .. } => "volume",
            CreateStep::Ips { .. } => "ips",
            CreateStep::Machine { .. } => "machine",
            CreateStep::Started { .. } => "started",
            CreateStep::PoolSlot { .. } => "pool slot",
        })
        .collect();
    // The IPs are allocated alongside volume → machine → started: anywhere after the app.
    let chain: Vec<&str> = names.iter().copied().filter(|n| *n != "ips").collect();
    assert_eq!(chain, ["intent", "app", "volume", "machine", "started"]);
    let ips: Vec<usize> = (0..names.len()).filter(|&i| names[i] == "ips").collect();
    assert!(
        ips.len() == 1 && ips[0] > 1,
        "ips once, after the app: {names:?}"
    );
    let stats = sim.stats();
    assert_eq!(
        (stats.apps, stats.machines, stats.volumes, stats.ips),
        (1, 1, 1, 2),
        "{stats:?}"
    );

    // The machine config is the one the design asks for.
    let world = sim.world().to_string();
    for needle in [
        "\"swarm_workspace_id\"",
        &record.id.to_string(),
        "/home/coder/project",
        "CODE_SERVER_IDLE_TIMEOUT_SECONDS",
        "XDG_DATA_HOME",
        "on-failure",
        "/healthz",
    ] {
        assert!(world.contains(needle), "world lacks {needle}: {world}");
    }

    // Health: machine started and code-server answers through the app proxy.
    let health = swarm.health("alice").await.expect("health");
    assert_eq!(health.status, HealthStatus::Healthy, "{health:?}");
    let probe = health.probe.clone().expect("probed");
    assert_eq!(probe.http_status, Some(200));
    assert!(
        matches!(probe.status.as_deref(), Some("alive" | "expired")),
        "{probe:?}"
    );
    // People read "up, idle", not code-server's "expired".
    let expected = if probe.status.as_deref() == Some("expired") {
        "code-server up, idle"
    } else {
        "code-server alive"
    };
    assert!(health.summary.ends_with(expected), "{}", health.summary);

    let stopped = swarm.stop("alice", false).await.expect("stop");
    assert_eq!(stopped.workspace.status, WorkspaceStatus::Stopped);
    assert!(stopped.changed);
    let health = swarm.health("alice").await.expect("health");
    assert_eq!(health.status, HealthStatus::Unhealthy);
    assert!(
        health.probe.is_none(),
        "a stopped workspace is not probed (it would wake up)"
    );
    let again = swarm.stop("alice", true).await.expect("stop again");
    assert!(!again.changed);

    let started = swarm.start("alice").await.expect("start");
    assert_eq!(started.workspace.status, WorkspaceStatus::Running);
    assert_eq!(started.previous, WorkspaceStatus::Stopped);
    assert_eq!(
        swarm.health("alice").await.expect("health").status,
        HealthStatus::Healthy
    );

    let forced = swarm.stop("alice", true).await.expect("stop --force");
    assert_eq!(forced.workspace.status, WorkspaceStatus::Stopped);
    swarm.start("alice").await.expect("start after kill");

    let logs = swarm.logs("alice", 5).await.expect("logs");
    assert!(!logs.is_empty() && logs.len() <= 5, "{logs:?}");
    let all = swarm.logs("alice", 10_000).await.expect("logs");
    assert!(all.len() >= logs.len());
    assert_eq!(
        all[all.len() - logs.len()..],
        logs[..],
        "tail is the last lines"
    );
    let mut follow = swarm.follow_logs("alice").await.expect("follow");
    let first = tokio::time::timeout(
        Duration::from_secs(10),
        futures::StreamExt::next(&mut follow),
    )
    .await
    .expect("a line within 10 s")
    .expect("stream open")
    .expect("line");
    assert!(!first.message.is_empty());
    drop(follow);

    let deleted = swarm.delete("alice").await.expect("delete");
    assert!(deleted.changed);
    assert!(
        deleted
            .removed
            .iter()
            .any(|item| item.starts_with("machine ")),
        "{deleted:?}"
    );
    assert_sim_empty(&sim);
    assert!(matches!(
        swarm.show("alice").await,
        Err(Error::NotFound { .. })
    ));
    // Repeatable.
    let repeated = swarm.delete("alice").await.expect("delete again");
    assert!(!repeated.changed);
    let report = swarm.reconcile().await.expect("reconcile");
    assert!(report.actions.is_empty(), "{report:?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_creates_of_one_name_make_one_workspace_and_one_clear_error() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("swarm.db");
    // Two Swarm values with their own pools on one file, as two processes would have.
    let first = swarm_at(&sim.base_url(), &db).await;
    let second = swarm_at(&sim.base_url(), &db).await;
    let opts = options("twin");
    let (a, b) = tokio::join!(first.create(&opts), second.create(&opts));
    let (ok, err) = match (a, b) {
        (Ok(created), Err(error)) | (Err(error), Ok(created)) => (created, error),
        (a, b) => panic!(
            "expected one success and one error, got {:?} and {:?}",
            a.map(|c| c.workspace),
            b.map(|c| c.workspace)
        ),
    };
    assert_eq!(ok.workspace.status, WorkspaceStatus::Running);
    assert!(
        matches!(err, Error::AlreadyExists { .. } | Error::Busy { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("twin"), "{err}");
    let stats = sim.stats();
    assert_eq!(
        (stats.apps, stats.machines, stats.volumes),
        (1, 1, 1),
        "{stats:?}"
    );
    assert_eq!(first.list().await.expect("list").len(), 1);
    first.delete("twin").await.expect("delete");
    assert_sim_empty(&sim);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_and_foreign_names_change_nothing() {
    let sim = start_sim_with(fly_sim::SimConfig {
        taken_names: vec!["someone-else".to_owned()],
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;

    let bad = CreateOptions {
        name: "Bad".to_owned(),
        cpus: Some(3),
        ..CreateOptions::default()
    };
    let error = swarm.create(&bad).await.expect_err("invalid");
    assert_eq!(error.exit_code(), 2);
    assert!(
        error.to_string().contains("invalid name \"Bad\""),
        "{error}"
    );
    assert!(error.to_string().contains("invalid cpus"), "{error}");
    assert_eq!(
        sim.stats().requests_total,
        0,
        "validation must not reach Fly"
    );

    let error = swarm
        .create(&options("someone-else"))
        .await
        .expect_err("taken");
    assert_eq!(error.exit_code(), 2, "{error}");
    assert!(
        error.to_string().contains("already taken on Fly.io"),
        "{error}"
    );
    assert_sim_empty(&sim);
    assert!(swarm.list().await.expect("list").is_empty());

    // Taken inside our organisation, by an app that is not ours: refused, and undoing
    // the create leaves that app alone.
    swarm
        .provider()
        .create_app("neighbour", "personal", "their-own-key")
        .await
        .expect("someone else's app");
    let error = swarm
        .create(&options("neighbour"))
        .await
        .expect_err("taken");
    assert_eq!(error.exit_code(), 2, "{error}");
    assert!(error.to_string().contains("already taken"), "{error}");
    assert_eq!(sim.stats().apps, 1, "their app stays");
    assert!(swarm.list().await.expect("list").is_empty());

    let error = swarm.start("nobody").await.expect_err("missing");
    assert!(matches!(error, Error::NotFound { .. }));
    assert_eq!(error.exit_code(), 2);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_mode_and_a_busy_workspace() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("swarm.db");
    let swarm = swarm_at(&sim.base_url(), &db).await;
    let mut opts = options("quiet");
    opts.ip = Some("private".to_owned());
    let created = swarm.create(&opts).await.expect("create");
    assert_eq!(created.workspace.spec.ip_mode, IpMode::Private);
    assert_eq!(created.workspace.url, "http://quiet.internal:8080");
    assert_eq!(created.workspace.ips.len(), 1);

    // Another process holds the lock: a second operation fails clearly after waiting.
    let store = swarm::SqliteStore::open(&db, &sim.base_url())
        .await
        .expect("store");
    use swarm::Store as _;
    assert!(
        store
            .try_lock("quiet", "other-process", "stop", Duration::from_secs(30))
            .await
            .expect("lock")
            .is_none()
    );
    let mut config = common::test_config(&sim.base_url());
    config.lock_wait = Duration::from_millis(300);
    let impatient = common::swarm_with(&sim.base_url(), &db, config).await;
    let error = impatient.start("quiet").await.expect_err("busy");
    assert!(matches!(error, Error::Busy { .. }), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("workspace quiet is busy: stop by pid"),
        "{error}"
    );
    store
        .release_lock("quiet", "other-process")
        .await
        .expect("release");

    swarm.delete("quiet").await.expect("delete");
    assert_sim_empty(&sim);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_mid_create_is_compensated() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A region our config offers but Fly refuses: the volume create fails for good
    // after the app exists.
    let mut config = common::test_config(&sim.base_url());
    config.regions.push("xyz".to_owned());
    let swarm = common::swarm_with(&sim.base_url(), &dir.path().join("swarm.db"), config).await;
    let mut opts = options("doomed");
    opts.region = Some("xyz".to_owned());
    let error = swarm
        .create(&opts)
        .await
        .expect_err("Fly refuses the region");
    let text = error.to_string();
    assert!(matches!(error, Error::CreateFailed { .. }), "{text}");
    assert_eq!(error.exit_code(), 1);
    assert!(text.contains("invalid region"), "{text}");
    assert!(
        text.contains("removed what was made") && text.contains("app doomed"),
        "{text}"
    );
    assert_sim_empty(&sim);
    assert!(swarm.list().await.expect("list").is_empty());
    let all = swarm::Store::list_workspaces(swarm.store(), true)
        .await
        .expect("records");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, WorkspaceStatus::Deleted);
    assert!(
        all[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("invalid region"))
    );
    assert!(
        swarm
            .reconcile()
            .await
            .expect("reconcile")
            .actions
            .is_empty()
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_fixes_drift_and_reports_orphans() {
    let sim = start_sim().await;
    let url = sim.base_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&url, &dir.path().join("swarm.db")).await;
    let drifting = swarm
        .create(&options("drifty"))
        .await
        .expect("create")
        .workspace;
    let orphaned = swarm
        .create(&options("orphan"))
        .await
        .expect("create")
        .workspace;

    // The machine stops behind our back (code-server's idle exit does this).
    let fly = common::client(&url);
    let machine_id = drifting.machine_id.clone().expect("machine");
    fly.machines("drifty")
        .stop(&machine_id, &fly_api::models::StopRequest::default(), None)
        .await
        .expect("stop");
    fly.machines("drifty")
        .wait_for_state(
            &machine_id,
            &[fly_api::models::MachineState::Stopped],
            None,
            Duration::from_secs(30),
        )
        .await
        .expect("stopped");
    // A record marked deleted while its app lives on.
    let mut forgotten = orphaned.clone();
    forgotten.status = WorkspaceStatus::Deleted;
    swarm::Store::update_workspace(swarm.store(), &forgotten)
        .await
        .expect("update");

    let report = swarm.reconcile().await.expect("reconcile");
    assert!(report.converged(), "{report:?}");
    assert!(
        report
            .actions
            .contains(&swarm::ReconcileAction::StatusDrift {
                name: "drifty".to_owned(),
                from: WorkspaceStatus::Running,
                to: WorkspaceStatus::Stopped,
                reason: "Fly reports the machine stopped".to_owned(),
            }),
        "{report:?}"
    );
    assert_eq!(
        swarm.show("drifty").await.expect("show").status,
        WorkspaceStatus::Stopped
    );
    assert!(
        report
            .actions
            .iter()
            .any(|a| matches!(a, swarm::ReconcileAction::OrphanApp { app, .. } if app == "orphan")),
        "{report:?}"
    );
    // Another store (another user's machine) sees both workspaces' machines as orphans.
    let stranger = swarm_at(&url, &dir.path().join("other.db")).await;
    let seen = stranger.reconcile().await.expect("reconcile");
    let orphan_machines: Vec<_> = seen
        .actions
        .iter()
        .filter_map(|a| match a {
            swarm::ReconcileAction::OrphanMachine { workspace_id, .. } => {
                Some(workspace_id.clone())
            }
            _ => None,
        })
        .collect();
    assert!(
        orphan_machines.contains(&drifting.id.to_string()),
        "{seen:?}"
    );
    assert!(
        orphan_machines.contains(&orphaned.id.to_string()),
        "{seen:?}"
    );
    // Orphans are reported, never deleted: a second run reports the same, changes nothing.
    let again = swarm.reconcile().await.expect("reconcile");
    assert_eq!(again.actions.len(), 1, "{again:?}");
    assert_eq!(sim.stats().apps, 2);
    sim.shutdown().await;
}

/// A reconcile pass that meets a create under way (another process's, holding the
/// workspace's lock) leaves it alone and does not wait for it; the create ends as its
/// own, not "finished by reconcile". Before, the pass waited for the lock and then
/// acted on the operation it had read before, which by then had ended: with a stop in
/// between, it undid a workspace the user had been told was created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_leaves_a_create_under_way_alone() {
    let sim = start_sim_with(fly_sim::SimConfig {
        latency: fly_sim::Latency::Fly,
        time_scale: 0.05,
        ..fly_sim::SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("swarm.db");
    let creator = Arc::new(swarm_at(&sim.base_url(), &db).await);
    let reconciler = swarm_at(&sim.base_url(), &db).await;
    let (app_made, mut app_made_seen) = tokio::sync::watch::channel(false);
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let create = {
        let creator = Arc::clone(&creator);
        let started = Arc::clone(&started);
        tokio::spawn(async move {
            let progress = move |step: &CreateStep| match step {
                CreateStep::App { .. } => {
                    app_made.send_replace(true);
                }
                CreateStep::Started { .. } => {
                    started.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                _ => {}
            };
            creator
                .create_with_progress(&options("busy-create"), &progress)
                .await
        })
    };
    app_made_seen.wait_for(|made| *made).await.unwrap();
    let report = reconciler.reconcile().await.expect("reconcile");
    assert!(
        !started.load(std::sync::atomic::Ordering::SeqCst),
        "the pass waited for the create to end"
    );
    assert!(
        report.actions.is_empty(),
        "the pass acted on a create under way: {:?}",
        report.actions
    );
    let created = create.await.unwrap().expect("create");
    assert_eq!(created.workspace.status, WorkspaceStatus::Running);
    let record = creator.show("busy-create").await.unwrap();
    let operations = creator.store().operations_of(record.id).await.unwrap();
    assert_eq!(operations.len(), 1, "{operations:?}");
    assert_eq!(
        operations[0].outcome.as_deref(),
        Some("ok"),
        "{operations:?}"
    );
    creator.delete("busy-create").await.unwrap();
    assert_sim_empty(&sim);
}
