//! Quotas hold under concurrent requests, and the controller's refusals are uniform:
//! parallel creates and resizes from one user never take them past a limit (checked in
//! the store transaction that records each one), the loser of a name race hears 409 at
//! once, every 422 names its field, an oversized body is 413, and the `Bearer` scheme
//! is read in any letter case.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::server::Server;
use common::{start_sim, swarm_at};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use swarm::quota::QuotaGuard;
use swarm::store::OperationKind;
use swarm::{CreateOptions, SqliteStore, Store, StoreError, WorkspaceRecord, WorkspaceStatus};
use swarm_controller::{Quotas, Usage};

/// Samples the user's live usage in the store until stopped; the largest seen.
struct Watch {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Usage>,
}

impl Watch {
    fn start(server: &Server, user: &'static str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let controller = Arc::clone(&server.controller);
        let task = {
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut most = Usage::default();
                while !stop.load(Ordering::Relaxed) {
                    let records = controller.swarm().list().await.expect("list");
                    most = most.max(Usage::of_user(&records, user));
                    tokio::task::yield_now().await;
                }
                most
            })
        };
        Self { stop, task }
    }

    async fn most(self) -> Usage {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("watch")
    }
}

/// Sends `requests` at once; each answer's status and body.
async fn all_at_once(
    server: &Arc<Server>,
    token: &str,
    requests: Vec<(Method, String, Option<String>)>,
) -> Vec<(StatusCode, Value)> {
    let calls = requests.into_iter().map(|(method, path, body)| {
        let server = Arc::clone(server);
        let token = token.to_owned();
        tokio::spawn(async move {
            server
                .call(method, &path, Some(&token), body.as_deref())
                .await
        })
    });
    futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|answer| answer.expect("request task"))
        .collect()
}

