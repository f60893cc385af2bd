//! Version management (docs/VERSIONING.md), through the real `swarm` binary:
//! `--version`, stores of an earlier release and of a future major, and the CLI's
//! check of a server's version.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{Home, run, runtime, tree, tree_diff};
use swarm::version::BuildInfo;
use swarm::{FlyProvider, SqliteStore, Swarm, SwarmConfig};
use swarm_controller::{Controller, Quotas, create_token};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// `files` from the fixtures copied into a folder of their own.
fn copied(home: &Home, files: &[&str]) -> PathBuf {
    let dir = home.path().join("stores");
    std::fs::create_dir_all(&dir).unwrap();
    for file in files {
        std::fs::copy(fixture(file), dir.join(file)).unwrap();
    }
    dir
}

fn swarm_on(home: &Home, db: &Path) -> std::process::Command {
    let mut cmd = home.swarm();
    cmd.env("SWARM_DB", format!("sqlite://{}", db.display()));
    cmd
}

#[test]
fn version_names_the_release_and_the_commit_it_was_built_from() {
    let home = Home::new();
    let run = run(home.swarm(), &["--version"]).ok();
    let line = run.stdout.trim();
    let expected_start = format!("swarm {VERSION} (commit ");
    assert!(line.starts_with(&expected_start), "{line}");
    let commit = line[expected_start.len()..].trim_end_matches(')');
    // Built in a git checkout, the commit is HEAD's (a tarball build says unknown).
    let head = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned());
    match head {
        Some(head) if option_env!("SWARM_GIT_COMMIT").is_none() => assert!(
            head.starts_with(commit) && commit.len() == 12,
            "commit {commit:?}, HEAD {head}"
        ),
        _ => assert!(
            commit == "unknown" || commit.chars().all(|c| c.is_ascii_hexdigit()),
            "{commit:?}"
        ),
    }
}

/// `store-0.1.0.db` was written by swarm 0.1.0 (schema 6, no version mark): alice
/// running with two image versions, bob stopped, carol deleted, one API token; its
/// local Fly beside it.
#[test]
fn a_store_of_release_0_1_0_opens_migrated_and_keeps_every_record() {
    let home = Home::new();
    let dir = copied(&home, &["store-0.1.0.db", "store-0.1.0.fly.json"]);
    let db = dir.join("store-0.1.0.db");

    let list = run(swarm_on(&home, &db), &["list", "--json"]).ok().json();
    let names: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["name"].as_str().unwrap(), w["status"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("alice", "running"), ("bob", "stopped")]);
    let versions = run(swarm_on(&home, &db), &["versions", "alice", "--json"])
        .ok()
        .json();
    let images: Vec<&str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["image"].as_str().unwrap())
        .collect();
    assert_eq!(
        images,
        [
            "codercom/code-server:4.106.3",
            "codercom/code-server:4.107.0"
        ]
    );
    // Still a working store for its local Fly: an operation goes through.
    run(swarm_on(&home, &db), &["start", "bob", "--json"]).ok();

    // Marked with this version now; the schema is this version's.
    let rt = runtime();
    let store = rt
        .block_on(SqliteStore::open(&db, "local-fly-sim"))
        .unwrap();
    assert_eq!(
        rt.block_on(store.swarm_version())
            .unwrap()
            .unwrap()
            .to_string(),
        VERSION
    );
    assert_eq!(
        rt.block_on(store.schema_version()).unwrap(),
        swarm::store::SCHEMA_VERSION
    );
    rt.block_on(store.close());
}

/// `store-future-major.db` is the 0.1.0 store marked as last opened by swarm 1.0.0.
#[test]
fn a_store_of_a_future_major_is_refused_with_exit_2_and_left_byte_for_byte() {
    let home = Home::new();
    let dir = copied(&home, &["store-future-major.db"]);
    let db = dir.join("store-future-major.db");
    let before = tree(&dir);
    for args in [&["list"][..], &["create", "dave"], &["reconcile", "--json"]] {
        let run = run(swarm_on(&home, &db), args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("swarm 1.0.0") && run.stderr.contains(VERSION),
            "{args:?}: {}",
            run.stderr
        );
        if let Some(diff) = tree_diff(&before, &tree(&dir)) {
            panic!("{args:?} changed the store folder: {diff}");
        }
    }
}

