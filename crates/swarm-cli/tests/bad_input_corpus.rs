#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! The bad-input corpus (issue 8): `tests/corpus/cli.txt` (flags, arguments and
//! environment variables) and `tests/corpus/config.txt` (config files). Every case is
//! refused with exit 2 and a message naming the problem; no panic, nothing on stdout
//! but the `--json` error document, no Fly API call, and no file created or changed.
//! The cases are new: those of `cli.rs` (`invalid_inputs_exit_2_name_the_problem_and_change_nothing`,
//! `a_bad_config_file_is_refused_with_exit_2`) are not repeated here.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt as _;
use std::path::{Path, PathBuf};

use common::{Home, Run, run, runtime, start_sim, tree, tree_diff};
use fly_sim::SimHandle;

/// Every subcommand; the corpus must exercise each.
const COMMANDS: [&str; 25] = [
    "create",
    "list",
    "show",
    "start",
    "stop",
    "delete",
    "health",
    "logs",
    "password",
    "resize",
    "update",
    "versions",
    "rollback",
    "move",
    "snapshot create",
    "snapshot list",
    "restore",
    "reconcile",
    "config",
    "completions",
    "snapshot",
    "exec",
    "secret set",
    "secret list",
    "secret unset",
];

/// Commands that read the configuration, each valid on its own (`keep` exists), so that
/// only the bad config file can be the reason for a refusal.
const CONFIG_READERS: [&[&str]; 19] = [
    &["list"],
    &["show", "keep"],
    &["config"],
    &["create", "fresh"],
    &["start", "keep"],
    &["stop", "keep"],
    &["delete", "keep", "--yes"],
    &["health", "keep"],
    &["logs", "keep"],
    &["password", "keep", "--rotate"],
    &["resize", "keep", "--memory", "1024"],
    &["update", "keep", "--image", "codercom/code-server:4.107.0"],
    &["versions", "keep"],
    &["rollback", "keep"],
    &["move", "keep", "--region", "fra"],
    &["snapshot", "create", "keep"],
    &["snapshot", "list", "keep"],
    &["restore", "keep", "--snapshot", "vs_abc", "--yes"],
    &["reconcile"],
];

/// Paths the corpus refers to by placeholder.
struct Fixtures {
    home: PathBuf,
    dir: PathBuf,
    fifo: PathBuf,
}

