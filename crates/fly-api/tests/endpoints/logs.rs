//! The logs endpoint.

use fly_api::models::*;
use pretty_assertions::assert_eq;
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use crate::common::FlyMock;
use crate::{APP, MID};

#[tokio::test]
async fn logs_page_sends_token_and_filters() {
    let fly = FlyMock::start().await;
    let route = format!("/api/v1/apps/{APP}/logs");
    fly.mount(
        Mock::given(method("GET"))
            .and(path(&route))
            .and(query_param("next_token", ""))
            .and(query_param("instance", MID))
            .and(query_param("region", "ams"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "data": [{"id": "l1", "type": "logs", "attributes": {
                    "timestamp": "2026-11-27T10:00:00.000Z", "message": "HTTP server listening",
                    "level": "info", "instance": MID, "region": "ams",
                    "meta": {"instance": MID, "region": "ams", "event": {"provider": "app"}}}}],
                "meta": {"next_token": "tok-2"}})))
            .expect(1),
    )
    .await;
    fly.mount(
        Mock::given(method("GET"))
            .and(path(&route))
            .and(query_param("next_token", "tok-2"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"data": [], "meta": {"next_token": ""}})),
            )
            .expect(1),
    )
    .await;
    let logs = fly.client().logs(APP);
    let page = logs
        .page(&LogQuery {
            next_token: None,
            instance: Some(MID.into()),
            region: Some("ams".into()),
        })
        .await
        .unwrap();
    assert_eq!(page.entries[0].message, "HTTP server listening");
    assert_eq!(page.entries[0].instance, MID);
    assert_eq!(page.next_token.as_deref(), Some("tok-2"));
    let next = logs
        .page(&LogQuery {
            next_token: page.next_token,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(next.entries.is_empty());
    assert_eq!(next.next_token, None);
    fly.finish().await;
}
