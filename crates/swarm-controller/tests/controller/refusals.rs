//! Requests refused before anything runs: bad input naming the field, and quotas.

use crate::common::server::{Server, assert_error};
use crate::common::{assert_sim_empty, start_sim, swarm_at};
use reqwest::{Method, StatusCode};
use swarm_controller::Quotas;

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
