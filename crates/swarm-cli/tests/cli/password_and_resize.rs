//! Password rotation and resize, checked against the sim's login and machine.

use assert_cmd::Command;
use fly_sim::SimHandle;
use serde_json::Value;

use crate::{Home, run, runtime, start_sim};

/// True when the sim's code-server login accepts `password` for `app`.
pub(crate) fn login_accepts(
    rt: &tokio::runtime::Runtime,
    sim: &SimHandle,
    app: &str,
    password: &str,
) -> bool {
    rt.block_on(async {
        let response = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(format!("{}/login", sim.base_url()))
            .header(reqwest::header::HOST, format!("{app}.fly.dev"))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(format!("password={password}"))
            .send()
            .await
            .unwrap();
        response.status().is_redirection()
            && response
                .headers()
                .get(reqwest::header::SET_COOKIE)
                .is_some()
    })
}

pub(crate) fn sim_file(
    rt: &tokio::runtime::Runtime,
    sim: &SimHandle,
    app: &str,
    path: &str,
    put: Option<&str>,
) -> Option<String> {
    rt.block_on(async {
        let http = reqwest::Client::new();
        let url = format!("{}/__sim/fs/{path}", sim.base_url());
        let host = format!("{app}.fly.dev");
        if let Some(body) = put {
            let response = http
                .put(&url)
                .header(reqwest::header::HOST, &host)
                .body(body.to_owned())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 204);
        }
        let response = http
            .get(&url)
            .header(reqwest::header::HOST, &host)
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            Some(response.text().await.unwrap())
        } else {
            None
        }
    })
}

fn password_line(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Password:"))
        .unwrap_or_else(|| panic!("no password line in:\n{stdout}"))
        .trim()
        .to_owned()
}

#[test]
fn password_rotate_and_resize_work_in_both_output_modes_and_keep_files() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let home = Home::new();
    password_and_resize(&rt, &sim, &|| home.swarm_at(&sim));
    rt.block_on(sim.shutdown());
}

