//! `POST /machines/{id}/exec` against the simulated machine: a small, fixed set of
//! commands run over what the sim knows of the machine (its env as launched, with the
//! app's secrets; the files of its mounted volume). Anything else answers exit 127
//! with `fly-sim: command not supported`, never a made-up success.
//!
//! Decisions where Fly documents nothing (README "exec"): a machine that is not
//! `started` answers 412 `failed_precondition: …` (Fly's answer for every other state
//! refusal); an absent `timeout` means 60 s; a command running past its timeout
//! answers 408.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{ApiError, World};

/// The commands the sim runs, for the "not supported" message.
pub const SUPPORTED: &str = "true, false, echo, printenv, env, cat, ls, sleep, hostname, and sh -c with one of them or `exit N`";

/// The default and the largest `timeout`, seconds [inferred].
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;
pub const MAX_TIMEOUT_SECS: u64 = 3600;

/// A parsed `MachineExecRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    pub command: Vec<String>,
    pub stdin: Option<String>,
    pub timeout_secs: u64,
}

impl ExecRequest {
    /// Reads Fly's body: `command` (or the deprecated `cmd` string, split on
    /// whitespace as flyctl's users write it), `stdin`, `timeout` (seconds),
    /// `container` / `machine` (mutually exclusive; the sim's machines run no
    /// separate containers).
    pub fn from_json(body: &Value) -> Result<ExecRequest, ApiError> {
        let command: Vec<String> = match body.get("command") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| ApiError::bad_request("command: must be a list of strings"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(ApiError::bad_request("command: must be a list of strings")),
        };
        let command = if command.is_empty() {
            match body.get("cmd") {
                Some(Value::String(cmd)) => cmd.split_whitespace().map(str::to_string).collect(),
                None | Some(Value::Null) => Vec::new(),
                Some(_) => return Err(ApiError::bad_request("cmd: must be a string")),
            }
        } else {
            command
        };
        if command.first().is_none_or(String::is_empty) {
            return Err(ApiError::bad_request(
                "command: required, a non-empty list of strings (e.g. [\"ls\", \"/data\"])",
            ));
        }
        let stdin = match body.get("stdin") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(ApiError::bad_request("stdin: must be a string")),
        };
        let timeout_secs = match body.get("timeout") {
            None | Some(Value::Null) => DEFAULT_TIMEOUT_SECS,
            Some(v) => match v.as_i64() {
                Some(0) => DEFAULT_TIMEOUT_SECS,
                Some(n) if n > 0 && n.unsigned_abs() <= MAX_TIMEOUT_SECS => n.unsigned_abs(),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "timeout: must be an integer number of seconds from 1 to {MAX_TIMEOUT_SECS}"
                    )));
                }
            },
        };
        let in_machine = body.get("machine").and_then(Value::as_bool) == Some(true);
        match body.get("container") {
            None | Some(Value::Null) => {}
            Some(Value::String(c)) if c.is_empty() => {}
            Some(Value::String(_)) if in_machine => {
                return Err(ApiError::bad_request(
                    "container and machine are mutually exclusive",
                ));
            }
            Some(Value::String(c)) => {
                return Err(ApiError::bad_request(format!(
                    "container {c:?}: this machine runs no such container"
                )));
            }
            Some(_) => return Err(ApiError::bad_request("container: must be a string")),
        }
        Ok(ExecRequest {
            command,
            stdin,
            timeout_secs,
        })
    }
}

/// What a command did, and how long it ran (model ms, on top of the exec latency).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecOutcome {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i64,
    pub runs_ms: i64,
}

impl ExecOutcome {
    fn ok(stdout: String) -> Self {
        Self {
            stdout,
            ..Self::default()
        }
    }

    fn fail(code: i64, stderr: String) -> Self {
        Self {
            stderr,
            exit_code: code,
            ..Self::default()
        }
    }
}

/// What a command can see of its machine.
struct Machine<'a> {
    id: &'a str,
    env: &'a BTreeMap<String, String>,
    /// The volume's mount path and files (keys are paths under the volume, `/a/b`).
    volume: Option<(String, &'a BTreeMap<String, Vec<u8>>)>,
}

