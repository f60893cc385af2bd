//! Leases, and `with_lease`'s release on success, error and drop.

use std::time::Duration;

use fly_api::Error;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::common::FlyMock;
use crate::{APP, MID, machine_path};

fn lease_data() -> Value {
    json!({"nonce": "5c35f65c9f95", "expires_at": 1_708_569_778, "owner": "hello@fly.io",
           "description": "swarm", "version": "01HQ73A7BFFDF1B6WMGHFZZ4E7"})
}

fn wrapped_lease() -> Value {
    let spec = fly_spec::Spec::load();
    // The spec's schema is flat; Fly answers wrapped. Validate the part the spec describes.
    spec.validate_named("Lease", &lease_data(), fly_spec::Mode::Lenient)
        .unwrap();
    json!({"status": "success", "data": lease_data()})
}

#[tokio::test]
async fn lease_acquire_refresh_get_release() {
    let fly = FlyMock::start().await;
    fly.mount(
        Mock::given(method("POST"))
            .and(path(machine_path("/lease")))
            .and(body_json(json!({"ttl": 30, "description": "swarm"})))
            .respond_with(ResponseTemplate::new(201).set_body_json(wrapped_lease()))
            .expect(1),
    )
    .await;
    fly.mount(
        Mock::given(method("POST"))
            .and(path(machine_path("/lease")))
            .and(header("fly-machine-lease-nonce", "5c35f65c9f95"))
            .and(body_json(json!({"ttl": 60})))
            .respond_with(ResponseTemplate::new(200).set_body_json(wrapped_lease()))
            .expect(1),
    )
    .await;
    // GET answered flat, as the spec describes: accepted too.
    fly.on("GET", &machine_path("/lease"), 200, lease_data())
        .await;
    fly.mount(
        Mock::given(method("DELETE"))
            .and(path(machine_path("/lease")))
            .and(header("fly-machine-lease-nonce", "5c35f65c9f95"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"status": "success", "data": {"ok": true}})),
            )
            .expect(1),
    )
    .await;
    let machines = fly.client().machines(APP);
    let lease = machines
        .acquire_lease(MID, 30, Some("swarm"))
        .await
        .unwrap();
    assert_eq!(lease.nonce, "5c35f65c9f95");
    assert_eq!(lease.expires_at, 1_708_569_778);
    assert_eq!(lease.owner, "hello@fly.io");
    assert_eq!(lease.version.as_deref(), Some("01HQ73A7BFFDF1B6WMGHFZZ4E7"));
    let refreshed = machines.refresh_lease(MID, &lease.nonce, 60).await.unwrap();
    assert_eq!(refreshed.nonce, lease.nonce);
    assert_eq!(machines.get_lease(MID).await.unwrap(), lease);
    machines.release_lease(MID, &lease.nonce).await.unwrap();
    fly.finish().await;
}

#[tokio::test]
async fn lease_held_by_someone_else_is_a_conflict() {
    let fly = FlyMock::start().await;
    // Observed body (REFERENCE 4.4): `status: "error"` is outside the spec's statusCode
    // enum, so this fixture is deliberately not validated against ErrorResponse.
    fly.mount(
        Mock::given(method("POST"))
            .and(path(machine_path("/lease")))
            .respond_with(ResponseTemplate::new(409).set_body_json(json!({
                "status": "error", "code": "invalid",
                "message": "machine ID 1857156b526dd8 lease currently held by other@fly.io, expires at 2026-05-14T10:41:08Z"})))
            .expect(1),
    )
    .await;
    let err = fly
        .client()
        .machines(APP)
        .acquire_lease(MID, 30, None)
        .await
        .unwrap_err();
    assert!(err.is_conflict() && err.is_lease_held(), "{err:?}");
    assert!(
        err.to_string()
            .contains("lease currently held by other@fly.io")
    );
    fly.finish().await;
}

#[tokio::test]
async fn with_lease_passes_nonce_and_releases_on_success_and_error() {
    let fly = FlyMock::start().await;
    fly.on_times("POST", &machine_path("/lease"), 201, wrapped_lease(), 2)
        .await;
    fly.mount(
        Mock::given(method("POST"))
            .and(path(machine_path("/restart")))
            .and(header("fly-machine-lease-nonce", "5c35f65c9f95"))
            .respond_with(ResponseTemplate::new(200))
            .expect(1),
    )
    .await;
    fly.mount(
        Mock::given(method("DELETE"))
            .and(path(machine_path("/lease")))
            .and(header("fly-machine-lease-nonce", "5c35f65c9f95"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"status": "success", "data": {"ok": true}})),
            )
            .expect(2),
    )
    .await;
    let machines = fly.client().machines(APP);
    let inner = machines.clone();
    let answer = machines
        .with_lease(MID, 30, |nonce| async move {
            inner.restart(MID, Some(&nonce)).await?;
            Ok(42)
        })
        .await
        .unwrap();
    assert_eq!(answer, 42);
    let failed: fly_api::Result<()> = machines
        .with_lease(MID, 30, |_nonce| async move {
            Err(Error::InvalidInput("boom".into()))
        })
        .await;
    assert!(matches!(failed, Err(Error::InvalidInput(m)) if m == "boom"));
    fly.finish().await;
}

#[tokio::test]
async fn with_lease_releases_when_dropped() {
    let fly = FlyMock::start().await;
    fly.on("POST", &machine_path("/lease"), 201, wrapped_lease())
        .await;
    fly.mount(
        Mock::given(method("DELETE"))
            .and(path(machine_path("/lease")))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"status": "success", "data": {"ok": true}})),
            )
            .expect(1),
    )
    .await;
    let machines = fly.client().machines(APP);
    let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        machines
            .with_lease(MID, 30, |_nonce| async move {
                let _ = entered_tx.send(());
                std::future::pending::<fly_api::Result<()>>().await
            })
            .await
    });
    entered_rx.await.unwrap();
    task.abort();
    let _ = task.await;
    // The release runs on a spawned task: poll for it with a deadline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let received = fly.server.received_requests().await.unwrap_or_default();
        if received.iter().any(|r| r.method.as_str() == "DELETE") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "lease was not released"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    fly.finish().await;
}