/// A controller in this process, saying it is `version`, with a token for alice.
struct Server {
    url: String,
    token: String,
    _sim: fly_sim::SimHandle,
    _dir: tempfile::TempDir,
}

fn server_saying(rt: &tokio::runtime::Runtime, version: &'static str) -> Server {
    rt.block_on(async {
        let sim = fly_sim::Sim::start(fly_sim::SimConfig::default(), "127.0.0.1:0")
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = SwarmConfig {
            probe_base_url: Some(sim.base_url()),
            fly_endpoint: sim.base_url(),
            ..SwarmConfig::default()
        };
        let store = SqliteStore::open(dir.path().join("server.db"), &config.fly_endpoint)
            .await
            .unwrap();
        let token = create_token(&store, "alice", false).await.unwrap();
        let client = fly_api::FlyClient::builder()
            .token(fly_api::Token::new("test-token"))
            .machines_base_url(sim.base_url())
            .api_base_url(sim.base_url())
            .build()
            .unwrap();
        let provider = FlyProvider::new(client, &config);
        let build = BuildInfo {
            version,
            commit: Some("0123456789ab"),
        };
        let controller = Controller::with_build(
            Swarm::new(store, provider, config),
            Quotas::default(),
            build,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let serving = Arc::clone(&controller);
        tokio::spawn(async move {
            serving
                .serve(listener, None, std::future::pending())
                .await
                .unwrap();
        });
        Server {
            url,
            token: token.expose().to_owned(),
            _sim: sim,
            _dir: dir,
        }
    })
}

fn through(home: &Home, server: &Server) -> std::process::Command {
    let mut cmd = home.swarm();
    cmd.env("SWARM_SERVER", &server.url)
        .env("SWARM_TOKEN", &server.token);
    cmd
}

#[test]
fn the_server_says_its_version_on_a_route_and_on_every_answer() {
    let rt = runtime();
    let server = server_saying(&rt, VERSION);
    rt.block_on(async {
        let http = reqwest::Client::new();
        let answer = http
            .get(format!("{}/v1/version", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers()["swarm-version"], VERSION);
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["version"], VERSION);
        assert_eq!(body["commit"], "0123456789ab");
        assert_eq!(body["api"], "v1");
        // An error answer too, and one refused for want of a token.
        let refused = http
            .get(format!("{}/v1/workspaces", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
        assert_eq!(refused.headers()["swarm-version"], VERSION);
    });
}

#[test]
fn the_cli_uses_a_server_of_its_major_with_a_minor_at_least_its_own() {
    let rt = runtime();
    let home = Home::new();
    let client = swarm::version::current();
    // A newer minor of the same major: usable.
    let newer_minor: &'static str =
        Box::leak(format!("{}.{}.0", client.major, client.minor + 1).into_boxed_str());
    let server = server_saying(&rt, newer_minor);
    let list = run(through(&home, &server), &["list", "--json"])
        .ok()
        .json();
    assert_eq!(list, serde_json::json!([]));
}

#[test]
fn a_server_of_another_major_or_an_older_minor_is_refused_naming_both_versions() {
    let rt = runtime();
    let home = Home::new();
    let client = swarm::version::current();
    let other_major: &'static str = Box::leak(format!("{}.0.0", client.major + 1).into_boxed_str());
    let mut refused = vec![(other_major, "major versions differ")];
    if client.minor > 0 {
        let older: &'static str =
            Box::leak(format!("{}.{}.9", client.major, client.minor - 1).into_boxed_str());
        refused.push((older, "older minor"));
    }
    for (version, why) in refused {
        let server = server_saying(&rt, version);
        // A create would change something: refused before it is sent.
        let run = run(through(&home, &server), &["create", "alice"]);
        assert_eq!(run.code, 2, "{version}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("this swarm is {VERSION}"))
                && run.stderr.contains(&format!("runs swarm {version}"))
                && run.stderr.contains(why),
            "{version}: {}",
            run.stderr
        );
        let list = run_list_direct(&rt, &server);
        assert_eq!(list, 0, "{version}: the refused create reached the server");
    }
}

/// How many workspaces the server holds, asked over HTTP with alice's token.
fn run_list_direct(rt: &tokio::runtime::Runtime, server: &Server) -> usize {
    rt.block_on(async {
        let list: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/v1/workspaces", server.url))
            .bearer_auth(&server.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list.as_array().map_or(usize::MAX, Vec::len)
    })
}
