#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! `swarm exec` and `swarm secret` as users run them: the real binary against a
//! separate fly-sim, then through `swarm serve` (`--server`) as its owner and as
//! another user. A canary secret value goes in on stdin and must never come out: not
//! in any output (at `-vvv`), the store's files, the server's logs, the Fly world
//! dump, or `show --json` / `list --json`. It reaches the machine only through Fly,
//! seen by `exec printenv` after a restart.

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};

use common::{Home, Run, contains_bytes, run, runtime, start_sim, walk};

const CANARY: &str = "canary-secret-value-5e0c2b7d91a4";

/// Runs `cmd` with `input` on stdin (and the checks of [`run`]).
fn run_with_stdin(mut cmd: Command, args: &[&str], input: &str) -> Run {
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

/// Every output seen, to check the canary against at the end.
#[derive(Default)]
struct Seen(std::cell::RefCell<Vec<String>>);

impl Seen {
    fn keep(&self, args: &[&str], run: Run) -> Run {
        self.0.borrow_mut().push(format!(
            "`{}`\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            run.stdout,
            run.stderr
        ));
        run
    }

    /// The last output showed the value on purpose (`exec printenv`): checked there.
    fn forget_last(&self) {
        self.0.borrow_mut().pop();
    }

    fn assert_no_canary(&self) {
        for text in self.0.borrow().iter() {
            assert!(!text.contains(CANARY), "the secret value leaked:\n{text}");
        }
    }
}

#[test]
fn exec_and_secrets_on_the_command_line() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let home = Home::new();
    let seen = Seen::default();
    let go = |args: &[&str]| {
        let out = run(home.swarm_at(&sim), args);
        seen.keep(args, out)
    };
    go(&["create", "ws", "--image", "codercom/code-server:4.106.3"]).ok();

    // Output on the stream the command used, exit code passed on.
    let echoed = go(&["exec", "ws", "--", "echo", "hi", "there"]).ok();
    assert_eq!(echoed.stdout, "hi there\n");
    assert!(!echoed.stderr.contains("hi there"), "{}", echoed.stderr);
    let failed = go(&["exec", "ws", "--", "cat", "/home/coder/project/missing"]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert_eq!(failed.stdout, "");
    assert!(failed.stderr.contains("No such file"), "{}", failed.stderr);
    let code = go(&["exec", "ws", "--", "sh", "-c", "exit 42"]);
    assert_eq!(
        (code.code, code.stdout.as_str(), code.stderr.as_str()),
        (42, "", "")
    );
    let json = go(&["exec", "ws", "--json", "--", "echo", "doc"])
        .ok()
        .json();
    assert_eq!(json["stdout"], "doc\n", "{json}");
    assert_eq!(json["exit_code"], 0);

    // Bad input: exit 2 naming the field, nothing sent.
    let cases: [(&[&str], &str); 7] = [
        (&["exec", "ws"], "command"),
        (&["exec", "ws", "--", ""], "command"),
        (&["exec", "ws", "--timeout", "0", "--", "true"], "timeout"),
        (
            &["exec", "ws", "--timeout", "soon", "--", "true"],
            "timeout",
        ),
        (&["secret", "set", "ws", "1BAD"], "key"),
        (&["secret", "set", "ws", "FLY_X"], "key"),
        (&["secret", "unset", "ws", "A-B"], "key"),
    ];
    for (args, field) in cases {
        let refused = go(args);
        assert_eq!(refused.code, 2, "{args:?}: {}", refused.stderr);
        assert!(
            refused.stderr.contains(&format!("invalid {field}")),
            "{args:?}: {}",
            refused.stderr
        );
    }
    // A value on the command line is refused, and not repeated back.
    let inline = format!("TOKEN={CANARY}");
    for args in [
        &["secret", "set", "ws", "TOKEN", CANARY][..],
        &["secret", "set", "ws", inline.as_str()],
    ] {
        let refused = go(args);
        assert_eq!(refused.code, 2, "{}", refused.stderr);
        assert!(refused.stderr.contains("stdin"), "{}", refused.stderr);
        assert!(!refused.stderr.contains(CANARY), "{}", refused.stderr);
        seen.forget_last(); // the argv held it on purpose; its output is checked above
    }

    // Set from stdin (one trailing newline dropped), at the most verbose log level.
    let set_args = ["-vvv", "secret", "set", "ws", "API_TOKEN"];
    let mut cmd = home.swarm_at(&sim);
    cmd.env("SWARM_LOG", "trace");
    let set = seen.keep(
        &set_args,
        run_with_stdin(cmd, &set_args, &format!("{CANARY}\n")),
    );
    assert_eq!(set.code, 0, "{}", set.stderr);
    assert!(
        set.stdout.contains("Secret API_TOKEN set on workspace ws"),
        "{}",
        set.stdout
    );
    assert!(set.stderr.contains("next restart"), "{}", set.stderr);
    let empty = run_with_stdin(home.swarm_at(&sim), &["secret", "set", "ws", "EMPTY"], "");
    assert_eq!(empty.code, 2, "{}", empty.stderr);
    assert!(empty.stderr.contains("empty"), "{}", empty.stderr);
    let file = home.path().join("value.txt");
    std::fs::write(&file, "from-a-file").unwrap();
    go(&[
        "secret",
        "set",
        "ws",
        "FROM_FILE",
        "--from-file",
        file.to_str().unwrap(),
    ])
    .ok();

    let listed = go(&["secret", "list", "ws"]).ok();
    assert!(listed.stdout.contains("API_TOKEN"), "{}", listed.stdout);
    assert!(listed.stdout.contains("FROM_FILE"), "{}", listed.stdout);
    let listed = go(&["secret", "list", "ws", "--json"]).ok().json();
    assert_eq!(listed["secrets"].as_array().unwrap().len(), 2, "{listed}");

    // Not running: refused, exit 2, saying --start; then --start.
    let before = go(&["exec", "ws", "--", "printenv", "API_TOKEN"]);
    assert_eq!(before.code, 1, "not in the running machine yet");
    go(&["stop", "ws"]).ok();
    let refused = go(&["exec", "ws", "--", "true"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("--start"), "{}", refused.stderr);
    let woke = go(&[
        "exec",
        "ws",
        "--start",
        "--",
        "printenv",
        "API_TOKEN",
        "FROM_FILE",
    ]);
    assert_eq!(woke.code, 0, "{}", woke.stderr);
    // Only the command's own stdout carries the value: that is the point of printenv.
    assert_eq!(woke.stdout, format!("{CANARY}\nfrom-a-file\n"));
    seen.forget_last();

    for args in [
        &["show", "ws", "--json"][..],
        &["list", "--json"],
        &["show", "ws"],
    ] {
        go(args).ok();
    }
    let unset = go(&["secret", "unset", "ws", "FROM_FILE"]).ok();
    assert!(unset.stdout.contains("removed"), "{}", unset.stdout);
    let again = go(&["secret", "unset", "ws", "FROM_FILE"]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(
        again.stderr.contains("no secret named FROM_FILE"),
        "{}",
        again.stderr
    );

    seen.assert_no_canary();
    for file in walk(home.path()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !contains_bytes(&bytes, CANARY.as_bytes()),
            "the value is in {}",
            file.display()
        );
    }
    assert!(
        !sim.world().to_string().contains(CANARY),
        "in the Fly world dump"
    );
    rt.block_on(sim.shutdown());
}

#[test]
fn exec_and_secrets_through_the_server_are_the_owners_only() {
    let rt = runtime();
    let sim = start_sim(&rt);
    let home = Home::new();
    let token = |user: &str| {
        let made = run(
            home.swarm_at(&sim),
            &["token", "create", "--user", user, "--json"],
        )
        .ok()
        .json();
        made["token"].as_str().unwrap().to_owned()
    };
    let (alice, bob) = (token("alice"), token("bob"));
    let log = home.path().join("server.log");
    let mut server = home
        .swarm_at(&sim)
        .env("SWARM_LOG", "debug")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let client = |token: &str| {
        let mut cmd = home.swarm();
        cmd.env("SWARM_SERVER", &base).env("SWARM_TOKEN", token);
        cmd
    };
    let seen = Seen::default();
    let go = |token: &str, args: &[&str]| {
        let out = run(client(token), args);
        seen.keep(args, out)
    };

    go(
        &alice,
        &["create", "ws", "--image", "codercom/code-server:4.106.3"],
    )
    .ok();
    let echoed = go(&alice, &["exec", "ws", "--", "echo", "remote"]).ok();
    assert_eq!(echoed.stdout, "remote\n");
    assert_eq!(go(&alice, &["exec", "ws", "--", "false"]).code, 1);
    let empty = go(&alice, &["exec", "ws"]);
    assert_eq!(empty.code, 2, "{}", empty.stderr);

    let set = seen.keep(
        &["secret", "set"],
        run_with_stdin(
            client(&alice),
            &["secret", "set", "ws", "API_TOKEN"],
            CANARY,
        ),
    );
    assert_eq!(set.code, 0, "{}", set.stderr);
    let listed = go(&alice, &["secret", "list", "ws", "--json"]).ok().json();
    assert_eq!(listed["secrets"][0]["key"], "API_TOKEN", "{listed}");

    // Another user: as if the workspace did not exist, and nothing changes.
    for args in [
        &["exec", "ws", "--", "true"][..],
        &["secret", "list", "ws"],
        &["secret", "unset", "ws", "API_TOKEN"],
    ] {
        let refused = go(&bob, args);
        assert_eq!(refused.code, 2, "{args:?}: {}", refused.stderr);
        assert!(
            refused.stderr.contains("no workspace named ws"),
            "{}",
            refused.stderr
        );
    }
    let stolen = run_with_stdin(client(&bob), &["secret", "set", "ws", "API_TOKEN"], "evil");
    assert_eq!(stolen.code, 2, "{}", stolen.stderr);

    go(&alice, &["stop", "ws"]).ok();
    let refused = go(&alice, &["exec", "ws", "--", "true"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("--start"), "{}", refused.stderr);
    let woke = go(
        &alice,
        &["exec", "ws", "--start", "--", "printenv", "API_TOKEN"],
    );
    assert_eq!((woke.code, woke.stdout.clone()), (0, format!("{CANARY}\n")));
    seen.forget_last();
    go(&alice, &["show", "ws", "--json"]).ok();
    go(&alice, &["list", "--json"]).ok();
    go(&alice, &["secret", "unset", "ws", "API_TOKEN"]).ok();

    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    server.wait().unwrap();
    seen.assert_no_canary();
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        logs.contains("secret"),
        "the server logged its requests:\n{logs}"
    );
    assert!(!logs.contains(CANARY), "the value is in the server's logs");
    for file in walk(home.path()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !contains_bytes(&bytes, CANARY.as_bytes()),
            "the value is in {}",
            file.display()
        );
    }
    rt.block_on(sim.shutdown());
}
