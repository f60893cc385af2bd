//! Contract: every exchange with the sim is checked against Fly's published spec
//! (`machines-openapi.json`, `schema.graphql`), leniently per operation and strictly for
//! the main shapes so a misspelt field name fails.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use common::{code_server_config, start};
use fly_sim::SimConfig;
use fly_spec::{GraphqlSchema, Mode, Spec};
use reqwest::Method;
use serde_json::{Value, json};

/// Drives every endpoint the sim implements, success and refusal paths.
async fn drive(api: &common::Api) {
    api.create_app("contract").await;
    api.post(
        "/v1/apps",
        json!({"name": "contract", "org_slug": "personal"}),
    )
    .await;
    api.get("/v1/apps?org_slug=personal").await;
    api.get("/v1/apps?org_slug=personal&limit=1").await;
    api.get("/v1/apps/contract").await;
    api.get("/v1/apps/missing").await;
    let vol = api.create_volume("contract", "data", "ams").await;
    api.get("/v1/apps/contract/volumes").await;
    api.get(&format!("/v1/apps/contract/volumes/{vol}")).await;
    api.call(
        Method::PUT,
        &format!("/v1/apps/contract/volumes/{vol}"),
        Some(json!({"snapshot_retention": 7})),
    )
    .await;
    api.post(
        &format!("/v1/apps/contract/volumes/{vol}/snapshots"),
        json!(null),
    )
    .await;
    let snaps = api
        .get(&format!("/v1/apps/contract/volumes/{vol}/snapshots"))
        .await;
    let snap = snaps.body[0]["id"].as_str().unwrap().to_string();
    api.post(
        "/v1/apps/contract/volumes",
        json!({"name": "fork", "region": "sea", "source_volume_id": vol}),
    )
    .await;
    api.post(
        "/v1/apps/contract/volumes",
        json!({"name": "restored", "region": "ams", "snapshot_id": snap}),
    )
    .await;
    let mut cfg = code_server_config(json!({}));
    cfg["mounts"] = json!([{"volume": vol, "path": "/home/coder/project"}]);
    let created = api
        .post(
            "/v1/apps/contract/machines",
            json!({"region": "ams", "config": cfg, "lease_ttl": 30}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let nonce = created.body["nonce"].as_str().unwrap().to_string();
    let n = [("fly-machine-lease-nonce", nonce.as_str())];
    api.get(&format!(
        "/v1/apps/contract/machines/{id}/wait?state=started"
    ))
    .await;
    api.get("/v1/apps/contract/machines").await;
    let exec = format!("/v1/apps/contract/machines/{id}/exec");
    api.post(&exec, json!({"command": ["echo", "hi"], "timeout": 5}))
        .await;
    api.post(&exec, json!({"command": ["git", "status"]})).await;
    api.post(&exec, json!({"command": []})).await;
    api.post(
        "/v1/apps/contract/machines/0000000000dead/exec",
        json!({"command": ["true"]}),
    )
    .await;
    api.get(&format!(
        "/v1/apps/contract/machines/{id}?include_leases=true"
    ))
    .await;
    api.get(&format!("/v1/apps/contract/machines/{id}/lease"))
        .await;
    api.post(
        &format!("/v1/apps/contract/machines/{id}/lease"),
        json!({"ttl": 10}),
    )
    .await;
    api.call_with(
        Method::POST,
        &format!("/v1/apps/contract/machines/{id}/lease?ttl=60"),
        None,
        &n,
    )
    .await;
    api.post(&format!("/v1/apps/contract/machines/{id}/stop"), json!({}))
        .await;
    api.call_with(
        Method::POST,
        &format!("/v1/apps/contract/machines/{id}/stop"),
        Some(json!({"signal": "SIGTERM", "timeout": "10s"})),
        &n,
    )
    .await;
    api.get(&format!(
        "/v1/apps/contract/machines/{id}/wait?state=stopped&timeout=30"
    ))
    .await;
    // Fly refuses a command on a machine that is not started.
    api.post(&exec, json!({"command": ["true"]})).await;
    api.call_with(
        Method::POST,
        &format!("/v1/apps/contract/machines/{id}/start"),
        None,
        &n,
    )
    .await;
    api.get(&format!(
        "/v1/apps/contract/machines/{id}/wait?state=started"
    ))
    .await;
    api.call_with(
        Method::POST,
        &format!("/v1/apps/contract/machines/{id}/restart"),
        None,
        &n,
    )
    .await;
    api.get(&format!(
        "/v1/apps/contract/machines/{id}/wait?state=started"
    ))
    .await;
    api.call_with(
        Method::POST,
        &format!("/v1/apps/contract/machines/{id}/cordon"),
        None,
        &n,
    )
    .await;
    api.call_with(
        Method::POST,
        &format!("/v1/apps/contract/machines/{id}/uncordon"),
        None,
        &n,
    )
    .await;
    api.call_with(
        Method::POST,
        &format!("/v1/apps/contract/machines/{id}/suspend"),
        None,
        &n,
    )
    .await;
    api.get(&format!(
        "/v1/apps/contract/machines/{id}/wait?state=suspended"
    ))
    .await;
    api.call_with(
        Method::POST,
        &format!("/v1/apps/contract/machines/{id}/start"),
        None,
        &n,
    )
    .await;
    api.get(&format!(
        "/v1/apps/contract/machines/{id}/wait?state=started"
    ))
    .await;
    // Suspend's refusals: a machine too large to snapshot is stopped instead (200, then
    // `stopped`), and a stopped machine cannot be suspended (412).
    let mut big = code_server_config(json!({}));
    big["guest"] = json!({"cpu_kind": "shared", "cpus": 2, "memory_mb": 4096});
    let big = api
        .post(
            "/v1/apps/contract/machines",
            json!({"region": "ams", "config": big}),
        )
        .await;
    let big = big.body["id"].as_str().unwrap().to_string();
    api.get(&format!(
        "/v1/apps/contract/machines/{big}/wait?state=started"
    ))
    .await;
    api.post(
        &format!("/v1/apps/contract/machines/{big}/suspend"),
        json!(null),
    )
    .await;
    api.get(&format!(
        "/v1/apps/contract/machines/{big}/wait?state=stopped"
    ))
    .await;
    let refused = api
        .post(
            &format!("/v1/apps/contract/machines/{big}/suspend"),
            json!(null),
        )
        .await;
    assert_eq!(refused.status, 412, "{}", refused.body);
    let mut new_cfg = cfg.clone();
    new_cfg["env"]["EXTRA"] = json!("1");
    api.call_with(
        Method::POST,
        &format!("/v1/apps/contract/machines/{id}"),
        Some(json!({"config": new_cfg})),
        &n,
    )
    .await;
    api.get(&format!(
        "/v1/apps/contract/machines/{id}/wait?state=started"
    ))
    .await;
    api.get(&format!("/v1/apps/contract/machines/{id}/events"))
        .await;
    api.get(&format!("/v1/apps/contract/machines/{id}/versions"))
        .await;
    api.get(&format!("/v1/apps/contract/machines/{id}/metadata"))
        .await;
    api.call(
        Method::PATCH,
        &format!("/v1/apps/contract/machines/{id}/metadata"),
        Some(json!({"metadata": {"a": "b"}})),
    )
    .await;
    api.post(
        &format!("/v1/apps/contract/machines/{id}/metadata/owner"),
        json!({"value": "alice"}),
    )
    .await;
    api.get(&format!("/v1/apps/contract/machines/{id}/metadata/owner"))
        .await;
    api.call(
        Method::DELETE,
        &format!("/v1/apps/contract/machines/{id}/metadata/owner"),
        None,
    )
    .await;
    api.call(
        Method::PUT,
        &format!("/v1/apps/contract/volumes/{vol}/extend"),
        Some(json!({"size_gb": 2})),
    )
    .await;
    api.call(
        Method::DELETE,
        &format!("/v1/apps/contract/volumes/{vol}"),
        None,
    )
    .await;
    api.call(
        Method::DELETE,
        &format!("/v1/apps/contract/machines/{id}"),
        None,
    )
    .await;
    api.post(
        "/v1/apps/contract/secrets",
        json!({"values": {"A": "1", "B": "2"}}),
    )
    .await;
    api.get("/v1/apps/contract/secrets").await;
    api.post("/v1/apps/contract/secrets/C", json!({"value": "3"}))
        .await;
    api.get("/v1/apps/contract/secrets/C").await;
    api.get("/v1/apps/contract/secrets/C?show_secrets=true")
        .await;
    api.call(Method::DELETE, "/v1/apps/contract/secrets/C", None)
        .await;
    // Unknown secrets: get and unset answer 404.
    api.get("/v1/apps/contract/secrets/C").await;
    api.call(Method::DELETE, "/v1/apps/contract/secrets/C", None)
        .await;
    api.post("/v1/apps/contract/secrets/9BAD", json!({"value": "3"}))
        .await;
    api.post("/v1/apps/contract/ip_assignments", json!({"type": "v6"}))
        .await;
    api.get("/v1/apps/contract/ip_assignments").await;
    api.get("/v1/platform/regions").await;
    api.call_with(
        Method::DELETE,
        &format!("/v1/apps/contract/machines/{id}/lease"),
        None,
        &n,
    )
    .await;
    api.call(
        Method::DELETE,
        &format!("/v1/apps/contract/machines/{id}?force=true"),
        None,
    )
    .await;
    api.get(&format!(
        "/v1/apps/contract/machines/{id}/wait?state=destroyed"
    ))
    .await;
    api.get(&format!(
        "/v1/apps/contract/machines/{id}/wait?state=started&timeout=1"
    ))
    .await;

    for (query, vars) in graphql_operations() {
        api.graphql(query, vars).await;
    }
    api.call(Method::DELETE, "/v1/apps/contract", None).await;
}

fn graphql_operations() -> Vec<(&'static str, Value)> {
    vec![
        (
            "mutation($input: AllocateIPAddressInput!) { allocateIpAddress(input: $input) { ipAddress { id address type region createdAt } } }",
            json!({"input": {"appId": "contract", "type": "v6"}}),
        ),
        (
            "mutation($input: AllocateIPAddressInput!) { allocateIpAddress(input: $input) { app { sharedIpAddress } ipAddress { id } } }",
            json!({"input": {"appId": "contract", "type": "shared_v4"}}),
        ),
        (
            "mutation { allocateIpAddress(input: {appId: \"contract\", type: private_v6}) { ipAddress { id address type } } }",
            json!({}),
        ),
        (
            "query($appName: String!) { app(name: $appName) { id name status ipAddresses { nodes { id address type region createdAt network { name organization { slug } } serviceName } } sharedIpAddress } }",
            json!({"appName": "contract"}),
        ),
        ("query { app(name: \"missing\") { id name } }", json!({})),
        (
            "mutation($input: ReleaseIPAddressInput!) { releaseIpAddress(input: $input) { clientMutationId } }",
            json!({"input": {"appId": "contract", "ip": "::1"}}),
        ),
        (
            "mutation($input: SetSecretsInput!) { setSecrets(input: $input) { app { name } release { id } } }",
            json!({"input": {"appId": "contract", "secrets": [{"key": "K", "value": "v"}]}}),
        ),
        (
            "mutation($input: UnsetSecretsInput!) { unsetSecrets(input: $input) { app { name } } }",
            json!({"input": {"appId": "contract", "keys": ["K"]}}),
        ),
        (
            "fragment IpParts on IPAddress { id address } query Q($n: String!) { app(name: $n) { alias: name ipAddresses { nodes { ...IpParts __typename } } } }",
            json!({"n": "contract"}),
        ),
    ]
}

/// Fly answers `autostop` off/stop as booleans "for backward compatibility" (the spec's
/// own description of the field; REFERENCE §4.2), while its schema says string. Map the
/// booleans back so the schema check covers everything else.
fn spec_equivalent(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, val)| {
                    let val = match (k.as_str(), val) {
                        ("autostop", Value::Bool(b)) => json!(if *b { "stop" } else { "off" }),
                        _ => spec_equivalent(val),
                    };
                    (k.clone(), val)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(spec_equivalent).collect()),
        other => other.clone(),
    }
}

