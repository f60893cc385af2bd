//! Secrets: list, set, unset.

use std::collections::BTreeMap;

use fly_api::Error;
use pretty_assertions::assert_eq;
use serde_json::json;
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::APP;
use crate::common::{self, FlyMock};

#[tokio::test]
async fn secrets_list_set_unset() {
    let fly = FlyMock::start().await;
    let base = format!("/v1/apps/{APP}/secrets");
    fly.on(
        "GET",
        &base,
        200,
        json!({"secrets": [{"name": "HASHED_PASSWORD", "digest": "abc",
                            "created_at": "2026-11-27T10:00:00Z", "updated_at": "2026-11-27T10:00:00Z"}]}),
    )
    .await;
    common::check_fixture(
        "POST",
        &base,
        200,
        &json!({"secrets": [{"name": "A"}, {"name": "B"}], "version": 7, "Version": 7}),
    );
    fly.mount(
        Mock::given(method("POST"))
            .and(path(&base))
            .and(body_json(json!({"values": {"A": "1", "B": "2"}})))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"secrets": [{"name": "A"}, {"name": "B"}], "version": 7, "Version": 7}),
            ))
            .expect(1),
    )
    .await;
    fly.on(
        "DELETE",
        &format!("{base}/A"),
        200,
        json!({"version": 8, "Version": 8}),
    )
    .await;
    fly.on("DELETE", &format!("{base}/B"), 200, json!({"version": 9}))
        .await;
    fly.on(
        "DELETE",
        &format!("{base}/GONE"),
        404,
        json!({"error": "secret not found"}),
    )
    .await;
    let secrets = fly.client().secrets(APP);
    let listed = secrets.list().await.unwrap();
    assert_eq!(listed[0].name, "HASHED_PASSWORD");
    let values = BTreeMap::from([
        ("A".to_string(), secrecy::SecretString::from("1")),
        ("B".to_string(), secrecy::SecretString::from("2")),
    ]);
    assert_eq!(secrets.set(values).await.unwrap(), 7);
    assert_eq!(secrets.unset(&["GONE", "A", "B"]).await.unwrap(), 9);
    assert!(matches!(
        secrets.unset(&[]).await,
        Err(Error::InvalidInput(_))
    ));
    fly.finish().await;
}
