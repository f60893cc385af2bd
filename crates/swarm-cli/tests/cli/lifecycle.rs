//! A workspace's whole life, step by step, and Ctrl-C in the middle of a create.

use assert_cmd::Command;
use fly_sim::{Sim, SimConfig};
use serde_json::Value;

use crate::{Home, run, runtime, start_sim, walk};

/// The whole life of a workspace, each step a separate invocation, both output modes.
pub(crate) fn lifecycle(home: &Home, swarm: &dyn Fn() -> Command) {
    let created = run(swarm(), &["create", "demo", "--json"]).ok().json();
    let password = created["password"]
        .as_str()
        .expect("password in JSON")
        .to_owned();
    assert!(password.len() >= 20, "password too short: {password}");
    assert_eq!(created["workspace"]["name"], "demo");
    assert_eq!(created["workspace"]["status"], "running");
    assert_eq!(created["workspace"]["url"], "https://demo.fly.dev");

    // The password is never stored.
    for entry in walk(home.path()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&password),
            "the password is written in {}",
            entry.display()
        );
    }

    let human = run(
        swarm(),
        &["create", "demo2", "--region", "fra", "--cpus", "2"],
    )
    .ok();
    assert!(
        human.stdout.contains("Workspace demo2 is running."),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("Password:"), "{}", human.stdout);
    assert!(
        human.stdout.contains("performance"),
        "2 CPUs are performance: {}",
        human.stdout
    );

    let list = run(swarm(), &["list", "--json"]).ok().json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["demo", "demo2"]);
    let table = run(swarm(), &["list"]).ok();
    let mut lines = table.stdout.lines();
    assert!(
        lines.next().unwrap().starts_with("NAME"),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains("demo2") && table.stdout.contains("fra"),
        "{}",
        table.stdout
    );
    // The table (read from the store's list columns) says what the records say.
    assert_eq!(table.stdout, table_of(&list));

    let shown = run(swarm(), &["show", "demo", "--json"]).ok().json();
    assert_eq!(shown["spec"]["region"], "ams");
    assert!(
        run(swarm(), &["show", "demo"])
            .ok()
            .stdout
            .contains("https://demo.fly.dev")
    );

    let health = run(swarm(), &["health", "demo", "--json"]).ok().json();
    assert_eq!(health["status"], "healthy", "{health}");
    assert!(
        run(swarm(), &["health", "demo"])
            .ok()
            .stdout
            .starts_with("demo: healthy")
    );

    let logs = run(swarm(), &["logs", "demo", "-n", "5", "--json"])
        .ok()
        .json();
    assert!(
        !logs.as_array().unwrap().is_empty(),
        "a started machine has log lines"
    );
    assert!(logs.as_array().unwrap().len() <= 5);
    assert!(
        !run(swarm(), &["logs", "demo", "-n", "5"])
            .ok()
            .stdout
            .is_empty()
    );

    let stopped = run(swarm(), &["stop", "demo", "--json"]).ok().json();
    assert_eq!(stopped["workspace"]["status"], "stopped");
    assert!(
        run(swarm(), &["stop", "demo"])
            .ok()
            .stdout
            .contains("already stopped")
    );
    let health = run(swarm(), &["health", "demo", "--json"]).ok().json();
    assert_eq!(health["status"], "unhealthy");

    let started = run(swarm(), &["start", "demo", "--json"]).ok().json();
    assert_eq!(started["workspace"]["status"], "running");
    assert!(
        run(swarm(), &["start", "demo"])
            .ok()
            .stdout
            .contains("already running")
    );
    assert!(
        run(swarm(), &["stop", "demo2", "--force"])
            .ok()
            .stdout
            .contains("stopped")
    );

    let report = run(swarm(), &["reconcile", "--json"]).ok().json();
    assert_eq!(report["checked"], 2, "{report}");
    assert!(
        run(swarm(), &["reconcile"])
            .ok()
            .stdout
            .contains("Checked 2")
    );

    let deleted = run(swarm(), &["delete", "demo", "--yes", "--json"])
        .ok()
        .json();
    assert_eq!(deleted["changed"], true);
    assert!(
        run(swarm(), &["delete", "demo2", "--yes"])
            .ok()
            .stdout
            .contains("deleted")
    );
    assert_eq!(
        run(swarm(), &["list", "--json"]).ok().json(),
        serde_json::json!([])
    );
    assert!(
        run(swarm(), &["list"])
            .ok()
            .stderr
            .contains("No workspaces yet")
    );
}