/// The strict schema for a successful body, where we know which component it is.
fn strict_component(method: &str, path: &str) -> Option<&'static str> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        ("GET", ["v1", "apps", _]) => Some("App"),
        ("POST", ["v1", "apps"]) => Some("CreateAppResponse"),
        ("POST", ["v1", "apps", _, "machines"])
        | ("GET" | "POST", ["v1", "apps", _, "machines", _]) => Some("Machine"),
        ("POST" | "GET" | "PUT" | "DELETE", ["v1", "apps", _, "volumes", _]) => Some("Volume"),
        ("POST", ["v1", "apps", _, "volumes"]) => Some("Volume"),
        ("PUT", ["v1", "apps", _, "volumes", _, "extend"]) => Some("ExtendVolumeResponse"),
        ("GET", ["v1", "apps", _, "machines", _, "wait"]) => Some("WaitMachineResponse"),
        ("GET", ["v1", "apps", _, "secrets"]) => Some("AppSecrets"),
        ("GET", ["v1", "apps", _, "secrets", _]) => Some("AppSecret"),
        ("POST", ["v1", "apps", _, "secrets", _]) => Some("SetAppSecretResponse"),
        ("DELETE", ["v1", "apps", _, "secrets", _]) => Some("DeleteAppSecretResponse"),
        ("POST", ["v1", "apps", _, "machines", _, "exec"]) => Some("flydv1.ExecResponse"),
        ("POST", ["v1", "apps", _, "secrets"]) => Some("AppSecretsUpdateResp"),
        ("GET", ["v1", "apps"]) => Some("ListAppsResponse"),
        _ => None,
    }
}

