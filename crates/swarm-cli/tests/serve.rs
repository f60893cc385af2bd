//! `swarm serve` as a real process: started, used over HTTP with a token made by
//! `swarm token create`, stopped by SIGTERM.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;

use common::{Home, run, runtime, start_sim};
use serde_json::Value;

#[test]
fn a_team_member_uses_the_service_with_a_token() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let home = Home::new();

    let made = run(
        home.swarm_at(&sim),
        &["token", "create", "--user", "alice", "--json"],
    )
    .ok()
    .json();
    let token = made["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("swt_"), "{made}");
    let human = run(
        home.swarm_at(&sim),
        &["token", "create", "--user", "ops", "--admin"],
    )
    .ok();
    assert!(human.stdout.contains("(admin)"), "{}", human.stdout);
    let store = std::fs::read(home.default_db()).expect("store");
    assert!(
        !common::contains_bytes(&store, token.as_bytes()),
        "only the token's hash is stored"
    );

    let mut server = home
        .swarm_at(&sim)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn swarm serve");
    let mut first = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    let base = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_owned();

    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Option<&str>| {
        let mut request = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        async move {
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            let json: Value = response.json().await.expect("JSON");
            (status, json)
        }
    };
    rt.block_on(async {
        let (status, created) = call(
            reqwest::Method::POST,
            "/v1/workspaces?wait=60",
            Some(r#"{"name": "team-ws", "image": "codercom/code-server:4.106.3"}"#),
        )
        .await;
        assert_eq!(
            (status, created["status"].as_str()),
            (200, Some("succeeded")),
            "{created}"
        );
        let (_, listed) = call(reqwest::Method::GET, "/v1/workspaces", None).await;
        assert_eq!(listed[0]["name"], "team-ws", "{listed}");
        assert_eq!(listed[0]["spec"]["owner"], "alice", "{listed}");
        let (status, deleted) = call(
            reqwest::Method::DELETE,
            "/v1/workspaces/team-ws?wait=60",
            None,
        )
        .await;
        assert_eq!(
            (status, deleted["status"].as_str()),
            (200, Some("succeeded")),
            "{deleted}"
        );
    });
    assert_eq!(sim.stats().apps, 0, "nothing left on Fly");

    // SIGTERM: a graceful stop, exit 0.
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = server.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "swarm serve exits 0 on SIGTERM");
    rt.block_on(sim.shutdown());
}

#[test]
fn bad_serve_and_token_arguments_exit_2_naming_the_field() {
    let home = Home::new();
    for (args, needle) in [
        (&["serve", "--listen", "localhost"][..], "--listen"),
        (&["serve", "--listen", "127.0.0.1:99999"][..], "--listen"),
        (&["token", "create", "--user", "Alice Smith"][..], "user"),
        (&["token", "create", "--user", ""][..], "user"),
    ] {
        let out = run(home.swarm(), args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
    assert!(
        !home.path().join("state/swarm").exists(),
        "nothing was created"
    );
}
