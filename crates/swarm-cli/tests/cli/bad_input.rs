//! Bad input and a bad config file: exit 2, the problem named, nothing changed.

use crate::{Home, run, runtime, start_sim};

/// Bad input: exit 2, a message naming the problem, no panic, no API call, no store.
#[test]
fn invalid_inputs_exit_2_name_the_problem_and_change_nothing() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let home = Home::new();
    let long_name = "a".repeat(64);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["create", "Alice"], "name"),
        (vec!["create", "-alice"], "name"),
        (vec!["create", "alice-"], "name"),
        (vec!["create", "al_ice"], "name"),
        (vec!["create", "al.ice"], "name"),
        (vec!["create", ""], "name"),
        (vec!["create", &long_name], "name"),
        (vec!["create", "ålice"], "name"),
        (vec!["create", "a\u{7}b"], "name"),
        (vec!["create", "../etc"], "name"),
        (vec!["create", "9lives"], "name"),
        (vec!["create", "alice", "--region", "xyz"], "region"),
        (vec!["create", "alice", "--region", "AMS"], "region"),
        (vec!["create", "alice", "--region", ""], "region"),
        (vec!["create", "alice", "--cpus", "0"], "cpus"),
        (vec!["create", "alice", "--cpus", "3"], "cpus"),
        (vec!["create", "alice", "--cpus", "-1"], "-1"),
        (vec!["create", "alice", "--cpus", "two"], "cpus"),
        (vec!["create", "alice", "--cpus", "99999999999"], "cpus"),
        (vec!["create", "alice", "--memory", "100"], "memory"),
        (vec!["create", "alice", "--memory", "4096"], "memory"),
        (vec!["create", "alice", "--memory", "1000"], "memory"),
        (
            vec![
                "create",
                "alice",
                "--cpus",
                "2",
                "--cpu-kind",
                "performance",
                "--memory",
                "2048",
            ],
            "memory",
        ),
        (vec!["create", "alice", "--cpu-kind", "turbo"], "cpu"),
        (vec!["create", "alice", "--storage", "0"], "storage"),
        (vec!["create", "alice", "--storage", "501"], "storage"),
        (vec!["create", "alice", "--storage", "1e3"], "storage"),
        (vec!["create", "alice", "--env", "FLY_APP_NAME=x"], "FLY_"),
        (vec!["create", "alice", "--env", "1BAD=x"], "env"),
        (vec!["create", "alice", "--env", "NOEQUALS"], "env"),
        (
            vec!["create", "alice", "--env", "A=1", "--env", "A=2"],
            "env",
        ),
        (
            vec!["create", "alice", "--env", "HASHED_PASSWORD=x"],
            "HASHED_PASSWORD",
        ),
        (vec!["create", "alice", "--env", "BAD-KEY=x"], "env"),
        (vec!["create", "alice", "--image", ""], "image"),
        (vec!["create", "alice", "--image", "has space:1"], "image"),
        (vec!["create", "alice", "--image", "UPPER/case:1"], "image"),
        (vec!["create", "alice", "--image", "img:"], "image"),
        (vec!["create", "alice", "--ip", "v5"], "ip"),
        (
            vec!["create", "alice", "--idle-timeout", "30"],
            "idle_timeout",
        ),
        (
            vec!["create", "alice", "--idle-timeout", "soon"],
            "idle_timeout",
        ),
        (
            vec!["create", "alice", "--idle-timeout", "99999d"],
            "idle_timeout",
        ),
        (vec!["create", "alice", "--bogus"], "--bogus"),
        (vec!["create"], "NAME"),
        (vec!["show", "Bad_Name"], "name"),
        (vec!["start", "-x"], "-x"),
        (vec!["stop", "UPPER"], "name"),
        (vec!["delete", "a b", "--yes"], "name"),
        (vec!["logs", "alice", "-n", "-5"], "-5"),
        (vec!["logs", "alice", "-n", "0"], "lines"),
        (vec!["password", "alice"], "--rotate"),
        (vec!["password", "Bad_Name", "--rotate"], "name"),
        (vec!["resize", "UPPER", "--cpus", "2"], "name"),
        (vec!["resize", "alice", "--cpus", "two"], "cpus"),
        (vec!["resize", "alice", "--storage", "-3"], "-3"),
        (vec!["update", "alice"], "--image"),
        (vec!["update", "alice", "--image", "Not An Image"], "image"),
        (
            vec!["update", "alice", "--image", "img@sha256:xyz"],
            "image",
        ),
        (vec!["update", "Bad_Name", "--image", "img:1"], "name"),
        (vec!["versions", "v_1"], "name"),
        (vec!["rollback", "alice", "--to", "two"], "--to"),
        (vec!["rollback", "alice", "--to", "-1"], "-1"),
        (vec!["rollback", "UPPER"], "name"),
        (vec!["move", "alice"], "--region"),
        (vec!["move", "alice", "--region", "mars"], "region"),
        (vec!["move", "alice", "--region", "../ams"], "region"),
        (vec!["snapshot", "alice"], "alice"),
        (vec!["snapshot", "create"], "NAME"),
        (vec!["snapshot", "list", "Bad_Name"], "name"),
        (vec!["restore", "alice"], "--snapshot"),
        (
            vec!["restore", "alice", "--snapshot", "../../etc/passwd"],
            "snapshot",
        ),
        (vec!["restore", "alice", "--snapshot", "vs_"], "snapshot"),
        (vec!["frobnicate"], "frobnicate"),
        (vec!["list", "--db", "mysql://nope"], "postgres://"),
        (vec!["list", "--db", "/tmp/"], "db"),
        (vec!["list", "--org", "Bad Org"], "org"),
        (
            vec!["list", "--config", "/nonexistent/config.toml"],
            "/nonexistent/config.toml",
        ),
    ];
    assert!(cases.len() >= 30);
    for (args, needle) in &cases {
        for json in [false, true] {
            let before = sim.stats().requests_total;
            let mut args = args.clone();
            if json {
                args.push("--json");
            }
            let out = run(home.swarm_at(&sim), &args);
            assert_eq!(
                out.code, 2,
                "`swarm {args:?}` should exit 2\nstdout:{}\nstderr:{}",
                out.stdout, out.stderr
            );
            assert!(
                out.stderr.to_lowercase().contains(&needle.to_lowercase()),
                "`swarm {args:?}`: message should name {needle:?}:\n{}",
                out.stderr
            );
            assert_eq!(
                sim.stats().requests_total,
                before,
                "`swarm {args:?}` called the Fly API"
            );
            assert!(!home.db().exists(), "`swarm {args:?}` created the store");
            if json {
                // The error as one JSON document on stdout, usage errors included.
                let doc = out.json();
                assert_eq!(doc["exit_code"], 2, "`swarm {args:?}`");
                let error = doc["error"].as_str().unwrap_or_default().to_lowercase();
                assert!(
                    error.contains(&needle.to_lowercase()),
                    "`swarm {args:?}`: {doc}"
                );
            } else {
                assert_eq!(out.stdout, "", "`swarm {args:?}` printed on stdout");
            }
        }
    }
    rt.block_on(sim.shutdown());
}

#[test]
fn a_bad_config_file_is_refused_with_exit_2() {
    let home = Home::new();
    let dir = home.path().join("config/swarm");
    std::fs::create_dir_all(&dir).unwrap();
    for (text, needle) in [
        ("region = ", "config file"),
        ("region = 5", "region"),
        ("regoin = \"ams\"", "regoin"),
        ("storage = 9999", "storage"),
        ("idle_timeout = \"1s\"", "idle_timeout"),
        ("regions = []", "regions"),
        ("regions = [\"../../etc\"]", "regions"),
        ("cpu_kind = \"gpu\"", "cpu"),
    ] {
        std::fs::write(dir.join("config.toml"), text).unwrap();
        let out = run(home.swarm(), &["list"]);
        assert_eq!(out.code, 2, "{text}: {}", out.stderr);
        assert!(
            out.stderr.contains(needle),
            "{text}: message should name {needle}:\n{}",
            out.stderr
        );
    }
    assert!(!home.path().join("state").exists(), "nothing was created");
}
