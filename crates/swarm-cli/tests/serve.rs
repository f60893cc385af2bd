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

    let (mut server, base) = spawn_server(home.swarm_at(&sim));

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

/// Starts `swarm serve` from `command`; its process and base URL.
fn spawn_server(mut command: std::process::Command) -> (std::process::Child, String) {
    let mut server = command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    (server, base)
}

/// A server killed in the middle of a create, at each step: the next server's first
/// reconcile pass finishes or undoes it, and nothing is left over on Fly.
#[test]
fn a_server_killed_during_a_create_leaves_nothing_behind_once_restarted() {
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
    let http = reqwest::Client::new();
    for point in ["after_intent", "after_app", "after_volume", "after_machine"] {
        let name = format!("crash-{}", point.replace('_', "-"));
        let mut crashing = home.swarm_at(&sim);
        crashing.env("SWARM_CRASH_AT", format!("create.{point}"));
        let (mut server, base) = spawn_server(crashing);
        rt.block_on(async {
            // The answer may or may not arrive before the process dies.
            let _ = http
                .post(format!("{base}/v1/workspaces"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"name": name, "image": "codercom/code-server:4.106.3"}))
                .send()
                .await;
        });
        use std::os::unix::process::ExitStatusExt as _;
        let status = server.wait().expect("wait");
        assert_eq!(status.signal(), Some(6), "{point}: the server aborted");

        let (mut server, base) = spawn_server(home.swarm_at(&sim));
        let shown = rt.block_on(async {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{point}: no reconcile pass"
                );
                let ready: Value = http
                    .get(format!("{base}/readyz"))
                    .send()
                    .await
                    .expect("readyz")
                    .json()
                    .await
                    .expect("JSON");
                if !ready["last_reconcile"].is_null() {
                    assert_eq!(
                        ready["last_reconcile"]["converged"], true,
                        "{point}: {ready}"
                    );
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            let response = http
                .get(format!("{base}/v1/workspaces/{name}"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("show");
            (
                response.status().as_u16(),
                response.json::<Value>().await.expect("JSON"),
            )
        });
        let stats = sim.stats();
        match shown {
            (200, record) => {
                assert_eq!(record["status"], "running", "{point}: {record}");
                assert_eq!(
                    (stats.apps, stats.machines, stats.volumes),
                    (1, 1, 1),
                    "{point}"
                );
                run(home.swarm_at(&sim), &["delete", &name, "--yes"]).ok();
            }
            (404, _) => assert_eq!(
                (stats.apps, stats.machines, stats.volumes),
                (0, 0, 0),
                "{point}"
            ),
            other => panic!("{point}: {other:?}"),
        }
        assert_eq!(sim.stats().apps, 0, "{point}: nothing left on Fly");
        server.kill().expect("kill");
        server.wait().expect("wait");
    }
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

/// `--log-format json`: every line the server writes on stderr is one JSON object
/// (a log pipeline can read it), and no line holds the API token it was called with.
#[test]
fn serve_with_json_logs_writes_json_lines_without_tokens() {
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
    let mut command = home.swarm_at(&sim);
    command.env("SWARM_LOG", "debug");
    let mut server = command
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn swarm serve");
    // Drained all along: a full pipe would block the server's logging.
    let stderr = server.stderr.take().expect("stderr");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text).expect("stderr");
        text
    });
    let mut first = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    let base = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_owned();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let created: Value = http
            .post(format!("{base}/v1/workspaces?wait=60"))
            .bearer_auth(&token)
            .json(
                &serde_json::json!({"name": "logged-ws", "image": "codercom/code-server:4.106.3"}),
            )
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("JSON");
        assert_eq!(created["status"], "succeeded", "{created}");
        let deleted: Value = http
            .delete(format!("{base}/v1/workspaces/logged-ws?wait=60"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("delete")
            .json()
            .await
            .expect("JSON");
        assert_eq!(deleted["status"], "succeeded", "{deleted}");
    });
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = server.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    let stderr = stderr.join().expect("stderr reader");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "debug logging writes something");
    for line in &lines {
        let object: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(object["timestamp"].is_string(), "{line}");
        assert!(object["level"].is_string(), "{line}");
    }
    assert!(
        lines.iter().any(|l| l.contains("reconcile pass")),
        "{stderr}"
    );
    assert!(!stderr.contains(&token), "the token is never logged");
    assert!(!stderr.contains(common::CANARY_TOKEN), "nor the Fly token");
    rt.block_on(sim.shutdown());
}