/// Waits for each accepted operation; the finished views.
async fn ends(server: &Server, token: &str, answers: &[(StatusCode, Value)]) -> Vec<Value> {
    let mut ends = Vec::new();
    for (status, body) in answers {
        if status.is_success() {
            ends.push(server.finished(token, body).await);
        }
    }
    ends
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_creates_from_one_user_never_pass_the_quota() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let quotas = Quotas {
        workspaces: Some(3),
        ..Quotas::default()
    };
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let server = Arc::new(Server::start_with(swarm, quotas).await);
    let alice = server.token("alice", false).await;

    let watch = Watch::start(&server, "alice");
    let requests = (0..50)
        .map(|i| {
            let body = json!({ "name": format!("burst-{i}") }).to_string();
            (Method::POST, "/v1/workspaces".to_owned(), Some(body))
        })
        .collect();
    let answers = all_at_once(&server, &alice, requests).await;
    let accepted = answers.iter().filter(|(s, _)| s.is_success()).count();
    let refused: Vec<_> = answers
        .iter()
        .filter(|(status, _)| !status.is_success())
        .collect();
    for (status, body) in &refused {
        assert_eq!(*status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["code"], "quota_exceeded", "{body}");
    }
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| s.as_u16()).collect();
    assert_eq!((accepted, refused.len()), (3, 47), "{statuses:?}");
    for end in ends(&server, &alice, &answers).await {
        assert_eq!(end["status"], "succeeded", "{end}");
    }
    let most = watch.most().await;
    assert_eq!(most.workspaces, 3, "the most alice ever had: {most:?}");
    let records = server.controller.swarm().list().await.expect("list");
    assert_eq!(Usage::of_user(&records, "alice").workspaces, 3);
    assert_eq!(sim.stats().apps, 3, "one Fly app per admitted create");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_resizes_from_one_user_never_pass_the_quota() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // Three 1-CPU workspaces; 5 CPUs allow two of them to double, not all three.
    let quotas = Quotas {
        cpus: Some(5),
        ..Quotas::default()
    };
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let server = Arc::new(Server::start_with(swarm, quotas).await);
    let alice = server.token("alice", false).await;
    for name in ["r-0", "r-1", "r-2"] {
        let body = json!({ "name": name, "cpus": 1 }).to_string();
        server.created(&alice, &body).await;
    }

    let watch = Watch::start(&server, "alice");
    let requests = (0..50)
        .map(|i| {
            let path = format!("/v1/workspaces/r-{}/resize", i % 3);
            let cpus = if i % 5 == 4 { 1 } else { 2 };
            let body = json!({ "cpus": cpus }).to_string();
            (Method::POST, path, Some(body))
        })
        .collect();
    let answers = all_at_once(&server, &alice, requests).await;
    let mut quota_refusals = answers
        .iter()
        .filter(|(status, body)| {
            *status == StatusCode::FORBIDDEN && body["code"] == "quota_exceeded"
        })
        .count();
    for (status, body) in &answers {
        assert!(
            status.is_success()
                || (*status == StatusCode::FORBIDDEN && body["code"] == "quota_exceeded"),
            "{status}: {body}"
        );
    }
    for end in ends(&server, &alice, &answers).await {
        match end["status"].as_str() {
            Some("succeeded") => {}
            // Past the controller's quick check while another resize was still under
            // way: refused by the store's check, in the resize's intent transaction.
            // Or queued behind the workspace's lock longer than it waits.
            Some("failed") if end["error"]["code"] == "quota_exceeded" => quota_refusals += 1,
            Some("failed") if end["error"]["code"] == "busy" => {}
            _ => panic!("{end}"),
        }
    }
    let most = watch.most().await;
    assert!(most.cpus <= 5, "alice had {} CPUs at one point", most.cpus);
    assert!(quota_refusals > 0, "some resize must have been refused");
    let records = server.controller.swarm().list().await.expect("list");
    let usage = Usage::of_user(&records, "alice");
    assert!(usage.cpus <= 5, "{usage:?}");
    // The machines on Fly agree with the records.
    let mut on_fly = 0;
    for record in &records {
        let machine = record.machine_id.as_deref().expect("machine");
        let machine = server
            .controller
            .swarm()
            .provider()
            .client()
            .machines(record.app_name())
            .get(machine)
            .await
            .expect("machine on Fly");
        on_fly += machine
            .config
            .and_then(|config| config.guest)
            .and_then(|guest| guest.cpus)
            .expect("guest cpus");
    }
    assert_eq!(u64::from(on_fly), u64::from(usage.cpus));
    sim.shutdown().await;
}

