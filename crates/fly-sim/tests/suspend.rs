//! Suspend and resume with Fly's limits (docs reference/suspend-resume): the snapshot,
//! what discards it, the fallback to a stop, and Fly Proxy's autostop in `suspend` mode.

mod common;

use common::{Api, code_server_config, start};
use fly_sim::{Knob, Latency, SimConfig};
use reqwest::Method;
use reqwest::header::HOST;
use serde_json::{Value, json};

/// Fly's latencies 1000× faster, every draw kept, so a test can tell a resume (knob
/// `resume`) from a cold boot (`boot`).
async fn sim() -> Api {
    sim_at(0.001).await
}

/// [`sim`] at `scale`: slow enough (0.05) to see a machine in `suspending`.
async fn sim_at(time_scale: f64) -> Api {
    start(SimConfig {
        latency: Latency::Fly,
        time_scale,
        rate_limits: false,
        record_draws: true,
        ..SimConfig::default()
    })
    .await
}

/// `/wait` for `state`, asked again after each 408 (its timeout is model time, which
/// runs fast here), within 20 s of wall time.
async fn wait(api: &Api, app: &str, id: &str, state: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = api
            .get(&format!(
                "/v1/apps/{app}/machines/{id}/wait?state={state}&timeout=60"
            ))
            .await;
        if r.status == 200 {
            return;
        }
        assert_eq!(r.status, 408, "wait {state}: {}", r.body);
        assert!(
            tokio::time::Instant::now() < deadline,
            "{app}/{id} never reached {state}"
        );
    }
}

async fn started_machine(api: &Api, app: &str, config: Value) -> String {
    api.create_app(app).await;
    let id = api.create_machine(app, config).await;
    wait(api, app, &id, "started").await;
    id
}

async fn post(api: &Api, app: &str, id: &str, action: &str) -> common::Reply {
    api.call(
        Method::POST,
        &format!("/v1/apps/{app}/machines/{id}/{action}"),
        None,
    )
    .await
}

async fn state(api: &Api, app: &str, id: &str) -> String {
    let r = api.get(&format!("/v1/apps/{app}/machines/{id}")).await;
    r.body["state"].as_str().unwrap_or_default().to_owned()
}

/// How many draws of `knob` the sim made for machine `id`.
fn draws(api: &Api, knob: Knob, id: &str) -> usize {
    api.sim
        .draws()
        .iter()
        .filter(|d| d.knob == knob && d.label == id)
        .count()
}

async fn events(api: &Api, app: &str, id: &str) -> Vec<Value> {
    let r = api
        .get(&format!("/v1/apps/{app}/machines/{id}/events?limit=50"))
        .await;
    r.body.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn suspend_then_start_resumes_from_the_snapshot() {
    let api = sim_at(0.05).await;
    let id = started_machine(&api, "sus", code_server_config(json!({}))).await;
    let boots = draws(&api, Knob::Boot, &id);
    let r = post(&api, "sus", &id, "suspend").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(state(&api, "sus", &id).await, "suspending");
    wait(&api, "sus", &id, "suspended").await;
    let r = post(&api, "sus", &id, "start").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["previous_state"], "suspended", "{}", r.body);
    wait(&api, "sus", &id, "started").await;
    assert_eq!(draws(&api, Knob::Resume, &id), 1, "resumed once");
    assert_eq!(draws(&api, Knob::Boot, &id), boots, "no cold boot");
    // code-server kept running: no second app boot was drawn.
    assert_eq!(draws(&api, Knob::AppBoot, &id), 1);
}

