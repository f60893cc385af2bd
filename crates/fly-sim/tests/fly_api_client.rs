//! Scenarios with the project's own `fly-api` client against the sim: the whole
//! app → volume → IP → machine → wait → stop → start → update → delete cycle, and each
//! refusal surfacing as the client's typed error.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use std::time::Duration;

use fly_api::models::{
    CreateAppRequest, CreateMachineRequest, CreateVolumeRequest, IpAddressType, MachineState,
    StopRequest, UpdateMachineRequest, WaitRequest,
};
use fly_api::{FlyClient, RetryPolicy, Token};
use fly_sim::{Sim, SimConfig};
use serde_json::json;

fn client(base: &str) -> FlyClient {
    FlyClient::builder()
        .token(Token::new("sim-token"))
        .machines_base_url(base)
        .api_base_url(base)
        .retry(RetryPolicy::none())
        .throttle(false)
        .build()
        .expect("client")
}

fn machine_request(volume: &str) -> CreateMachineRequest {
    serde_json::from_value(json!({
        "region": "ams",
        "config": {
            "image": "codercom/code-server:4.133.0",
            "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 2048},
            "env": {"PASSWORD": "pw"},
            "mounts": [{"volume": volume, "path": "/home/coder/project"}],
            "metadata": {"workspace": "w1"}
        }
    }))
    .expect("request")
}

