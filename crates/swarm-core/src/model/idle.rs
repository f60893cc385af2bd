//! The idle policy: who puts an idle workspace to rest, code-server's own exit (`stop`)
//! or Fly's proxy (`suspend`), and the limit of what Fly suspends.

use serde::{Deserialize, Serialize};

use super::GuestSize;
use crate::error::ValidationError;

/// Fly suspends machines of at most this much memory (docs reference/suspend-resume,
/// "Requirements"); it stops a larger one instead.
pub const SUSPEND_MAX_MEMORY_MB: u32 = 2048;

/// How an idle workspace is put to rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdlePolicy {
    /// code-server exits after `idle_timeout` without use; the machine stops (a cold
    /// boot next time).
    #[default]
    Stop,
    /// Fly's proxy suspends the machine when no request reached it for a few minutes
    /// (service `autostop = "suspend"`); code-server's own exit is off.
    Suspend,
}

impl IdlePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Suspend => "suspend",
        }
    }

    pub fn is_stop(&self) -> bool {
        *self == Self::Stop
    }
}

/// `--idle-policy` / `idle_policy`: `stop` or `suspend`.
pub fn parse_idle_policy(text: &str) -> Result<IdlePolicy, ValidationError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "stop" => Ok(IdlePolicy::Stop),
        "suspend" => Ok(IdlePolicy::Suspend),
        _ => Err(ValidationError::new(
            "idle_policy",
            text,
            "must be stop or suspend",
        )),
    }
}

/// Refuses a guest Fly would not suspend, naming the rule.
pub fn check_suspendable(
    field: &'static str,
    value: &str,
    guest: GuestSize,
) -> Result<(), ValidationError> {
    if guest.memory_mb > SUSPEND_MAX_MEMORY_MB {
        return Err(ValidationError::new(
            field,
            value,
            format!(
                "Fly suspends machines of at most {SUSPEND_MAX_MEMORY_MB} MB of memory and stops a larger one instead (this workspace has {} MB); use stop, or resize to {SUSPEND_MAX_MEMORY_MB} MB or less",
                guest.memory_mb
            ),
        ));
    }
    Ok(())
}
