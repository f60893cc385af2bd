//! Apps: create, get, list, delete.

use fly_api::models::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

use crate::APP;
use crate::common::{self, FlyMock};

#[tokio::test]
async fn apps_create_sends_name_and_org() {
    let fly = FlyMock::start().await;
    fly.mount(
        Mock::given(method("POST"))
            .and(path("/v1/apps"))
            .and(body_json(json!({"name": APP, "org_slug": "personal"})))
            .respond_with(ResponseTemplate::new(201).set_body_json(
                json!({"id": "682kqp6pdno9d543", "created_at": 1_732_700_000_000_i64}),
            ))
            .expect(1),
    )
    .await;
    common::check_fixture(
        "POST",
        "/v1/apps",
        201,
        &json!({"id": "682kqp6pdno9d543", "created_at": 1}),
    );
    let created = fly
        .client()
        .apps()
        .create(&CreateAppRequest {
            name: APP.into(),
            org_slug: "personal".into(),
            network: None,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(created.id, "682kqp6pdno9d543");
    assert_eq!(created.created_at, Some(1_732_700_000_000));
    fly.finish().await;
}

#[tokio::test]
async fn apps_create_name_taken_is_a_typed_error_with_request_id() {
    let fly = FlyMock::start().await;
    fly.on(
        "POST",
        "/v1/apps",
        422,
        json!({"error": "Name has already been taken", "status": "name_taken"}),
    )
    .await;
    let err = fly
        .client()
        .apps()
        .create(&CreateAppRequest {
            name: APP.into(),
            org_slug: "personal".into(),
            network: Some("isolated".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(err.is_name_taken(), "{err:?}");
    assert!(!err.is_retryable());
    let api = err.api().unwrap();
    assert_eq!(api.status, 422);
    assert_eq!(api.code.as_deref(), Some("name_taken"));
    assert_eq!(api.message, "Name has already been taken");
    assert_eq!(api.request_id.as_deref(), Some("req-test-1"));
    let sent = fly.finish().await;
    let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(
        body,
        json!({"name": APP, "org_slug": "personal", "network": "isolated"})
    );
}

#[tokio::test]
async fn apps_get_and_not_found() {
    let fly = FlyMock::start().await;
    fly.on(
        "GET",
        &format!("/v1/apps/{APP}"),
        200,
        json!({"id": "jlyv9r5d56v18xrg", "name": APP, "status": "deployed", "machine_count": 1,
               "volume_count": 1, "network": "default", "internal_numeric_id": 7,
               "organization": {"name": "My Org", "slug": "personal", "internal_numeric_id": 1}}),
    )
    .await;
    fly.on(
        "GET",
        "/v1/apps/missing-app",
        404,
        json!({"error": "Could not find App \"missing-app\""}),
    )
    .await;
    let client = fly.client();
    let app = client.apps().get(APP).await.unwrap();
    assert_eq!(app.name, APP);
    assert_eq!(app.status.as_deref(), Some("deployed"));
    assert_eq!(app.organization.unwrap().slug.as_deref(), Some("personal"));
    let err = client.apps().get("missing-app").await.unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(
        err.api().unwrap().message,
        "Could not find App \"missing-app\""
    );
    fly.finish().await;
}

#[tokio::test]
async fn apps_list_by_org() {
    let fly = FlyMock::start().await;
    let fixture = json!({"total_apps": 2, "apps": [
        {"id": "a1", "name": "one", "machine_count": 3, "volume_count": 2, "network": "default"},
        {"id": "a2", "name": "two", "status": "suspended"}]});
    common::check_fixture("GET", "/v1/apps", 200, &fixture);
    fly.mount(
        Mock::given(method("GET"))
            .and(path("/v1/apps"))
            .and(query_param("org_slug", "personal"))
            .respond_with(ResponseTemplate::new(200).set_body_json(fixture))
            .expect(1),
    )
    .await;
    let apps = fly.client().apps().list("personal").await.unwrap();
    assert_eq!(
        apps.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["one", "two"]
    );
    assert_eq!(apps[0].machine_count, Some(3));
    fly.finish().await;
}

#[tokio::test]
async fn apps_delete_force_and_plain() {
    let fly = FlyMock::start().await;
    fly.mount(
        Mock::given(method("DELETE"))
            .and(path(format!("/v1/apps/{APP}")))
            .and(query_param("force", "true"))
            .respond_with(ResponseTemplate::new(202))
            .expect(1),
    )
    .await;
    fly.mount(
        Mock::given(method("DELETE"))
            .and(path("/v1/apps/other"))
            .and(query_param_is_missing("force"))
            .respond_with(ResponseTemplate::new(202))
            .expect(1),
    )
    .await;
    let client = fly.client();
    client.apps().delete(APP, true).await.unwrap();
    client.apps().delete("other", false).await.unwrap();
    fly.finish().await;
}