/// The store check itself, from two handles on one file (two processes, or replicas):
/// 20 inserts at once for one user with room for 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_admits_no_more_than_the_quota_across_two_handles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("swarm.db");
    let endpoint = "http://127.0.0.1:1";
    let one = Arc::new(SqliteStore::open(&path, endpoint).await.expect("open"));
    let two = Arc::new(SqliteStore::open(&path, endpoint).await.expect("open"));
    let guard = QuotaGuard {
        user: "alice".to_owned(),
        quotas: Quotas {
            workspaces: Some(3),
            ..Quotas::default()
        },
    };
    let config = swarm::SwarmConfig::default();
    let admitted = Arc::new(AtomicU64::new(0));
    let inserts = (0..20).map(|i| {
        let store = Arc::clone(if i % 2 == 0 { &one } else { &two });
        let guard = guard.clone();
        let admitted = Arc::clone(&admitted);
        let options = CreateOptions {
            name: format!("w-{i}"),
            owner: Some("alice".to_owned()),
            ..CreateOptions::default()
        };
        let spec = swarm::validate::validate_create(&options, &config)
            .expect("valid")
            .spec;
        tokio::spawn(async move {
            let record = WorkspaceRecord::new(
                spec,
                WorkspaceStatus::Creating,
                time::OffsetDateTime::now_utc(),
            );
            let intent = [("intent", json!({}))];
            match store
                .insert_workspace_and_begin(
                    &record,
                    OperationKind::Create,
                    "test",
                    &intent,
                    Some(&guard),
                )
                .await
            {
                Ok(_) => {
                    admitted.fetch_add(1, Ordering::Relaxed);
                }
                Err(StoreError::QuotaExceeded(exceeded)) => assert_eq!(exceeded.key, "workspaces"),
                Err(other) => panic!("{other}"),
            }
        })
    });
    for insert in futures::future::join_all(inserts).await {
        insert.expect("insert task");
    }
    assert_eq!(admitted.load(Ordering::Relaxed), 3);
    let live = one.list_workspaces(false).await.expect("list");
    assert_eq!(live.len(), 3);
    // A refused insert wrote nothing: no operation without its record.
    let unfinished = one.unfinished_operations().await.expect("journal");
    assert_eq!(unfinished.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loser_of_a_name_race_hears_409_name_taken_at_once() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let server = Arc::new(Server::start(swarm).await);
    let alice = server.token("alice", false).await;
    let body = json!({ "name": "contested" }).to_string();
    let requests = (0..10)
        .map(|_| {
            (
                Method::POST,
                "/v1/workspaces".to_owned(),
                Some(body.clone()),
            )
        })
        .collect();
    let answers = all_at_once(&server, &alice, requests).await;
    let winners = answers.iter().filter(|(s, _)| s.is_success()).count();
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| s.as_u16()).collect();
    assert_eq!(winners, 1, "{statuses:?}");
    for (status, body) in answers.iter().filter(|(s, _)| !s.is_success()) {
        assert_eq!(*status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["code"], "name_taken", "{body}");
    }
    let end = ends(&server, &alice, &answers).await;
    assert_eq!(end[0]["status"], "succeeded", "{}", end[0]);
    assert_eq!(sim.stats().apps, 1);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_one_shape_and_bearer_is_read_in_any_case() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let server = Server::start(swarm).await;
    let alice = server.token("alice", false).await;
    server.created(&alice, r#"{"name": "one"}"#).await;
    let requests_before = sim.stats().requests_total;

    // 422: always `fields`, naming the field; never a Rust type name.
    for (path, body, field) in [
        ("/v1/workspaces", r#"{"name": "two", "cpus": -1}"#, "cpus"),
        (
            "/v1/workspaces",
            r#"{"name": "two", "memory": 1.5}"#,
            "memory",
        ),
        ("/v1/workspaces", r#"{"name": 2}"#, "name"),
        ("/v1/workspaces", r#"{"name": "two", "env": []}"#, "env"),
        ("/v1/workspaces", r#"{"cpus": 1}"#, "name"),
        ("/v1/workspaces", r#"{"name": "Bad_Name"}"#, "name"),
        ("/v1/workspaces", r#"[]"#, "body"),
        ("/v1/workspaces/one/resize", r#"{"cpus": -1}"#, "cpus"),
        ("/v1/workspaces/one/resize", r#"{"cpus": 3}"#, "cpus"),
        ("/v1/workspaces/one/update", r#"{"image": 7}"#, "image"),
        ("/v1/workspaces/one/rollback", r#"{"to": "last"}"#, "to"),
        ("/v1/workspaces/one/move", r#"{"region": null}"#, "region"),
    ] {
        let (status, answer) = server
            .call(Method::POST, path, Some(&alice), Some(body))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["code"], "invalid", "{answer}");
        let fields = answer["fields"].as_array().expect("fields");
        assert!(
            fields
                .iter()
                .any(|f| f["field"] == field && f["rule"].is_string()),
            "{body}: {answer}"
        );
        let text = answer.to_string();
        for rust in [
            "u32",
            "u64",
            "i64",
            "f64",
            "CreateOptions",
            "ResizeBody",
            "struct ",
            "Option<",
        ] {
            assert!(!text.contains(rust), "{body}: {text}");
        }
    }

    // 413 over the size limit, before any parsing.
    let big = json!({ "name": "big", "env": { "PAD": "x".repeat(100_000) } }).to_string();
    let (status, answer) = server
        .call(Method::POST, "/v1/workspaces", Some(&alice), Some(&big))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["code"], "too_large", "{answer}");

    // The scheme's name in any letter case (RFC 9110 §11.1); others are not a token.
    for (header, expected) in [
        (format!("bearer {alice}"), StatusCode::OK),
        (format!("BEARER {alice}"), StatusCode::OK),
        (format!("BeArEr   {alice}"), StatusCode::OK),
        (format!("Basic {alice}"), StatusCode::UNAUTHORIZED),
        (format!("Bearer{alice}"), StatusCode::UNAUTHORIZED),
        ("Bearer ".to_owned(), StatusCode::UNAUTHORIZED),
    ] {
        let response = server
            .http
            .get(format!("{}/v1/workspaces", server.base))
            .header("authorization", &header)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), expected, "{header:?}");
    }

    assert_eq!(sim.stats().requests_total, requests_before, "no Fly call");
    let names: Vec<_> = server
        .controller
        .swarm()
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.name.as_str().to_owned())
        .collect();
    assert_eq!(names, ["one"]);
    sim.shutdown().await;
}

/// A budget is a quota in USD: each workspace is priced as running all month from the
/// carried price table, checked in the same transaction, and the costs are readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_refuses_the_create_that_would_pass_it_and_costs_are_reported() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().expect("tempdir");
    // shared, 1 CPU, 1024 MB, 1 GB volume: $0.72 + $5.20 + $0.15 = $6.07 a month.
    let quotas = Quotas {
        budget: Some(swarm::cost::Cost::from_usd(13.0)),
        ..Quotas::default()
    };
    let swarm = swarm_at(&sim.base_url(), &dir.path().join("swarm.db")).await;
    let server = Arc::new(Server::start_with(swarm, quotas).await);
    let alice = server.token("alice", false).await;
    let body = |name: &str| {
        json!({ "name": name, "cpus": 1, "cpu_kind": "shared", "memory": 1024, "storage": 1 })
            .to_string()
    };
    let requests = (0..6)
        .map(|i| {
            let body = body(&format!("spend-{i}"));
            (Method::POST, "/v1/workspaces".to_owned(), Some(body))
        })
        .collect();
    let answers = all_at_once(&server, &alice, requests).await;
    let accepted = answers.iter().filter(|(s, _)| s.is_success()).count();
    assert_eq!(accepted, 2, "two at $6.07 fit in $13: {answers:?}");
    let (_, refusal) = answers
        .iter()
        .find(|(status, _)| *status == StatusCode::FORBIDDEN)
        .expect("a refusal");
    let message = refusal["error"].as_str().unwrap_or_default();
    assert!(message.contains("quotas.budget"), "{refusal}");
    assert!(message.contains("$18.21 a month"), "{refusal}");
    for end in ends(&server, &alice, &answers).await {
        assert_eq!(end["status"], "succeeded", "{end}");
    }

    let (status, report) = server
        .call(Method::GET, "/v1/cost", Some(&alice), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["workspaces"].as_array().map(Vec::len), Some(2));
    assert_eq!(report["total_running"], json!(12.14), "{report}");
    assert_eq!(report["workspaces"][0]["billed_as"], "running", "{report}");
    assert_eq!(
        report["prices"]["source"],
        "https://fly.io/docs/about/pricing/"
    );
    let name = report["workspaces"][0]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    let path = format!("/v1/workspaces/{name}/cost");
    let (status, one) = server.call(Method::GET, &path, Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(
        one["workspaces"][0]["monthly"]["stopped"],
        json!(0.3),
        "{one}"
    );
    assert_eq!(one["workspaces"][0]["snapshots_gb"], json!(0.0), "{one}");
    // Another user sees none of it.
    let bob = server.token("bob", false).await;
    let (status, _) = server.call(Method::GET, &path, Some(&bob), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, theirs) = server.call(Method::GET, "/v1/cost", Some(&bob), None).await;
    assert_eq!(theirs["workspaces"], json!([]), "{theirs}");
}
