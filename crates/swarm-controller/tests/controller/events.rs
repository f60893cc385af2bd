//! The event history: who did what and when, the reconciler included.

use crate::common::server::{Server, assert_error};
use crate::common::{assert_sim_empty, start_sim, swarm_at};
use crate::machine_of;
use reqwest::{Method, StatusCode};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_history_says_who_did_what_and_when_including_the_reconciler() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await).await;
    let alice = server.token("alice", false).await;
    let bob = server.token("bob", false).await;
    let admin = server.token("ops", true).await;
    let created = server
        .created(
            &alice,
            r#"{"name": "history-ws", "image": "codercom/code-server:4.106.3"}"#,
        )
        .await;
    let password = created["result"]["password"]
        .as_str()
        .expect("password")
        .to_owned();
    for (path, token) in [
        ("/v1/workspaces/history-ws/stop?wait=60", &alice),
        ("/v1/workspaces/history-ws/start?wait=60", &admin),
    ] {
        let (status, body) = server.call(Method::POST, path, Some(token), None).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("succeeded")),
            "{body}"
        );
    }

    let (status, events) = server
        .call(
            Method::GET,
            "/v1/workspaces/history-ws/events",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    let events = events.as_array().expect("a list").clone();
    let summary: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap_or_default(),
                e["action"].as_str().unwrap_or_default(),
                e["outcome"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("alice", "create", "succeeded"),
            ("alice", "stop", "succeeded"),
            ("ops", "start", "succeeded"),
        ]
    );
    assert_eq!(events[0]["detail"]["operation"], created["id"]);
    for event in &events {
        assert_eq!(event["workspace"], "history-ws");
        let at = event["at"].as_str().expect("at");
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .expect("RFC 3339");
        assert!(event["detail"]["duration_ms"].is_u64(), "{event}");
        assert!(
            event["detail"]["token"]
                .as_str()
                .is_some_and(|id| id.starts_with("tok_")),
            "the token's public id, not the token: {event}"
        );
    }
    let text = serde_json::to_string(&events).expect("text");
    assert!(!text.contains(&password), "no password in events");
    assert!(!text.contains(&alice) && !text.contains(&admin), "no token");

    // Newest N, oldest first; bad input names the field; others see nothing.
    let (_, newest) = server
        .call(
            Method::GET,
            "/v1/workspaces/history-ws/events?limit=1",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(newest[0]["action"], "start", "{newest}");
    assert_eq!(newest.as_array().map(Vec::len), Some(1));
    let (status, body) = server
        .call(
            Method::GET,
            "/v1/workspaces/history-ws/events?limit=0",
            Some(&alice),
            None,
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        "limit",
    );
    let (status, body) = server
        .call(
            Method::GET,
            "/v1/workspaces/history-ws/events",
            Some(&bob),
            None,
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "not_found",
        "history-ws",
    );
    let (status, body) = server
        .call(Method::GET, "/v1/workspaces/history-ws/events", None, None)
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "token",
    );

    // The machine stops behind the controller's back: the reconciler puts the record
    // in line and says so in the history, once.
    let (app, machine) = machine_of(&server, "history-ws").await;
    let provider = server.controller.swarm().provider();
    swarm::Provider::stop_machine(provider, &app, &machine, false)
        .await
        .expect("stop on Fly");
    swarm::Provider::wait_machine(
        provider,
        &app,
        &machine,
        swarm::MachineState::Stopped,
        std::time::Duration::from_secs(30),
    )
    .await
    .expect("stopped");
    server.controller.reconcile_once().await;
    server.controller.reconcile_once().await;
    let (_, events) = server
        .call(
            Method::GET,
            "/v1/workspaces/history-ws/events",
            Some(&alice),
            None,
        )
        .await;
    let automatic: Vec<&Value> = events
        .as_array()
        .expect("list")
        .iter()
        .filter(|e| e["actor"] == "reconciler")
        .collect();
    assert_eq!(automatic.len(), 1, "{events}");
    assert_eq!(automatic[0]["action"], "reconcile");
    assert_eq!(automatic[0]["outcome"], "succeeded");
    assert_eq!(automatic[0]["detail"]["kind"], "status_drift", "{events}");
    assert_eq!(automatic[0]["detail"]["to"], "stopped", "{events}");

    server
        .controller
        .swarm()
        .delete("history-ws")
        .await
        .expect("delete");
    assert_sim_empty(&sim);
    server.shutdown().await;
    sim.shutdown().await;
}
