//! Shared scenario-test setup: a fly-sim in-process, a FlyClient pointed at it, a
//! store in a tempdir, and a Swarm over them.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use fly_api::{FlyClient, RetryPolicy, Token};
use fly_sim::{Sim, SimConfig, SimHandle};
use swarm::{FlyProvider, SqliteStore, Swarm, SwarmConfig};

pub type TestSwarm = Swarm<SqliteStore, FlyProvider>;

/// Starts a fault-free, zero-latency sim.
pub async fn start_sim() -> SimHandle {
    start_sim_with(SimConfig::default()).await
}

pub async fn start_sim_with(config: SimConfig) -> SimHandle {
    Sim::start(config, "127.0.0.1:0")
        .await
        .expect("start fly-sim")
}

/// Config for tests: short backoffs and waits, probe through the sim's proxy.
pub fn test_config(sim_url: &str) -> SwarmConfig {
    SwarmConfig {
        probe_base_url: Some(sim_url.to_owned()),
        fly_endpoint: sim_url.to_owned(),
        step_backoff: Duration::from_millis(20),
        step_attempts: 8,
        lock_wait: Duration::from_secs(30),
        start_timeout: Duration::from_secs(60),
        stop_timeout: Duration::from_secs(60),
        ..SwarmConfig::default()
    }
}

pub fn client(sim_url: &str) -> FlyClient {
    FlyClient::builder()
        .token(Token::new("test-token"))
        .machines_base_url(sim_url)
        .api_base_url(sim_url)
        .retry(RetryPolicy {
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            ..RetryPolicy::default()
        })
        .build()
        .expect("fly client")
}

pub async fn swarm_at(sim_url: &str, db: &Path) -> TestSwarm {
    swarm_with(sim_url, db, test_config(sim_url)).await
}

pub async fn swarm_with(sim_url: &str, db: &Path, config: SwarmConfig) -> TestSwarm {
    let store = SqliteStore::open(db, &config.fly_endpoint)
        .await
        .expect("open store");
    let provider = FlyProvider::new(client(sim_url), &config);
    Swarm::new(store, provider, config)
}

/// Asserts the sim holds nothing at all.
pub fn assert_sim_empty(sim: &SimHandle) {
    let stats = sim.stats();
    assert_eq!(
        (stats.apps, stats.machines, stats.volumes, stats.ips),
        (0, 0, 0, 0),
        "leaked resources on the sim: {stats:?}"
    );
}

/// Polls `check` until it holds or `timeout` passes.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The machine's config as the sim holds it.
pub fn machine_config(sim: &SimHandle, machine_id: &str) -> serde_json::Value {
    fn find(value: &serde_json::Value, machine_id: &str) -> Option<serde_json::Value> {
        match value {
            serde_json::Value::Object(map) => {
                if map.get("id").and_then(serde_json::Value::as_str) == Some(machine_id)
                    && let Some(config) = map.get("config")
                {
                    return Some(config.clone());
                }
                map.values().find_map(|v| find(v, machine_id))
            }
            serde_json::Value::Array(items) => items.iter().find_map(|v| find(v, machine_id)),
            _ => None,
        }
    }
    find(&sim.world(), machine_id).expect("machine config in the sim's world")
}
