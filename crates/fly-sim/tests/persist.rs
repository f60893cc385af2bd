//! The state file: reload, resumed transitions, exclusive lock, mode 0600.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use common::{code_server_config, start};
use fly_sim::{Latency, Sim, SimConfig, SimError};
use serde_json::json;

#[tokio::test]
async fn world_survives_a_restart_and_transitions_resume() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("world.json");
    let config = SimConfig {
        state_file: Some(path.clone()),
        latency: Latency::Fly,
        time_scale: 0.01,
        rate_limits: false,
        ..SimConfig::default()
    };
    let api = start(config.clone()).await;
    api.create_app("kept").await;
    let vol = api.create_volume("kept", "data", "ams").await;
    let id = api
        .create_machine("kept", code_server_config(json!({})))
        .await;
    // A second sim on the same file is refused while the first runs.
    match Sim::start(config.clone(), "127.0.0.1:0").await {
        Err(SimError::Locked { .. }) => {}
        other => panic!("expected Locked, got {other:?}"),
    }
    api.sim.shutdown().await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&vol));

    let again = start(config).await;
    assert_eq!(again.get("/v1/apps/kept").await.status, 200);
    assert_eq!(
        again
            .get(&format!("/v1/apps/kept/volumes/{vol}"))
            .await
            .status,
        200
    );
    // The machine was `created` (preparing its image) at shutdown; it resumes and starts.
    again.wait_state("kept", &id, "started").await;
    let stats = again.sim.stats();
    assert_eq!((stats.apps, stats.machines, stats.volumes), (1, 1, 1));
    again.sim.shutdown().await;
}

#[tokio::test]
async fn wait_lock_waits_for_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.json");
    let config = SimConfig {
        state_file: Some(path),
        wait_lock: true,
        ..SimConfig::default()
    };
    let first = Sim::start(config.clone(), "127.0.0.1:0").await.unwrap();
    let second = tokio::spawn(async move { Sim::start(config, "127.0.0.1:0").await });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!second.is_finished(), "the second sim waits for the lock");
    first.shutdown().await;
    let second = tokio::time::timeout(std::time::Duration::from_secs(10), second)
        .await
        .expect("lock released")
        .unwrap()
        .unwrap();
    second.shutdown().await;
}