impl World {
    /// Runs `request` on the machine: 404 for an unknown one, 412 unless `started`.
    pub fn exec(
        &self,
        app: &str,
        id: &str,
        request: &ExecRequest,
    ) -> Result<ExecOutcome, ApiError> {
        let a = self.app(app)?;
        let m = a
            .machines
            .get(id)
            .filter(|m| m.state != "destroyed")
            .ok_or_else(|| ApiError::machine_not_found(id))?;
        if m.state != "started" {
            return Err(ApiError::precondition(format!(
                "unable to exec on machine in current state: '{}' (it must be started)",
                m.state
            )));
        }
        let mount = m
            .config
            .pointer("/mounts/0/path")
            .and_then(Value::as_str)
            .map(|p| p.trim_end_matches('/').to_string());
        let volume = match (mount, m.mounted_volumes.first()) {
            (Some(path), Some(vid)) => a.volumes.get(vid).map(|v| (path, &v.files)),
            _ => None,
        };
        let machine = Machine {
            id: &m.id,
            env: &m.runtime_env,
            volume,
        };
        Ok(run(&machine, &request.command, request.stdin.as_deref()))
    }
}

fn run(machine: &Machine<'_>, argv: &[String], stdin: Option<&str>) -> ExecOutcome {
    let Some((program, args)) = argv.split_first() else {
        return unsupported("");
    };
    match program.as_str() {
        "true" | "/bin/true" | "/usr/bin/true" => ExecOutcome::ok(String::new()),
        "false" | "/bin/false" | "/usr/bin/false" => ExecOutcome::fail(1, String::new()),
        "echo" | "/bin/echo" => echo(args),
        "printenv" | "/usr/bin/printenv" => printenv(machine.env, args),
        "env" | "/usr/bin/env" if args.is_empty() => printenv(machine.env, &[]),
        "hostname" | "/bin/hostname" if args.is_empty() => {
            ExecOutcome::ok(format!("{}\n", machine.id))
        }
        "cat" | "/bin/cat" => cat(machine, args, stdin),
        "ls" | "/bin/ls" => ls(machine, args),
        "sleep" | "/bin/sleep" => sleep(args),
        "sh" | "/bin/sh" | "bash" | "/bin/bash" => shell(machine, args, stdin, argv),
        _ => unsupported(&argv.join(" ")),
    }
}

fn unsupported(command: &str) -> ExecOutcome {
    ExecOutcome::fail(
        127,
        format!("fly-sim: command not supported: {command} (the sim runs {SUPPORTED})\n"),
    )
}

fn echo(args: &[String]) -> ExecOutcome {
    let (newline, words) = match args.first().map(String::as_str) {
        Some("-n") => (false, &args[1..]),
        _ => (true, args),
    };
    let mut out = words.join(" ");
    if newline {
        out.push('\n');
    }
    ExecOutcome::ok(out)
}

/// coreutils' printenv: all as `K=V`, or each named value; exit 1 if any is unset.
fn printenv(env: &BTreeMap<String, String>, names: &[String]) -> ExecOutcome {
    if names.is_empty() {
        let out: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        return ExecOutcome::ok(out);
    }
    let mut out = String::new();
    let mut missing = false;
    for name in names {
        match env.get(name) {
            Some(value) => {
                out.push_str(value);
                out.push('\n');
            }
            None => missing = true,
        }
    }
    ExecOutcome {
        stdout: out,
        exit_code: i64::from(missing),
        ..ExecOutcome::default()
    }
}

/// The path under the volume for an absolute `path`, or why there is none.
fn volume_key(machine: &Machine<'_>, path: &str) -> Result<String, String> {
    let Some((mount, _)) = &machine.volume else {
        return Err(
            "fly-sim models files only on a mounted volume, and this machine has none".into(),
        );
    };
    let normalized = path.trim_end_matches('/');
    if normalized == mount.as_str() {
        return Ok(String::new());
    }
    match normalized.strip_prefix(mount.as_str()) {
        Some(rest) if rest.starts_with('/') && !rest.split('/').any(|c| c == "..") => {
            Ok(rest.to_string())
        }
        _ => Err(format!(
            "fly-sim models only the files of the volume mounted at {mount}"
        )),
    }
}

