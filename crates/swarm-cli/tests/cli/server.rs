//! The same commands through a `swarm serve` process.

use fly_sim::{Sim, SimConfig, SimHandle};
use serde_json::Value;

use crate::images_and_snapshots::images_regions_and_snapshots;
use crate::lifecycle::lifecycle;
use crate::password_and_resize::password_and_resize;
use crate::{Home, run, runtime, start_sim, walk};

/// A `swarm serve` process of its own: killed if the test fails half-way.
struct ServerProcess {
    child: std::process::Child,
    base: String,
}

impl ServerProcess {
    /// `swarm serve` from `command` on 127.0.0.1:0, with no background reconcile pass
    /// (the test's own `reconcile` is the one that counts).
    fn spawn(mut command: std::process::Command) -> Self {
        use std::io::BufRead as _;
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0", "--reconcile-every", "0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let base = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {first:?}"))
            .to_owned();
        Self { child, base }
    }

    /// SIGTERM: a graceful stop, exit 0.
    fn stop(mut self) {
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        assert_eq!(self.child.wait().unwrap().code(), Some(0));
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A team's server on `sim` and a token for `user` made on its machine.
fn team_server(home: &Home, sim: &SimHandle, user: &str) -> (ServerProcess, String) {
    let made = run(
        home.swarm_at(sim),
        &["token", "create", "--user", user, "--json"],
    )
    .ok()
    .json();
    let token = made["token"].as_str().unwrap().to_owned();
    (ServerProcess::spawn(home.std_swarm_at(sim)), token)
}

#[test]
fn through_a_server_the_same_commands_run_the_same_lifecycle() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let server_home = Home::new();
    let (server, token) = team_server(&server_home, &sim, "alice");
    // A team member's machine: no Fly token, no store; only the server and a token.
    let member = Home::new();
    let through_server = || {
        let mut cmd = member.swarm();
        cmd.env("SWARM_SERVER", &server.base)
            .env("SWARM_TOKEN", &token);
        cmd
    };
    let first = run(through_server(), &["list"]).ok();
    assert!(
        !first.stderr.contains("local Fly"),
        "the server decides where workspaces live: {}",
        first.stderr
    );
    // The server's home is where a password could be written down: it is not.
    lifecycle(&server_home, &through_server);
    let stats = sim.stats();
    assert_eq!(
        (stats.apps, stats.machines, stats.volumes, stats.ips),
        (0, 0, 0, 0),
        "{stats:?}"
    );
    assert!(
        walk(member.path()).is_empty(),
        "nothing is kept on the member's machine: {:?}",
        walk(member.path())
    );
    server.stop();
    rt.block_on(sim.shutdown());
}

/// `logs -f` through a server: the tail, then new lines as the server streams them
/// (server-sent events), until Ctrl-C.
#[test]
fn through_a_server_logs_follow_streams_new_lines_until_interrupted() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let server_home = Home::new();
    let (server, token) = team_server(&server_home, &sim, "alice");
    let member = Home::new();
    let through_server = || {
        let mut cmd = member.swarm();
        cmd.env("SWARM_SERVER", &server.base)
            .env("SWARM_TOKEN", &token);
        cmd
    };
    run(through_server(), &["create", "tail"]).ok();

    // Output goes to a file: nobody reads a pipe while the test waits.
    let logs = tempfile::tempdir().unwrap();
    let out_path = logs.path().join("stdout");
    let mut child = member
        .std_swarm()
        .env("SWARM_SERVER", &server.base)
        .env("SWARM_TOKEN", &token)
        .args(["logs", "tail", "-f", "--json"])
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let wait_for = |what: &str, found: &dyn Fn(&str) -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&out_path).unwrap_or_default();
            if found(&text) {
                return text;
            }
            assert!(std::time::Instant::now() < deadline, "no {what}: {text}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    // The tail first: the machine's start.
    wait_for("tail", &|text| text.contains("started"));
    // A stop made now shows up as new lines (Fly's log follow starts from the app's
    // recent lines, so none is lost while the stream connects).
    run(through_server(), &["stop", "tail"]).ok();
    let text = wait_for("new lines", &|text| text.contains("SIGTERM"));
    for line in text.lines() {
        let line: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(line["message"].is_string(), "{line}");
    }
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let status = child.wait().unwrap();
    assert!(matches!(status.code(), Some(0 | 130)), "{status:?}");
    run(through_server(), &["delete", "tail", "--yes"]).ok();
    assert_eq!(sim.stats().apps, 0);
    server.stop();
    rt.block_on(sim.shutdown());
}

#[test]
fn through_a_server_password_resize_update_rollback_move_snapshot_and_restore_work_the_same() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let server_home = Home::new();
    let (server, token) = team_server(&server_home, &sim, "alice");
    let member = Home::new();
    let through_server = || {
        let mut cmd = member.swarm();
        cmd.env("SWARM_SERVER", &server.base)
            .env("SWARM_TOKEN", &token);
        cmd
    };
    password_and_resize(&rt, &sim, &through_server);
    images_regions_and_snapshots(&rt, &sim, &through_server);
    assert!(
        walk(member.path()).is_empty(),
        "nothing kept on the member's machine"
    );
    server.stop();
    rt.block_on(sim.shutdown());
}

