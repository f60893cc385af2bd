//! Confirmation before destructive commands.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::Context as _;

use crate::Failure;
use crate::output::Output;

/// Asks on a terminal for a destructive command (the user types `expected`); refuses
/// off a terminal unless `--yes` was given. Nothing has changed when this fails.
pub(super) fn confirm(
    out: &Output,
    yes: bool,
    action: &str,
    question: &str,
    expected: &str,
) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() || out.json {
        return Err(Failure::usage(format!(
            "{action} needs confirmation: pass --yes (nothing was changed)"
        )));
    }
    eprint!("{question} Type {expected} to confirm: ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the confirmation")?;
    if answer.trim() != expected {
        out.note("Not confirmed.");
        return Err(Failure {
            code: 1,
            message: format!("not confirmed; nothing was changed ({action})"),
        });
    }
    Ok(())
}
