//! The plain inputs: region, IP mode, env, metadata, idle timeout.

use std::collections::BTreeMap;

use crate::config::SwarmConfig;
use crate::error::ValidationError;
use crate::first_boot;
use crate::model::IpMode;

/// Env keys we set ourselves; a user value would break login or persistence.
pub const RESERVED_ENV_KEYS: [&str; 7] = [
    "HASHED_PASSWORD",
    "PASSWORD",
    "CODE_SERVER_IDLE_TIMEOUT_SECONDS",
    "XDG_DATA_HOME",
    "XDG_CONFIG_HOME",
    first_boot::DOTFILES_ENV,
    "SWARM_INIT_SCRIPT",
];

/// code-server refuses an idle timeout of 60 s or less.
const MIN_IDLE_TIMEOUT_SECS: u64 = 61;

const MAX_IDLE_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

/// The region must be one of the configured list.
pub fn validate_region(region: &str, config: &SwarmConfig) -> Result<(), ValidationError> {
    if config.regions.iter().any(|offered| offered == region) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "region",
            region,
            format!("must be one of: {}", config.regions.join(", ")),
        ))
    }
}

pub fn parse_ip_mode(text: &str) -> Result<IpMode, ValidationError> {
    match text {
        "shared" => Ok(IpMode::Shared),
        "dedicated" => Ok(IpMode::Dedicated),
        "private" => Ok(IpMode::Private),
        _ => Err(ValidationError::new(
            "ip",
            text,
            "must be shared, dedicated or private",
        )),
    }
}

/// Env keys: shell identifiers, no `FLY_` prefix (Fly's own), none of ours.
pub fn validate_env(env: &BTreeMap<String, String>) -> Result<(), ValidationError> {
    for (key, value) in env {
        let mut chars = key.chars();
        let identifier = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !identifier {
            return Err(ValidationError::new(
                "env",
                key,
                "keys must be identifiers: letters, digits and _, not starting with a digit",
            ));
        }
        if key.to_ascii_uppercase().starts_with("FLY_") {
            return Err(ValidationError::new(
                "env",
                key,
                "keys starting with FLY_ are reserved by Fly.io",
            ));
        }
        if RESERVED_ENV_KEYS.contains(&key.as_str()) {
            return Err(ValidationError::new(
                "env",
                key,
                format!(
                    "set by swarm itself; reserved keys: {}",
                    RESERVED_ENV_KEYS.join(", ")
                ),
            ));
        }
        // A newline would forge further KEY=VALUE lines wherever env is shown or
        // exported as lines; other control characters have no use in a value either.
        if let Some(bad) = value.chars().find(|c| c.is_control() && *c != '\t') {
            return Err(ValidationError::new(
                "env",
                key,
                format!("values must not contain control characters (found {bad:?})"),
            ));
        }
    }
    Ok(())
}

/// Metadata keys: `[A-Za-z0-9_.-]{1,64}`, not starting with `swarm_` (our tags).
pub fn validate_metadata(metadata: &BTreeMap<String, String>) -> Result<(), ValidationError> {
    for (key, value) in metadata {
        let valid = !key.is_empty()
            && key.len() <= 64
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return Err(ValidationError::new(
                "metadata",
                key,
                "keys are 1-64 of letters, digits, _ . -",
            ));
        }
        if key.starts_with("swarm_") {
            return Err(ValidationError::new(
                "metadata",
                key,
                "keys starting with swarm_ are swarm's own tags",
            ));
        }
        if value.len() > 256 {
            return Err(ValidationError::new(
                "metadata",
                key,
                "values are at most 256 characters",
            ));
        }
    }
    Ok(())
}

/// Parses an idle timeout: plain seconds or units `d h m s` (`1h30m`, `90s`), > 60 s.
pub fn parse_idle_timeout(text: &str) -> Result<u64, ValidationError> {
    let fail = |rule: &str| ValidationError::new("idle_timeout", text, rule);
    let trimmed = text.trim();
    let secs = if let Ok(secs) = trimmed.parse::<u64>() {
        secs
    } else {
        let mut total: u64 = 0;
        let mut number = String::new();
        let mut any_unit = false;
        for c in trimmed.chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let unit: u64 = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                _ => return Err(fail("use seconds or a duration such as 90s, 30m, 1h30m")),
            };
            let value: u64 = number
                .parse()
                .map_err(|_| fail("each unit needs a number before it"))?;
            total = value
                .checked_mul(unit)
                .and_then(|part| total.checked_add(part))
                .ok_or_else(|| fail("too large"))?;
            number.clear();
            any_unit = true;
        }
        if !number.is_empty() || !any_unit {
            return Err(fail("use seconds or a duration such as 90s, 30m, 1h30m"));
        }
        total
    };
    if secs < MIN_IDLE_TIMEOUT_SECS {
        return Err(fail("must be more than 60 seconds (code-server's rule)"));
    }
    if secs > MAX_IDLE_TIMEOUT_SECS {
        return Err(fail("must be at most 7 days"));
    }
    Ok(secs)
}