/// `swarm list`'s table, computed from `swarm list --json`'s records: columns padded to
/// the widest cell, two spaces apart, no trailing spaces.
fn table_of(records: &Value) -> String {
    let memory = |mb: u64| {
        if mb.is_multiple_of(1024) {
            format!("{} GB", mb / 1024)
        } else {
            format!("{mb} MB")
        }
    };
    let mut rows = vec![
        [
            "NAME", "STATUS", "REGION", "SIZE", "VOLUME", "COST/MO", "URL",
        ]
        .map(str::to_owned),
    ];
    for ws in records.as_array().unwrap() {
        let guest = &ws["spec"]["guest"];
        let record: swarm::WorkspaceRecord = serde_json::from_value(ws.clone()).unwrap();
        let cost = swarm::cost::MonthlyCost::of_record(&record)
            .at(swarm::cost::MonthlyCost::billed_as(record.status));
        rows.push([
            ws["name"].as_str().unwrap().to_owned(),
            ws["status"].as_str().unwrap().to_owned(),
            ws["spec"]["region"].as_str().unwrap().to_owned(),
            format!(
                "{}x{} {}",
                guest["cpus"],
                guest["cpu_kind"].as_str().unwrap(),
                memory(guest["memory_mb"].as_u64().unwrap())
            ),
            format!("{} GB", ws["spec"]["storage_gb"]),
            cost.to_string(),
            ws["url"].as_str().unwrap().to_owned(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|row| row[i].chars().count()).max().unwrap())
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            format!("{}\n", cells.join("  ").trim_end())
        })
        .collect()
}

#[test]
fn without_a_token_the_local_fly_runs_the_whole_lifecycle_across_invocations() {
    let home = Home::new();
    let first = run(home.swarm(), &["list"]).ok();
    assert!(
        first.stderr.contains("using the local Fly.io"),
        "{}",
        first.stderr
    );
    lifecycle(&home, &|| home.swarm());
    // The local Fly's world and the local store live apart from real records.
    let state = home.path().join("state/swarm");
    assert!(
        state.join("local.db").is_file(),
        "local store in {}",
        state.display()
    );
    assert!(
        state.join("local.fly.json").is_file(),
        "local Fly world in {}",
        state.display()
    );
    assert!(
        !state.join("swarm.db").exists(),
        "no real store was touched"
    );
    let world: Value =
        serde_json::from_slice(&std::fs::read(state.join("local.fly.json")).unwrap()).unwrap();
    let text = world.to_string();
    assert!(
        !text.contains("\"demo\""),
        "the local Fly still holds demo after delete: {text:.400}"
    );
}

#[test]
fn pointed_at_a_separate_fly_sim_through_flyctl_env_vars_the_same_commands_work() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let home = Home::new();
    let first = run(home.swarm_at(&sim), &["list"]).ok();
    assert!(
        !first.stderr.contains("local Fly"),
        "a token means the real path: {}",
        first.stderr
    );
    lifecycle(&home, &|| home.swarm_at(&sim));
    let stats = sim.stats();
    assert_eq!(
        (stats.apps, stats.machines, stats.volumes, stats.ips),
        (0, 0, 0, 0),
        "{stats:?}"
    );
    assert!(stats.requests_total > 20);
    rt.block_on(sim.shutdown());
}

/// Ctrl-C in the middle of a create: exit 130, and `reconcile` then either finishes the
/// workspace or removes every trace of it. Nothing is leaked on Fly either way.
#[test]
fn ctrl_c_during_create_leaves_a_state_reconcile_settles() {
    let rt = runtime();
    let config = SimConfig {
        latency: fly_sim::Latency::Fly,
        time_scale: 0.3,
        ..SimConfig::default()
    };
    let sim = rt.block_on(Sim::start(config, "127.0.0.1:0")).unwrap();
    let home = Home::new();
    let child = home
        .std_swarm_at(&sim)
        .args(["create", "interrupted"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the app exists on Fly, i.e. in the middle of provisioning.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sim.stats().apps == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "create never reached Fly"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("swarm reconcile"), "{stderr}");

    let report = run(home.swarm_at(&sim), &["reconcile", "--json"])
        .ok()
        .json();
    let stats = sim.stats();
    let list = run(home.swarm_at(&sim), &["list", "--json"]).ok().json();
    match list.as_array().unwrap().as_slice() {
        [] => assert_eq!(
            (stats.apps, stats.machines, stats.volumes, stats.ips),
            (0, 0, 0, 0),
            "{report}"
        ),
        [ws] => {
            assert_eq!(ws["status"], "running", "{report}");
            assert_eq!(
                (stats.apps, stats.machines, stats.volumes),
                (1, 1, 1),
                "{report}"
            );
            run(home.swarm_at(&sim), &["delete", "interrupted", "--yes"]).ok();
        }
        more => panic!("one create made {} records", more.len()),
    }
    rt.block_on(sim.shutdown());
}
