//! `POST /v1/apps/{app}/machines/{id}/exec` (spec `MachineExecRequest`,
//! `flydv1.ExecResponse`).

use serde::{Deserialize, Serialize};

/// A command to run on a started machine. `Debug` names the program only: arguments
/// and stdin may carry anything, secrets included.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExecRequest {
    /// The program and its arguments (no shell: `["sh", "-c", "…"]` for one).
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// Seconds the command may run; Fly's default when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

impl std::fmt::Debug for ExecRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecRequest")
            .field("program", &self.command.first())
            .field("args", &self.command.len().saturating_sub(1))
            .field("stdin_len", &self.stdin.as_ref().map(String::len))
            .field("timeout", &self.timeout)
            .field("container", &self.container)
            .finish()
    }
}

/// What the command did. `Debug` shows sizes, not the output (it may hold secrets,
/// e.g. `printenv`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecResponse {
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
    #[serde(default)]
    pub exit_code: i64,
    /// The signal that ended it, 0 (or absent) when it exited by itself.
    #[serde(default)]
    pub exit_signal: i64,
}

impl std::fmt::Debug for ExecResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecResponse")
            .field("stdout_len", &self.stdout.len())
            .field("stderr_len", &self.stderr.len())
            .field("exit_code", &self.exit_code)
            .field("exit_signal", &self.exit_signal)
            .finish()
    }
}
