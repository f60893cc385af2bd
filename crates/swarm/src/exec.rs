//! `swarm exec`: one command run in a workspace's machine through Fly's Machines API
//! `exec` endpoint, its output and exit status handed back as they are.
//!
//! Nothing is journaled: the command is the user's, not a change to the workspace's
//! resources. A machine that is not running is refused (Fly would refuse it too), or
//! started first through [`Swarm::start`] when asked.

use serde::{Deserialize, Serialize};
use tracing::Instrument as _;

use crate::error::{Error, Result};
use crate::provider::{Provider, ProviderErrorKind};
use crate::swarm::Swarm;
use swarm_core::model::MachineState;
use swarm_core::validate::ValidationError;
use swarm_store::Store;

/// The longest `--timeout` (Fly documents none; an hour is already a long command).
pub const MAX_EXEC_TIMEOUT_SECS: u64 = 3600;
/// The largest command line sent, in bytes (all arguments together).
pub const MAX_EXEC_COMMAND_BYTES: usize = 32 * 1024;

/// What to run.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOptions {
    /// The program and its arguments; no shell (`["sh", "-c", "…"]` for one).
    pub command: Vec<String>,
    /// Seconds the command may run; Fly's default when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// Start a stopped workspace first (and wait until it runs).
    #[serde(default)]
    pub start_first: bool,
}

impl std::fmt::Debug for ExecOptions {
    // Arguments may carry anything the user typed, secrets included.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecOptions")
            .field("program", &self.command.first())
            .field("args", &self.command.len().saturating_sub(1))
            .field("timeout_secs", &self.timeout_secs)
            .field("start_first", &self.start_first)
            .finish()
    }
}

/// A command as the provider sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecCommand<'a> {
    pub command: &'a [String],
    pub timeout_secs: Option<u64>,
}

/// What the command printed and how it ended.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i64,
    /// The signal that ended it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_signal: Option<i64>,
}

impl std::fmt::Debug for ExecOutput {
    // The output may hold secrets (`printenv`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecOutput")
            .field("stdout_len", &self.stdout.len())
            .field("stderr_len", &self.stderr.len())
            .field("exit_code", &self.exit_code)
            .field("exit_signal", &self.exit_signal)
            .finish()
    }
}

impl ExecOutput {
    /// The exit code a shell would report: the command's own (0-255), or 128 + the
    /// signal that ended it.
    pub fn shell_exit_code(&self) -> u8 {
        match self.exit_signal {
            Some(signal) if signal > 0 => u8::try_from(128 + signal.min(127)).unwrap_or(255),
            _ => u8::try_from(self.exit_code.rem_euclid(256)).unwrap_or(1),
        }
    }
}

/// The answer of [`Swarm::exec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executed {
    pub workspace: String,
    /// Whether the workspace was started for the command (`start_first`).
    pub started: bool,
    #[serde(flatten)]
    pub output: ExecOutput,
}

/// The rules for a command: at least a program, no NUL, not huge, a sane timeout.
pub fn validate_exec(options: &ExecOptions) -> Result<(), ValidationError> {
    let shown = options.command.first().cloned().unwrap_or_default();
    if options
        .command
        .first()
        .is_none_or(|program| program.trim().is_empty())
    {
        return Err(ValidationError::new(
            "command",
            shown,
            "give the command after `--`, e.g. `swarm exec NAME -- ls /home/coder/project`",
        ));
    }
    if options.command.iter().any(|arg| arg.contains('\0')) {
        return Err(ValidationError::new(
            "command",
            shown,
            "arguments must not contain NUL bytes",
        ));
    }
    let bytes: usize = options.command.iter().map(String::len).sum();
    if bytes > MAX_EXEC_COMMAND_BYTES {
        return Err(ValidationError::new(
            "command",
            shown,
            format!("at most {MAX_EXEC_COMMAND_BYTES} bytes of arguments (this is {bytes})"),
        ));
    }
    if let Some(secs) = options.timeout_secs
        && !(1..=MAX_EXEC_TIMEOUT_SECS).contains(&secs)
    {
        return Err(ValidationError::new(
            "timeout",
            format!("{secs}s"),
            format!("from 1 s to {MAX_EXEC_TIMEOUT_SECS} s"),
        ));
    }
    Ok(())
}

/// `--timeout`: `90`, `90s`, `5m` or `1h`, within 1 s and an hour.
pub fn parse_exec_timeout(text: &str) -> Result<u64, ValidationError> {
    let fail = || {
        ValidationError::new(
            "timeout",
            text,
            format!("a duration such as 30s, 5m or 1h, from 1 s to {MAX_EXEC_TIMEOUT_SECS} s"),
        )
    };
    let trimmed = text.trim();
    let (digits, unit) = match trimmed.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => trimmed.split_at(at),
        None => (trimmed, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(fail()),
    };
    let secs = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(fail)?;
    if (1..=MAX_EXEC_TIMEOUT_SECS).contains(&secs) {
        Ok(secs)
    } else {
        Err(fail())
    }
}

