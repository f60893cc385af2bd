//! Whole lifecycles and Fly's refusals over real HTTP (reqwest).

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use common::{code_server_config, start, start_default};
use fly_sim::SimConfig;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn app_volume_ip_machine_cycle() {
    let api = start_default().await;
    api.create_app("ws-cycle").await;
    let app = api.get("/v1/apps/ws-cycle").await;
    assert_eq!(app.status, 200);
    assert_eq!(app.body["name"], "ws-cycle");
    assert_eq!(app.body["organization"]["slug"], "personal");
    assert!(app.headers.contains_key("fly-request-id"));

    let vol = api.create_volume("ws-cycle", "data", "ams").await;
    let ip = api
        .graphql(
            "mutation($input: AllocateIPAddressInput!) { allocateIpAddress(input: $input) { ipAddress { id address type region createdAt } } }",
            json!({"input": {"appId": "ws-cycle", "type": "v6"}}),
        )
        .await;
    assert_eq!(ip["data"]["allocateIpAddress"]["ipAddress"]["type"], "v6");
    let shared = api
        .graphql(
            "mutation($input: AllocateIPAddressInput!) { allocateIpAddress(input: $input) { ipAddress { id } app { sharedIpAddress } } }",
            json!({"input": {"appId": "ws-cycle", "type": "shared_v4"}}),
        )
        .await;
    assert_eq!(
        shared["data"]["allocateIpAddress"]["ipAddress"],
        Value::Null
    );
    assert!(shared["data"]["allocateIpAddress"]["app"]["sharedIpAddress"].is_string());

    let mut config = code_server_config(json!({}));
    config["mounts"] = json!([{"volume": vol, "path": "/home/coder/project"}]);
    let create = api
        .post(
            "/v1/apps/ws-cycle/machines",
            json!({"region": "ams", "config": config}),
        )
        .await;
    assert_eq!(create.status, 200, "{}", create.body);
    assert_eq!(create.body["state"], "created");
    let id = create.body["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 14);
    api.wait_state("ws-cycle", &id, "started").await;
    let m = api.get(&format!("/v1/apps/ws-cycle/machines/{id}")).await;
    assert_eq!(m.body["state"], "started");
    let v = api.get(&format!("/v1/apps/ws-cycle/volumes/{vol}")).await;
    assert_eq!(v.body["attached_machine_id"], id.as_str());

    // stop → stopped, start → started
    let stop = api
        .post(&format!("/v1/apps/ws-cycle/machines/{id}/stop"), json!({}))
        .await;
    assert_eq!(stop.status, 200);
    api.wait_state("ws-cycle", &id, "stopped").await;
    let start = api
        .post(
            &format!("/v1/apps/ws-cycle/machines/{id}/start"),
            json!(null),
        )
        .await;
    assert_eq!(start.status, 200);
    assert_eq!(start.body["previous_state"], "stopped");
    api.wait_state("ws-cycle", &id, "started").await;
    let again = api
        .post(
            &format!("/v1/apps/ws-cycle/machines/{id}/start"),
            json!(null),
        )
        .await;
    assert_eq!(again.status, 200, "start on started is a no-op");
    assert_eq!(again.body["previous_state"], "started");

    // update → new version, old one replaced
    let old_version = m.body["version"].as_str().unwrap().to_string();
    let mut new_config = m.body["config"].clone();
    new_config["image"] = json!("codercom/code-server:4.134.0");
    let upd = api
        .post(
            &format!("/v1/apps/ws-cycle/machines/{id}"),
            json!({"config": new_config}),
        )
        .await;
    assert_eq!(upd.status, 200, "{}", upd.body);
    let new_version = upd.body["version"].as_str().unwrap().to_string();
    assert_ne!(new_version, old_version);
    assert_eq!(upd.body["instance_id"], new_version.as_str());
    api.wait_state("ws-cycle", &id, "started").await;
    let versions = api
        .get(&format!("/v1/apps/ws-cycle/machines/{id}/versions"))
        .await;
    assert_eq!(versions.body.as_array().unwrap().len(), 2);
    let stale = api
        .post(
            &format!("/v1/apps/ws-cycle/machines/{id}"),
            json!({"config": new_config, "current_version": old_version}),
        )
        .await;
    assert_eq!(stale.status, 409, "{}", stale.body);

    // delete refused while started, then forced
    let del = api
        .call(
            Method::DELETE,
            &format!("/v1/apps/ws-cycle/machines/{id}"),
            None,
        )
        .await;
    assert_eq!(del.status, 412);
    assert!(
        del.body["error"]
            .as_str()
            .unwrap()
            .contains("unable to destroy machine, not currently stopped")
    );
    let vol_del = api
        .call(
            Method::DELETE,
            &format!("/v1/apps/ws-cycle/volumes/{vol}"),
            None,
        )
        .await;
    assert_eq!(vol_del.status, 412);
    assert_eq!(
        vol_del.body["error"],
        format!("failed_precondition: volume is currently bound to machine: {id}")
    );
    let kill = api
        .call(
            Method::DELETE,
            &format!("/v1/apps/ws-cycle/machines/{id}?kill=true"),
            None,
        )
        .await;
    assert_eq!(kill.status, 200);
    assert_eq!(kill.body, json!({"ok": true}));
    api.wait_state("ws-cycle", &id, "destroyed").await;
    let vol_del = api
        .call(
            Method::DELETE,
            &format!("/v1/apps/ws-cycle/volumes/{vol}"),
            None,
        )
        .await;
    assert_eq!(vol_del.status, 200, "{}", vol_del.body);

    // app delete: 202, then 404
    let del_app = api.call(Method::DELETE, "/v1/apps/ws-cycle", None).await;
    assert_eq!(del_app.status, 202);
    api.eventually("app gone", |w| w["apps"].as_array().unwrap().is_empty())
        .await;
    let gone = api.get("/v1/apps/ws-cycle").await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.body["error"], "Could not find App \"ws-cycle\"");
    let stats = api.sim.stats();
    assert_eq!(
        (stats.apps, stats.machines, stats.volumes, stats.ips),
        (0, 0, 0, 0)
    );
    api.sim.shutdown().await;
}