#[tokio::test]
async fn every_exchange_matches_flys_spec() {
    let spec = Spec::load();
    let gql = GraphqlSchema::load();
    let api = start(SimConfig {
        rate_limits: false,
        record: true,
        ..SimConfig::default()
    })
    .await;
    drive(&api).await;
    let exchanges = api.sim.recorded();
    assert!(exchanges.len() > 60, "drove {} exchanges", exchanges.len());
    let mut failures = Vec::new();
    let mut statuses = std::collections::BTreeSet::new();
    for ex in &exchanges {
        let mut ex = ex.clone();
        ex.response_body = spec_equivalent(&ex.response_body);
        let ex = &ex;
        statuses.insert((ex.method.clone(), ex.status));
        let where_ = format!("{} {}?{} → {}", ex.method, ex.path, ex.query, ex.status);
        if ex.path == "/graphql" {
            let query = ex.request_body["query"].as_str().unwrap_or_default();
            if let Err(e) = gql.check_operation(query) {
                failures.push(format!("{where_}: our test query is invalid: {e}"));
            }
            if let Err(e) = gql.check_response(query, &ex.response_body) {
                failures.push(format!("{where_}: {e}"));
            }
            continue;
        }
        let is_lease = ex.path.ends_with("/lease");
        if is_lease && ex.status < 300 && ex.response_body["data"].get("nonce").is_some() {
            // Fly wraps leases as {status, data} (REFERENCE §4.4); the data is a Lease.
            if let Err(e) = spec.validate_named("Lease", &ex.response_body["data"], Mode::Strict) {
                failures.push(format!("{where_}: {e}"));
            }
            continue;
        }
        if ex.status >= 400 {
            let body = &ex.response_body;
            let ok = if body.get("code").is_some() {
                body["status"] == "error" && body["message"].is_string()
            } else {
                spec.validate_named("ErrorResponse", body, Mode::Strict)
                    .is_ok()
                    && body["error"].is_string()
            };
            if !ok {
                failures.push(format!("{where_}: error body not in Fly's shape: {body}"));
            }
            continue;
        }
        if spec.match_path(&ex.method, &ex.path).is_none() {
            failures.push(format!("{where_}: not an operation in Fly's spec"));
            continue;
        }
        match spec.response_schema(&ex.method, &ex.path, ex.status) {
            Err(e) => failures.push(format!("{where_}: {e}")),
            Ok(_) => {
                if let Err(e) =
                    spec.check_response(&ex.method, &ex.path, ex.status, &ex.response_body)
                {
                    failures.push(format!("{where_}: {e}"));
                }
            }
        }
        if let Some(name) = strict_component(&ex.method, &ex.path)
            && let Err(e) = spec.validate_named(name, &ex.response_body, Mode::Strict)
        {
            failures.push(format!("{where_}: strict {name}: {e}"));
        }
        if ex.method == "GET" && ex.path.ends_with("/machines") {
            for m in ex.response_body.as_array().into_iter().flatten() {
                if let Err(e) = spec.validate_named("Machine", m, Mode::Strict) {
                    failures.push(format!("{where_}: strict Machine in list: {e}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} contract failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // The drive covered refusals too.
    for status in [404, 408, 409, 412, 422] {
        assert!(
            statuses.iter().any(|(_, s)| *s == status),
            "no {status} exchange: {statuses:?}"
        );
    }
    // Each new endpoint's answers and refusals were among them.
    let seen = |path_end: &str, status: u16| {
        exchanges
            .iter()
            .any(|ex| ex.path.ends_with(path_end) && ex.status == status)
    };
    for (path_end, status) in [
        ("/exec", 200),
        ("/exec", 400),
        ("/exec", 404),
        ("/exec", 412),
        ("/secrets/C", 404),
        ("/secrets/9BAD", 400),
    ] {
        assert!(seen(path_end, status), "no {status} from …{path_end}");
    }
    let unsupported = exchanges
        .iter()
        .find(|ex| ex.path.ends_with("/exec") && ex.request_body["command"][0] == "git")
        .map(|ex| ex.response_body["exit_code"].clone());
    assert_eq!(
        unsupported,
        Some(json!(127)),
        "an unsupported command is not a success"
    );
}
