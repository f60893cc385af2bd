//! Bad input gets a clear 4xx naming the field, never a panic or a dropped connection.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use common::{code_server_config, start_default};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn garbage_bodies_and_values_get_4xx() {
    let api = start_default().await;
    api.create_app("bad").await;
    let id = api
        .create_machine("bad", code_server_config(json!({})))
        .await;
    let vol = api.create_volume("bad", "data", "ams").await;
    let m = format!("/v1/apps/bad/machines/{id}");
    let cases: Vec<(Method, String, serde_json::Value, &str)> = vec![
        (Method::POST, "/v1/apps".into(), json!([1, 2]), ""),
        (Method::POST, "/v1/apps".into(), json!({"name": 5}), "name"),
        (
            Method::POST,
            "/v1/apps/bad/machines".into(),
            json!({"config": "x"}),
            "config",
        ),
        (
            Method::POST,
            "/v1/apps/bad/machines".into(),
            json!({"config": {}}),
            "config.image",
        ),
        (
            Method::POST,
            "/v1/apps/bad/machines".into(),
            json!({"config": {"image": "i", "guest": {"cpus": "two"}}}),
            "config.guest.cpus",
        ),
        (
            Method::POST,
            "/v1/apps/bad/machines".into(),
            json!({"config": {"image": "i", "env": {"A": 1}}}),
            "config.env.A",
        ),
        (
            Method::POST,
            "/v1/apps/bad/machines".into(),
            json!({"config": {"image": "i", "services": [{"autostop": 3}]}}),
            "autostop",
        ),
        (
            Method::POST,
            "/v1/apps/bad/machines".into(),
            json!({"config": {"image": "i", "mounts": [{"path": "/x"}]}}),
            "config.mounts[0].volume",
        ),
        (
            Method::POST,
            "/v1/apps/bad/machines".into(),
            json!({"lease_ttl": "x", "config": {"image": "i"}}),
            "lease_ttl",
        ),
        (
            Method::POST,
            format!("{m}/stop"),
            json!({"timeout": "forever"}),
            "timeout",
        ),
        (
            Method::POST,
            format!("{m}/lease"),
            json!({"ttl": -1}),
            "ttl",
        ),
        (Method::POST, format!("{m}/signal"), json!({}), "signal"),
        (
            Method::PATCH,
            format!("{m}/metadata"),
            json!({"metadata": {"a": 1}}),
            "metadata.a",
        ),
        (
            Method::PUT,
            format!("/v1/apps/bad/volumes/{vol}/extend"),
            json!({"size_gb": "big"}),
            "size_gb",
        ),
        (
            Method::POST,
            "/v1/apps/bad/volumes".into(),
            json!({"name": "v", "size_gb": 1.5}),
            "size_gb",
        ),
        (
            Method::POST,
            "/v1/apps/bad/secrets".into(),
            json!({"values": {"bad-name": "x"}}),
            "secret name",
        ),
        (
            Method::POST,
            "/v1/apps/bad/ip_assignments".into(),
            json!({"type": "v5"}),
            "IP address type",
        ),
    ];
    for (method, path, body, field) in cases {
        let r = api.call(method.clone(), &path, Some(body.clone())).await;
        assert!(
            r.status.is_client_error(),
            "{method} {path} {body}: {} {}",
            r.status,
            r.body
        );
        let msg = r.body["error"].as_str().unwrap_or_default();
        assert!(
            msg.contains(field),
            "{method} {path}: {msg:?} should name {field:?}"
        );
    }
    let raw = api
        .http
        .post(format!("{}/v1/apps", api.base))
        .bearer_auth("t")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let gql = api
        .http
        .post(format!("{}/graphql", api.base))
        .bearer_auth("t")
        .json(&json!({"query": "mutation { allocateIpAddress(input: {appId: \"bad\", type: v9}) { ipAddress { id } } }"}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = gql.json().await.unwrap();
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("IP address type"),
        "{body}"
    );
    let syntax = api.graphql("query { app(name: ", json!({})).await;
    assert_eq!(
        syntax["errors"][0]["extensions"]["code"],
        "GRAPHQL_PARSE_FAILED"
    );
    // The sim is still healthy.
    assert_eq!(api.get("/v1/apps/bad").await.status, 200);
}
