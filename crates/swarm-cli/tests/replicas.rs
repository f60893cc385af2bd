//! Three `swarm serve` replicas on one store and one Fly (issue 18): 200 mixed
//! requests spread over them, one replica killed with SIGKILL in the middle of its
//! creates. Afterwards every workspace converges, Fly holds exactly one app, machine
//! and volume per live record (no duplicate, nothing leaked), no accepted create is
//! lost, no request got a 5xx, and no background pass ran beside another of its loop.
//!
//! Run twice: on one SQLite file shared by the three processes, and on one real
//! PostgreSQL server (`postgres-server`: `.ci/run`'s, or a private cluster).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{Home, run, runtime};
use fly_sim::{Latency, Sim, SimConfig, SimHandle};
use serde_json::Value;

const REPLICAS: usize = 3;
const REQUESTS: usize = 200;
const NAMES: usize = 40;

struct Replica {
    child: Child,
    base: String,
    log: PathBuf,
}

fn spawn_replica(home: &Home, sim: &SimHandle, db: &str, log: PathBuf) -> Replica {
    let stderr = std::fs::File::create(&log).expect("log file");
    let mut command = home.swarm_at(sim);
    let mut child = command
        .env("SWARM_LOG", "info")
        .args(["--db", db, "serve", "--listen", "127.0.0.1:0"])
        .args(["--reconcile-every", "1", "--idle-check-every", "1"])
        .args(["--leader-lease", "2", "--log-format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("spawn swarm serve");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    let base = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_owned();
    Replica { child, base, log }
}

/// One request of the mix: what it asks, of which replica, and what it got.
#[derive(Debug)]
struct Sent {
    replica: usize,
    what: String,
    name: String,
    /// `None`: no answer (the replica was killed).
    status: Option<u16>,
    body: Value,
}

/// A small deterministic generator, so a failing mix can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// The `i`-th request: creates first (each name twice, on different replicas, so
/// name races happen), then starts, stops, resizes, shows, lists and deletes.
fn request(i: usize, rng: &mut Rng) -> (reqwest::Method, String, Option<String>, String, String) {
    use reqwest::Method;
    let name = format!(
        "ws-{:02}",
        if i < 2 * NAMES {
            i % NAMES
        } else {
            rng.below(NAMES)
        }
    );
    let create = format!(r#"{{"name": "{name}", "image": "codercom/code-server:4.106.3"}}"#);
    if i < 2 * NAMES {
        return (
            Method::POST,
            "/v1/workspaces?wait=30".into(),
            Some(create),
            "create".into(),
            name,
        );
    }
    let path = format!("/v1/workspaces/{name}");
    match rng.below(7) {
        0 => (
            Method::POST,
            format!("{path}/stop?wait=30"),
            None,
            "stop".into(),
            name,
        ),
        1 => (
            Method::POST,
            format!("{path}/start?wait=30"),
            None,
            "start".into(),
            name,
        ),
        2 => (
            Method::POST,
            format!("{path}/resize?wait=30"),
            Some(r#"{"memory_mb": 2048}"#.into()),
            "resize".into(),
            name,
        ),
        3 => (Method::GET, path, None, "show".into(), name),
        4 => (
            Method::GET,
            "/v1/workspaces".into(),
            None,
            "list".into(),
            name,
        ),
        5 => (
            Method::DELETE,
            format!("{path}?wait=30"),
            None,
            "delete".into(),
            name,
        ),
        _ => (
            Method::POST,
            "/v1/workspaces?wait=30".into(),
            Some(create),
            "create".into(),
            name,
        ),
    }
}

async fn send(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    (method, path, body, what, name): (reqwest::Method, String, Option<String>, String, String),
    replica: usize,
) -> Sent {
    let mut request = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let (status, body) = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            (Some(status), response.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (None, Value::Null),
    };
    Sent {
        replica,
        what,
        name,
        status,
        body,
    }
}

/// Every background pass a replica logged: (loop, replica, start ms, end ms).
fn passes(log: &Path) -> Vec<(String, String, i64, i64)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "background pass")
        .map(|line| {
            (
                line["pass"].as_str().unwrap_or_default().to_owned(),
                line["replica"].as_str().unwrap_or_default().to_owned(),
                line["started_ms"].as_i64().unwrap_or_default(),
                line["finished_ms"].as_i64().unwrap_or_default(),
            )
        })
        .collect()
}

fn three_replicas_converge_after_one_is_killed_mid_create(db: &str) {
    let rt = runtime();
    let sim = rt
        .block_on(Sim::start(
            SimConfig {
                latency: Latency::Fly,
                // About a fifth of a second a create: long enough to kill one mid-way.
                time_scale: 0.05,
                ..SimConfig::default()
            },
            "127.0.0.1:0",
        ))
        .expect("start fly-sim");
    let home = Home::new();
    let made = run(
        home.swarm_at(&sim),
        &["--db", db, "token", "create", "--user", "alice", "--json"],
    )
    .ok()
    .json();
    let token = made["token"].as_str().expect("token").to_owned();
    let logs = tempfile::tempdir().expect("temp dir");
    // SWARM_TEST_KEEP_LOGS=DIR keeps the replicas' logs for a look after a failure.
    let log_dir = std::env::var_os("SWARM_TEST_KEEP_LOGS")
        .map(PathBuf::from)
        .unwrap_or_else(|| logs.path().to_owned());
    let mut replicas: Vec<Replica> = (0..REPLICAS)
        .map(|i| spawn_replica(&home, &sim, db, log_dir.join(format!("replica-{i}.log"))))
        .collect();
    let bases: Vec<String> = replicas.iter().map(|r| r.base.clone()).collect();
    let http = reqwest::Client::new();
    let victim = REPLICAS - 1;

    let sent: Vec<Sent> = rt.block_on(async {
        // The victim's own creates, answered at once (202) so they are still running
        // when it dies.
        let mut doomed = Vec::new();
        for n in 0..4 {
            let name = format!("doomed-{n}");
            let body = format!(r#"{{"name": "{name}", "image": "codercom/code-server:4.106.3"}}"#);
            let answer = send(
                &http,
                &bases[victim],
                &token,
                (
                    reqwest::Method::POST,
                    "/v1/workspaces".into(),
                    Some(body),
                    "create".into(),
                    name,
                ),
                victim,
            )
            .await;
            assert_eq!(answer.status, Some(202), "{answer:?}");
            assert_eq!(answer.body["status"], "running", "{answer:?}");
            doomed.push(answer);
        }
        let mut rng = Rng(0x5eed_1234);
        let mix: Vec<_> = (0..REQUESTS).map(|i| (i, request(i, &mut rng))).collect();
        let tasks: Vec<_> = mix
            .into_iter()
            .map(|(i, request)| {
                let http = http.clone();
                let token = token.clone();
                let replica = i % REPLICAS;
                let base = bases[replica].clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(5 * i as u64)).await;
                    send(&http, &base, &token, request, replica).await
                })
            })
            .collect();
        // SIGKILL: no handler runs, nothing is flushed or handed back.
        let pid = replicas[victim].child.id().to_string();
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status();
        assert!(killed.expect("kill").success());
        let mut sent = doomed;
        for task in tasks {
            sent.push(task.await.expect("request task"));
        }
        sent
    });
    let _ = replicas[victim].child.wait();

    // No request to a live replica went unanswered or got a 5xx.
    for s in &sent {
        if s.replica != victim {
            let status = s
                .status
                .unwrap_or_else(|| panic!("no answer from a live replica: {s:?}"));
            assert!(status < 500, "{s:?}");
        }
    }
    // Per name at most one create won; the losers were told 409 straight away.
    let mut won: BTreeMap<&str, usize> = BTreeMap::new();
    for s in sent
        .iter()
        .filter(|s| s.what == "create" && s.status == Some(200))
    {
        if s.body["status"] == "succeeded" {
            *won.entry(&s.name).or_default() += 1;
        }
    }
    // Accepted: succeeded, or still running when answered (202).
    let accepted: BTreeSet<&str> = sent
        .iter()
        .filter(|s| s.what == "create")
        .filter(|s| {
            s.status == Some(202) || (s.status == Some(200) && s.body["status"] == "succeeded")
        })
        .map(|s| s.name.as_str())
        .collect();

    // Converge: the live replicas' loops (one of them now leads) and a pass on demand.
    let live = &bases[..victim];
    let records = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let _ = http
                .post(format!("{}/v1/reconcile", live[0]))
                .bearer_auth(&token)
                .send()
                .await;
            let listed: Value = http
                .get(format!("{}/v1/workspaces", live[1]))
                .bearer_auth(&token)
                .send()
                .await
                .expect("list")
                .json()
                .await
                .expect("JSON");
            let records = listed.as_array().cloned().unwrap_or_default();
            let settled = records
                .iter()
                .all(|r| matches!(r["status"].as_str(), Some("running" | "stopped")));
            let apps = sim.stats().apps;
            if settled && apps == records.len() {
                break records;
            }
            assert!(
                Instant::now() < deadline,
                "not converged: {} records, {apps} apps: {records:#?}",
                records.len()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });

    // Fly holds one app, one machine and one volume per live record, and nothing else.
    let world = sim.world();
    let apps: BTreeMap<String, &Value> = world["apps"]
        .as_array()
        .expect("apps")
        .iter()
        .map(|app| (app["name"].as_str().unwrap_or_default().to_owned(), app))
        .collect();
    let held: BTreeSet<String> = records
        .iter()
        .map(|r| {
            r["app"]
                .as_str()
                .or(r["name"].as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(held.len(), records.len(), "two records hold one app");
    for (name, app) in &apps {
        assert!(held.contains(name), "leaked app {name}");
        let machines = app["machines"].as_array().map_or(0, |m| {
            m.iter().filter(|m| m["state"] != "destroyed").count()
        });
        let volumes = app["volumes"].as_array().map_or(0, Vec::len);
        let record = records
            .iter()
            .find(|r| r["name"] == *name || r["app"] == *name);
        assert_eq!(
            (machines, volumes),
            (1, 1),
            "{name}: {app:#}\nrecord: {record:#?}"
        );
    }
    let stats = sim.stats();
    assert_eq!(
        (stats.machines, stats.volumes),
        (records.len(), records.len())
    );
    // No accepted create is lost: its record is live, or a later delete removed it.
    let deleted: BTreeSet<&str> = sent
        .iter()
        .filter(|s| s.what == "delete" && matches!(s.status, Some(200 | 202)))
        .map(|s| s.name.as_str())
        .collect();
    let names: BTreeSet<&str> = records.iter().filter_map(|r| r["name"].as_str()).collect();
    for name in &accepted {
        let doomed = name.starts_with("doomed-");
        assert!(
            names.contains(name) || deleted.contains(name) || doomed,
            "accepted create of {name} lost: {:?}",
            sent.iter()
                .filter(|s| s.name == *name)
                .map(|s| (
                    s.replica,
                    &s.what,
                    s.status,
                    &s.body["status"],
                    &s.body["error"]
                ))
                .collect::<Vec<_>>()
        );
    }
    assert!(
        won.values().all(|wins| *wins == 1),
        "a name created twice: {won:?}"
    );

    // The loops never ran twice at once, across all three replicas' logs.
    let mut by_loop: BTreeMap<String, Vec<(i64, i64, String)>> = BTreeMap::new();
    for replica in &replicas {
        for (pass, who, start, end) in passes(&replica.log) {
            by_loop.entry(pass).or_default().push((start, end, who));
        }
    }
    assert!(
        by_loop.contains_key("reconcile"),
        "no reconcile pass was logged"
    );
    for (pass, mut runs) in by_loop {
        runs.sort();
        for pair in runs.windows(2) {
            assert!(
                pair[1].0 >= pair[0].1,
                "two {pass} passes at once: {:?} and {:?}",
                pair[0],
                pair[1]
            );
        }
    }
    for replica in &mut replicas[..victim] {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &replica.child.id().to_string()])
            .status();
        let _ = replica.child.wait();
    }
    rt.block_on(sim.shutdown());
}

#[test]
fn three_replicas_on_one_sqlite_file_converge_after_one_is_killed_mid_create() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("swarm.db");
    three_replicas_converge_after_one_is_killed_mid_create(db.to_str().expect("utf-8 path"));
}

#[test]
fn three_replicas_on_one_postgresql_converge_after_one_is_killed_mid_create() {
    let Some(database) = runtime().block_on(postgres_server::database()) else {
        return;
    };
    three_replicas_converge_after_one_is_killed_mid_create(&database.url);
}
