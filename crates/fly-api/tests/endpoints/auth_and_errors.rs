//! Token schemes, error bodies, transport errors, path checks.

use fly_api::Error;
use pretty_assertions::assert_eq;
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::common::{self, FlyMock};
use crate::{APP, MID, machine_path};

#[tokio::test]
async fn legacy_tokens_use_bearer() {
    let fly = FlyMock::start().await;
    common::check_fixture(
        "GET",
        &format!("/v1/apps/{APP}"),
        200,
        &json!({"id": "a", "name": APP}),
    );
    fly.mount(
        Mock::given(method("GET"))
            .and(path(format!("/v1/apps/{APP}")))
            .and(header("authorization", "Bearer legacy_personal_token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "a", "name": APP})))
            .expect(1),
    )
    .await;
    let client = fly.client_with(|b| b.token(fly_api::Token::new("legacy_personal_token")));
    client.apps().get(APP).await.unwrap();
    // Not through finish(): that asserts the canary macaroon header.
    fly.server.verify().await;
}

#[tokio::test]
async fn non_json_error_body_is_kept_raw() {
    let fly = FlyMock::start().await;
    fly.mount(
        Mock::given(method("GET"))
            .and(path(machine_path("")))
            .respond_with(
                ResponseTemplate::new(502)
                    .set_body_string("<html>502 Bad Gateway</html>")
                    .insert_header("fly-request-id", "01JREQ"),
            )
            .expect(1),
    )
    .await;
    let err = fly.client().machines(APP).get(MID).await.unwrap_err();
    let api = err.api().unwrap();
    assert_eq!(api.message, "<html>502 Bad Gateway</html>");
    assert_eq!(api.request_id.as_deref(), Some("01JREQ"));
    assert!(err.is_retryable() && err.is_ambiguous());
    fly.finish().await;
}

#[tokio::test]
async fn connection_refused_is_transport_not_sent() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let client = fly_api::FlyClient::builder()
        .token(fly_api::Token::new(common::CANARY))
        .machines_base_url(format!("http://127.0.0.1:{port}"))
        .retry(fly_api::RetryPolicy::none())
        .build()
        .unwrap();
    let err = client.machines(APP).get(MID).await.unwrap_err();
    assert!(
        matches!(err, Error::Transport { sent: false, .. }),
        "{err:?}"
    );
    assert!(!err.is_ambiguous());
    assert!(!err.to_string().contains(common::CANARY));
}

#[tokio::test]
async fn empty_ids_are_rejected_before_sending() {
    let fly = FlyMock::start().await;
    let client = fly.client();
    for err in [
        client.machines(APP).get("").await.unwrap_err(),
        client.machines("").get(MID).await.unwrap_err(),
        client.volumes(APP).get(" ").await.unwrap_err(),
        client.apps().get("").await.unwrap_err(),
    ] {
        assert!(
            matches!(err, Error::InvalidInput(ref m) if m.contains("must not be empty")),
            "{err:?}"
        );
    }
    let received = fly.finish().await;
    assert!(received.is_empty());
}

#[tokio::test]
async fn path_segments_are_escaped() {
    let fly = FlyMock::start().await;
    let err = fly
        .client()
        .apps()
        .get("../../v1/apps/x?y")
        .await
        .unwrap_err();
    // Nothing matched the catch-all-free routes; the name arrived as one escaped segment.
    assert_eq!(err.status(), Some(599));
    let received = fly.server.received_requests().await.unwrap();
    assert_eq!(
        received[0].url.path(),
        "/v1/apps/..%2F..%2Fv1%2Fapps%2Fx%3Fy"
    );
    fly.server.reset().await;
}
