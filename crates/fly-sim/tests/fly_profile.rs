//! Behaviours of the `fly` profile: a destroying machine keeps its volume (REFERENCE S10),
//! the claim is released later, and `/wait` honours `version`.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use std::time::Duration;

use common::{code_server_config, start};
use fly_sim::{Latency, SimConfig};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn volume_stays_bound_while_destroying_then_can_be_claimed_again() {
    let api = start(SimConfig {
        latency: Latency::Fly,
        time_scale: 0.01,
        rate_limits: false,
        seed: 9,
        ..SimConfig::default()
    })
    .await;
    api.create_app("s10").await;
    let vol = api.create_volume("s10", "data", "ams").await;
    let mut cfg = code_server_config(json!({}));
    cfg["mounts"] = json!([{"volume": vol, "path": "/data"}]);
    let id = api.create_machine("s10", cfg.clone()).await;
    api.wait_state("s10", &id, "started").await;
    let kill = api
        .call(
            Method::DELETE,
            &format!("/v1/apps/s10/machines/{id}?force=true"),
            None,
        )
        .await;
    assert_eq!(kill.status, 200);
    let bound = api
        .call(Method::DELETE, &format!("/v1/apps/s10/volumes/{vol}"), None)
        .await;
    assert_eq!(bound.status, 412, "{}", bound.body);
    assert_eq!(
        bound.body["error"],
        format!("failed_precondition: volume is currently bound to machine: {id}")
    );
    api.wait_state("s10", &id, "destroyed").await;
    // The claim is released within the hold (0–5 s model time); then a new machine mounts it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = api
            .post(
                "/v1/apps/s10/machines",
                json!({"region": "ams", "config": cfg}),
            )
            .await;
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 412, "{}", r.body);
        assert!(
            r.body["error"]
                .as_str()
                .unwrap()
                .contains("volume already claimed by machine")
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "claim never released"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn wait_is_scoped_to_a_version() {
    let api = start(SimConfig {
        rate_limits: false,
        ..SimConfig::default()
    })
    .await;
    api.create_app("versions").await;
    let id = api
        .create_machine("versions", code_server_config(json!({})))
        .await;
    api.wait_state("versions", &id, "started").await;
    let m = api.get(&format!("/v1/apps/versions/machines/{id}")).await;
    let old = m.body["version"].as_str().unwrap().to_string();
    let mut cfg = m.body["config"].clone();
    cfg["env"]["NEW"] = json!("1");
    let upd = api
        .post(
            &format!("/v1/apps/versions/machines/{id}"),
            json!({"config": cfg}),
        )
        .await;
    let new = upd.body["version"].as_str().unwrap().to_string();
    let current = api
        .get(&format!(
            "/v1/apps/versions/machines/{id}/wait?state=started&version={new}"
        ))
        .await;
    assert_eq!(current.status, 200);
    assert_eq!(current.body["version"], new.as_str());
    let gone = api
        .get(&format!(
            "/v1/apps/versions/machines/{id}/wait?state=stopped&version={old}"
        ))
        .await;
    assert_eq!(gone.status, 200, "the old version is gone: {}", gone.body);
    let replaced = api
        .get(&format!(
            "/v1/apps/versions/machines/{id}/wait?state=started&version={old}"
        ))
        .await;
    assert_eq!(replaced.status, 400);
    assert!(
        replaced.body["error"]
            .as_str()
            .unwrap()
            .contains("currently replaced")
    );
    let bad = api
        .get(&format!("/v1/apps/versions/machines/{id}/wait?state=bogus"))
        .await;
    assert_eq!(bad.status, 400);
}
