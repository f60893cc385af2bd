//! `/metrics` in the Prometheus text format, read by a strict parser.

use crate::common::server::Server;
use crate::common::{start_sim, swarm_at};
use crate::prometheus::{parse_exposition, value_of};
use reqwest::StatusCode;

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
