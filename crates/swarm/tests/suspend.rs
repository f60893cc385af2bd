//! Suspend on fly-sim: suspend → suspended, start resumes, the 2 GB limit, the idle
//! policy's machine config, and the status in the store, reconcile and cost.

mod common;

use common::{start_sim, swarm_at};
use fly_sim::Knob;
use swarm::cost::{BilledAs, MonthlyCost};
use swarm::{CreateOptions, Error, HealthStatus, IdlePolicy, WorkspaceStatus};

/// The sim's view of the app's (only) machine.
fn machine_on_sim(sim: &fly_sim::SimHandle, app: &str) -> serde_json::Value {
    sim.world()["apps"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["name"] == app)
        .map(|a| a["machines"][0].clone())
        .unwrap_or_default()
}

fn options(name: &str) -> CreateOptions {
    CreateOptions {
        name: name.to_owned(),
        image: Some("codercom/code-server:4.106.3".to_owned()),
        ..CreateOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_then_start_resumes_and_the_store_says_suspended() {
    let sim = common::start_sim_with(fly_sim::SimConfig {
        rate_limits: false,
        record_draws: true,
        ..fly_sim::SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let created = swarm.create(&options("alice")).await.expect("create");
    let machine = created.workspace.machine_id.clone().expect("machine");

    let change = swarm.suspend("alice").await.expect("suspend");
    assert!(change.changed);
    assert_eq!(change.previous, WorkspaceStatus::Running);
    assert_eq!(change.workspace.status, WorkspaceStatus::Suspended);
    assert_eq!(machine_on_sim(&sim, "alice")["state"], "suspended");
    let stored = swarm.show("alice").await.expect("show");
    assert_eq!(
        stored.status,
        WorkspaceStatus::Suspended,
        "kept in the store"
    );
    // Priced as suspended, not running.
    assert_eq!(MonthlyCost::billed_as(stored.status), BilledAs::Suspended);
    let health = swarm.health("alice").await.expect("health");
    assert_eq!(health.status, HealthStatus::Unhealthy);
    assert!(health.summary.contains("suspended"), "{}", health.summary);
    // Reconcile agrees with Fly: nothing to change.
    swarm.reconcile().await.expect("reconcile");
    assert_eq!(
        swarm.show("alice").await.expect("show").status,
        WorkspaceStatus::Suspended
    );
    // A second suspend is a no-op.
    assert!(!swarm.suspend("alice").await.expect("again").changed);

    let resumes = || {
        sim.draws()
            .iter()
            .filter(|d| d.knob == Knob::Resume && d.label == machine)
            .count()
    };
    assert_eq!(resumes(), 0);
    let started = swarm.start("alice").await.expect("start");
    assert_eq!(started.previous, WorkspaceStatus::Suspended);
    assert_eq!(started.workspace.status, WorkspaceStatus::Running);
    assert_eq!(resumes(), 1, "start resumed from the snapshot");
    assert_eq!(
        swarm.health("alice").await.expect("health").status,
        HealthStatus::Healthy
    );

    // A stopped workspace cannot be suspended: clear message, exit 2, unchanged.
    swarm.stop("alice", false).await.expect("stop");
    let error = swarm.suspend("alice").await.expect_err("stopped");
    assert!(matches!(error, Error::InvalidState { .. }), "{error}");
    assert_eq!(error.exit_code(), 2);
    assert!(error.to_string().contains("swarm start alice"), "{error}");
    assert_eq!(
        swarm.show("alice").await.expect("show").status,
        WorkspaceStatus::Stopped
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_over_2_gb_is_refused_before_fly_is_asked() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let big = CreateOptions {
        cpus: Some(2),
        memory_mb: Some(4096),
        ..options("big")
    };
    swarm.create(&big).await.expect("create");
    let error = swarm.suspend("big").await.expect_err("too large");
    assert_eq!(error.exit_code(), 2, "{error}");
    let text = error.to_string();
    assert!(
        text.contains("memory") && text.contains("2048 MB") && text.contains("4096"),
        "{text}"
    );
    let record = swarm.show("big").await.expect("show");
    assert_eq!(record.status, WorkspaceStatus::Running, "left running");
    assert_eq!(machine_on_sim(&sim, "big")["state"], "started");

    // Nor can it be created with the suspend idle policy.
    let error = swarm
        .create(&CreateOptions {
            idle_policy: Some("suspend".to_owned()),
            ..CreateOptions {
                name: "big2".to_owned(),
                ..big.clone()
            }
        })
        .await
        .expect_err("policy too large");
    assert_eq!(error.exit_code(), 2);
    assert!(error.to_string().contains("idle_policy"), "{error}");
    assert!(swarm.show("big2").await.is_err(), "nothing recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suspend_idle_policy_hands_idleness_to_flys_proxy() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let created = swarm
        .create(&CreateOptions {
            idle_policy: Some("suspend".to_owned()),
            ..options("lazy")
        })
        .await
        .expect("create");
    assert_eq!(created.workspace.spec.idle_policy, IdlePolicy::Suspend);
    let stopper = swarm.create(&options("eager")).await.expect("create");
    assert_eq!(stopper.workspace.spec.idle_policy, IdlePolicy::Stop);
    let lazy = machine_on_sim(&sim, "lazy")["config"].clone();
    assert_eq!(lazy["services"][0]["autostop"], "suspend", "{lazy}");
    assert!(
        lazy["env"]
            .get("CODE_SERVER_IDLE_TIMEOUT_SECONDS")
            .is_none(),
        "code-server must not exit first: {lazy}"
    );
    let eager = machine_on_sim(&sim, "eager")["config"].clone();
    assert_eq!(eager["services"][0]["autostop"], false, "{eager}");
    assert_eq!(eager["env"]["CODE_SERVER_IDLE_TIMEOUT_SECONDS"], "1800");

    // A bad policy names the field and records nothing.
    let error = swarm
        .create(&CreateOptions {
            idle_policy: Some("hibernate".to_owned()),
            ..options("typo")
        })
        .await
        .expect_err("bad policy");
    assert_eq!(error.exit_code(), 2);
    assert!(
        error.to_string().contains("idle_policy") && error.to_string().contains("stop or suspend"),
        "{error}"
    );
    assert!(swarm.show("typo").await.is_err());
}
