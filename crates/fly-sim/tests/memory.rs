//! Scale: 10,000 apps, each with a machine and a volume, in under 200 MB RSS; a machine
//! GET costs the same at 10 apps and at 10,000 (hash maps keyed by app and id).
//! Run `cargo test -p fly-sim --test memory -- --nocapture` to see the figures.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use std::time::{Duration, Instant};

use common::{code_server_config, start};
use fly_sim::SimConfig;
use futures::StreamExt;
use serde_json::json;

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn fill(api: &common::Api, from: usize, to: usize) {
    futures::stream::iter(from..to)
        .for_each_concurrent(16, |i| async move {
            let app = format!("ws-{i}");
            api.create_app(&app).await;
            let vol = api.create_volume(&app, "home", "ams").await;
            let mut cfg = code_server_config(json!({"CODE_SERVER_IDLE_TIMEOUT_SECONDS": "3600"}));
            cfg["mounts"] = json!([{"volume": vol, "path": "/home/coder/project"}]);
            api.create_machine(&app, cfg).await;
        })
        .await;
}

async fn time_gets(api: &common::Api, n: usize) -> Duration {
    let list = api.get("/v1/apps/ws-0/machines").await;
    let (app, id) = ("ws-0", list.body[0]["id"].as_str().unwrap().to_string());
    let start = Instant::now();
    for _ in 0..n {
        let r = api.get(&format!("/v1/apps/{app}/machines/{id}")).await;
        assert_eq!(r.status, 200);
    }
    start.elapsed() / n as u32
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_workspaces_fit_in_200_mb() {
    let n: usize = std::env::var("FLY_SIM_SCALE_APPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let before = rss_kib().unwrap_or(0);
    let api = start(SimConfig {
        rate_limits: false,
        ..SimConfig::default()
    })
    .await;
    fill(&api, 0, 10).await;
    let small = time_gets(&api, 200).await;
    let started = Instant::now();
    fill(&api, 10, n).await;
    let filled_in = started.elapsed();
    let stats = api.sim.stats();
    assert_eq!((stats.apps, stats.machines, stats.volumes), (n, n, n));
    let large = time_gets(&api, 200).await;
    let after = rss_kib().unwrap_or(0);
    println!(
        "scale: {n} apps+machines+volumes filled in {filled_in:?}; RSS before {} MiB, after {} MiB; \
         get-machine {small:?} at 10 apps, {large:?} at {n}",
        before / 1024,
        after / 1024
    );
    assert!(after < 200 * 1024, "RSS {} MiB ≥ 200 MiB", after / 1024);
    // O(1): the per-GET cost does not grow with the world (generous bound for noisy CI).
    assert!(
        large < small * 4 + Duration::from_millis(2),
        "GET {small:?} → {large:?}"
    );
}