impl Fixtures {
    fn new(home: &Path) -> Self {
        let dir = home.join("fixtures/a-folder");
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = home.join("fixtures/a-fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success(), "mkfifo");
        Self {
            home: home.to_owned(),
            dir,
            fifo,
        }
    }

    /// `{home}`, `{dir}`, `{fifo}` and `{repeat:TEXT:N}` expanded.
    fn expand(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let end = start + rest[start..].find('}').expect("unclosed {placeholder}");
            let inner = &rest[start + 1..end];
            match inner {
                "home" => out.push_str(&self.home.to_string_lossy()),
                "dir" => out.push_str(&self.dir.to_string_lossy()),
                "fifo" => out.push_str(&self.fifo.to_string_lossy()),
                _ => match inner.strip_prefix("repeat:") {
                    Some(spec) => {
                        let (what, n) = spec.rsplit_once(':').unwrap();
                        out.push_str(&what.repeat(n.parse().unwrap()));
                    }
                    // Not ours (`\u{...}`, a TOML inline table): kept as written.
                    None => out.push_str(&rest[start..=end]),
                },
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// Splits a corpus line into words: spaces separate, "double quotes" keep spaces and
/// take escapes (\n \r \t \a \e \\ \" \xNN \u{...}); placeholders are expanded.
fn words(line: &str, fixtures: &Fixtures) -> Vec<Vec<u8>> {
    let line = fixtures.expand(line);
    let mut words = Vec::new();
    let mut word: Option<Vec<u8>> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => words.extend(word.take()),
            '"' => {
                let word = word.get_or_insert_with(Vec::new);
                loop {
                    let c = chars.next().expect("unclosed quote");
                    let mut utf8 = [0u8; 4];
                    match c {
                        '"' => break,
                        '\\' => match chars.next().expect("escape") {
                            'n' => word.push(b'\n'),
                            'r' => word.push(b'\r'),
                            't' => word.push(b'\t'),
                            'a' => word.push(0x07),
                            'e' => word.push(0x1b),
                            'x' => {
                                let hex: String = chars.by_ref().take(2).collect();
                                word.push(u8::from_str_radix(&hex, 16).unwrap());
                            }
                            'u' => {
                                assert_eq!(chars.next(), Some('{'));
                                let hex: String =
                                    chars.by_ref().take_while(|c| *c != '}').collect();
                                let c =
                                    char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap();
                                word.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                            }
                            other => {
                                word.extend_from_slice(other.encode_utf8(&mut utf8).as_bytes())
                            }
                        },
                        c => word.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes()),
                    }
                }
            }
            c => {
                let mut utf8 = [0u8; 4];
                word.get_or_insert_with(Vec::new)
                    .extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
    words.extend(word);
    words
}

/// One bad input: what to run and what the refusal must name.
#[derive(Debug)]
struct Case {
    /// Where it comes from, for failure messages.
    origin: String,
    needle: String,
    env: Vec<(String, OsString)>,
    args: Vec<OsString>,
    /// A config file's content, and how it is given (0 default path, 1 --config,
    /// 2 SWARM_CONFIG).
    config: Option<(Vec<u8>, usize)>,
}

fn cli_cases(fixtures: &Fixtures) -> Vec<Case> {
    let text = include_str!("corpus/cli.txt");
    let mut cases = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = words(line, fixtures).into_iter();
        let needle = String::from_utf8(words.next().unwrap()).unwrap();
        let mut env = Vec::new();
        for word in words.by_ref() {
            if word == b"swarm" {
                break;
            }
            let split = word.iter().position(|b| *b == b'=').expect("NAME=VALUE");
            env.push((
                String::from_utf8(word[..split].to_vec()).unwrap(),
                OsString::from_vec(word[split + 1..].to_vec()),
            ));
        }
        let args: Vec<OsString> = words.map(OsString::from_vec).collect();
        assert!(!args.is_empty(), "cli.txt:{}: no `swarm ARGS`", index + 1);
        cases.push(Case {
            origin: format!("cli.txt:{}: {line}", index + 1),
            needle,
            env,
            args,
            config: None,
        });
    }
    cases
}

/// `«1b»` → the byte 0x1b; the rest as is.
fn raw_bytes(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('«') {
        out.extend_from_slice(&rest.as_bytes()[..start]);
        let after = &rest[start + '«'.len_utf8()..];
        let end = after.find('»').expect("unclosed «");
        out.push(u8::from_str_radix(&after[..end], 16).unwrap());
        rest = &after[end + '»'.len_utf8()..];
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

fn config_cases(fixtures: &Fixtures) -> Vec<Case> {
    let text = include_str!("corpus/config.txt");
    let mut cases = Vec::new();
    let mut sections = text.split("\n### ").skip(1).peekable();
    let mut line = text[..text.find("\n### ").unwrap()].lines().count() + 1;
    let mut index = 0;
    while let Some(section) = sections.next() {
        let (header, body) = section.split_once('\n').unwrap_or((section, ""));
        let (needle, args) = match header.split_once('|') {
            Some((needle, args)) => (
                needle.trim().to_owned(),
                args.split_whitespace().map(OsString::from).collect(),
            ),
            None => (
                header.trim().to_owned(),
                CONFIG_READERS[index % CONFIG_READERS.len()]
                    .iter()
                    .map(OsString::from)
                    .collect(),
            ),
        };
        let body = if sections.peek().is_some() {
            body.to_owned()
        } else {
            body.trim_end_matches('\n').to_owned() + "\n"
        };
        cases.push(Case {
            origin: format!("config.txt:{line}: ### {header}"),
            needle,
            env: Vec::new(),
            args,
            config: Some((raw_bytes(&fixtures.expand(&body)), index % 3)),
        });
        line += section.lines().count();
        index += 1;
    }
    cases
}

/// Runs one case, plain or with `--json`, and checks every promise.
fn check(case: &Case, json: bool, home: &Home, sim: &SimHandle) -> Run {
    let mut cmd = home.swarm_at(sim);
    let mut args = case.args.clone();
    if let Some((content, via)) = &case.config {
        let path = match via {
            0 => home.default_config(),
            _ => home.path().join("fixtures/given.toml"),
        };
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        match via {
            1 => args.extend([OsString::from("--config"), path.into_os_string()]),
            2 => {
                cmd.env("SWARM_CONFIG", &path);
            }
            _ => {}
        }
    }
    for (name, value) in &case.env {
        cmd.env(name, value);
    }
    if json {
        // Before a `--`: what follows it is `swarm exec`'s command, not swarm's flags.
        match args.iter().position(|a| a == "--") {
            Some(at) => args.insert(at, "--json".into()),
            None => args.push("--json".into()),
        }
    }
    let files = tree(home.path());
    let world = sim.world();
    let requests = sim.stats().requests_total;

    let out = run(cmd, &args);

    let what = format!(
        "{}{}\nstdout:\n{}\nstderr:\n{}",
        case.origin,
        if json { " (--json)" } else { "" },
        out.stdout,
        out.stderr
    );
    assert_eq!(out.code, 2, "exit code: {what}");
    assert!(
        out.stderr
            .to_lowercase()
            .contains(&case.needle.to_lowercase()),
        "stderr should name {:?}: {what}",
        case.needle
    );
    assert!(
        out.stderr.contains("error:"),
        "an error line on stderr: {what}"
    );
    // Names and values are quoted with escapes: no raw control character (a terminal
    // escape sequence from the input) reaches the user's terminal.
    assert!(
        !out.stderr.chars().any(|c| c.is_control() && c != '\n'),
        "raw control character on stderr: {what}"
    );
    if json {
        // Also for clap's own usage errors, found before the arguments are parsed.
        let doc = out.json();
        assert_eq!(doc["exit_code"], 2, "{what}");
        let error = doc["error"].as_str().unwrap_or_default().to_lowercase();
        assert!(
            error.contains(&case.needle.to_lowercase()),
            "the JSON error should name {:?}: {what}",
            case.needle
        );
    } else {
        assert!(out.stdout.is_empty(), "stdout should be empty: {what}");
    }
    assert_eq!(
        sim.stats().requests_total,
        requests,
        "a Fly API call was made: {what}"
    );
    assert_eq!(sim.world(), world, "Fly changed: {what}");
    // The config file the test wrote was written before `files` was taken.
    assert_eq!(
        tree_diff(&files, &tree(home.path())),
        None,
        "a file changed: {what}"
    );
    out
}

#[test]
fn every_corpus_case_exits_2_names_the_problem_and_changes_nothing() {
    let started = std::time::Instant::now();
    let rt = runtime();
    let sim = start_sim(&rt);
    let home = Home::new();
    // A store with a workspace in it, so that "nothing changed" means something.
    run(home.swarm_at(&sim), &["create", "keep"]).ok();
    let fixtures = Fixtures::new(home.path());
    let cli = cli_cases(&fixtures);
    let config = config_cases(&fixtures);

    let mut usage_errors = 0;
    let mut json_documents = 0;
    let mut failures = Vec::new();
    for case in cli.iter().chain(&config) {
        for json in [false, true] {
            // Every case runs; the failures are listed together at the end.
            let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                check(case, json, &home, &sim)
            }));
            match checked {
                Ok(out) if json && out.stderr.contains("Usage:") => usage_errors += 1,
                Ok(_) if json => json_documents += 1,
                Ok(_) => {}
                Err(panic) => failures.push(
                    panic
                        .downcast_ref::<String>()
                        .cloned()
                        .unwrap_or_else(|| case.origin.clone()),
                ),
            }
        }
        // Between cases the default config file goes, so the next case starts clean.
        let _ = std::fs::remove_file(home.default_config());
    }

    // Coverage: every command, every variable swarm reads, every config key.
    let mut commands = BTreeSet::new();
    for case in cli.iter().chain(&config) {
        let args: Vec<String> = case
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        if let Some(first) = args.first() {
            commands.insert(first.clone());
            if (first == "snapshot" || first == "secret")
                && let Some(second) = args.get(1)
            {
                commands.insert(format!("{first} {second}"));
            }
        }
    }
    for command in COMMANDS {
        assert!(
            commands.contains(command),
            "no corpus case for `swarm {command}`"
        );
    }
    let vars: BTreeSet<&str> = cli
        .iter()
        .flat_map(|c| c.env.iter().map(|(n, _)| n.as_str()))
        .collect();
    for var in [
        "SWARM_REGION",
        "SWARM_REGIONS",
        "SWARM_CPUS",
        "SWARM_CPU_KIND",
        "SWARM_MEMORY",
        "SWARM_STORAGE",
        "SWARM_IDLE_TIMEOUT",
        "SWARM_IP",
        "SWARM_IMAGE",
        "SWARM_DB",
        "SWARM_CONFIG",
        "SWARM_LOCAL_LATENCY",
        "FLY_ORG",
        "FLY_API_TOKEN",
        "FLY_ACCESS_TOKEN",
        "FLY_FLAPS_BASE_URL",
        "FLY_API_BASE_URL",
    ] {
        assert!(vars.contains(var), "no corpus case for {var}");
    }
    let config_text = include_str!("corpus/config.txt");
    for key in [
        "org",
        "region",
        "regions",
        "image",
        "cpus",
        "cpu_kind",
        "memory",
        "storage",
        "idle_timeout",
        "ip",
        "db",
    ] {
        assert!(
            config_text.contains(&format!("\n{key} = ")),
            "no config case for the key {key}"
        );
    }

    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n\n{}",
        failures.len(),
        (cli.len() + config.len()) * 2,
        failures.join("\n\n")
    );
    let total = cli.len() + config.len();
    println!(
        "bad-input corpus: {} command-line/env cases + {} config-file cases = {total} new cases, \
         {} runs (every --json run printed a JSON error document: {json_documents} from swarm, \
         {usage_errors} from clap's usage errors), {} commands, {} variables, in {:.1} s",
        cli.len(),
        config.len(),
        total * 2,
        COMMANDS.iter().filter(|c| commands.contains(**c)).count(),
        vars.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(total >= 100, "the corpus has only {total} cases");
    assert!(
        cli.len() >= 100 && config.len() >= 50,
        "{} + {}",
        cli.len(),
        config.len()
    );
    rt.block_on(sim.shutdown());
}