/// A create that outlasts one request's wait (`SWARM_SERVER_WAIT=1` against Fly's
/// timings): the CLI asks again until it ends, and the password still arrives.
#[test]
fn through_a_server_an_operation_longer_than_one_wait_is_waited_for() {
    let rt = runtime();
    let config = SimConfig {
        latency: fly_sim::Latency::Fly,
        time_scale: 0.3,
        ..SimConfig::default()
    };
    let sim = rt.block_on(Sim::start(config, "127.0.0.1:0")).unwrap();
    let server_home = Home::new();
    let (server, token) = team_server(&server_home, &sim, "alice");
    let member = Home::new();
    let through_server = || {
        let mut cmd = member.swarm();
        cmd.env("SWARM_SERVER", &server.base)
            .env("SWARM_TOKEN", &token)
            .env("SWARM_SERVER_WAIT", "1");
        cmd
    };
    let created = run(through_server(), &["create", "slow", "--json", "-vv"]).ok();
    assert!(
        created.stderr.contains("still running; waiting again"),
        "the create ended within one wait: {}",
        created.stderr
    );
    assert!(
        !created.stderr.contains(&token),
        "the token is in the debug log"
    );
    let json = created.json();
    assert_eq!(json["workspace"]["status"], "running", "{json}");
    assert!(
        json["password"].as_str().is_some_and(|p| p.len() >= 20),
        "{json}"
    );
    run(through_server(), &["delete", "slow", "--yes"]).ok();
    assert_eq!(sim.stats().apps, 0, "nothing left on Fly");
    server.stop();
    rt.block_on(sim.shutdown());
}

#[test]
fn through_a_server_bad_tokens_urls_and_input_fail_as_the_cli_does_and_never_show_the_token() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let server_home = Home::new();
    let (server, token) = team_server(&server_home, &sim, "alice");
    let member = Home::new();
    let with = |server_url: &str, token: &str| {
        let mut cmd = member.swarm();
        cmd.env("SWARM_SERVER", server_url)
            .env("SWARM_TOKEN", token);
        cmd
    };

    // A token the server does not know: exit 1, advice, and the token nowhere.
    let wrong = "swt_0000000000000000wrongtoken0000000000000000000000000000000000";
    for args in [&["list"][..], &["list", "--json", "-vvv"], &["show", "x"]] {
        let out = run(with(&server.base, wrong), args);
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("refused the API token")
                && out.stderr.contains("swarm token create"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            !out.stdout.contains(wrong) && !out.stderr.contains(wrong),
            "{args:?}: the token is echoed"
        );
    }
    let out = run(with(&server.base, &token), &["list", "-vvv"]).ok();
    assert!(
        !out.stdout.contains(&token) && !out.stderr.contains(&token),
        "the token is logged"
    );

    // Bad URLs: exit 2 naming where the URL came from; nothing is called.
    let out = run(with("not a url", &token), &["list"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("SWARM_SERVER"), "{}", out.stderr);
    let out = run(
        member.swarm().env("SWARM_TOKEN", &token),
        &["--server", "ftp://example.com", "list"],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--server"), "{}", out.stderr);
    let out = run(member.swarm(), &["--server", &server.base, "list"]);
    assert_eq!(out.code, 2, "no token: {}", out.stderr);
    assert!(out.stderr.contains("SWARM_TOKEN"), "{}", out.stderr);

    // Nobody listening: a clear failure naming the URL.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let out = run(with(&closed, &token), &["list"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&closed) && out.stderr.contains("cannot reach"),
        "{}",
        out.stderr
    );

    // Invalid input: the server's check, exit 2, the field named, nothing created.
    for (args, field) in [
        (&["create", "bad", "--cpus", "3"][..], "cpus"),
        (&["create", "bad", "--region", "mars"], "region"),
        (&["create", "bad", "--memory", "100", "--json"], "memory"),
    ] {
        let out = run(with(&server.base, &token), args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(field), "{args:?}: {}", out.stderr);
    }
    let out = run(with(&server.base, &token), &["create", "BAD"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(sim.stats().apps, 0, "nothing was created");
    assert_eq!(
        run(with(&server.base, &token), &["list", "--json"])
            .ok()
            .json(),
        serde_json::json!([])
    );

    // An unknown workspace: the local CLI's words and exit code.
    let local = run(member.swarm(), &["show", "nope"]);
    let remote = run(with(&server.base, &token), &["show", "nope"]);
    assert_eq!((remote.code, local.code), (2, 2), "{}", remote.stderr);
    assert_eq!(
        remote.stderr.lines().last(),
        local.stderr.lines().last(),
        "{}",
        remote.stderr
    );

    // What runs only on the server's machine: exit 2, said so.
    for (args, needle) in [
        (&["pool", "list"][..], "not available through --server"),
        (
            &["token", "create", "--user", "bob"],
            "not available through --server",
        ),
        (&["serve"], "not available through --server"),
        (&["--local", "list"], "--local"),
    ] {
        let out = run(with(&server.base, &token), args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }

    // The token from a file works too; `config` names the server, never the token.
    let token_file = member.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let file_arg = token_file.to_string_lossy().into_owned();
    run(
        member.swarm(),
        &["--server", &server.base, "--token-file", &file_arg, "list"],
    )
    .ok();
    let config = run(with(&server.base, &token), &["config", "--json"])
        .ok()
        .json();
    assert_eq!(config["server"]["url"], server.base.as_str(), "{config}");
    assert!(!config.to_string().contains(&token), "{config}");

    server.stop();
    rt.block_on(sim.shutdown());
}
