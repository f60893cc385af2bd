//! The user's dotfiles repository and init script: checked at create, handed to the
//! machine (an env var and a file in its config), run by the image's `first-boot.sh`
//! beside code-server, their outcome read back from the volume for `swarm show`.
//!
//! The script runs them once per fresh root filesystem, which on Fly is once per
//! boot: a machine's root filesystem is reset at every start (docs apps/restart), so
//! an install run once per workspace would be gone after the first idle stop. The
//! repository is cloned once, onto the volume, and not fetched again.

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::model::WorkspaceSpec;

/// The machine env var `first-boot.sh` reads the repository's URL from.
pub const DOTFILES_ENV: &str = "SWARM_DOTFILES_URL";
/// Where the init script is written in the machine (`first-boot.sh`'s default).
pub const INIT_SCRIPT_PATH: &str = "/opt/swarm/init/user-init.sh";
/// The longest init script taken: it rides in the machine config, which Fly sends to
/// the host with every start; a longer setup belongs in a dotfiles repository.
pub const MAX_INIT_SCRIPT_BYTES: usize = 64 * 1024;
/// The longest dotfiles URL taken.
const MAX_URL_LEN: usize = 512;

/// Checks a dotfiles repository URL: `https://HOST/PATH`, without credentials (the
/// URL is kept in the machine config and the store, where a token must never be).
pub fn validate_dotfiles_url(url: &str) -> Result<(), ValidationError> {
    let shown = without_credentials(url);
    let fail = |rule: &str| Err(ValidationError::new("dotfiles", &shown, rule));
    if url.len() > MAX_URL_LEN {
        return fail("must be at most 512 characters");
    }
    if let Some(bad) = url
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | '`'))
    {
        return fail(&format!(
            "must be a plain URL, without spaces, quotes or control characters (found {bad:?})"
        ));
    }
    let Some(rest) = url.strip_prefix("https://") else {
        return fail(
            "must be an https:// URL of a git repository (the workspace has no SSH key to clone with)",
        );
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return fail(
            "must not carry credentials (user:token@): the URL is kept in the machine config; use a public repository",
        );
    }
    let host = authority.split(':').next().unwrap_or_default();
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !host_ok {
        return fail("must name a host, e.g. https://github.com/alice/dotfiles");
    }
    let path = &rest[authority.len()..];
    if path.trim_matches('/').is_empty() {
        return fail("must name a repository on the host, e.g. https://github.com/alice/dotfiles");
    }
    Ok(())
}

/// The URL as an error may show it: what stands before an `@` in the host part
/// (a user and a token, typically) is replaced by `***`.
fn without_credentials(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) if scheme.is_empty() => format!("***{}", &rest[at..]),
        Some(at) => format!("{scheme}://***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// Checks an init script's text: not empty, at most [`MAX_INIT_SCRIPT_BYTES`], no NUL.
pub fn validate_init_script(script: &str) -> Result<(), ValidationError> {
    let shown = || format!("{} bytes", script.len());
    if script.trim().is_empty() {
        return Err(ValidationError::new("init", shown(), "the script is empty"));
    }
    if script.len() > MAX_INIT_SCRIPT_BYTES {
        return Err(ValidationError::new(
            "init",
            shown(),
            "must be at most 64 KiB; put a longer setup in a dotfiles repository",
        ));
    }
    if script.contains('\0') {
        return Err(ValidationError::new(
            "init",
            shown(),
            "must be a text script (it has a NUL byte)",
        ));
    }
    Ok(())
}

/// How one first-boot step ended, as `first-boot.sh` writes it on the volume
/// (`.swarm/first-boot/{dotfiles,init}.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// `dotfiles` or `init`.
    pub step: String,
    /// `cloning`, `running`, `succeeded`, `failed`, `timed_out`, `clone_failed` or `linked`.
    pub state: String,
    pub exit_code: Option<i32>,
    /// The script that ran (`install.sh`, `bootstrap.sh`, `setup.sh`, `user-init.sh`).
    #[serde(default)]
    pub script: String,
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub finished_at: String,
}

impl StepOutcome {
    /// Reads a status file's text; `None` when it is not one (a partly written file
    /// cannot be seen, the script replaces it atomically, but damage can).
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text.trim()).ok()
    }

    /// One line for people: "succeeded (install.sh, exit 0, 2026-12-07T10:00:00Z)".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.script.is_empty() {
            parts.push(self.script.clone());
        }
        if let Some(code) = self.exit_code {
            parts.push(format!("exit {code}"));
        }
        let at = if self.finished_at.is_empty() {
            &self.started_at
        } else {
            &self.finished_at
        };
        if !at.is_empty() {
            parts.push(at.clone());
        }
        if parts.is_empty() {
            self.state.replace('_', " ")
        } else {
            format!("{} ({})", self.state.replace('_', " "), parts.join(", "))
        }
    }
}

