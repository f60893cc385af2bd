//! Every route's answers, and the OpenAPI document that lists them.

use crate::common::server::{Server, assert_error};
use crate::common::{assert_sim_empty, start_sim, swarm_at};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Every route: unauthenticated 401; another user's workspace 404; bad input 422 (or
/// 400) naming the field; and success, with the result the CLI would print.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_401_404_for_others_422_for_bad_input_and_succeeds() {
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

    // Nothing changed yet: no earlier machine config to go back to.
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/workspaces/ws/machine-rollback?wait=60",
            Some(&alice),
            None,
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        "machine",
    );

    // (method, path, good body, bad body and the field it must name)
    type Route<'a> = (Method, &'a str, Option<&'a str>, Option<(&'a str, &'a str)>);
    let routes: &[Route<'_>] = &[
        (Method::GET, "/v1/workspaces/ws", None, None),
        (Method::GET, "/v1/workspaces/ws/health", None, None),
        (Method::GET, "/v1/workspaces/ws/logs?lines=5", None, None),
        (Method::GET, "/v1/workspaces/ws/versions", None, None),
        (Method::GET, "/v1/workspaces/ws/snapshots", None, None),
        (
            Method::POST,
            "/v1/workspaces/ws/resize?wait=60",
            Some(r#"{"cpus": 2}"#),
            Some((r#"{"storage": 1}"#, "storage")),
        ),
        // Undoes the resize above.
        (
            Method::POST,
            "/v1/workspaces/ws/machine-rollback?wait=60",
            None,
            None,
        ),
        (
            Method::POST,
            "/v1/workspaces/ws/update?wait=60",
            Some(r#"{"image": "codercom/code-server:4.107.0"}"#),
            Some((r#"{"image": "no spaces allowed"}"#, "image")),
        ),
        (
            Method::POST,
            "/v1/workspaces/ws/rollback?wait=60",
            None,
            Some((r#"{"to": 99}"#, "version")),
        ),
        (
            Method::POST,
            "/v1/workspaces/ws/snapshots?wait=60",
            None,
            None,
        ),
        (
            Method::POST,
            "/v1/workspaces/ws/move?wait=60",
            Some(r#"{"region": "fra"}"#),
            Some((r#"{"region": "mars"}"#, "region")),
        ),
        (
            Method::POST,
            "/v1/workspaces/ws/password?wait=60",
            None,
            None,
        ),
        // Suspended here; the stop below discards the snapshot.
        (
            Method::POST,
            "/v1/workspaces/ws/suspend?wait=60",
            None,
            None,
        ),
        (
            Method::POST,
            "/v1/workspaces/ws/stop?wait=60",
            None,
            Some(("", "force")),
        ),
        (Method::POST, "/v1/workspaces/ws/start?wait=60", None, None),
    ];
    for (method, path, good, bad) in routes {
        let (status, body) = server.call(method.clone(), path, None, *good).await;
        assert_error(
            status,
            &body,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "token",
        );
        let (status, body) = server.call(method.clone(), path, Some(&bob), *good).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", "ws");
        if let Some((bad_body, field)) = bad {
            let (status, body) = if bad_body.is_empty() {
                let bad_path = format!("{path}&force=perhaps");
                server
                    .call(method.clone(), &bad_path, Some(&alice), None)
                    .await
            } else {
                server
                    .call(method.clone(), path, Some(&alice), Some(bad_body))
                    .await
            };
            assert!(
                status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST,
                "{path}: {status} {body}"
            );
            assert!(
                body["error"].as_str().is_some_and(|e| e.contains(field)),
                "{path}: {body}"
            );
        }
        let (status, body) = server.call(method.clone(), path, Some(&alice), *good).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        if *method == Method::POST {
            assert_eq!(body["status"], "succeeded", "{path}: {body}");
        }
        if path.contains("/resize") {
            assert_eq!(
                body["result"]["workspace"]["spec"]["guest"]["cpus"], 2,
                "{body}"
            );
        }
        if path.contains("/machine-rollback") {
            assert_eq!(
                body["result"]["workspace"]["spec"]["guest"]["cpus"], 1,
                "{body}"
            );
            assert_eq!(body["result"]["from"]["guest"]["cpus"], 2, "{body}");
        }
    }
    let record = server.controller.swarm().show("ws").await.expect("record");
    assert_eq!(record.spec.region, "fra", "moved");
    assert_eq!(record.image_versions.len(), 3, "updated and rolled back");

    // Restore from the snapshot taken above.
    let (_, snapshots) = server
        .call(
            Method::GET,
            "/v1/workspaces/ws/snapshots",
            Some(&alice),
            None,
        )
        .await;
    let snapshot = snapshots
        .as_array()
        .and_then(|list| list.last())
        .and_then(|s| s["id"].as_str())
        .expect("a snapshot")
        .to_owned();
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/workspaces/ws/restore?wait=60",
            Some(&alice),
            Some(r#"{"snapshot": "not a snapshot id"}"#),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        "snapshot",
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/workspaces/ws/restore?wait=60",
            Some(&alice),
            Some(&format!(r#"{{"snapshot": "{snapshot}"}}"#)),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("succeeded")),
        "{body}"
    );

    let (_, deleted) = server
        .call(
            Method::DELETE,
            "/v1/workspaces/ws?wait=60",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(deleted["status"], "succeeded", "{deleted}");
    assert_sim_empty(&sim);
    server.shutdown().await;
    sim.shutdown().await;
}

/// The served OpenAPI document parses as OpenAPI 3 and lists exactly the routes the
/// router answers; each listed route is really routed (not the 404 fallback).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route_and_nothing_else() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await).await;
    let text = server
        .http
        .get(format!("{}/v1/openapi.json", server.base))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    let parsed = oas3::from_json(&text).expect("a valid OpenAPI 3 document");
    assert!(parsed.openapi.starts_with("3."), "{}", parsed.openapi);
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        doc,
        serde_json::to_value(swarm_controller::openapi()).expect("doc")
    );

    let routes = server.controller.routes();
    assert!(routes.len() >= 20, "{routes:?}");
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    let mut served: Vec<(String, String)> = routes
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served, "the document and the router disagree");

    // Each listed route reaches a handler: a token-less call gets 401 or 200, never
    // the fallback's "no such route".
    for (method, path) in &routes {
        let url = format!(
            "{}{}",
            server.base,
            path.replace("{name}", "x").replace("{id}", "op_x")
        );
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let response = server
            .http
            .request(method, &url)
            .send()
            .await
            .expect("request");
        let status = response.status();
        let body = response.text().await.expect("body");
        assert!(!body.contains("no such route"), "{path}: {status} {body}");
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::OK,
            "{path}: {status} {body}"
        );
    }
    server.shutdown().await;
    sim.shutdown().await;
}
