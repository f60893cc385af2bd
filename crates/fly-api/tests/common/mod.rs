//! Shared test support: a wiremock server that rejects unexpected requests and checks
//! every request it received (and every fixture it serves) against Fly's spec.
#![allow(dead_code)]

use std::time::Duration;

use fly_api::{FlyClient, RetryPolicy, Token};
use serde_json::Value;
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A token that must never appear in any output.
pub const CANARY: &str = "fm2_CANARY_dQw4w9WgXcQ_do_not_leak";

/// A wiremock server whose unmatched requests fail the test, and whose received
/// requests are all validated against Fly's spec when the test calls [`FlyMock::finish`].
pub struct FlyMock {
    pub server: MockServer,
}

impl FlyMock {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(599).set_body_string("unexpected request"))
            .with_priority(u8::MAX)
            .expect(0)
            .named("catch-all: no unexpected requests")
            .mount(&server)
            .await;
        FlyMock { server }
    }

    /// A client against this server: no retries, no throttling.
    pub fn client(&self) -> FlyClient {
        self.client_with(|b| b)
    }

    pub fn client_with(
        &self,
        customise: impl FnOnce(fly_api::FlyClientBuilder) -> fly_api::FlyClientBuilder,
    ) -> FlyClient {
        let builder = FlyClient::builder()
            .token(Token::new(CANARY))
            .machines_base_url(self.server.uri())
            .api_base_url(self.server.uri())
            .retry(RetryPolicy::none())
            .throttle(false)
            .request_timeout(Duration::from_secs(10));
        customise(builder).build().expect("client builds")
    }

    /// Mounts a response for `METHOD path`, expected exactly once. The fixture body is
    /// validated against the spec's response schema first.
    pub async fn on(&self, verb: &str, route: &str, status: u16, body: Value) {
        self.on_times(verb, route, status, body, 1).await;
    }

    pub async fn on_times(&self, verb: &str, route: &str, status: u16, body: Value, times: u64) {
        check_fixture(verb, route, status, &body);
        let template = if body.is_null() {
            ResponseTemplate::new(status)
        } else {
            ResponseTemplate::new(status).set_body_json(body)
        }
        .insert_header("fly-request-id", "req-test-1");
        Mock::given(method(verb))
            .and(path(route))
            .respond_with(template)
            .expect(times)
            .mount(&self.server)
            .await;
    }

    /// Mounts a custom mock (its fixture is the caller's responsibility).
    pub async fn mount(&self, mock: Mock) {
        mock.mount(&self.server).await;
    }

    /// Verifies call counts and validates every received request against the spec.
    pub async fn finish(self) -> Vec<wiremock::Request> {
        let received = self.server.received_requests().await.unwrap_or_default();
        for request in &received {
            check_request(request);
        }
        self.server.verify().await;
        received
    }
}

