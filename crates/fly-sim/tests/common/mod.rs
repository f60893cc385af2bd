//! Shared helpers for the sim's integration tests (plain reqwest, real HTTP on loopback).
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

use std::time::Duration;

use fly_sim::{Sim, SimConfig, SimHandle};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub struct Api {
    pub sim: SimHandle,
    pub http: reqwest::Client,
    pub base: String,
}

pub async fn start(config: SimConfig) -> Api {
    let sim = Sim::start(config, "127.0.0.1:0").await.expect("sim starts");
    let base = sim.base_url();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .expect("client");
    Api { sim, http, base }
}

pub async fn start_default() -> Api {
    start(SimConfig {
        rate_limits: false,
        ..SimConfig::default()
    })
    .await
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Api {
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_with(method, path, body, &[]).await
    }

    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("authorization", "Bearer test-token");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
        };
        Reply {
            status,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn create_app(&self, name: &str) {
        let r = self
            .post("/v1/apps", json!({"name": name, "org_slug": "personal"}))
            .await;
        assert_eq!(r.status, 201, "create app {name}: {}", r.body);
    }

    pub async fn create_volume(&self, app: &str, name: &str, region: &str) -> String {
        let r = self
            .post(
                &format!("/v1/apps/{app}/volumes"),
                json!({"name": name, "region": region, "size_gb": 1}),
            )
            .await;
        assert_eq!(r.status, 200, "create volume: {}", r.body);
        r.body["id"].as_str().expect("volume id").to_string()
    }

    /// Creates a machine and returns its id.
    pub async fn create_machine(&self, app: &str, config: Value) -> String {
        let r = self
            .post(
                &format!("/v1/apps/{app}/machines"),
                json!({"region": "ams", "config": config}),
            )
            .await;
        assert_eq!(r.status, 200, "create machine: {}", r.body);
        r.body["id"].as_str().expect("machine id").to_string()
    }

    pub async fn wait_state(&self, app: &str, id: &str, state: &str) {
        let r = self
            .get(&format!(
                "/v1/apps/{app}/machines/{id}/wait?state={state}&timeout=30"
            ))
            .await;
        assert_eq!(r.status, 200, "wait {state}: {}", r.body);
    }

    /// Polls a GraphQL-free condition on the world dump with a deadline.
    pub async fn eventually(&self, what: &str, mut cond: impl FnMut(&Value) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if cond(&self.sim.world()) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        let r = self
            .post("/graphql", json!({"query": query, "variables": variables}))
            .await;
        assert_eq!(r.status, 200, "graphql: {}", r.body);
        r.body
    }
}

pub fn code_server_config(extra_env: Value) -> Value {
    let mut env = json!({"PASSWORD": "s3cret"});
    if let (Some(env), Some(extra)) = (env.as_object_mut(), extra_env.as_object()) {
        for (k, v) in extra {
            env.insert(k.clone(), v.clone());
        }
    }
    json!({
        "image": "codercom/code-server:4.133.0",
        "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 1024},
        "env": env,
        "services": [{"protocol": "tcp", "internal_port": 8080, "autostart": true, "autostop": "off",
                      "ports": [{"port": 443, "handlers": ["tls", "http"]}, {"port": 80, "handlers": ["http"], "force_https": true}]}],
        "restart": {"policy": "on-failure"},
        "metadata": {"workspace": "ws1"}
    })
}