#[tokio::test]
async fn whole_cycle_with_the_fly_api_client() {
    let sim = Sim::start(
        SimConfig {
            rate_limits: false,
            ..SimConfig::default()
        },
        "127.0.0.1:0",
    )
    .await
    .unwrap();
    let fly = client(&sim.base_url());
    let app: CreateAppRequest =
        serde_json::from_value(json!({"name": "client-cycle", "org_slug": "personal"})).unwrap();
    fly.apps().create(&app).await.expect("create app");
    let taken = fly.apps().create(&app).await.expect_err("duplicate");
    assert!(taken.is_name_taken(), "{taken}");
    assert_eq!(
        fly.apps().get("client-cycle").await.unwrap().name,
        "client-cycle"
    );

    let vol: CreateVolumeRequest =
        serde_json::from_value(json!({"name": "home", "region": "ams", "size_gb": 1})).unwrap();
    let vol = fly
        .volumes("client-cycle")
        .create(&vol)
        .await
        .expect("volume");
    fly.ips()
        .allocate("client-cycle", IpAddressType::V6, None)
        .await
        .expect("v6");
    let shared = fly
        .ips()
        .allocate("client-cycle", IpAddressType::SharedV4, None)
        .await
        .expect("shared");
    assert!(shared.is_none());
    let ips = fly.ips().list("client-cycle").await.expect("ips");
    assert_eq!(ips.ip_addresses.len(), 1);
    assert!(ips.shared_ip_address.is_some());

    let machines = fly.machines("client-cycle");
    let m = machines
        .create(&machine_request(&vol.id))
        .await
        .expect("machine");
    assert_eq!(m.state, MachineState::Created);
    let wait = Duration::from_secs(30);
    machines
        .wait_for_state(&m.id, &[MachineState::Started], None, wait)
        .await
        .expect("started");

    // A second machine on the same volume: 412 claimed.
    let claimed = machines
        .create(&machine_request(&vol.id))
        .await
        .expect_err("claimed");
    assert!(claimed.is_precondition_failed(), "{claimed}");
    // Deleting a running machine without force: 412.
    let refused = machines
        .delete(&m.id, false, None)
        .await
        .expect_err("running");
    assert!(refused.is_precondition_failed(), "{refused}");

    // Lease: a second holder is refused with 409, and so is a mutation without the nonce.
    let lease = machines
        .acquire_lease(&m.id, 30, Some("test"))
        .await
        .expect("lease");
    let held = machines
        .stop(&m.id, &StopRequest::default(), None)
        .await
        .expect_err("leased");
    assert!(held.is_conflict() || held.is_lease_held(), "{held}");
    machines
        .stop(&m.id, &StopRequest::default(), Some(&lease.nonce))
        .await
        .expect("stop");
    machines
        .wait_for_state(&m.id, &[MachineState::Stopped], None, wait)
        .await
        .expect("stopped");
    machines
        .release_lease(&m.id, &lease.nonce)
        .await
        .expect("release");
    machines.start(&m.id, None).await.expect("start");
    machines
        .wait_for_state(&m.id, &[MachineState::Started], None, wait)
        .await
        .expect("restarted");

    let current = machines.get(&m.id).await.expect("get");
    let mut update: UpdateMachineRequest =
        serde_json::from_value(json!({"config": serde_json::to_value(&current.config).unwrap()}))
            .unwrap();
    update.config.image = "codercom/code-server:4.134.0".into();
    let updated = machines.update(&m.id, &update, None).await.expect("update");
    assert_ne!(updated.version, current.version);
    machines
        .wait_for_state(&m.id, &[MachineState::Started], None, wait)
        .await
        .expect("replaced");

    // /wait that cannot be satisfied in time: 408 surfaces as an error.
    let stuck = machines
        .wait(
            &m.id,
            &WaitRequest {
                states: vec![MachineState::Suspended],
                timeout_secs: 1,
                version: None,
            },
        )
        .await;
    assert!(stuck.is_err());

    machines.delete(&m.id, true, None).await.expect("destroy");
    machines
        .wait_for_state(&m.id, &[MachineState::Destroyed], None, wait)
        .await
        .expect("destroyed");
    fly.volumes("client-cycle")
        .delete(&vol.id)
        .await
        .expect("volume delete");
    fly.apps()
        .delete("client-cycle", true)
        .await
        .expect("app delete");
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match fly.apps().get("client-cycle").await {
            Err(e) if e.is_not_found() => break,
            _ => assert!(
                tokio::time::Instant::now() < deadline,
                "app never went away"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let bad: CreateAppRequest =
        serde_json::from_value(json!({"name": "Bad_Name", "org_slug": "personal"})).unwrap();
    let invalid = fly.apps().create(&bad).await.expect_err("bad name");
    assert_eq!(invalid.status(), Some(422));
    sim.shutdown().await;
}

#[tokio::test]
async fn the_client_sees_429_when_it_ignores_the_limits() {
    let sim = Sim::start(SimConfig::default(), "127.0.0.1:0")
        .await
        .unwrap();
    let fly = client(&sim.base_url());
    let mut saw = None;
    for i in 0..6 {
        let app: CreateAppRequest =
            serde_json::from_value(json!({"name": format!("burst-{i}"), "org_slug": "personal"}))
                .unwrap();
        if let Err(e) = fly.apps().create(&app).await {
            saw = Some(e);
            break;
        }
    }
    let err = saw.expect("a 429 within six creates");
    assert!(err.is_rate_limited(), "{err}");
}

#[tokio::test]
async fn exec_and_secrets_with_the_fly_api_client() {
    use fly_api::models::ExecRequest;
    let sim = Sim::start(
        SimConfig {
            rate_limits: false,
            ..SimConfig::default()
        },
        "127.0.0.1:0",
    )
    .await
    .unwrap();
    let fly = client(&sim.base_url());
    let app: CreateAppRequest =
        serde_json::from_value(json!({"name": "client-exec", "org_slug": "personal"})).unwrap();
    fly.apps().create(&app).await.unwrap();
    let volume: CreateVolumeRequest =
        serde_json::from_value(json!({"name": "data", "region": "ams", "size_gb": 1})).unwrap();
    let volume = fly.volumes("client-exec").create(&volume).await.unwrap();
    let machines = fly.machines("client-exec");
    let id = machines
        .create(&machine_request(&volume.id))
        .await
        .unwrap()
        .id;
    machines
        .wait_for_state(&id, &[MachineState::Started], None, Duration::from_secs(30))
        .await
        .unwrap();
    let secrets = fly.secrets("client-exec");
    let version = secrets
        .set([("K".to_string(), fly_api::SecretString::from("v"))].into())
        .await
        .unwrap();
    assert!(version >= 1);
    assert_eq!(secrets.get("K").await.unwrap().name, "K");
    assert!(secrets.get("NOPE").await.unwrap_err().is_not_found());
    machines.restart(&id, None).await.unwrap();
    machines
        .wait_for_state(&id, &[MachineState::Started], None, Duration::from_secs(30))
        .await
        .unwrap();
    let request = ExecRequest {
        command: vec!["printenv".into(), "K".into()],
        timeout: Some(5),
        ..ExecRequest::default()
    };
    let answer = machines.exec(&id, &request).await.unwrap();
    assert_eq!((answer.stdout.as_str(), answer.exit_code), ("v\n", 0));
    assert!(!format!("{answer:?} {request:?}").contains("v\\n"));
    machines
        .stop(&id, &StopRequest::default(), None)
        .await
        .unwrap();
    machines
        .wait_for_state(&id, &[MachineState::Stopped], None, Duration::from_secs(30))
        .await
        .unwrap();
    let refused = machines.exec(&id, &request).await.unwrap_err();
    assert!(refused.is_precondition_failed(), "{refused}");
}