/// The status and log files of a step, relative to the volume's mount path.
pub fn step_files(mount_path: &str, step: &str) -> (String, String) {
    let dir = format!("{}/.swarm/first-boot", mount_path.trim_end_matches('/'));
    (format!("{dir}/{step}.json"), format!("{dir}/{step}.log"))
}

/// The steps a workspace's spec asks for, in the order they run.
pub fn configured_steps(spec: &WorkspaceSpec) -> Vec<&'static str> {
    let mut steps = Vec::new();
    if spec.dotfiles.is_some() {
        steps.push("dotfiles");
    }
    if spec.init_script.is_some() {
        steps.push("init");
    }
    steps
}

/// The command (run with `exec`) that prints the outcome files of `steps`, one JSON
/// object a line; a step that has not reported yet is simply missing from its output.
pub fn outcome_command(mount_path: &str, steps: &[&str]) -> Vec<String> {
    let mut command = vec!["cat".to_owned()];
    command.extend(steps.iter().map(|step| step_files(mount_path, step).0));
    command
}

/// What `swarm show` says of each configured step: its outcome, or why there is none.
pub fn describe_outcomes(steps: &[&str], cat_stdout: &str) -> Vec<(String, String)> {
    let outcomes: Vec<StepOutcome> = cat_stdout.lines().filter_map(StepOutcome::parse).collect();
    steps
        .iter()
        .map(|step| {
            let said = outcomes.iter().find(|o| o.step == *step).map_or_else(
                || "not reported yet (it runs beside code-server after each boot)".to_owned(),
                StepOutcome::describe,
            );
            ((*step).to_owned(), said)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotfiles_urls() {
        for good in [
            "https://github.com/alice/dotfiles",
            "https://github.com/alice/dotfiles.git",
            "https://git.example.com:8443/team/dots",
        ] {
            assert!(validate_dotfiles_url(good).is_ok(), "{good}");
        }
        for (bad, says) in [
            ("git@github.com:alice/dotfiles.git", "https://"),
            ("http://github.com/alice/dotfiles", "https://"),
            (
                "https://alice:ghp_secret@github.com/alice/dotfiles",
                "credentials",
            ),
            ("https://github.com", "repository"),
            ("https:///alice/dotfiles", "host"),
            ("https://github.com/alice/dot files", "spaces"),
            ("https://github.com/alice/dotfiles\n", "control"),
            ("https://github.com/a/$(reboot)'", "quotes"),
        ] {
            let error = validate_dotfiles_url(bad).expect_err(bad);
            assert_eq!(error.field, "dotfiles");
            assert!(error.rule.contains(says), "{bad}: {}", error.rule);
        }
        let error =
            validate_dotfiles_url("https://alice:ghp_secret@github.com/a/d").expect_err("creds");
        assert_eq!(error.value, "https://***@github.com/a/d");
        let long = format!("https://github.com/{}", "a".repeat(600));
        assert!(validate_dotfiles_url(&long).is_err());
    }

    #[test]
    fn init_scripts() {
        assert!(validate_init_script("#!/bin/sh\napt-get install -y ripgrep\n").is_ok());
        for bad in ["", "  \n", "echo\0hi"] {
            assert_eq!(validate_init_script(bad).expect_err(bad).field, "init");
        }
        let long = "#".repeat(MAX_INIT_SCRIPT_BYTES + 1);
        let error = validate_init_script(&long).expect_err("too long");
        assert!(error.rule.contains("64 KiB"));
        assert!(!error.value.contains('#'), "the script is not echoed back");
    }

    #[test]
    fn outcomes_read_back_as_the_script_writes_them() {
        let text = r#"{"step":"dotfiles","state":"failed","exit_code":3,"script":"install.sh","started_at":"2026-12-07T10:00:00Z","finished_at":"2026-12-07T10:00:04Z"}"#;
        let outcome = StepOutcome::parse(text).expect("parses");
        assert_eq!(outcome.exit_code, Some(3));
        assert_eq!(
            outcome.describe(),
            "failed (install.sh, exit 3, 2026-12-07T10:00:04Z)"
        );
        let running = r#"{"step":"dotfiles","state":"cloning","exit_code":null,"script":"","started_at":"2026-12-07T10:00:00Z","finished_at":""}"#;
        assert_eq!(
            StepOutcome::parse(running).expect("parses").describe(),
            "cloning (2026-12-07T10:00:00Z)"
        );
        assert_eq!(StepOutcome::parse("{\"state\":"), None);
        let both = format!("{text}\n");
        assert_eq!(
            describe_outcomes(&["dotfiles", "init"], &both),
            [
                (
                    "dotfiles".to_owned(),
                    "failed (install.sh, exit 3, 2026-12-07T10:00:04Z)".to_owned()
                ),
                (
                    "init".to_owned(),
                    "not reported yet (it runs beside code-server after each boot)".to_owned()
                ),
            ]
        );
        assert_eq!(
            outcome_command("/home/coder/project/", &["init"]),
            ["cat", "/home/coder/project/.swarm/first-boot/init.json"]
        );
    }
}
