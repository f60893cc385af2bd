//! The reconciler on demand (`POST /v1/reconcile`) and the idle policy.

use crate::common::server::{Server, assert_error};
use crate::common::{self, assert_sim_empty, start_sim, swarm_at};
use crate::machine_of;
use crate::prometheus::{parse_exposition, value_of};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// `POST /v1/reconcile`: an admin's pass covers everything and is what `/readyz`
/// reports; a user's covers their own workspaces only, and shows and fixes nothing of
/// anyone else's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_on_demand_is_the_whole_pass_for_an_admin_and_ones_own_for_a_user() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await).await;
    let alice = server.token("alice", false).await;
    let bob = server.token("bob", false).await;
    let ops = server.token("ops", true).await;
    let (status, created) = server
        .call(
            Method::POST,
            "/v1/workspaces?wait=60",
            Some(&alice),
            Some(r#"{"name": "drifty", "image": "codercom/code-server:4.106.3"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let created = server.finished(&alice, &created).await;
    let machine_id = created["result"]["workspace"]["machine_id"]
        .as_str()
        .expect("machine")
        .to_owned();

    // The machine stops behind the record's back (code-server's idle exit does this).
    let fly = common::client(&sim.base_url());
    fly.machines("drifty")
        .stop(&machine_id, &fly_api::models::StopRequest::default(), None)
        .await
        .expect("stop");
    fly.machines("drifty")
        .wait_for_state(
            &machine_id,
            &[fly_api::models::MachineState::Stopped],
            None,
            std::time::Duration::from_secs(30),
        )
        .await
        .expect("stopped");

    let (status, body) = server.call(Method::POST, "/v1/reconcile", None, None).await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "token",
    );
    let (status, body) = server
        .call(Method::POST, "/v1/reconcile", Some("swt_not-a-token"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // Bob owns nothing: his pass checks nothing, shows nothing of alice's and leaves
    // her record as it is.
    let (status, report) = server
        .call(Method::POST, "/v1/reconcile", Some(&bob), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report,
        json!({"checked": 0, "pool_slots": 0, "actions": []}),
        "{report}"
    );
    let (_, shown) = server
        .call(Method::GET, "/v1/workspaces/drifty", Some(&alice), None)
        .await;
    assert_eq!(shown["status"], "running", "bob's pass did not touch it");
    assert!(
        server.controller.last_reconcile().is_none(),
        "a user's pass is not the server's pass"
    );

    // Alice's pass finds and fixes her drift.
    let (status, report) = server
        .call(Method::POST, "/v1/reconcile", Some(&alice), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["checked"], 1, "{report}");
    assert_eq!(
        report["actions"],
        json!([{"kind": "status_drift", "name": "drifty", "from": "running", "to": "stopped",
                "reason": "Fly reports the machine stopped"}]),
        "{report}"
    );
    let (_, shown) = server
        .call(Method::GET, "/v1/workspaces/drifty", Some(&alice), None)
        .await;
    assert_eq!(shown["status"], "stopped", "{shown}");

    // The admin's pass is the whole pass, recorded for /readyz.
    let (status, report) = server
        .call(Method::POST, "/v1/reconcile", Some(&ops), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["checked"], 1, "{report}");
    assert_eq!(report["actions"], json!([]), "converged: {report}");
    let (status, ready) = server.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["last_reconcile"]["checked"], 1, "{ready}");
    assert_eq!(ready["last_reconcile"]["converged"], true, "{ready}");

    let (_, deleted) = server
        .call(
            Method::DELETE,
            "/v1/workspaces/drifty?wait=60",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(
        server.finished(&alice, &deleted).await["status"],
        "succeeded"
    );
    assert_sim_empty(&sim);
    server.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_policy_stops_a_workspace_idle_past_its_timeout_and_records_it() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await).await;
    let alice = server.token("alice", false).await;
    let bob = server.token("bob", false).await;
    for name in ["idle-ws", "busy-ws"] {
        let body = format!(
            r#"{{"name": "{name}", "image": "codercom/code-server:4.106.3", "idle_timeout": "90"}}"#
        );
        server.created(&alice, &body).await;
    }

    // Fresh workspaces are not idle long enough, whatever code-server says.
    let pass = server.controller.idle_check_once().await;
    assert_eq!((pass.checked, pass.stopped.len()), (2, 0), "{pass:?}");

    // idle-ws: code-server last saw a request 100 s ago (> 90 s); busy-ws: just now.
    let (app, machine) = machine_of(&server, "idle-ws").await;
    assert!(sim.set_last_heartbeat(&app, &machine, sim.model_now_ms() - 100_000));
    let (busy_app, busy_machine) = machine_of(&server, "busy-ws").await;
    assert!(sim.set_last_heartbeat(&busy_app, &busy_machine, sim.model_now_ms()));
    let pass = server.controller.idle_check_once().await;
    assert_eq!(pass.stopped, ["idle-ws"], "{pass:?}");
    let swarm = server.controller.swarm();
    assert_eq!(
        swarm.show("idle-ws").await.expect("record").status,
        swarm::WorkspaceStatus::Stopped
    );
    assert_eq!(
        swarm.show("busy-ws").await.expect("record").status,
        swarm::WorkspaceStatus::Running
    );

    // The history says the idle policy did it, and why.
    let (_, events) = server
        .call(
            Method::GET,
            "/v1/workspaces/idle-ws/events",
            Some(&alice),
            None,
        )
        .await;
    let last = events
        .as_array()
        .and_then(|list| list.last())
        .expect("an event")
        .clone();
    assert_eq!(
        (&last["actor"], &last["action"], &last["outcome"]),
        (&json!("idle-policy"), &json!("stop"), &json!("succeeded")),
        "{events}"
    );
    assert!(
        last["detail"]["idle_secs"]
            .as_i64()
            .is_some_and(|s| s >= 100),
        "{last}"
    );
    assert_eq!(last["detail"]["idle_timeout_secs"], 90);

    // The last checks are exposed, to their owner only.
    let (status, checks) = server
        .call(Method::GET, "/v1/health", Some(&alice), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{checks}");
    let busy = checks
        .as_array()
        .and_then(|list| list.iter().find(|c| c["workspace"] == "busy-ws"))
        .expect("busy-ws checked")
        .clone();
    assert_eq!(busy["health"]["probe"]["status"], "alive", "{busy}");
    assert!(busy["checked_at"].is_string());
    let (_, none) = server
        .call(Method::GET, "/v1/health", Some(&bob), None)
        .await;
    assert_eq!(none, json!([]));
    let (status, body) = server.call(Method::GET, "/v1/health", None, None).await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "token",
    );

    // A stopped workspace is not checked again; the stop is counted.
    let pass = server.controller.idle_check_once().await;
    assert_eq!((pass.checked, pass.stopped.len()), (1, 0), "{pass:?}");
    let text = server
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    let samples = parse_exposition(&text);
    assert_eq!(value_of(&samples, "swarm_idle_stops_total", &[]), Some(1.0));

    for name in ["idle-ws", "busy-ws"] {
        swarm.delete(name).await.expect("delete");
    }
    assert_sim_empty(&sim);
    server.shutdown().await;
    sim.shutdown().await;
}
