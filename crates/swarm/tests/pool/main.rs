//! The warm pool against an in-process fly-sim with a real SQLite store: fill, list,
//! create from a slot (and the workspace's whole life afterwards), fallback, drain,
//! reconcile, concurrent takes, and a real abort at every crash point of fill, drain
//! and create-from-pool.
//!
//! The crash child is this test binary re-executed with `child_process_entry`.

#[path = "../common/mod.rs"]
mod common;
mod failures;
mod fill_and_take;
mod reconcile;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{swarm_at, swarm_with};
use fly_sim::Knob;
use swarm::CreateOptions;
use swarm::failpoint::CRASH_AT_ENV;

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

/// The configuration of a deployment that moved on to a newer default image.
fn newer_image_config(sim_url: &str) -> swarm::SwarmConfig {
    swarm::SwarmConfig {
        default_image: NEWER_IMAGE.to_owned(),
        ..common::test_config(sim_url)
    }
}

const NEWER_IMAGE: &str = "codercom/code-server:4.106.3";

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
