//! One wiremock test per endpoint. Every request the client sends is validated against
//! Fly's spec by `FlyMock::finish`; every fixture against the response schema.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{FlyMock, machine_config_json, machine_json, volume_json};
use fly_api::Error;
use fly_api::models::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

const APP: &str = "ws-demo";
const MID: &str = "1857156b526dd8";
const VID: &str = "vol_r1p6pln1k9m9j7zr";

fn machine_path(rest: &str) -> String {
    format!("/v1/apps/{APP}/machines/{MID}{rest}")
}

// ---------------------------------------------------------------- apps

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

// ---------------------------------------------------------------- machines

fn code_server_config() -> MachineConfig {
    serde_json::from_value(machine_config_json()).unwrap()
}

#[tokio::test]
async fn machines_create_sends_full_config() {
    let fly = FlyMock::start().await;
    fly.on(
        "POST",
        &format!("/v1/apps/{APP}/machines"),
        200,
        machine_json(MID, "created"),
    )
    .await;
    let request = CreateMachineRequest {
        name: Some("ws-demo".into()),
        region: Some("ams".into()),
        config: code_server_config(),
        skip_launch: Some(false),
        lease_ttl: Some(30),
        ..Default::default()
    };
    let machine = fly.client().machines(APP).create(&request).await.unwrap();
    assert_eq!(machine.id, MID);
    assert_eq!(machine.state, MachineState::Created);
    let config = machine.config.as_ref().unwrap();
    assert_eq!(config.services[0].autostop, Some(Autostop::Stop));
    assert_eq!(config.guest.as_ref().unwrap().memory_mb, Some(2048));
    assert_eq!(machine.events[0].kind, "launch");
    assert_eq!(machine.checks[0].status, "passing");
    assert_eq!(machine.host_status, Some(HostStatus::Ok));
    let sent = fly.finish().await;
    let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(body["config"], machine_config_json());
    assert_eq!(body["region"], "ams");
    assert_eq!(body["lease_ttl"], 30);
}

