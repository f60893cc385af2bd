//! IPs and the generic call over GraphQL.

use fly_api::Error;
use fly_api::models::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::APP;
use crate::common::FlyMock;

async fn graphql_answer(fly: &FlyMock, operation: &str, data: Value) {
    {
        let schema = fly_spec::GraphqlSchema::load();
        schema
            .check_response(operation, &json!({"data": data.clone()}))
            .unwrap_or_else(|e| panic!("fixture: {e}"));
    }
    let needle = operation
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .split('(')
        .next()
        .unwrap_or_default()
        .to_string();
    fly.mount(
        Mock::given(method("POST"))
            .and(path("/graphql"))
            .and(wiremock::matchers::body_string_contains(needle))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": data})))
            .expect(1),
    )
    .await;
}

#[tokio::test]
async fn ips_allocate_dedicated_and_shared() {
    use fly_api::ips::queries::ALLOCATE_IP_ADDRESS;
    let fly = FlyMock::start().await;
    // Both allocations share one mock: answer v6 first.
    graphql_answer(
        &fly,
        ALLOCATE_IP_ADDRESS,
        json!({"allocateIpAddress": {"ipAddress": {"id": "ip_1", "address": "2a09:8280:1::1",
            "type": "v6", "region": "global", "createdAt": "2026-11-27T10:00:00Z", "serviceName": null},
            "app": {"sharedIpAddress": null}}}),
    )
    .await;
    let ip = fly
        .client()
        .ips()
        .allocate(APP, IpAddressType::V6, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ip.address, "2a09:8280:1::1");
    assert_eq!(ip.kind, IpAddressType::V6);
    let sent = fly.finish().await;
    let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(
        body["variables"],
        json!({"input": {"appId": APP, "type": "v6"}})
    );

    let fly = FlyMock::start().await;
    graphql_answer(
        &fly,
        ALLOCATE_IP_ADDRESS,
        json!({"allocateIpAddress": {"ipAddress": null, "app": {"sharedIpAddress": "66.241.124.1"}}}),
    )
    .await;
    let shared = fly
        .client()
        .ips()
        .allocate(APP, IpAddressType::SharedV4, Some("ams"))
        .await
        .unwrap();
    assert_eq!(shared, None);
    let sent = fly.finish().await;
    let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(
        body["variables"],
        json!({"input": {"appId": APP, "type": "shared_v4", "region": "ams"}})
    );
}

#[tokio::test]
async fn ips_release_by_id_and_address() {
    use fly_api::ips::queries::RELEASE_IP_ADDRESS;
    let fly = FlyMock::start().await;
    {
        let schema = fly_spec::GraphqlSchema::load();
        schema
            .check_response(
                RELEASE_IP_ADDRESS,
                &json!({"data": {"releaseIpAddress": {"clientMutationId": null}}}),
            )
            .unwrap();
    }
    fly.mount(
        Mock::given(method("POST"))
            .and(path("/graphql"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(
                    json!({"data": {"releaseIpAddress": {"clientMutationId": null}}}),
                ),
            )
            .expect(2),
    )
    .await;
    let ips = fly.client().ips();
    ips.release(APP, &IpRelease::Id("ip_1".into()))
        .await
        .unwrap();
    ips.release(APP, &IpRelease::Address("2a09:8280:1::1".into()))
        .await
        .unwrap();
    let sent = fly.finish().await;
    let vars =
        |i: usize| serde_json::from_slice::<Value>(&sent[i].body).unwrap()["variables"].clone();
    assert_eq!(
        vars(0),
        json!({"input": {"appId": APP, "ipAddressId": "ip_1"}})
    );
    assert_eq!(
        vars(1),
        json!({"input": {"appId": APP, "ip": "2a09:8280:1::1"}})
    );
}

#[tokio::test]
async fn ips_list() {
    use fly_api::ips::queries::APP_IP_ADDRESSES;
    let fly = FlyMock::start().await;
    graphql_answer(
        &fly,
        APP_IP_ADDRESSES,
        json!({"app": {"ipAddresses": {"nodes": [
            {"id": "ip_1", "address": "2a09:8280:1::1", "type": "v6", "region": "global",
             "createdAt": "2026-11-27T10:00:00Z", "serviceName": null}]},
            "sharedIpAddress": "66.241.124.1"}}),
    )
    .await;
    let ips = fly.client().ips().list(APP).await.unwrap();
    assert_eq!(ips.ip_addresses.len(), 1);
    assert_eq!(ips.shared_ip_address.as_deref(), Some("66.241.124.1"));
    let sent = fly.finish().await;
    let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(body["variables"], json!({"appName": APP}));
}

#[tokio::test]
async fn graphql_errors_are_typed() {
    let fly = FlyMock::start().await;
    fly.mount(
        Mock::given(method("POST"))
            .and(path("/graphql"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": {"app": null},
                "errors": [{"message": "Could not find App \"nope\"", "locations": [{"line": 2, "column": 3}],
                            "path": ["app"], "extensions": {"code": "NOT_FOUND"}}]})))
            .expect(1),
    )
    .await;
    let err = fly.client().ips().list("nope").await.unwrap_err();
    match &err {
        Error::GraphQl(errors) => assert_eq!(errors[0].code(), Some("NOT_FOUND")),
        other => panic!("expected GraphQL errors, got {other:?}"),
    }
    assert!(err.is_not_found());
    fly.finish().await;
}

#[tokio::test]
async fn graphql_generic_call() {
    const QUERY: &str = "query Viewer { viewer { email } }";
    let fly = FlyMock::start().await;
    graphql_answer(&fly, QUERY, json!({"viewer": {"email": "a@b.c"}})).await;
    #[derive(serde::Deserialize)]
    struct Data {
        viewer: Viewer,
    }
    #[derive(serde::Deserialize)]
    struct Viewer {
        email: String,
    }
    let data: Data = fly.client().graphql(QUERY, json!({})).await.unwrap();
    assert_eq!(data.viewer.email, "a@b.c");
    fly.finish().await;
}
