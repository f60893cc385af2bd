//! `<app>.fly.dev`: code-server's healthz and login, volume files, autostart and idle stop.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod common;

use argon2::{Argon2, PasswordHasher};
use common::{code_server_config, start, start_default};
use fly_sim::SimConfig;
use reqwest::header::{COOKIE, HOST, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn code_server_answers_through_the_proxy() {
    let api = start_default().await;
    api.create_app("cs").await;
    let vol = api.create_volume("cs", "home", "ams").await;
    let hash = Argon2::default()
        .hash_password(b"hunter2")
        .unwrap()
        .to_string();
    let mut cfg = code_server_config(json!({"HASHED_PASSWORD": hash}));
    cfg["mounts"] = json!([{"volume": vol, "path": "/home/coder"}]);
    let id = api.create_machine("cs", cfg).await;
    api.wait_state("cs", &id, "started").await;
    let http = client();
    let url = |p: &str| format!("{}{p}", api.base);

    let health: Value = http
        .get(url("/healthz"))
        .header(HOST, "cs.fly.dev")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health, json!({"status": "expired", "lastHeartbeat": 0}));
    let root = http
        .get(url("/"))
        .header(HOST, "cs.fly.dev:443")
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 302);
    assert_eq!(root.headers()[LOCATION], "/login");
    assert!(root.headers().contains_key("fly-request-id"));
    let page = http
        .get(url("/login"))
        .header(HOST, "cs.fly.dev")
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("password"));
    // HASHED_PASSWORD wins over PASSWORD ("s3cret").
    let wrong = http
        .post(url("/login"))
        .header(HOST, "cs.fly.dev")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("password=s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 200);
    assert!(wrong.text().await.unwrap().contains("Incorrect password"));
    let ok = http
        .post(url("/login"))
        .header(HOST, "cs.fly.dev")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("password=hunter2")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 302);
    let cookie = ok.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let home = http
        .get(url("/"))
        .header(HOST, "cs.fly.dev")
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 200);
    let health: Value = http
        .get(url("/healthz"))
        .header(HOST, "cs.fly.dev")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "alive");
    assert!(health["lastHeartbeat"].as_i64().unwrap() > 0);

    // Files live on the volume, survive a machine replacement, and are copied by forks.
    let put = http
        .put(url("/__sim/fs/project/hello.txt"))
        .header(HOST, "cs.fly.dev")
        .body("hi there")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    let got = http
        .get(url("/__sim/fs/project/hello.txt"))
        .header(HOST, "cs.fly.dev")
        .send()
        .await
        .unwrap();
    assert_eq!(got.text().await.unwrap(), "hi there");
    let missing = http
        .get(url("/__sim/fs/nope"))
        .header(HOST, "cs.fly.dev")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let snap = api
        .post(&format!("/v1/apps/cs/volumes/{vol}/snapshots"), json!(null))
        .await;
    assert_eq!(snap.status, 200);
    let fork = api
        .post(
            "/v1/apps/cs/volumes",
            json!({"name": "moved", "region": "fra", "source_volume_id": vol}),
        )
        .await;
    assert_eq!(fork.status, 200, "{}", fork.body);
    let world = api.sim.world();
    let vols = world["apps"][0]["volumes"].as_array().unwrap();
    assert!(
        vols.iter()
            .all(|v| v["files"] == json!(["/project/hello.txt"])),
        "{vols:?}"
    );

    // Stopped + autostart: the request starts the machine and waits for it.
    api.post(&format!("/v1/apps/cs/machines/{id}/stop"), json!({}))
        .await;
    api.wait_state("cs", &id, "stopped").await;
    let woke = http
        .get(url("/healthz"))
        .header(HOST, "cs.fly.dev")
        .send()
        .await
        .unwrap();
    assert_eq!(woke.status(), 200);
    assert_eq!(
        api.get(&format!("/v1/apps/cs/machines/{id}")).await.body["state"],
        "started"
    );
    let unknown = http
        .get(url("/"))
        .header(HOST, "nobody.fly.dev")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn no_autostart_means_503_and_idle_timeout_stops_the_machine() {
    let api = start(SimConfig {
        time_scale: 0.002,
        rate_limits: false,
        ..SimConfig::default()
    })
    .await;
    api.create_app("idle").await;
    let mut cfg = code_server_config(json!({"CODE_SERVER_IDLE_TIMEOUT_SECONDS": "120"}));
    cfg["services"][0]["autostart"] = json!(false);
    let id = api.create_machine("idle", cfg).await;
    api.eventually("idle stop", |w| {
        let m = &w["apps"][0]["machines"][0];
        m["state"] == "stopped"
            && m["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["type"] == "exit" && e["request"]["exit_event"]["exit_code"] == 0)
    })
    .await;
    let r = client()
        .get(format!("{}/", api.base))
        .header(HOST, "idle.fly.dev")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let world = api.sim.world();
    let m = &world["apps"][0]["machines"][0];
    let started = m["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["status"] == "started")
        .unwrap()["timestamp"]
        .as_i64()
        .unwrap();
    let stopped = m["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["status"] == "stopped")
        .unwrap()["timestamp"]
        .as_i64()
        .unwrap();
    assert!(
        stopped - started >= 120_000,
        "idle exit after the timeout ({} ms)",
        stopped - started
    );
    assert_eq!(m["id"], id.as_str());
}