/// Validates one request the client sent: a REST body against the spec's request
/// schema (strict: unknown fields fail), a GraphQL operation against Fly's schema.
pub fn check_request(request: &wiremock::Request) {
    let verb = request.method.as_str();
    let route = request.url.path();
    let auth = request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert_eq!(
        auth,
        format!("FlyV1 {CANARY}"),
        "{verb} {route}: auth header"
    );
    assert!(
        request.headers.get("user-agent").is_some(),
        "{verb} {route}: no User-Agent"
    );

    if route == "/graphql" {
        let body: Value = serde_json::from_slice(&request.body).expect("GraphQL body is JSON");
        let query = body["query"].as_str().expect("GraphQL body has a query");
        assert!(
            body.get("variables").is_some(),
            "GraphQL body has variables"
        );
        {
            let schema = fly_spec::GraphqlSchema::load();
            schema
                .check_operation(query)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        return;
    }
    if route.starts_with("/api/v1/apps/") && route.ends_with("/logs") {
        // The logs API is not part of the Machines spec; it takes no body.
        assert!(request.body.is_empty(), "logs request has a body");
        return;
    }
    let spec = fly_spec::Spec::load();
    assert!(
        spec.match_path(verb, route).is_some(),
        "{verb} {route}: no such operation in Fly's spec"
    );
    if request.body.is_empty() {
        assert!(
            request.headers.get("content-type").is_none(),
            "{verb} {route}: content-type without a body"
        );
        return;
    }
    let body: Value = serde_json::from_slice(&request.body).expect("request body is JSON");
    spec.check_request(verb, route, &body)
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Validates a fixture against the spec's response schema (REST paths only).
pub fn check_fixture(verb: &str, route: &str, status: u16, body: &Value) {
    if !route.starts_with("/v1/") {
        return;
    }
    let spec = fly_spec::Spec::load();
    if (200..300).contains(&status) {
        spec.check_response(verb, route, status, body)
            .unwrap_or_else(|e| panic!("fixture: {e}"));
    } else if !body.is_null() {
        spec.validate_named("ErrorResponse", body, fly_spec::Mode::Lenient)
            .unwrap_or_else(|e| panic!("error fixture: {e}"));
    }
}

/// A realistic machine, as Fly's docs show it.
pub fn machine_json(id: &str, state: &str) -> Value {
    serde_json::json!({
        "id": id,
        "name": "ws-demo",
        "state": state,
        "region": "ams",
        "instance_id": "01HQ73A7BFFDF1B6WMGHFZZ4E7",
        "version": "01HQ73A7BFFDF1B6WMGHFZZ4E7",
        "private_ip": "fdaa:0:1:a7b:1::2",
        "created_at": "2026-11-27T10:00:00Z",
        "updated_at": "2026-11-27T10:00:01Z",
        "host_status": "ok",
        "config": machine_config_json(),
        "image_ref": {"registry": "registry-1.docker.io", "repository": "codercom/code-server",
                      "tag": "4.96.4", "digest": "sha256:abc", "labels": {}},
        "events": [{"id": "01HQ", "type": "launch", "status": "created", "source": "user",
                    "timestamp": 1_699_408_350_300_i64}],
        "checks": [{"name": "alive", "status": "passing", "output": "ok",
                    "updated_at": "2026-11-27T10:00:02Z"}]
    })
}

/// A code-server machine config as Fly returns it (autostop as a bool, as Fly answers).
pub fn machine_config_json() -> Value {
    serde_json::json!({
        "image": "codercom/code-server:4.96.4",
        "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 2048},
        "env": {"HASHED_PASSWORD": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"},
        "init": {"cmd": ["--bind-addr", "0.0.0.0:8080", "/home/coder/project"]},
        "services": [{
            "protocol": "tcp", "internal_port": 8080, "autostop": "stop", "autostart": true,
            "min_machines_running": 0,
            "ports": [{"port": 443, "handlers": ["tls", "http"]},
                      {"port": 80, "handlers": ["http"], "force_https": true}],
            "concurrency": {"type": "connections", "soft_limit": 20, "hard_limit": 25},
            "checks": [{"type": "http", "port": 8080, "path": "/healthz", "interval": "15s",
                        "timeout": "2s", "grace_period": "5s", "method": "GET"}]
        }],
        "checks": {"healthz": {"type": "http", "port": 8080, "path": "/healthz",
                               "interval": "15s", "timeout": "2s", "kind": "readiness"}},
        "mounts": [{"volume": "vol_r1p6pln1k9m9j7zr", "path": "/home/coder/project", "name": "ws_data"}],
        "metadata": {"swarm_workspace": "w-123"},
        "restart": {"policy": "on-failure", "max_retries": 3},
        "files": [{"guest_path": "/etc/motd", "raw_value": "aGVsbG8="}],
        "stop_config": {"signal": "SIGTERM", "timeout": "10s"},
        "auto_destroy": false
    })
}

pub fn volume_json(id: &str) -> Value {
    serde_json::json!({
        "id": id, "name": "ws_data", "state": "created", "region": "ams", "zone": "a1b2",
        "size_gb": 10, "encrypted": true, "created_at": "2026-11-27T10:00:00Z", "fstype": "ext4",
        "snapshot_retention": 5, "auto_backup_enabled": true, "host_status": "ok",
        "type": "local", "block_size": 4096, "blocks": 2_621_440, "blocks_free": 2_600_000,
        "blocks_avail": 2_500_000, "bytes_total": 10_737_418_240_u64, "bytes_used": 1024
    })
}