/// Password rotation and resize of one workspace on `sim`, each step a separate invocation.
pub(crate) fn password_and_resize(
    rt: &tokio::runtime::Runtime,
    sim: &SimHandle,
    swarm: &dyn Fn() -> Command,
) {
    let created = run(swarm(), &["create", "ops", "--json"]).ok();
    let first = created.json()["password"].as_str().unwrap().to_owned();
    assert!(login_accepts(rt, sim, "ops", &first));
    assert_eq!(
        sim_file(rt, sim, "ops", "project/keep.txt", Some("still here")).as_deref(),
        Some("still here")
    );

    // Human output: the new password once, on stdout; the old one stops working.
    let human = run(swarm(), &["password", "ops", "--rotate"]).ok();
    let second = password_line(&human.stdout);
    assert_eq!(second.len(), 24);
    assert!(
        human.stdout.contains("old one no longer works"),
        "{}",
        human.stdout
    );
    assert!(login_accepts(rt, sim, "ops", &second));
    assert!(!login_accepts(rt, sim, "ops", &first));
    // JSON: one document holding the workspace and the new password.
    let json = run(swarm(), &["password", "ops", "--rotate", "--json"])
        .ok()
        .json();
    let third = json["password"].as_str().unwrap().to_owned();
    assert_eq!(json["workspace"]["name"], "ops");
    assert!(login_accepts(rt, sim, "ops", &third));
    assert!(!login_accepts(rt, sim, "ops", &second));

    // Resize, human then JSON.
    let human = run(swarm(), &["resize", "ops", "--memory", "1024"]).ok();
    assert!(human.stdout.contains("resized"), "{}", human.stdout);
    assert!(
        human.stdout.contains("1 GB memory") || human.stdout.contains("1024"),
        "{}",
        human.stdout
    );
    let storage = json["workspace"]["spec"]["storage_gb"].as_u64().unwrap();
    let bigger = (storage + 2).to_string();
    let resized = run(
        swarm(),
        &[
            "resize",
            "ops",
            "--cpus",
            "2",
            "--storage",
            &bigger,
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(resized["changed"], true);
    assert_eq!(resized["workspace"]["spec"]["guest"]["cpus"], 2);
    assert_eq!(
        resized["workspace"]["spec"]["guest"]["cpu_kind"],
        "performance"
    );
    assert_eq!(resized["workspace"]["spec"]["storage_gb"], storage + 2);
    assert_eq!(resized["workspace"]["status"], "running");
    assert_eq!(
        sim_file(rt, sim, "ops", "project/keep.txt", None).as_deref(),
        Some("still here"),
        "the file survives resize"
    );
    assert!(login_accepts(rt, sim, "ops", &third));

    // Refused sizes: exit 2, the field and rule named, no Fly call, nothing changed.
    let smaller = storage.to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["resize", "ops", "--storage", &smaller], "only grow"),
        (vec!["resize", "ops", "--storage", "501"], "storage"),
        (vec!["resize", "ops", "--cpus", "3"], "cpus"),
        (vec!["resize", "ops", "--memory", "100000"], "memory"),
        (vec!["resize", "ops", "--memory", "4100"], "multiple of 256"),
        (vec!["resize", "ops", "--cpu-kind", "turbo"], "cpu_kind"),
        (vec!["resize", "ops"], "at least one of"),
        (vec!["resize", "nobody", "--cpus", "2"], "nobody"),
        (vec!["password", "nobody", "--rotate"], "nobody"),
    ];
    for (args, needle) in &cases {
        for json in [false, true] {
            let mut args = args.clone();
            if json {
                args.push("--json");
            }
            let before = sim.stats().requests_total;
            let out = run(swarm(), &args);
            assert_eq!(
                out.code, 2,
                "`swarm {args:?}`\nstdout:{}\nstderr:{}",
                out.stdout, out.stderr
            );
            assert!(
                out.stderr.contains(needle),
                "`swarm {args:?}` should name {needle:?}:\n{}",
                out.stderr
            );
            assert_eq!(
                sim.stats().requests_total,
                before,
                "`swarm {args:?}` called the Fly API"
            );
        }
    }
    let shown = run(swarm(), &["show", "ops", "--json"]).ok().json();
    assert_eq!(shown["spec"], resized["workspace"]["spec"]);

    // Machine rollback: back to the guest before the last resize, on Fly's machine,
    // same volume, files kept; a second one returns to where the first left.
    let volume = shown["volume_id"].as_str().unwrap().to_owned();
    let human = run(swarm(), &["rollback", "ops", "--machine"]).ok();
    assert!(
        human.stdout.contains("before its last resize"),
        "{}",
        human.stdout
    );
    let guest = sim_machine_guest(sim, "ops");
    assert_eq!(
        (guest["cpus"].as_u64(), guest["memory_mb"].as_u64()),
        (Some(1), Some(1024)),
        "{guest}"
    );
    let back = run(swarm(), &["rollback", "ops", "--machine", "--json"])
        .ok()
        .json();
    assert_eq!(back["from"]["guest"]["cpus"], 1, "{back}");
    assert_eq!(back["to"]["guest"]["cpus"], 2, "{back}");
    assert_eq!(back["workspace"]["spec"]["guest"]["cpus"], 2, "{back}");
    assert_eq!(
        back["workspace"]["volume_id"].as_str(),
        Some(volume.as_str())
    );
    assert_eq!(sim_machine_guest(sim, "ops")["cpus"], 2);
    assert_eq!(
        sim_file(rt, sim, "ops", "project/keep.txt", None).as_deref(),
        Some("still here"),
        "the file survives a machine rollback"
    );
    assert!(login_accepts(rt, sim, "ops", &third), "password kept");
    // Nothing to roll back to, or both kinds at once: exit 2, no Fly call.
    run(swarm(), &["create", "fresh", "--json"]).ok();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["rollback", "fresh", "--machine"],
            "no earlier machine config",
        ),
        (vec!["rollback", "nobody", "--machine"], "nobody"),
        (vec!["rollback", "ops", "--machine", "--to", "1"], "--to"),
    ];
    for (args, needle) in &cases {
        let before = sim.stats().requests_total;
        let out = run(swarm(), args);
        assert_eq!(out.code, 2, "`swarm {args:?}`\nstderr:{}", out.stderr);
        assert!(out.stderr.contains(needle), "{needle:?} in {}", out.stderr);
        assert_eq!(
            sim.stats().requests_total,
            before,
            "`swarm {args:?}` called Fly"
        );
    }
    run(swarm(), &["delete", "fresh", "--yes"]).ok();
    run(swarm(), &["delete", "ops", "--yes"]).ok();
}

/// The guest of `app`'s live machine, as the sim holds it.
fn sim_machine_guest(sim: &SimHandle, app: &str) -> Value {
    let world = sim.world();
    let found = world["apps"]
        .as_array()
        .and_then(|apps| apps.iter().find(|a| a["name"] == app))
        .unwrap_or_else(|| panic!("app {app} on the sim"));
    let machines: Vec<Value> = match &found["machines"] {
        Value::Array(items) => items.clone(),
        Value::Object(map) => map.values().cloned().collect(),
        _ => Vec::new(),
    };
    machines
        .into_iter()
        .find(|m| !matches!(m["state"].as_str(), Some("destroyed" | "destroying")))
        .map(|m| m["config"]["guest"].clone())
        .unwrap_or_else(|| panic!("a live machine in {app}"))
}