#[tokio::test]
async fn app_names_and_orgs() {
    let api = start_default().await;
    api.create_app("dup").await;
    let dup = api
        .post(
            "/v1/apps",
            json!({"app_name": "dup", "org_slug": "personal"}),
        )
        .await;
    assert_eq!(dup.status, 422);
    assert_eq!(dup.body["status"], "name_taken");
    assert_eq!(dup.body["error"], "Name has already been taken");
    let bad = api
        .post(
            "/v1/apps",
            json!({"name": "Bad_Name", "org_slug": "personal"}),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(
        bad.body["error"],
        "Name may only contain numbers, lowercase letters and dashes"
    );
    let other = api.get("/v1/apps/taken-by-someone").await;
    assert_eq!(other.status, 403);
    let taken = api
        .post(
            "/v1/apps",
            json!({"name": "taken-by-someone", "org_slug": "personal"}),
        )
        .await;
    assert_eq!(taken.status, 422);
    let list = api.get("/v1/apps?org_slug=personal").await;
    assert_eq!(list.body["total_apps"], 1);
    assert_eq!(list.body["apps"][0]["name"], "dup");
    let no_org = api.get("/v1/apps").await;
    assert_eq!(no_org.status, 400);
    let created_with_wait = api
        .post(
            "/v1/apps?wait=true",
            json!({"name": "waited", "org_slug": "personal"}),
        )
        .await;
    assert_eq!(created_with_wait.status, 201);
    assert!(created_with_wait.body["created_at"].is_i64());
}

/// `idempotency_key` (the spec's CreateAppRequest): a repeat with the key and the same
/// name, or no name, gets the first app; the key with another name is refused; another
/// key on the name meets `name_taken`; the key dies with its app.
#[tokio::test]
async fn app_create_idempotency_key() {
    let api = start_default().await;
    let create = |body| api.post("/v1/apps", body);
    let first =
        create(json!({"name": "keyed", "org_slug": "personal", "idempotency_key": "k1"})).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let repeat =
        create(json!({"name": "keyed", "org_slug": "personal", "idempotency_key": "k1"})).await;
    assert_eq!(repeat.status, 201, "{}", repeat.body);
    assert_eq!(repeat.body["id"], first.body["id"]);
    assert_eq!(repeat.body["created_at"], first.body["created_at"]);
    let nameless = create(json!({"org_slug": "personal", "idempotency_key": "k1"})).await;
    assert_eq!(nameless.status, 201, "{}", nameless.body);
    assert_eq!(nameless.body["id"], first.body["id"]);
    let renamed =
        create(json!({"name": "other", "org_slug": "personal", "idempotency_key": "k1"})).await;
    assert_eq!(renamed.status, 422, "{}", renamed.body);
    assert_ne!(renamed.body["status"], "name_taken");
    let other_key =
        create(json!({"name": "keyed", "org_slug": "personal", "idempotency_key": "k2"})).await;
    assert_eq!(other_key.status, 422);
    assert_eq!(other_key.body["status"], "name_taken");
    let unkeyed = create(json!({"name": "keyed", "org_slug": "personal"})).await;
    assert_eq!(unkeyed.body["status"], "name_taken");
    let nothing = create(json!({"org_slug": "personal", "idempotency_key": "unused"})).await;
    assert_eq!(nothing.status, 400, "{}", nothing.body);
    let list = api.get("/v1/apps?org_slug=personal").await;
    assert_eq!(list.body["total_apps"], 1);

    let deleted = api
        .call(reqwest::Method::DELETE, "/v1/apps/keyed", None)
        .await;
    assert_eq!(deleted.status, 202);
    let gone = api.get("/v1/apps/keyed").await;
    assert_eq!(gone.status, 404, "{}", gone.body);
    let anew =
        create(json!({"name": "keyed", "org_slug": "personal", "idempotency_key": "k1"})).await;
    assert_eq!(anew.status, 201, "{}", anew.body);
    assert_ne!(
        anew.body["id"], first.body["id"],
        "a new app, not the deleted one"
    );
}

#[tokio::test]
async fn auth_is_required_and_checked() {
    let api = start(SimConfig {
        token: Some("right".into()),
        ..SimConfig::default()
    })
    .await;
    let none = api
        .http
        .get(format!("{}/v1/apps/x", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    let body: Value = none.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "Authenticate: token validation error"})
    );
    for header in ["Bearer wrong", "garbage", "FlyV1 wrong"] {
        let r = api
            .http
            .get(format!("{}/v1/apps/x", api.base))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{header}");
        assert!(r.headers().contains_key("fly-request-id"));
    }
    for header in ["Bearer right", "FlyV1 right", "flyv1 other,right"] {
        let r = api
            .http
            .get(format!("{}/v1/apps/x", api.base))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{header} is accepted");
    }
}

