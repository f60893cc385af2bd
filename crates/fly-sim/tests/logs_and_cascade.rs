//! Logs paging and filters; app deletion cascading to everything the app holds;
//! snapshots outliving their volume.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use common::{code_server_config, start_default};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn logs_page_with_next_token_and_filter_by_instance() {
    let api = start_default().await;
    api.create_app("logged").await;
    let a = api
        .create_machine("logged", code_server_config(json!({})))
        .await;
    let b = api
        .create_machine("logged", code_server_config(json!({})))
        .await;
    api.wait_state("logged", &a, "started").await;
    api.wait_state("logged", &b, "started").await;
    let first = api.get("/api/v1/apps/logged/logs?next_token=").await;
    assert_eq!(first.status, 200, "{}", first.body);
    let lines = first.body["data"].as_array().unwrap();
    assert!(
        lines.len() >= 12,
        "lifecycle + code-server lines: {}",
        lines.len()
    );
    let messages: Vec<&str> = lines
        .iter()
        .map(|l| l["attributes"]["message"].as_str().unwrap())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("HTTP server listening on")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains(&format!("Machine {a} started")))
    );
    let token = first.body["meta"]["next_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!token.is_empty());
    let empty = api
        .get(&format!("/api/v1/apps/logged/logs?next_token={token}"))
        .await;
    assert_eq!(empty.body["data"], json!([]), "nothing new after the token");
    api.post(&format!("/v1/apps/logged/machines/{a}/stop"), json!({}))
        .await;
    api.wait_state("logged", &a, "stopped").await;
    let next = api
        .get(&format!("/api/v1/apps/logged/logs?next_token={token}"))
        .await;
    let new: Vec<&str> = next.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["attributes"]["message"].as_str().unwrap())
        .collect();
    assert!(new.iter().any(|m| m.contains("stopped")), "{new:?}");
    let only_b = api
        .get(&format!("/api/v1/apps/logged/logs?instance={b}"))
        .await;
    let instances: Vec<&Value> = only_b.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["attributes"]["instance"])
        .collect();
    assert!(!instances.is_empty() && instances.iter().all(|i| **i == json!(b)));
    let elsewhere = api.get("/api/v1/apps/logged/logs?region=syd").await;
    assert_eq!(elsewhere.body["data"], json!([]));
    assert_eq!(api.get("/api/v1/apps/nope/logs").await.status, 404);
}

#[tokio::test]
async fn deleting_an_app_cascades_to_machines_volumes_ips_and_secrets() {
    let api = start_default().await;
    api.create_app("doomed").await;
    let vol = api.create_volume("doomed", "data", "ams").await;
    let mut cfg = code_server_config(json!({}));
    cfg["mounts"] = json!([{"volume": vol, "path": "/data"}]);
    let id = api.create_machine("doomed", cfg).await;
    api.wait_state("doomed", &id, "started").await;
    api.post("/v1/apps/doomed/secrets", json!({"values": {"S": "1"}}))
        .await;
    let ip = api
        .graphql(
            "mutation($input: AllocateIPAddressInput!) { allocateIpAddress(input: $input) { ipAddress { id } } }",
            json!({"input": {"appId": "doomed", "type": "v6"}}),
        )
        .await;
    let ip_id = ip["data"]["allocateIpAddress"]["ipAddress"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let released = api
        .graphql(
            "mutation($input: ReleaseIPAddressInput!) { releaseIpAddress(input: $input) { app { name } } }",
            json!({"input": {"appId": "doomed", "ipAddressId": ip_id}}),
        )
        .await;
    assert_eq!(
        released["data"]["releaseIpAddress"]["app"]["name"], "doomed",
        "{released}"
    );
    api.graphql(
        "mutation($input: AllocateIPAddressInput!) { allocateIpAddress(input: $input) { ipAddress { id } } }",
        json!({"input": {"appId": "doomed", "type": "v6"}}),
    )
    .await;
    let stats = api.sim.stats();
    assert_eq!(
        (stats.apps, stats.machines, stats.volumes, stats.ips),
        (1, 1, 1, 1)
    );
    let del = api
        .call(Method::DELETE, "/v1/apps/doomed?force=true", None)
        .await;
    assert_eq!(del.status, 202);
    api.eventually("app gone", |w| w["apps"].as_array().unwrap().is_empty())
        .await;
    assert_eq!(api.get("/v1/apps/doomed").await.status, 404);
    let stats = api.sim.stats();
    assert_eq!(
        (stats.apps, stats.machines, stats.volumes, stats.ips),
        (0, 0, 0, 0)
    );
    let missing = api
        .graphql("query { app(name: \"doomed\") { name } }", json!({}))
        .await;
    assert_eq!(missing["data"]["app"], Value::Null);
    assert_eq!(missing["errors"][0]["extensions"]["code"], "NOT_FOUND");
}

/// Fly keeps a deleted volume's snapshots for their retention: they are still listed
/// under the old volume id and can be restored ("restore a deleted volume").
#[tokio::test]
async fn snapshots_outlive_their_volume_until_the_app_goes() {
    let api = start_default().await;
    api.create_app("keep").await;
    let vol = api.create_volume("keep", "data", "ams").await;
    let snap = api
        .post(
            &format!("/v1/apps/keep/volumes/{vol}/snapshots"),
            json!(null),
        )
        .await;
    assert_eq!(snap.status, 200);
    let listed = api
        .get(&format!("/v1/apps/keep/volumes/{vol}/snapshots"))
        .await;
    let id = listed.body[0]["id"].as_str().unwrap().to_owned();
    let deleted = api
        .call(
            Method::DELETE,
            &format!("/v1/apps/keep/volumes/{vol}"),
            None,
        )
        .await;
    assert_eq!(deleted.status, 200);
    api.eventually("volume destroyed", |w| {
        w["apps"][0]["volumes"]
            .as_array()
            .is_some_and(Vec::is_empty)
    })
    .await;
    assert_eq!(
        api.get(&format!("/v1/apps/keep/volumes/{vol}"))
            .await
            .status,
        404
    );
    let after = api
        .get(&format!("/v1/apps/keep/volumes/{vol}/snapshots"))
        .await;
    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(after.body[0]["id"], id.as_str());
    let restored = api
        .post(
            "/v1/apps/keep/volumes",
            json!({"name": "back", "region": "ams", "snapshot_id": id}),
        )
        .await;
    assert_eq!(restored.status, 200, "{}", restored.body);
    // A volume that never had snapshots is simply gone.
    assert_eq!(
        api.get("/v1/apps/keep/volumes/vol_neverexisted00/snapshots")
            .await
            .status,
        404
    );
}
