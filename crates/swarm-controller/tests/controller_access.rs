//! The controller's exec and secrets routes: owner only (another user's workspace
//! answers 404, as a missing one), bodies refused as 422 naming the field, and the
//! secret's value never in an answer.

mod common;

use common::server::{Server, assert_error};
use common::{start_sim, swarm_at};
use reqwest::{Method, StatusCode};

const CANARY: &str = "canary-ctrl-3d9e1f0b";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_and_secrets_are_the_owners_and_bodies_are_checked() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await).await;
    let alice = server.token("alice", false).await;
    let bob = server.token("bob", false).await;
    server
        .created(
            &alice,
            r#"{"name": "ws", "image": "codercom/code-server:4.106.3"}"#,
        )
        .await;

    let (status, ran) = server
        .call(
            Method::POST,
            "/v1/workspaces/ws/exec",
            Some(&alice),
            Some(r#"{"command": ["sh", "-c", "exit 3"]}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ran}");
    assert_eq!(
        (ran["exit_code"].clone(), ran["started"].clone()),
        (3.into(), false.into())
    );

    for (body, field) in [
        (r#"{"command": []}"#, "command"),
        (r#"{"command": ["true"], "timeout": 0}"#, "timeout"),
        (r#"{"command": ["true"], "shell": true}"#, "shell"),
        (r#"{"command": "true"}"#, "command"),
    ] {
        let (status, refused) = server
            .call(
                Method::POST,
                "/v1/workspaces/ws/exec",
                Some(&alice),
                Some(body),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {refused}"
        );
        assert_eq!(refused["code"], "invalid", "{refused}");
        let named = refused["fields"]
            .as_array()
            .is_some_and(|fields| fields.iter().any(|f| f["field"] == field));
        assert!(named, "{body}: {refused}");
    }

    let put = format!(r#"{{"value": "{CANARY}"}}"#);
    let (status, set) = server
        .call(
            Method::PUT,
            "/v1/workspaces/ws/secrets/API_TOKEN",
            Some(&alice),
            Some(&put),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set["restart_needed"], true, "{set}");
    assert!(!set.to_string().contains(CANARY));
    let (status, bad) = server
        .call(
            Method::PUT,
            "/v1/workspaces/ws/secrets/9LIVES",
            Some(&alice),
            Some(&put),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    assert_eq!(bad["fields"][0]["field"], "key", "{bad}");
    assert!(!bad.to_string().contains(CANARY));
    let (status, listed) = server
        .call(Method::GET, "/v1/workspaces/ws/secrets", Some(&alice), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["secrets"][0]["key"], "API_TOKEN", "{listed}");
    assert!(!listed.to_string().contains(CANARY));

    // Bob sees nothing of it and changes nothing.
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/workspaces/ws/exec",
            Some(r#"{"command": ["true"]}"#),
        ),
        (Method::GET, "/v1/workspaces/ws/secrets", None),
        (
            Method::PUT,
            "/v1/workspaces/ws/secrets/API_TOKEN",
            Some(r#"{"value": "x"}"#),
        ),
        (Method::DELETE, "/v1/workspaces/ws/secrets/API_TOKEN", None),
    ] {
        let (status, refused) = server.call(method.clone(), path, Some(&bob), body).await;
        assert_error(
            status,
            &refused,
            StatusCode::NOT_FOUND,
            "not_found",
            "no workspace named ws",
        );
    }
    let (status, _) = server
        .call(Method::GET, "/v1/workspaces/ws/secrets", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, gone) = server
        .call(
            Method::DELETE,
            "/v1/workspaces/ws/secrets/API_TOKEN",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{gone}");
    let (status, missing) = server
        .call(
            Method::DELETE,
            "/v1/workspaces/ws/secrets/API_TOKEN",
            Some(&alice),
            None,
        )
        .await;
    assert_error(
        status,
        &missing,
        StatusCode::NOT_FOUND,
        "not_found",
        "no secret named API_TOKEN",
    );

    let (status, stopped) = server
        .call(
            Method::POST,
            "/v1/workspaces/ws/stop?wait=60",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{stopped}");
    let (status, refused) = server
        .call(
            Method::POST,
            "/v1/workspaces/ws/exec",
            Some(&alice),
            Some(r#"{"command": ["true"]}"#),
        )
        .await;
    assert_error(
        status,
        &refused,
        StatusCode::CONFLICT,
        "invalid_state",
        "--start",
    );
    let (status, woke) = server
        .call(
            Method::POST,
            "/v1/workspaces/ws/exec",
            Some(&alice),
            Some(r#"{"command": ["echo", "up"], "start": true, "timeout": 30}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{woke}");
    assert_eq!(
        (woke["stdout"].clone(), woke["started"].clone()),
        ("up\n".into(), true.into())
    );
    server.shutdown().await;
}
