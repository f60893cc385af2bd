//! Machines: create, get, list, update, lifecycle calls, wait, events.

use std::time::Duration;

use fly_api::Error;
use fly_api::models::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

use crate::common::{self, FlyMock, machine_config_json, machine_json};
use crate::{APP, MID, machine_path};

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