fn cat(machine: &Machine<'_>, paths: &[String], stdin: Option<&str>) -> ExecOutcome {
    if paths.is_empty() || paths == ["-"] {
        return ExecOutcome::ok(stdin.unwrap_or_default().to_string());
    }
    let mut out = Vec::new();
    let mut err = String::new();
    for path in paths {
        match volume_key(machine, path) {
            Ok(key) => match machine.volume.as_ref().and_then(|(_, f)| f.get(&key)) {
                Some(bytes) => out.extend_from_slice(bytes),
                None if is_dir(machine, &key) => {
                    err.push_str(&format!("cat: {path}: Is a directory\n"));
                }
                None => err.push_str(&format!("cat: {path}: No such file or directory\n")),
            },
            Err(why) => err.push_str(&format!("cat: {path}: {why}\n")),
        }
    }
    ExecOutcome {
        stdout: String::from_utf8_lossy(&out).into_owned(),
        exit_code: i64::from(!err.is_empty()),
        stderr: err,
        runs_ms: 0,
    }
}

fn is_dir(machine: &Machine<'_>, key: &str) -> bool {
    let prefix = format!("{key}/");
    key.is_empty()
        || machine
            .volume
            .as_ref()
            .is_some_and(|(_, files)| files.keys().any(|k| k.starts_with(&prefix)))
}

/// `ls PATH…`: the names directly under each directory (or the file itself), sorted.
fn ls(machine: &Machine<'_>, args: &[String]) -> ExecOutcome {
    if args.is_empty() {
        return ExecOutcome::fail(
            2,
            "ls: fly-sim needs a path (the sim models only the volume's files)\n".into(),
        );
    }
    if let Some(flag) = args.iter().find(|a| a.starts_with('-')) {
        return unsupported(&format!("ls {flag}"));
    }
    let mut out = String::new();
    let mut err = String::new();
    for path in args {
        let key = match volume_key(machine, path) {
            Ok(key) => key,
            Err(why) => {
                err.push_str(&format!("ls: cannot access '{path}': {why}\n"));
                continue;
            }
        };
        let files = machine.volume.as_ref().map(|(_, f)| *f);
        if files.is_some_and(|f| f.contains_key(&key)) {
            out.push_str(path);
            out.push('\n');
            continue;
        }
        if !is_dir(machine, &key) {
            err.push_str(&format!(
                "ls: cannot access '{path}': No such file or directory\n"
            ));
            continue;
        }
        let prefix = format!("{key}/");
        let mut names: Vec<&str> = files
            .into_iter()
            .flat_map(|f| f.keys())
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(|rest| rest.split('/').next().unwrap_or(rest))
            .filter(|name| !name.is_empty())
            .collect();
        names.dedup();
        if args.len() > 1 {
            out.push_str(&format!("{path}:\n"));
        }
        for name in names {
            out.push_str(name);
            out.push('\n');
        }
    }
    ExecOutcome {
        stdout: out,
        exit_code: if err.is_empty() { 0 } else { 2 },
        stderr: err,
        runs_ms: 0,
    }
}

/// `sleep N` (whole or fractional seconds): runs that long in model time.
fn sleep(args: &[String]) -> ExecOutcome {
    let seconds = match args {
        [one] => one
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0),
        _ => None,
    };
    match seconds {
        #[allow(clippy::cast_possible_truncation)]
        Some(s) => ExecOutcome {
            runs_ms: (s.min(1.0e7) * 1000.0) as i64,
            ..ExecOutcome::default()
        },
        None => ExecOutcome::fail(1, "sleep: give one number of seconds\n".into()),
    }
}