#[tokio::test]
async fn machines_get_decodes_and_names_bad_paths() {
    let fly = FlyMock::start().await;
    fly.on("GET", &machine_path(""), 200, machine_json(MID, "started"))
        .await;
    fly.mount(
        Mock::given(method("GET"))
            .and(path(format!("/v1/apps/{APP}/machines/badbadbad")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": "badbadbad", "state": "started",
                "config": {"image": "x", "guest": {"cpus": "two"}}})))
            .expect(1),
    )
    .await;
    let machines = fly.client().machines(APP);
    let machine = machines.get(MID).await.unwrap();
    assert_eq!(machine.state, MachineState::Started);
    assert_eq!(machine.private_ip.as_deref(), Some("fdaa:0:1:a7b:1::2"));
    let err = machines.get("badbadbad").await.unwrap_err();
    match &err {
        Error::Decode { path, message } => {
            assert_eq!(path, "config.guest.cpus");
            assert!(message.contains("invalid type"), "{message}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
    fly.finish().await;
}

#[tokio::test]
async fn machines_list_sends_filters() {
    let fly = FlyMock::start().await;
    let fixture = json!([
        machine_json(MID, "started"),
        machine_json("e2865013b1d1e8", "stopped")
    ]);
    common::check_fixture("GET", &format!("/v1/apps/{APP}/machines"), 200, &fixture);
    fly.mount(
        Mock::given(method("GET"))
            .and(path(format!("/v1/apps/{APP}/machines")))
            .and(query_param("include_deleted", "true"))
            .and(query_param("region", "ams"))
            .and(query_param("state", "started,stopped"))
            .and(query_param("metadata.swarm_workspace", "w-123"))
            .and(query_param("summary", "true"))
            .respond_with(ResponseTemplate::new(200).set_body_json(fixture.clone()))
            .expect(1),
    )
    .await;
    fly.mount(
        Mock::given(method("GET"))
            .and(path(format!("/v1/apps/{APP}/machines")))
            .and(query_param_is_missing("state"))
            .and(query_param_is_missing("include_deleted"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .expect(1),
    )
    .await;
    let machines = fly.client().machines(APP);
    let listed = machines
        .list(&ListMachines {
            include_deleted: true,
            region: Some("ams".into()),
            state: vec!["started".into(), "stopped".into()],
            metadata: vec![("swarm_workspace".into(), "w-123".into())],
            summary: true,
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].state, MachineState::Stopped);
    assert!(
        machines
            .list(&ListMachines::default())
            .await
            .unwrap()
            .is_empty()
    );
    fly.finish().await;
}

#[tokio::test]
async fn machines_update_round_trips_config_with_nonce() {
    let fly = FlyMock::start().await;
    // A config as Fly returns it, including fields this crate does not model.
    let mut config_json = machine_config_json();
    config_json["dns"] = json!({"skip_registration": true});
    config_json["services"][0]["autostop"] = json!(true);
    let mut machine = machine_json(MID, "started");
    machine["config"] = config_json.clone();
    // Fly answers autostop as a bool (REFERENCE 4.2) where the spec says string: validate
    // the spec's form, serve the observed one.
    let mut spec_form = machine.clone();
    spec_form["config"]["services"][0]["autostop"] = json!("stop");
    common::check_fixture("GET", &machine_path(""), 200, &spec_form);
    fly.mount(
        Mock::given(method("GET"))
            .and(path(machine_path("")))
            .respond_with(ResponseTemplate::new(200).set_body_json(machine.clone()))
            .expect(1),
    )
    .await;
    fly.mount(
        Mock::given(method("POST"))
            .and(path(machine_path("")))
            .and(header("fly-machine-lease-nonce", "5c35f65c9f95"))
            .respond_with(ResponseTemplate::new(200).set_body_json(machine))
            .expect(1),
    )
    .await;
    let machines = fly.client().machines(APP);
    let current = machines.get(MID).await.unwrap();
    let request = UpdateMachineRequest {
        config: current.config.clone().unwrap(),
        current_version: current.version.clone(),
        ..Default::default()
    };
    machines
        .update(MID, &request, Some("5c35f65c9f95"))
        .await
        .unwrap();
    let sent = fly.finish().await;
    let body: Value = serde_json::from_slice(&sent[1].body).unwrap();
    // Unchanged except autostop, which Fly answers as a bool and we send as the string.
    let mut expected = config_json;
    expected["services"][0]["autostop"] = json!("stop");
    assert_eq!(body["config"], expected);
    assert_eq!(body["current_version"], "01HQ73A7BFFDF1B6WMGHFZZ4E7");
}

#[tokio::test]
async fn machines_lifecycle_calls() {
    let fly = FlyMock::start().await;
    fly.mount(
        Mock::given(method("POST"))
            .and(path(machine_path("/start")))
            .and(header("fly-machine-lease-nonce", "n1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"previous_state": "stopped", "migrated": false, "new_host": ""}),
            ))
            .expect(1),
    )
    .await;
    fly.mount(
        Mock::given(method("POST"))
            .and(path(machine_path("/stop")))
            .and(body_json(json!({"signal": "SIGKILL", "timeout": "5s"})))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
            .expect(1),
    )
    .await;
    fly.on("POST", &machine_path("/restart"), 200, json!({"ok": true}))
        .await;
    fly.on("POST", &machine_path("/suspend"), 200, json!({"ok": true}))
        .await;
    fly.mount(
        Mock::given(method("DELETE"))
            .and(path(machine_path("")))
            .and(query_param("force", "true"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
            .expect(1),
    )
    .await;
    let machines = fly.client().machines(APP);
    let started = machines.start(MID, Some("n1")).await.unwrap();
    assert_eq!(started.previous_state, Some(MachineState::Stopped));
    machines
        .stop(
            MID,
            &StopRequest {
                signal: Some("SIGKILL".into()),
                timeout: Some("5s".into()),
            },
            None,
        )
        .await
        .unwrap();
    machines.restart(MID, None).await.unwrap();
    machines.suspend(MID, None).await.unwrap();
    machines.delete(MID, true, None).await.unwrap();
    let sent = fly.finish().await;
    // No nonce header unless one was given.
    assert!(sent[1].headers.get("fly-machine-lease-nonce").is_none());
    // restart and suspend carry no body.
    assert!(sent[2].body.is_empty() && sent[3].body.is_empty());
}

#[tokio::test]
async fn machines_delete_precondition_failed() {
    let fly = FlyMock::start().await;
    fly.on(
        "DELETE",
        &machine_path(""),
        412,
        json!({"error": "failed_precondition: unable to destroy machine, not currently stopped"}),
    )
    .await;
    let err = fly
        .client()
        .machines(APP)
        .delete(MID, false, None)
        .await
        .unwrap_err();
    assert!(err.is_precondition_failed());
    assert!(!err.is_retryable());
    fly.finish().await;
}

#[tokio::test]
async fn machines_wait_sends_states_timeout_and_version() {
    let fly = FlyMock::start().await;
    common::check_fixture(
        "GET",
        &machine_path("/wait"),
        200,
        &json!({"ok": true, "state": "stopped", "version": "01HQ", "event_id": "e1"}),
    );
    fly.mount(
        Mock::given(method("GET"))
            .and(path(machine_path("/wait")))
            .and(query_param("timeout", "60"))
            .and(query_param("version", "01HQ"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"ok": true, "state": "stopped", "version": "01HQ", "event_id": "e1"}),
            ))
            .expect(1),
    )
    .await;
    fly.mount(
        Mock::given(method("GET"))
            .and(path(machine_path("/wait")))
            .and(query_param("timeout", "1"))
            .respond_with(
                ResponseTemplate::new(408).set_body_json(json!({"error": "deadline_exceeded"})),
            )
            .expect(1),
    )
    .await;
    let machines = fly.client().machines(APP);
    let answer = machines
        .wait(
            MID,
            &WaitRequest {
                states: vec![MachineState::Stopped, MachineState::Suspended],
                timeout_secs: 600, // clamped to 60
                version: Some("01HQ".into()),
            },
        )
        .await
        .unwrap();
    assert!(answer.ok);
    assert_eq!(answer.state, Some(MachineState::Stopped));
    let err = machines
        .wait(
            MID,
            &WaitRequest {
                timeout_secs: 0,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(408));
    let sent = fly.finish().await;
    let states: Vec<String> = sent[0]
        .url
        .query_pairs()
        .filter(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .collect();
    assert_eq!(states, ["stopped", "suspended"]);
}

#[tokio::test]
async fn machines_wait_for_state_over_http() {
    let fly = FlyMock::start().await;
    fly.on(
        "GET",
        &machine_path("/wait"),
        200,
        json!({"ok": true, "state": "started"}),
    )
    .await;
    let answer = fly
        .client()
        .machines(APP)
        .wait_for_state(MID, &[MachineState::Started], None, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(answer.state, Some(MachineState::Started));
    let sent = fly.finish().await;
    assert!(sent[0].url.query().unwrap().contains("timeout=30"));
}

#[tokio::test]
async fn machines_events() {
    let fly = FlyMock::start().await;
    fly.on(
        "GET",
        &machine_path("/events"),
        200,
        json!([{"id": "e2", "type": "exit", "status": "stopped", "source": "flyd", "timestamp": 2,
                "request": {"exit_event": {"exit_code": 0, "requested_stop": true}}},
               {"id": "e1", "type": "launch", "status": "created", "source": "user", "timestamp": 1}]),
    )
    .await;
    let events = fly.client().machines(APP).events(MID).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(
        (events[0].kind.as_str(), events[0].status.as_str()),
        ("exit", "stopped")
    );
    assert_eq!(
        events[0].request.as_ref().unwrap()["exit_event"]["exit_code"],
        0
    );
    fly.finish().await;
}

// ---------------------------------------------------------------- leases

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

// ---------------------------------------------------------------- volumes

#[tokio::test]
async fn volumes_create_get_list_delete() {
    let fly = FlyMock::start().await;
    let base = format!("/v1/apps/{APP}/volumes");
    fly.on("POST", &base, 200, volume_json(VID)).await;
    fly.on("GET", &format!("{base}/{VID}"), 200, volume_json(VID))
        .await;
    fly.on("GET", &base, 200, json!([volume_json(VID)])).await;
    let mut deleted = volume_json(VID);
    deleted["state"] = json!("scheduling_destroy");
    fly.on("DELETE", &format!("{base}/{VID}"), 200, deleted)
        .await;
    let volumes = fly.client().volumes(APP);
    let created = volumes
        .create(&CreateVolumeRequest {
            name: "ws_data".into(),
            region: Some("ams".into()),
            size_gb: Some(10),
            encrypted: Some(true),
            require_unique_zone: Some(false),
            snapshot_retention: Some(5),
            compute: Some(MachineGuest {
                cpu_kind: Some("shared".into()),
                cpus: Some(1),
                memory_mb: Some(2048),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(created.id, VID);
    assert_eq!(created.state, VolumeState::Created);
    assert_eq!(created.size_gb, 10);
    assert_eq!(created.attached_machine(), None);
    assert_eq!(
        volumes.get(VID).await.unwrap().zone.as_deref(),
        Some("a1b2")
    );
    assert_eq!(volumes.list().await.unwrap().len(), 1);
    let gone = volumes.delete(VID).await.unwrap();
    assert!(gone.state.is_deleted());
    let sent = fly.finish().await;
    let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(body["name"], "ws_data");
    assert!(body.get("snapshot_id").is_none(), "no nulls sent: {body}");
}

#[tokio::test]
async fn volumes_fork_and_restore_fields() {
    let fly = FlyMock::start().await;
    fly.on_times(
        "POST",
        &format!("/v1/apps/{APP}/volumes"),
        200,
        volume_json(VID),
        2,
    )
    .await;
    let volumes = fly.client().volumes(APP);
    volumes
        .create(&CreateVolumeRequest {
            name: "ws_data".into(),
            region: Some("fra".into()),
            source_volume_id: Some(VID.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    volumes
        .create(&CreateVolumeRequest {
            name: "ws_data".into(),
            snapshot_id: Some("vs_abc".into()),
            size_gb: Some(20),
            ..Default::default()
        })
        .await
        .unwrap();
    let sent = fly.finish().await;
    assert_eq!(
        serde_json::from_slice::<Value>(&sent[0].body).unwrap(),
        json!({"name": "ws_data", "region": "fra", "source_volume_id": VID})
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&sent[1].body).unwrap(),
        json!({"name": "ws_data", "size_gb": 20, "snapshot_id": "vs_abc"})
    );
}

#[tokio::test]
async fn volumes_delete_while_bound_is_precondition_failed() {
    let fly = FlyMock::start().await;
    fly.on(
        "DELETE",
        &format!("/v1/apps/{APP}/volumes/{VID}"),
        412,
        json!({"error": format!("failed_precondition: volume is currently bound to machine: {MID}")}),
    )
    .await;
    let err = fly.client().volumes(APP).delete(VID).await.unwrap_err();
    assert!(err.is_precondition_failed());
    assert!(err.to_string().contains("bound to machine"));
    fly.finish().await;
}

#[tokio::test]
async fn volumes_extend_and_snapshots() {
    let fly = FlyMock::start().await;
    let base = format!("/v1/apps/{APP}/volumes/{VID}");
    let mut grown = volume_json(VID);
    grown["size_gb"] = json!(20);
    fly.mount(
        Mock::given(method("PUT"))
            .and(path(format!("{base}/extend")))
            .and(body_json(json!({"size_gb": 20})))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"volume": grown, "needs_restart": true})),
            )
            .expect(1),
    )
    .await;
    common::check_fixture(
        "PUT",
        &format!("{base}/extend"),
        200,
        &json!({"volume": volume_json(VID), "needs_restart": true}),
    );
    fly.on(
        "GET",
        &format!("{base}/snapshots"),
        200,
        json!([{"id": "vs_1", "created_at": "2026-11-27T10:00:00Z", "digest": "d", "size": 1024,
                "volume_size": 10, "status": "created", "retention_days": 5}]),
    )
    .await;
    fly.on("POST", &format!("{base}/snapshots"), 200, Value::Null)
        .await;
    let volumes = fly.client().volumes(APP);
    let extended = volumes.extend(VID, 20).await.unwrap();
    assert!(extended.needs_restart);
    assert_eq!(extended.volume.size_gb, 20);
    let snapshots = volumes.list_snapshots(VID).await.unwrap();
    assert_eq!(snapshots[0].id, "vs_1");
    assert_eq!(snapshots[0].retention_days, Some(5));
    volumes.create_snapshot(VID).await.unwrap();
    assert!(matches!(
        volumes.extend(VID, 0).await,
        Err(Error::InvalidInput(_))
    ));
    fly.finish().await;
}

// ---------------------------------------------------------------- secrets

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

// ---------------------------------------------------------------- IPs (GraphQL)

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

// ---------------------------------------------------------------- logs

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

// ---------------------------------------------------------------- auth, errors

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

#[test]
fn the_request_checker_catches_a_misspelt_field() {
    // Guards the guard: the strict spec check used by `FlyMock::finish` must fail here.
    let spec = fly_spec::Spec::load();
    let body = json!({"name": APP, "org_slug": "personal", "orgslug": "typo"});
    assert!(spec.check_request("POST", "/v1/apps", &body).is_err());
    let machine = json!({"config": {"image": "x", "services": [{"autostop": "sometimes"}]}});
    assert!(
        spec.check_request("POST", &format!("/v1/apps/{APP}/machines"), &machine)
            .is_err()
    );
}
