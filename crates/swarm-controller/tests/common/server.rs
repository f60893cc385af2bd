//! A Swarm Controller on 127.0.0.1:0 over a real store and fly-sim, and a real HTTP
//! client calling it.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use swarm::{FlyProvider, SqliteStore};
use swarm_controller::{Controller, Quotas, create_token};

use super::TestSwarm;

pub struct Server {
    pub base: String,
    pub http: reqwest::Client,
    pub controller: Arc<Controller<SqliteStore, FlyProvider>>,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<std::io::Result<usize>>,
}

impl Server {
    pub async fn start(swarm: TestSwarm) -> Self {
        Self::start_with(swarm, Quotas::default()).await
    }

    pub async fn start_with(swarm: TestSwarm, quotas: Quotas) -> Self {
        let controller = Controller::with_quotas(swarm, quotas);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = {
            let controller = Arc::clone(&controller);
            tokio::spawn(async move {
                controller
                    .serve(listener, None, async {
                        let _ = stopped.await;
                    })
                    .await
            })
        };
        Self {
            base,
            http: reqwest::Client::new(),
            controller,
            stop,
            served,
        }
    }

    pub async fn token(&self, user: &str, admin: bool) -> String {
        create_token(self.controller.swarm().store(), user, admin)
            .await
            .expect("token")
            .expose()
            .to_owned()
    }

    /// One request; the answer's status and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text:?}"));
        (status, json)
    }

    /// Creates a workspace through the API, waits for it and checks it succeeded;
    /// the finished operation (its result holds the one-time password).
    pub async fn created(&self, token: &str, body: &str) -> Value {
        let (status, created) = self
            .call(
                Method::POST,
                "/v1/workspaces?wait=60",
                Some(token),
                Some(body),
            )
            .await;
        assert_eq!(
            (status, created["status"].as_str()),
            (StatusCode::OK, Some("succeeded")),
            "{created}"
        );
        created
    }

    /// Waits for an operation's end (the server waits up to 60 s a call).
    pub async fn finished(&self, token: &str, operation: &Value) -> Value {
        let id = operation["id"].as_str().expect("operation id");
        loop {
            let (status, view) = self
                .call(
                    Method::GET,
                    &format!("/v1/operations/{id}?wait=60"),
                    Some(token),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{view}");
            if view["status"] != "running" {
                return view;
            }
        }
    }

    pub async fn shutdown(self) -> usize {
        let _ = self.stop.send(());
        self.served.await.expect("join").expect("serve")
    }
}

pub fn assert_error(
    status: StatusCode,
    body: &Value,
    expected: StatusCode,
    code: &str,
    needle: &str,
) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["code"], code, "{body}");
    let message = body["error"].as_str().expect("error message");
    assert!(message.contains(needle), "{needle:?} in {message:?}");
}
