//! Seeded faults: same seed → same faults in the same order; ambiguous faults apply the change.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use std::time::Duration;

use common::start;
use fly_sim::SimConfig;
use serde_json::json;

async fn outcomes(seed: u64) -> Vec<String> {
    let api = start(SimConfig {
        fault_rate: 0.4,
        seed,
        rate_limits: false,
        ..SimConfig::default()
    })
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut out = Vec::new();
    for i in 0..40 {
        let r = client
            .get(format!("{}/v1/apps/app-{i}", api.base))
            .bearer_auth("t")
            .send()
            .await;
        let outcome = match r {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(_) => format!("{status}"),
                    Err(_) => "reset".to_string(),
                }
            }
            Err(_) => "reset".to_string(),
        };
        out.push(outcome);
    }
    let stats = api.sim.stats();
    assert_eq!(
        stats.faults_injected as usize,
        out.iter().filter(|o| *o != "404").count(),
        "every non-404 is an injected fault: {out:?}"
    );
    api.sim.shutdown().await;
    out
}

#[tokio::test]
async fn same_seed_same_faults_in_the_same_order() {
    let a = outcomes(11).await;
    let b = outcomes(11).await;
    let c = outcomes(12).await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    let kinds: std::collections::BTreeSet<&str> = a.iter().chain(&c).map(String::as_str).collect();
    assert!(kinds.contains("404"), "{kinds:?}");
    assert!(
        kinds
            .iter()
            .any(|k| k.starts_with('5') || *k == "429" || *k == "reset"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn ambiguous_failures_apply_the_change_then_lose_the_answer() {
    let api = start(SimConfig {
        ambiguous_rate: 1.0,
        rate_limits: false,
        ..SimConfig::default()
    })
    .await;
    let r = api
        .http
        .post(format!("{}/v1/apps", api.base))
        .bearer_auth("t")
        .json(&json!({"name": "maybe", "org_slug": "personal"}))
        .send()
        .await;
    let lost = match r {
        Ok(resp) => resp.status() == 500 || resp.bytes().await.is_err(),
        Err(_) => true,
    };
    assert!(lost, "the answer is lost");
    assert_eq!(api.sim.stats().apps, 1, "but the app was created");
    assert_eq!(api.sim.stats().ambiguous_injected, 1);
    // Reads are never ambiguous.
    assert_eq!(api.get("/v1/apps/maybe").await.status, 200);
}

#[tokio::test]
async fn a_reset_is_a_transport_error_for_reqwest() {
    // fault_rate 1 with seed 0: find a reset among a few tries and check how it surfaces.
    let api = start(SimConfig {
        fault_rate: 1.0,
        seed: 5,
        rate_limits: false,
        ..SimConfig::default()
    })
    .await;
    let mut saw_reset = false;
    for _ in 0..30 {
        match api
            .http
            .get(format!("{}/v1/apps/x", api.base))
            .bearer_auth("t")
            .send()
            .await
        {
            Err(_) => saw_reset = true,
            Ok(resp) => {
                let status = resp.status().as_u16();
                if resp.bytes().await.is_err() {
                    saw_reset = true;
                } else {
                    assert!([500, 502, 503, 429].contains(&status), "{status}");
                }
            }
        }
    }
    assert!(saw_reset);
}