/// `sh -c SCRIPT`: only `exit N` or one supported command with plain words: the sim
/// has no shell, so anything with quoting, expansion or operators is not supported.
fn shell(
    machine: &Machine<'_>,
    args: &[String],
    stdin: Option<&str>,
    argv: &[String],
) -> ExecOutcome {
    let [flag, script] = args else {
        return unsupported(&argv.join(" "));
    };
    if flag != "-c"
        || script
            .chars()
            .any(|c| "|&;<>()$`\\\"'*?[]{}~#=\n".contains(c))
    {
        return unsupported(&argv.join(" "));
    }
    let words: Vec<String> = script.split_whitespace().map(str::to_string).collect();
    match words.as_slice() {
        [] => ExecOutcome::ok(String::new()),
        [exit] if exit == "exit" => ExecOutcome::ok(String::new()),
        [exit, code] if exit == "exit" => match code.parse::<u8>() {
            Ok(code) => ExecOutcome::fail(i64::from(code), String::new()),
            Err(_) => unsupported(&argv.join(" ")),
        },
        [program, ..]
            if program == "sh" || program.ends_with("/sh") || program.contains("bash") =>
        {
            unsupported(&argv.join(" "))
        }
        _ => run(machine, &words, stdin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn machine<'a>(
        env: &'a BTreeMap<String, String>,
        files: &'a BTreeMap<String, Vec<u8>>,
    ) -> Machine<'a> {
        Machine {
            id: "m1",
            env,
            volume: Some(("/data".into(), files)),
        }
    }

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_string()).collect()
    }

    #[test]
    fn requests_need_a_command_and_a_sane_timeout() {
        assert!(ExecRequest::from_json(&json!({})).is_err());
        assert!(ExecRequest::from_json(&json!({"command": []})).is_err());
        assert!(ExecRequest::from_json(&json!({"command": [""]})).is_err());
        assert!(ExecRequest::from_json(&json!({"command": [1]})).is_err());
        assert!(ExecRequest::from_json(&json!({"command": ["ls"], "timeout": -1})).is_err());
        assert!(ExecRequest::from_json(&json!({"command": ["ls"], "container": "x"})).is_err());
        let old =
            ExecRequest::from_json(&json!({"cmd": "echo hi"})).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(old.command, argv(&["echo", "hi"]));
        assert_eq!(old.timeout_secs, DEFAULT_TIMEOUT_SECS);
    }

    #[test]
    fn commands_run_over_env_and_volume_files_and_the_rest_is_refused() {
        let env = BTreeMap::from([("A".to_string(), "1".to_string())]);
        let files = BTreeMap::from([
            ("/x.txt".to_string(), b"hello".to_vec()),
            ("/dir/y".to_string(), b"y".to_vec()),
        ]);
        let m = machine(&env, &files);
        let r = |words: &[&str]| run(&m, &argv(words), Some("in"));
        assert_eq!(r(&["true"]).exit_code, 0);
        assert_eq!(r(&["false"]).exit_code, 1);
        assert_eq!(r(&["echo", "a", "b"]).stdout, "a b\n");
        assert_eq!(r(&["printenv", "A"]).stdout, "1\n");
        assert_eq!(r(&["printenv", "B"]).exit_code, 1);
        assert_eq!(r(&["cat", "/data/x.txt"]).stdout, "hello");
        assert_eq!(r(&["cat"]).stdout, "in");
        assert_eq!(r(&["cat", "/data/nope"]).exit_code, 1);
        assert!(
            r(&["cat", "/etc/passwd"])
                .stderr
                .contains("only the files of the volume")
        );
        assert_eq!(r(&["ls", "/data"]).stdout, "dir\nx.txt\n");
        assert_eq!(r(&["sh", "-c", "exit 3"]).exit_code, 3);
        assert_eq!(r(&["sh", "-c", "echo hi"]).stdout, "hi\n");
        assert_eq!(r(&["sleep", "2"]).runs_ms, 2000);
        for refused in [
            &["python3", "-c", "1"][..],
            &["sh", "-c", "echo $HOME"],
            &["sh", "-c", "true | false"],
            &["ls", "-la", "/data"],
        ] {
            let out = r(refused);
            assert_eq!(out.exit_code, 127, "{refused:?}");
            assert!(
                out.stderr.contains("fly-sim: command not supported"),
                "{out:?}"
            );
        }
    }
}