impl<S: Store, P: Provider> Swarm<S, P> {
    /// Runs `options.command` in the workspace's machine and returns what it printed
    /// and its exit status (a failing command is a result, not an error). A machine
    /// that is not started is refused with [`Error::NotRunning`], or started first
    /// when `options.start_first` is set.
    pub async fn exec(&self, name: &str, options: &ExecOptions) -> Result<Executed> {
        let span = tracing::info_span!("exec", workspace = name);
        self.exec_inner(name, options).instrument(span).await
    }

    async fn exec_inner(&self, name: &str, options: &ExecOptions) -> Result<Executed> {
        validate_exec(options).map_err(|error| Error::Invalid(vec![error]))?;
        let record = self.show(name).await?;
        let (app, machine_id) = self.require_machine(&record, "exec")?;
        let machine = self
            .retry("get machine", || {
                self.provider().get_machine(&app, &machine_id)
            })
            .await
            .map_err(|error| self.provider_error(error, &record))?;
        let state = machine.map(|m| m.state);
        let mut started = false;
        if state != Some(MachineState::Started) {
            if !options.start_first {
                return Err(Error::NotRunning {
                    name: name.to_owned(),
                    machine_state: state.map_or_else(|| "missing".to_owned(), |s| s.to_string()),
                });
            }
            self.start(name).await?;
            started = true;
        }
        let command = ExecCommand {
            command: &options.command,
            timeout_secs: options.timeout_secs,
        };
        // Sent once: the command may have effects, so an ambiguous failure is not
        // repeated.
        let output = self
            .provider()
            .exec_machine(&app, &machine_id, &command)
            .await
            .map_err(|error| match (error.kind, error.status) {
                (_, Some(408)) | (ProviderErrorKind::Timeout, _) => Error::ExecTimedOut {
                    name: name.to_owned(),
                    after_secs: options.timeout_secs.unwrap_or(60),
                },
                // It stopped between our look and the call (e.g. idle).
                (ProviderErrorKind::Conflict, Some(412)) => Error::NotRunning {
                    name: name.to_owned(),
                    machine_state: "no longer started".to_owned(),
                },
                _ => self.provider_error(error, &record),
            })?;
        tracing::info!(
            exit_code = output.exit_code,
            started,
            "command ran in the workspace"
        );
        Ok(Executed {
            workspace: name.to_owned(),
            started,
            output,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(command: &[&str]) -> ExecOptions {
        ExecOptions {
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            ..ExecOptions::default()
        }
    }

    #[test]
    fn commands_need_a_program_and_timeouts_a_range() {
        assert!(validate_exec(&options(&["ls"])).is_ok());
        for bad in [&[][..], &[""], &["  "], &["echo", "a\0b"]] {
            let error = validate_exec(&options(bad)).unwrap_err();
            assert_eq!(error.field, "command", "{bad:?}");
        }
        let mut long = options(&["sleep"]);
        long.timeout_secs = Some(MAX_EXEC_TIMEOUT_SECS + 1);
        assert_eq!(validate_exec(&long).unwrap_err().field, "timeout");
        assert_eq!(parse_exec_timeout("90").unwrap(), 90);
        assert_eq!(parse_exec_timeout("5m").unwrap(), 300);
        assert_eq!(parse_exec_timeout("1h").unwrap(), 3600);
        for bad in ["0", "2h", "-1", "5x", "", "m", "99999999999999999999"] {
            assert_eq!(
                parse_exec_timeout(bad).unwrap_err().field,
                "timeout",
                "{bad}"
            );
        }
    }

    #[test]
    fn exit_codes_are_the_shells() {
        let out = |code, signal| ExecOutput {
            exit_code: code,
            exit_signal: signal,
            ..ExecOutput::default()
        };
        assert_eq!(out(0, None).shell_exit_code(), 0);
        assert_eq!(out(3, Some(0)).shell_exit_code(), 3);
        assert_eq!(out(256 + 7, None).shell_exit_code(), 7);
        assert_eq!(out(-1, Some(9)).shell_exit_code(), 137);
        assert_eq!(out(0, Some(15)).shell_exit_code(), 143);
    }

    #[test]
    fn debug_shows_no_arguments_or_output() {
        let options = options(&["echo", "canary-1234"]);
        assert!(!format!("{options:?}").contains("canary-1234"));
        let output = ExecOutput {
            stdout: "canary-1234".into(),
            ..ExecOutput::default()
        };
        assert!(!format!("{output:?}").contains("canary-1234"));
    }
}
