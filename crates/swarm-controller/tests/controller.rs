//! The Swarm Controller over real HTTP: a server on 127.0.0.1:0 in front of a real
//! store and an in-process fly-sim, called with a real HTTP client.

mod common;

use std::sync::Arc;

use common::server::{Server, assert_error};
use common::{assert_sim_empty, start_sim, swarm_at};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use swarm_controller::Quotas;

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
async fn bad_requests_are_refused_with_the_field_named_and_change_nothing() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await).await;
    let alice = server.token("alice", false).await;
    let requests_before = sim.stats().requests_total;

    for (body, status, code, needle) in [
        (
            r#"{"name": "Bad_Name"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "name",
        ),
        (
            r#"{"name": "ok-name", "storage": 9999}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "storage",
        ),
        (
            r#"{"name": "ok-name", "region": "mars"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "region",
        ),
        (
            r#"{"name": "ok-name", "cpus": "two"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "cpus",
        ),
        (
            r#"{"name": "ok-name", "owner": "bob"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "owner",
        ),
        (
            r#"{"name": "ok-name", "env": {"A": "x\ny"}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "env",
        ),
        (
            r#"{"name": "#,
            StatusCode::BAD_REQUEST,
            "bad_request",
            "JSON",
        ),
    ] {
        let (got, answer) = server
            .call(Method::POST, "/v1/workspaces", Some(&alice), Some(body))
            .await;
        assert_error(got, &answer, status, code, needle);
    }
    // A bad query is bad input like a bad body: 422, the parameter named in `fields`.
    for (path, field) in [
        ("/v1/workspaces/x/stop?force=maybe", "force"),
        ("/v1/workspaces/x/start?wait=-1", "wait"),
        ("/v1/workspaces?color=blue", "color"),
    ] {
        let (status, answer) = server.call(Method::POST, path, Some(&alice), None).await;
        assert_error(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            field,
        );
        assert_eq!(answer["fields"][0]["field"], field, "{answer}");
    }

    // Unknown routes and methods: JSON errors too.
    let (status, body) = server
        .call(Method::GET, "/v2/workspaces", Some(&alice), None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found", "route");
    let (status, body) = server
        .call(Method::PUT, "/v1/workspaces", Some(&alice), None)
        .await;
    assert_error(
        status,
        &body,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method",
    );

    assert_eq!(sim.stats().requests_total, requests_before, "no Fly call");
    assert!(
        server
            .controller
            .swarm()
            .list()
            .await
            .expect("list")
            .is_empty()
    );
    server.shutdown().await;
    sim.shutdown().await;
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_or_resize_past_a_users_quota_is_refused_before_anything_runs() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let quotas = Quotas {
        workspaces: Some(2),
        cpus: Some(3),
        memory: None,
        storage: Some(25),
        budget: None,
    };
    let server = Server::start_with(
        swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await,
        quotas,
    )
    .await;
    let alice = server.token("alice", false).await;
    let bob = server.token("bob", false).await;
    let create = |name: &str, extra: &str| {
        format!(r#"{{"name": "{name}", "image": "codercom/code-server:4.106.3"{extra}}}"#)
    };
    server.created(&alice, &create("a1", "")).await;
    let requests = sim.stats().requests_total;
    // 10 + 20 GB > 25 GB.
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/workspaces",
            Some(&alice),
            Some(&create("a2", r#", "storage": 20"#)),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "quota_exceeded",
        "quotas.storage",
    );
    // 1 + 4 CPUs > 3.
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/workspaces",
            Some(&alice),
            Some(&create("a2", r#", "cpus": 4"#)),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "quota_exceeded",
        "quotas.cpus",
    );
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/workspaces/a1/resize",
            Some(&alice),
            Some(r#"{"cpus": 4}"#),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "quota_exceeded",
        "quotas.cpus",
    );
    assert_eq!(
        sim.stats().requests_total,
        requests,
        "refused before any Fly call"
    );
    // Within the quota: a second one; a third is one workspace too many.
    server.created(&alice, &create("a2", "")).await;
    let (status, body) = server
        .call(
            Method::POST,
            "/v1/workspaces",
            Some(&alice),
            Some(&create("a3", "")),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "quota_exceeded",
        "quotas.workspaces",
    );
    // Quotas are per user: bob has his own.
    server.created(&bob, &create("b1", "")).await;
    for name in ["a1", "a2", "b1"] {
        server
            .controller
            .swarm()
            .delete(name)
            .await
            .expect("delete");
    }
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

/// One sample of the Prometheus text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: std::collections::BTreeMap<String, String>,
    value: f64,
}

/// A strict reader of the Prometheus text exposition format (0.0.4): `# HELP` and
/// `# TYPE` lines, then samples of declared metric families, label values quoted
/// and escaped, values that parse as floats; anything else fails the test.
fn parse_exposition(text: &str) -> Vec<Sample> {
    fn valid_name(name: &str) -> bool {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    assert!(text.ends_with('\n'), "the text ends with a newline");
    let mut types: std::collections::BTreeMap<String, String> = Default::default();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (keyword, name, tail) = (parts.next(), parts.next(), parts.next());
            let name = name.unwrap_or_else(|| panic!("no metric name: {line:?}"));
            assert!(valid_name(name), "{line:?}");
            match keyword {
                Some("HELP") => assert!(tail.is_some_and(|t| !t.is_empty()), "{line:?}"),
                Some("TYPE") => {
                    let kind = tail.unwrap_or_default();
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                        "{line:?}"
                    );
                    assert!(
                        types.insert(name.to_owned(), kind.to_owned()).is_none(),
                        "TYPE given twice: {line:?}"
                    );
                }
                _ => panic!("unknown comment line {line:?}"),
            }
            continue;
        }
        assert!(!line.is_empty() && !line.starts_with('#'), "{line:?}");
        let name_end = line
            .find(['{', ' '])
            .unwrap_or_else(|| panic!("no value: {line:?}"));
        let name = &line[..name_end];
        assert!(valid_name(name), "{line:?}");
        let mut labels = std::collections::BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(after) = rest.strip_prefix('{') {
            let mut chars = after.char_indices().peekable();
            loop {
                let (start, _) = *chars.peek().unwrap_or_else(|| panic!("{line:?}"));
                if after[start..].starts_with('}') {
                    rest = &after[start + 1..];
                    break;
                }
                let eq = after[start..]
                    .find("=\"")
                    .unwrap_or_else(|| panic!("label without =\": {line:?}"));
                let key = &after[start..start + eq];
                assert!(valid_name(key) && !key.starts_with("__"), "{line:?}");
                for _ in 0..eq + 2 {
                    chars.next();
                }
                let mut value = String::new();
                loop {
                    match chars
                        .next()
                        .unwrap_or_else(|| panic!("open quote: {line:?}"))
                    {
                        (_, '"') => break,
                        (_, '\\') => match chars.next() {
                            Some((_, '\\')) => value.push('\\'),
                            Some((_, '"')) => value.push('"'),
                            Some((_, 'n')) => value.push('\n'),
                            other => panic!("bad escape {other:?}: {line:?}"),
                        },
                        (_, c) => value.push(c),
                    }
                }
                assert!(
                    labels.insert(key.to_owned(), value).is_none(),
                    "label twice: {line:?}"
                );
                match chars.peek() {
                    Some((_, ',')) => {
                        chars.next();
                    }
                    Some((_, '}')) => {}
                    other => panic!("unexpected {other:?}: {line:?}"),
                }
            }
        }
        let value_text = rest
            .strip_prefix(' ')
            .unwrap_or_else(|| panic!("no space before the value: {line:?}"));
        assert!(
            !value_text.contains(' '),
            "timestamps are not used: {line:?}"
        );
        let value = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            number => number
                .parse()
                .unwrap_or_else(|e| panic!("value {number:?}: {e}: {line:?}")),
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.get(*base).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "sample before its TYPE: {line:?}"
        );
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    samples
}

fn value_of(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_workspaces_fly_calls_and_operation_durations() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await).await;
    let alice = server.token("alice", false).await;
    server
        .created(
            &alice,
            r#"{"name": "metered-ws", "image": "codercom/code-server:4.106.3"}"#,
        )
        .await;

    // No token needed, like /healthz.
    let response = server
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.expect("body");
    let samples = parse_exposition(&text);

    assert_eq!(
        value_of(&samples, "swarm_workspaces", &[("state", "running")]),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value_of(&samples, "swarm_workspaces", &[("state", "stopped")]),
        Some(0.0)
    );
    let machine_creates = value_of(
        &samples,
        "swarm_fly_api_calls_total",
        &[
            ("endpoint", "POST /v1/apps/{app}/machines"),
            ("status", "200"),
        ],
    )
    .expect("machine creates counted");
    assert!(machine_creates >= 1.0, "{text}");
    let count = value_of(
        &samples,
        "swarm_operation_duration_seconds_count",
        &[("kind", "create"), ("outcome", "succeeded")],
    );
    assert_eq!(count, Some(1.0), "{text}");
    let infinite = value_of(
        &samples,
        "swarm_operation_duration_seconds_bucket",
        &[("kind", "create"), ("outcome", "succeeded"), ("le", "+Inf")],
    );
    assert_eq!(infinite, Some(1.0));
    let sum = value_of(
        &samples,
        "swarm_operation_duration_seconds_sum",
        &[("kind", "create"), ("outcome", "succeeded")],
    )
    .expect("sum");
    assert!(sum > 0.0 && sum < 60.0, "{sum}");
    let buckets: Vec<f64> = samples
        .iter()
        .filter(|s| s.name == "swarm_operation_duration_seconds_bucket")
        .map(|s| s.value)
        .collect();
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "cumulative");
    // Bounded labels: no workspace, app or machine names; nothing secret.
    assert!(!text.contains("metered-ws"), "{text}");
    assert!(!text.contains(&alice), "{text}");
    server.shutdown().await;
    sim.shutdown().await;
}

/// The machine (app, id) of a workspace.
async fn machine_of(server: &Server, name: &str) -> (String, String) {
    let record = server.controller.swarm().show(name).await.expect("record");
    (
        record.app.expect("app"),
        record.machine_id.expect("machine"),
    )
}

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
