//! A team's workspaces over HTTP: each user sees and changes only their own, and
//! follows a workspace's logs.

use std::sync::Arc;

use crate::common::server::{Server, assert_error};
use crate::common::{assert_sim_empty, start_sim, swarm_at};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_uses_its_workspaces_over_http_and_sees_only_its_own() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await).await;
    let alice = server.token("alice", false).await;
    let bob = server.token("bob", false).await;
    let admin = server.token("ops", true).await;

    // Health needs no token; everything under /v1 does.
    let (status, body) = server.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, _) = server.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    for token in [None, Some("swt_0000"), Some("not-a-token")] {
        let (status, body) = server
            .call(Method::GET, "/v1/workspaces", token, None)
            .await;
        assert_error(
            status,
            &body,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "API token",
        );
    }

    // Create: 202 with an operation at once; the result is the CLI's, password once.
    let (status, operation) = server
        .call(
            Method::POST,
            "/v1/workspaces",
            Some(&alice),
            Some(r#"{"name": "alice-ws", "image": "codercom/code-server:4.106.3"}"#),
        )
        .await;
    assert!(
        status == StatusCode::ACCEPTED || status == StatusCode::OK,
        "{status} {operation}"
    );
    assert_eq!(operation["kind"], "create");
    let done = server.finished(&alice, &operation).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let password = done["result"]["password"].as_str().expect("password once");
    assert_eq!(password.len(), 24);
    assert_eq!(done["result"]["workspace"]["status"], "running");
    assert_eq!(done["result"]["workspace"]["spec"]["owner"], "alice");
    let again = server.finished(&alice, &operation).await;
    assert_eq!(again["result"]["password"], Value::Null, "shown only once");
    let store_file = std::fs::read(dir.path().join("swarm.db")).expect("store");
    assert!(
        !store_file
            .windows(password.len())
            .any(|w| w == password.as_bytes()),
        "the password is not in the store"
    );

    // Bob does not see it, and cannot tell it from a name that does not exist.
    let (status, list) = server
        .call(Method::GET, "/v1/workspaces", Some(&bob), None)
        .await;
    assert_eq!((status, list.clone()), (StatusCode::OK, json!([])));
    let (status, hidden) = server
        .call(Method::GET, "/v1/workspaces/alice-ws", Some(&bob), None)
        .await;
    let (status_missing, missing) = server
        .call(Method::GET, "/v1/workspaces/nobody-ws", Some(&bob), None)
        .await;
    assert_error(
        status,
        &hidden,
        StatusCode::NOT_FOUND,
        "not_found",
        "alice-ws",
    );
    assert_eq!(status_missing, StatusCode::NOT_FOUND);
    assert_eq!(
        hidden["error"].as_str().map(|m| m.replace("alice-ws", "X")),
        missing["error"]
            .as_str()
            .map(|m| m.replace("nobody-ws", "X")),
        "the same answer as for a missing name"
    );
    for (method, path) in [
        (Method::DELETE, "/v1/workspaces/alice-ws"),
        (Method::POST, "/v1/workspaces/alice-ws/stop"),
        (Method::POST, "/v1/workspaces/alice-ws/start"),
        (Method::GET, "/v1/workspaces/alice-ws/health"),
    ] {
        let (status, body) = server.call(method.clone(), path, Some(&bob), None).await;
        assert_error(
            status,
            &body,
            StatusCode::NOT_FOUND,
            "not_found",
            "alice-ws",
        );
    }
    let id = operation["id"].as_str().expect("id");
    let (status, body) = server
        .call(
            Method::GET,
            &format!("/v1/operations/{id}"),
            Some(&bob),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", id);

    // Alice sees it; the admin sees everyone's.
    let (_, list) = server
        .call(Method::GET, "/v1/workspaces", Some(&alice), None)
        .await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let (_, shown) = server
        .call(Method::GET, "/v1/workspaces/alice-ws", Some(&admin), None)
        .await;
    assert_eq!(shown["name"], "alice-ws");
    let (status, health) = server
        .call(
            Method::GET,
            "/v1/workspaces/alice-ws/health",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(
        (status, health["status"].as_str()),
        (StatusCode::OK, Some("healthy"))
    );

    // Stop and start, waiting in the request itself.
    let (status, stopped) = server
        .call(
            Method::POST,
            "/v1/workspaces/alice-ws/stop?wait=60",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    assert_eq!(stopped["status"], "succeeded", "{stopped}");
    let record = server
        .controller
        .swarm()
        .show("alice-ws")
        .await
        .expect("record");
    assert_eq!(record.status, swarm::WorkspaceStatus::Stopped);
    let (status, started) = server
        .call(
            Method::POST,
            "/v1/workspaces/alice-ws/start?wait=60",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(
        (status, started["status"].as_str()),
        (StatusCode::OK, Some("succeeded"))
    );

    // The admin deletes it; nothing is left on Fly.
    let (_, deleting) = server
        .call(
            Method::DELETE,
            "/v1/workspaces/alice-ws",
            Some(&admin),
            None,
        )
        .await;
    let deleted = server.finished(&admin, &deleting).await;
    assert_eq!(deleted["status"], "succeeded", "{deleted}");
    assert_sim_empty(&sim);
    assert_eq!(server.shutdown().await, 0, "no operation left running");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_as_server_sent_events_of_log_lines() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await).await;
    let alice = server.token("alice", false).await;
    let bob = server.token("bob", false).await;
    server
        .created(
            &alice,
            r#"{"name": "logged-ws", "image": "codercom/code-server:4.106.3"}"#,
        )
        .await;
    let path = "/v1/workspaces/logged-ws/logs/stream";
    let (status, body) = server.call(Method::GET, path, None, None).await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "token",
    );
    let (status, body) = server.call(Method::GET, path, Some(&bob), None).await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "not_found",
        "logged-ws",
    );

    let mut response = server
        .http
        .get(format!("{}{path}", server.base))
        .bearer_auth(&alice)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    // Read until one whole `log` event; new lines also come from a restart.
    let restart = {
        let controller = Arc::clone(&server.controller);
        tokio::spawn(async move {
            controller
                .swarm()
                .stop("logged-ws", false)
                .await
                .expect("stop");
            controller.swarm().start("logged-ws").await.expect("start");
        })
    };
    let mut buffer = String::new();
    let event = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            let chunk = response
                .chunk()
                .await
                .expect("read")
                .expect("the stream stays open");
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block = buffer[..end].to_owned();
                buffer.drain(..end + 2);
                if block.lines().any(|l| l == "event: log") {
                    return block;
                }
            }
        }
    })
    .await
    .expect("a log event within a minute");
    let data: String = event
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    let line: Value = serde_json::from_str(&data).expect("JSON data");
    assert!(line["message"].is_string(), "{line}");
    assert!(line["timestamp"].is_string(), "{line}");
    drop(response);
    restart.await.expect("restart");
    server
        .controller
        .swarm()
        .delete("logged-ws")
        .await
        .expect("delete");
    assert_sim_empty(&sim);
    server.shutdown().await;
    sim.shutdown().await;
}