#[tokio::test]
async fn a_stop_an_update_or_a_lost_snapshot_make_the_next_start_a_cold_boot() {
    let api = sim().await;
    let cfg = code_server_config(json!({}));
    let id = started_machine(&api, "cold", cfg.clone()).await;

    // Stop of a suspended machine discards the snapshot.
    post(&api, "cold", &id, "suspend").await;
    wait(&api, "cold", &id, "suspended").await;
    let r = post(&api, "cold", &id, "stop").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(state(&api, "cold", &id).await, "stopped");
    let boots = draws(&api, Knob::Boot, &id);
    post(&api, "cold", &id, "start").await;
    wait(&api, "cold", &id, "started").await;
    assert_eq!(
        draws(&api, Knob::Boot, &id),
        boots + 1,
        "cold boot after stop"
    );
    assert_eq!(draws(&api, Knob::Resume, &id), 0);

    // A host migration (or maintenance, or a lost file) loses it too.
    post(&api, "cold", &id, "suspend").await;
    wait(&api, "cold", &id, "suspended").await;
    assert!(api.sim.discard_snapshot("cold", &id));
    assert!(
        !api.sim.discard_snapshot("cold", &id),
        "nothing left to lose"
    );
    let boots = draws(&api, Knob::Boot, &id);
    post(&api, "cold", &id, "start").await;
    wait(&api, "cold", &id, "started").await;
    assert_eq!(
        draws(&api, Knob::Boot, &id),
        boots + 1,
        "cold boot after loss"
    );

    // An update (new code) of a suspended machine cannot resume the old memory.
    post(&api, "cold", &id, "suspend").await;
    wait(&api, "cold", &id, "suspended").await;
    let mut updated = cfg.clone();
    updated["env"]["EXTRA"] = json!("1");
    let r = api
        .post(
            &format!("/v1/apps/cold/machines/{id}"),
            json!({"config": updated, "skip_launch": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    wait(&api, "cold", &id, "stopped").await;
    let boots = draws(&api, Knob::Boot, &id);
    post(&api, "cold", &id, "start").await;
    wait(&api, "cold", &id, "started").await;
    assert_eq!(
        draws(&api, Knob::Boot, &id),
        boots + 1,
        "cold boot after update"
    );
    assert_eq!(draws(&api, Knob::Resume, &id), 0, "never resumed");
}

#[tokio::test]
async fn a_machine_fly_cannot_snapshot_is_stopped_instead() {
    let api = sim().await;
    for (app, patch) in [
        (
            "big",
            json!({"guest": {"cpu_kind": "shared", "cpus": 2, "memory_mb": 4096}}),
        ),
        ("swap", json!({"init": {"swap_size_mb": 512}})),
    ] {
        let mut cfg = code_server_config(json!({}));
        for (key, value) in patch.as_object().into_iter().flatten() {
            cfg[key] = value.clone();
        }
        let id = started_machine(&api, app, cfg).await;
        let r = post(&api, app, &id, "suspend").await;
        assert_eq!(
            r.status, 200,
            "{app}: Fly accepts and falls back: {}",
            r.body
        );
        wait(&api, app, &id, "stopped").await;
        let events = events(&api, app, &id).await;
        assert!(
            events.iter().all(|e| e["status"] != "suspended"),
            "{app} never suspended: {events:?}"
        );
        let logs = api
            .get(&format!("/api/v1/apps/{app}/logs"))
            .await
            .body
            .to_string();
        assert!(logs.contains("cannot be suspended"), "{app}: {logs}");
    }
}

#[tokio::test]
async fn suspend_is_refused_unless_started_and_start_interrupts_a_suspend() {
    let api = sim_at(0.05).await;
    // 2 GB: the snapshot copy takes twice as long, time enough to interrupt it.
    let mut cfg = code_server_config(json!({}));
    cfg["guest"]["memory_mb"] = json!(2048);
    let id = started_machine(&api, "ref", cfg).await;
    post(&api, "ref", &id, "stop").await;
    wait(&api, "ref", &id, "stopped").await;
    let r = post(&api, "ref", &id, "suspend").await;
    assert_eq!(r.status, 412, "{}", r.body);
    assert!(
        r.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("unable to suspend machine from current state: 'stopped'")),
        "{}",
        r.body
    );
    assert_eq!(state(&api, "ref", &id).await, "stopped", "unchanged");

    // Interruptible suspend: a start during `suspending` resumes.
    post(&api, "ref", &id, "start").await;
    wait(&api, "ref", &id, "started").await;
    post(&api, "ref", &id, "suspend").await;
    assert_eq!(state(&api, "ref", &id).await, "suspending");
    let r = post(&api, "ref", &id, "start").await;
    assert_eq!(r.status, 200, "{}", r.body);
    wait(&api, "ref", &id, "started").await;
    assert_eq!(draws(&api, Knob::Resume, &id), 1);
}

/// A request through `<app>.fly.dev` (what autostop counts, and what autostarts).
async fn through_proxy(api: &Api, app: &str) -> reqwest::StatusCode {
    api.http
        .get(format!("{}/healthz", api.base))
        .header(HOST, format!("{app}.fly.dev"))
        .send()
        .await
        .expect("proxy answers")
        .status()
}

#[tokio::test]
async fn autostop_suspend_suspends_an_idle_machine_and_a_request_resumes_it() {
    // Autostop checks every 5 model minutes: 300 ms of wall time at this scale.
    let api = sim().await;
    let mut cfg = code_server_config(json!({}));
    cfg["services"][0]["autostop"] = json!("suspend");
    let id = started_machine(&api, "auto", cfg).await;
    let mut off = code_server_config(json!({}));
    off["services"][0]["autostop"] = json!("off");
    let kept = started_machine(&api, "kept", off).await;
    wait(&api, "auto", &id, "suspended").await;
    let logs = api.get("/api/v1/apps/auto/logs").await.body.to_string();
    assert!(logs.contains("autostopping"), "{logs}");
    // The proxy's autostart resumes it for the next request.
    assert_eq!(through_proxy(&api, "auto").await, 200);
    assert_eq!(state(&api, "auto", &id).await, "started");
    assert_eq!(draws(&api, Knob::Resume, &id), 1);
    // Without autostop the same idle time changes nothing.
    assert_eq!(state(&api, "kept", &kept).await, "started");
}
