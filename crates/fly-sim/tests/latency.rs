//! `Latency::Fly`: transitions take what the model draws (checked in model time on the
//! machine's events), and `/wait` long-polls until the state is really reached.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use std::time::Instant;

use common::{code_server_config, start};
use fly_sim::{Latency, SimConfig};
use serde_json::{Value, json};

fn machine<'a>(world: &'a Value, app: &str, id: &str) -> &'a Value {
    world["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == app)
        .and_then(|a| {
            a["machines"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["id"] == id)
        })
        .expect("machine in world")
}

fn event_time(m: &Value, status: &str) -> i64 {
    m["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["status"] == status)
        .and_then(|e| e["timestamp"].as_i64())
        .unwrap_or_else(|| panic!("no {status} event in {}", m["events"]))
}

#[tokio::test]
async fn create_to_started_takes_the_modelled_time_and_wait_long_polls() {
    let scale = 0.01;
    let api = start(SimConfig {
        latency: Latency::Fly,
        time_scale: scale,
        rate_limits: false,
        seed: 3,
        ..SimConfig::default()
    })
    .await;
    api.create_app("slow").await;
    let r = api
        .post(
            "/v1/apps/slow/machines",
            json!({"region": "ams", "config": code_server_config(json!({}))}),
        )
        .await;
    assert_eq!(r.body["state"], "created");
    let id = r.body["id"].as_str().unwrap().to_string();
    let waited_from = Instant::now();
    // Start is refused while the image is being prepared (fly profile).
    let early = api
        .post(&format!("/v1/apps/slow/machines/{id}/start"), json!(null))
        .await;
    assert_eq!(early.status, 412, "{}", early.body);
    assert!(
        early.body["error"]
            .as_str()
            .unwrap()
            .contains("unable to start machine from current state: 'created'")
    );

    let wait = api
        .get(&format!(
            "/v1/apps/slow/machines/{id}/wait?state=started&timeout=60"
        ))
        .await;
    let waited = waited_from.elapsed();
    assert_eq!(wait.status, 200, "{}", wait.body);
    let world = api.sim.world();
    let m = machine(&world, "slow", &id);
    assert_eq!(m["state"], "started", "wait returned only once started");
    let timings = m["timings"].as_array().unwrap();
    let prepare = timings[0]["model_ms"].as_i64().unwrap();
    let boot = timings[1]["model_ms"].as_i64().unwrap();
    assert_eq!(
        (timings[0]["to"].as_str(), timings[1]["to"].as_str()),
        (Some("starting"), Some("started"))
    );
    let created = event_time(m, "created");
    let starting = event_time(m, "starting");
    let started = event_time(m, "started");
    assert_eq!(
        starting - created,
        prepare,
        "created → starting is the image preparation draw"
    );
    assert_eq!(
        started - starting,
        boot,
        "starting → started is the boot draw"
    );
    // A first use of an image in a region: log-normal around 12 s (p95 ≈ 36 s).
    assert!((1_000..120_000).contains(&prepare), "prepare {prepare} ms");
    assert!((30..5_000).contains(&boot), "boot {boot} ms");
    // The wall clock ran at least the scaled model time (minus the already-elapsed create).
    let model_wall = std::time::Duration::from_secs_f64((prepare + boot) as f64 / 1000.0 * scale);
    assert!(
        waited + std::time::Duration::from_millis(20) >= model_wall,
        "waited {waited:?} < {model_wall:?}"
    );

    // Same image in the same region again: the cached preparation.
    let second = api
        .post(
            "/v1/apps/slow/machines",
            json!({"region": "ams", "config": code_server_config(json!({}))}),
        )
        .await;
    let id2 = second.body["id"].as_str().unwrap().to_string();
    api.wait_state("slow", &id2, "started").await;
    let world = api.sim.world();
    let prepare2 = machine(&world, "slow", &id2)["timings"][0]["model_ms"]
        .as_i64()
        .unwrap();
    assert!(prepare2 < 20_000, "cached preparation {prepare2} ms");
}