#[tokio::test]
async fn machine_refusals_and_validation() {
    let api = start_default().await;
    api.create_app("refusals").await;
    let bad_region = api
        .post(
            "/v1/apps/refusals/machines",
            json!({"region": "xyz", "config": code_server_config(json!({}))}),
        )
        .await;
    assert_eq!(bad_region.status, 422);
    assert_eq!(bad_region.body["error"], "invalid region \"xyz\"");
    let mut small = code_server_config(json!({}));
    small["guest"] = json!({"cpu_kind": "shared", "cpus": 4, "memory_mb": 512});
    let r = api
        .post("/v1/apps/refusals/machines", json!({"config": small}))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["error"],
        "invalid config.guest.memory_mb, minimum required 1024 MiB"
    );
    let mut big = code_server_config(json!({}));
    big["guest"] = json!({"cpu_kind": "shared", "cpus": 1, "memory_mb": 4096});
    let r = api
        .post("/v1/apps/refusals/machines", json!({"config": big}))
        .await;
    assert_eq!(
        r.body["error"],
        "invalid config.guest.memory_mb, cannot exceed 2048 MiB"
    );
    let missing = api.get("/v1/apps/refusals/machines/0123456789abcd").await;
    assert_eq!(missing.status, 404);
    let missing_app = api.get("/v1/apps/nope/machines").await;
    assert_eq!(missing_app.body["error"], "Could not find App \"nope\"");

    // Volume rules.
    let r = api
        .post(
            "/v1/apps/refusals/volumes",
            json!({"name": "bad-name", "region": "ams", "size_gb": 1}),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = api
        .post(
            "/v1/apps/refusals/volumes",
            json!({"name": "big", "region": "ams", "size_gb": 501}),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = api
        .post(
            "/v1/apps/refusals/volumes",
            json!({"name": "x", "region": "xyz"}),
        )
        .await;
    assert_eq!(r.body["error"], "invalid region \"xyz\"");
    let vol = api.create_volume("refusals", "data", "sea").await;
    let mut cfg = code_server_config(json!({}));
    cfg["mounts"] = json!([{"volume": vol, "path": "/data"}]);
    let wrong = api
        .post(
            "/v1/apps/refusals/machines",
            json!({"region": "ams", "config": cfg}),
        )
        .await;
    assert!(
        wrong.body["error"]
            .as_str()
            .unwrap()
            .contains("is in the wrong region (\"sea\" != \"ams\")"),
        "{}",
        wrong.body
    );
    let first = api
        .post(
            "/v1/apps/refusals/machines",
            json!({"region": "sea", "config": cfg}),
        )
        .await;
    assert_eq!(first.status, 200);
    let holder = first.body["id"].as_str().unwrap();
    let second = api
        .post(
            "/v1/apps/refusals/machines",
            json!({"region": "sea", "config": cfg}),
        )
        .await;
    assert_eq!(second.status, 412);
    assert_eq!(
        second.body["error"],
        format!("failed_precondition: volume already claimed by machine {holder}")
    );
    // Extend is grow-only and reports needs_restart for a started holder.
    api.wait_state("refusals", holder, "started").await;
    let shrink = api
        .call(
            Method::PUT,
            &format!("/v1/apps/refusals/volumes/{vol}/extend"),
            Some(json!({"size_gb": 1})),
        )
        .await;
    assert_eq!(shrink.status, 400);
    let grow = api
        .call(
            Method::PUT,
            &format!("/v1/apps/refusals/volumes/{vol}/extend"),
            Some(json!({"size_gb": 5})),
        )
        .await;
    assert_eq!(grow.status, 200);
    assert_eq!(grow.body["needs_restart"], true);
    assert_eq!(grow.body["volume"]["size_gb"], 5);
}

#[tokio::test]
async fn leases_guard_mutations() {
    let api = start_default().await;
    api.create_app("leased").await;
    let id = api
        .create_machine("leased", code_server_config(json!({})))
        .await;
    api.wait_state("leased", &id, "started").await;
    let lease = api
        .post(
            &format!("/v1/apps/leased/machines/{id}/lease?ttl=60"),
            json!(null),
        )
        .await;
    assert_eq!(lease.status, 201, "{}", lease.body);
    assert_eq!(lease.body["status"], "success");
    let nonce = lease.body["data"]["nonce"].as_str().unwrap().to_string();
    let second = api
        .post(
            &format!("/v1/apps/leased/machines/{id}/lease"),
            json!({"ttl": 30}),
        )
        .await;
    assert_eq!(second.status, 409);
    assert!(
        second.body["message"]
            .as_str()
            .unwrap()
            .contains("lease currently held by")
    );
    assert_eq!(second.body["code"], "invalid");
    let stop = api
        .post(&format!("/v1/apps/leased/machines/{id}/stop"), json!({}))
        .await;
    assert_eq!(stop.status, 409, "a mutation without the nonce is refused");
    let del = api
        .call(
            Method::DELETE,
            &format!("/v1/apps/leased/machines/{id}?force=true"),
            None,
        )
        .await;
    assert_eq!(del.status, 409);
    let refresh = api
        .call_with(
            Method::POST,
            &format!("/v1/apps/leased/machines/{id}/lease?ttl=120"),
            None,
            &[("fly-machine-lease-nonce", &nonce)],
        )
        .await;
    assert!(refresh.status.is_success());
    assert_eq!(
        refresh.body["data"]["nonce"],
        nonce.as_str(),
        "refresh keeps the nonce"
    );
    assert!(
        refresh.body["data"]["expires_at"].as_i64() > lease.body["data"]["expires_at"].as_i64()
    );
    let stop = api
        .call_with(
            Method::POST,
            &format!("/v1/apps/leased/machines/{id}/stop"),
            Some(json!({})),
            &[("fly-machine-lease-nonce", &nonce)],
        )
        .await;
    assert_eq!(stop.status, 200);
    let release = api
        .call_with(
            Method::DELETE,
            &format!("/v1/apps/leased/machines/{id}/lease"),
            None,
            &[("fly-machine-lease-nonce", &nonce)],
        )
        .await;
    assert_eq!(release.status, 200);
    assert_eq!(
        release.body,
        json!({"status": "success", "data": {"ok": true}})
    );
    let got = api
        .get(&format!("/v1/apps/leased/machines/{id}/lease"))
        .await;
    assert_eq!(got.status, 404);
}

#[tokio::test]
async fn wait_times_out_with_408_and_accepts_state_lists() {
    let api = start_default().await;
    api.create_app("waiter").await;
    let r = api
        .post(
            "/v1/apps/waiter/machines",
            json!({"region": "ams", "skip_launch": true, "config": code_server_config(json!({}))}),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    api.wait_state("waiter", &id, "stopped").await;
    let timeout = api
        .get(&format!(
            "/v1/apps/waiter/machines/{id}/wait?state=started&timeout=1"
        ))
        .await;
    assert_eq!(timeout.status, 408, "{}", timeout.body);
    let either = api
        .get(&format!(
            "/v1/apps/waiter/machines/{id}/wait?state=started,stopped&timeout=1"
        ))
        .await;
    assert_eq!(either.status, 200);
    assert_eq!(either.body["state"], "stopped");
    let repeated = api
        .get(&format!(
            "/v1/apps/waiter/machines/{id}/wait?state=started&state=stopped"
        ))
        .await;
    assert_eq!(repeated.status, 200);
}

#[tokio::test]
async fn list_filters_and_metadata() {
    let api = start_default().await;
    api.create_app("filters").await;
    let a = api
        .create_machine("filters", code_server_config(json!({})))
        .await;
    let mut other = code_server_config(json!({}));
    other["metadata"] = json!({"workspace": "ws2"});
    let b = api.create_machine("filters", other).await;
    api.wait_state("filters", &a, "started").await;
    api.wait_state("filters", &b, "started").await;
    let ws2 = api
        .get("/v1/apps/filters/machines?metadata.workspace=ws2")
        .await;
    let ids: Vec<&str> = ws2
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![b.as_str()]);
    let r = api
        .call(
            Method::POST,
            &format!("/v1/apps/filters/machines/{a}/metadata/owner"),
            Some(json!({"value": "alice"})),
        )
        .await;
    assert_eq!(r.status, 204);
    let owner = api
        .get(&format!("/v1/apps/filters/machines/{a}/metadata/owner"))
        .await;
    assert_eq!(owner.body, json!({"value": "alice"}));
    let by_owner = api
        .get("/v1/apps/filters/machines?metadata.owner=alice")
        .await;
    assert_eq!(by_owner.body.as_array().unwrap().len(), 1);
    api.post(&format!("/v1/apps/filters/machines/{a}/stop"), json!({}))
        .await;
    api.wait_state("filters", &a, "stopped").await;
    let stopped = api.get("/v1/apps/filters/machines?state=stopped").await;
    assert_eq!(stopped.body.as_array().unwrap().len(), 1);
    let none = api.get("/v1/apps/filters/machines?region=syd").await;
    assert_eq!(none.body, json!([]));
    api.call(
        Method::DELETE,
        &format!("/v1/apps/filters/machines/{a}"),
        None,
    )
    .await;
    api.wait_state("filters", &a, "destroyed").await;
    assert_eq!(
        api.get("/v1/apps/filters/machines")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.get("/v1/apps/filters/machines?include_deleted=true")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let events = api
        .get(&format!("/v1/apps/filters/machines/{a}/events"))
        .await;
    let statuses: Vec<&str> = events
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses.first(),
        Some(&"destroyed"),
        "events newest first: {statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&"created"));
}

#[tokio::test]
async fn rate_limits_answer_429() {
    let api = start(SimConfig::default()).await;
    api.create_app("limited").await;
    let id = api
        .create_machine("limited", code_server_config(json!({})))
        .await;
    api.wait_state("limited", &id, "started").await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            api.post(
                &format!("/v1/apps/limited/machines/{id}/restart"),
                json!(null),
            )
            .await
            .status
            .as_u16(),
        );
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let mut gets = Vec::new();
    for _ in 0..12 {
        let r = api.get(&format!("/v1/apps/limited/machines/{id}")).await;
        if r.status == 429 {
            assert_eq!(r.body, json!({"error": "rate limit exceeded"}));
            assert!(r.headers.get("retry-after").is_none());
        }
        gets.push(r.status.as_u16());
    }
    assert_eq!(
        gets.iter().filter(|s| **s == 200).count(),
        10,
        "burst of 10 gets: {gets:?}"
    );
    assert!(
        api.sim
            .stats()
            .requests_by_status
            .get(&429)
            .copied()
            .unwrap_or(0)
            >= 3
    );
}

#[tokio::test]
async fn secrets_reach_the_machine_env() {
    let api = start_default().await;
    api.create_app("secrets").await;
    let r = api
        .post(
            "/v1/apps/secrets/secrets",
            json!({"values": {"API_KEY": "k1"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["version"], 1);
    let id = api
        .create_machine("secrets", code_server_config(json!({})))
        .await;
    api.wait_state("secrets", &id, "started").await;
    let world = api.sim.world();
    let keys = &world["apps"][0]["machines"][0]["runtime_env_keys"];
    assert!(
        keys.as_array().unwrap().contains(&json!("API_KEY")),
        "{keys}"
    );
    let list = api.get("/v1/apps/secrets/secrets").await;
    assert_eq!(list.body["secrets"][0]["name"], "API_KEY");
    assert!(list.body["secrets"][0].get("value").is_none());
    let gql = api
        .graphql(
            "mutation($input: UnsetSecretsInput!) { unsetSecrets(input: $input) { app { name } } }",
            json!({"input": {"appId": "secrets", "keys": ["API_KEY"]}}),
        )
        .await;
    assert_eq!(gql["data"]["unsetSecrets"]["app"]["name"], "secrets");
    assert_eq!(
        api.get("/v1/apps/secrets/secrets").await.body["secrets"],
        json!([])
    );
}
