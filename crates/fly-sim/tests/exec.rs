//! `POST /machines/{id}/exec`: the commands run over the machine's simulated state, the
//! refusals, the timeout, and secrets reaching a machine only when it boots again.

mod common;

use common::{Api, code_server_config, start};
use fly_sim::SimConfig;
use serde_json::{Value, json};

async fn exec(api: &Api, app: &str, id: &str, body: Value) -> common::Reply {
    api.post(&format!("/v1/apps/{app}/machines/{id}/exec"), body)
        .await
}

async fn started_machine(api: &Api, app: &str) -> String {
    api.create_app(app).await;
    let vol = api.create_volume(app, "data", "ams").await;
    let mut cfg = code_server_config(json!({"GREETING": "hello"}));
    cfg["mounts"] = json!([{"volume": vol, "path": "/home/coder/project"}]);
    let id = api.create_machine(app, cfg).await;
    api.wait_state(app, &id, "started").await;
    id
}

fn sim() -> SimConfig {
    SimConfig {
        rate_limits: false,
        // A 2 s `sleep` takes 20 ms of the test's time.
        time_scale: 0.01,
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn supported_commands_answer_from_the_machine_and_others_are_refused() {
    let api = start(sim()).await;
    let id = started_machine(&api, "ex1").await;
    let r = exec(&api, "ex1", &id, json!({"command": ["echo", "a", "b"]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"stdout": "a b\n", "stderr": "", "exit_code": 0, "exit_signal": 0})
    );
    let r = exec(
        &api,
        "ex1",
        &id,
        json!({"command": ["printenv", "GREETING"]}),
    )
    .await;
    assert_eq!(r.body["stdout"], "hello\n");
    let r = exec(&api, "ex1", &id, json!({"command": ["false"]})).await;
    assert_eq!(
        (r.status.as_u16(), r.body["exit_code"].clone()),
        (200, json!(1))
    );
    let r = exec(
        &api,
        "ex1",
        &id,
        json!({"command": ["sh", "-c", "exit 42"]}),
    )
    .await;
    assert_eq!(r.body["exit_code"], 42);
    let r = exec(&api, "ex1", &id, json!({"command": ["hostname"]})).await;
    assert_eq!(r.body["stdout"], format!("{id}\n"));
    let r = exec(
        &api,
        "ex1",
        &id,
        json!({"command": ["cat"], "stdin": "piped in"}),
    )
    .await;
    assert_eq!(r.body["stdout"], "piped in");
    let r = exec(&api, "ex1", &id, json!({"cmd": "echo old style"})).await;
    assert_eq!(r.body["stdout"], "old style\n");
    let r = exec(
        &api,
        "ex1",
        &id,
        json!({"command": ["cat", "/etc/hostname"]}),
    )
    .await;
    assert_eq!(r.body["exit_code"], 1);
    assert!(
        r.body["stderr"]
            .as_str()
            .unwrap()
            .contains("volume mounted at /home/coder/project"),
        "{}",
        r.body
    );
    for command in [
        json!(["git", "status"]),
        json!(["sh", "-c", "echo $HOME"]),
        json!(["bash", "-c", "ls | wc -l"]),
    ] {
        let r = exec(&api, "ex1", &id, json!({"command": command})).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["exit_code"], 127, "{command}: {}", r.body);
        assert!(
            r.body["stderr"]
                .as_str()
                .unwrap()
                .starts_with("fly-sim: command not supported:"),
            "{}",
            r.body
        );
        assert_eq!(r.body["stdout"], "");
    }
}

#[tokio::test]
async fn refusals_name_what_is_wrong() {
    let api = start(sim()).await;
    let id = started_machine(&api, "ex2").await;
    for body in [json!({}), json!({"command": []}), json!({"command": "ls"})] {
        let r = exec(&api, "ex2", &id, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(
            r.body["error"].as_str().unwrap().contains("command"),
            "{}",
            r.body
        );
    }
    let r = exec(&api, "ex2", "0000000000dead", json!({"command": ["true"]})).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = exec(&api, "nope", &id, json!({"command": ["true"]})).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = exec(
        &api,
        "ex2",
        &id,
        json!({"command": ["sleep", "5"], "timeout": 2}),
    )
    .await;
    assert_eq!(r.status, 408, "{}", r.body);
    let r = exec(
        &api,
        "ex2",
        &id,
        json!({"command": ["sleep", "1"], "timeout": 2}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .post(&format!("/v1/apps/ex2/machines/{id}/stop"), json!({}))
        .await;
    assert_eq!(r.status, 200);
    api.wait_state("ex2", &id, "stopped").await;
    let r = exec(&api, "ex2", &id, json!({"command": ["true"]})).await;
    assert_eq!(r.status, 412, "{}", r.body);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .starts_with("failed_precondition:"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn a_secret_reaches_the_machine_when_it_boots_again() {
    let api = start(sim()).await;
    let id = started_machine(&api, "ex3").await;
    let r = api
        .post("/v1/apps/ex3/secrets/API_KEY", json!({"value": "v1"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // The running machine has the env it booted with.
    let r = exec(
        &api,
        "ex3",
        &id,
        json!({"command": ["printenv", "API_KEY"]}),
    )
    .await;
    assert_eq!(
        (r.body["exit_code"].clone(), r.body["stdout"].clone()),
        (json!(1), json!(""))
    );
    let r = api
        .call(
            reqwest::Method::POST,
            &format!("/v1/apps/ex3/machines/{id}/restart"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    api.wait_state("ex3", &id, "started").await;
    let r = exec(
        &api,
        "ex3",
        &id,
        json!({"command": ["printenv", "API_KEY"]}),
    )
    .await;
    assert_eq!(r.body["stdout"], "v1\n", "{}", r.body);
    // Unset, then a stop and start: gone from the env.
    let r = api
        .call(
            reqwest::Method::DELETE,
            "/v1/apps/ex3/secrets/API_KEY",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .call(
            reqwest::Method::DELETE,
            "/v1/apps/ex3/secrets/API_KEY",
            None,
        )
        .await;
    assert_eq!(r.status, 404, "unknown secret: {}", r.body);
    api.post(&format!("/v1/apps/ex3/machines/{id}/stop"), json!({}))
        .await;
    api.wait_state("ex3", &id, "stopped").await;
    api.call(
        reqwest::Method::POST,
        &format!("/v1/apps/ex3/machines/{id}/start"),
        None,
    )
    .await;
    api.wait_state("ex3", &id, "started").await;
    let r = exec(
        &api,
        "ex3",
        &id,
        json!({"command": ["printenv", "API_KEY"]}),
    )
    .await;
    assert_eq!(r.body["exit_code"], 1, "{}", r.body);
    let r = api.get("/v1/apps/ex3/secrets/API_KEY").await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = api
        .post("/v1/apps/ex3/secrets/1BAD", json!({"value": "v"}))
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
}
