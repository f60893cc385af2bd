//! Validation at the edge: every error names the field, the value and the rule.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::config::SwarmConfig;
use crate::first_boot;
use crate::model::{
    CpuKind, CreateOptions, GuestSize, ImageVersion, IpMode, MachineConfig, ResizeOptions,
    ResizePlan, ValidatedCreate, WorkspaceName, WorkspaceRecord, WorkspaceSpec,
};

/// One rule broken by one input value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationError {
    pub field: &'static str,
    pub value: String,
    pub rule: String,
}

impl ValidationError {
    pub(crate) fn new(
        field: &'static str,
        value: impl fmt::Display,
        rule: impl Into<String>,
    ) -> Self {
        Self {
            field,
            value: value.to_string(),
            rule: rule.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} {:?}: {}", self.field, self.value, self.rule)
    }
}

impl std::error::Error for ValidationError {}

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

const SHARED_CPUS: [u32; 5] = [1, 2, 4, 6, 8];
const PERFORMANCE_CPUS: [u32; 9] = [1, 2, 4, 6, 8, 10, 12, 14, 16];
const MEMORY_STEP_MB: u32 = 256;
const MAX_STORAGE_GB: u32 = 500;
/// code-server refuses an idle timeout of 60 s or less.
const MIN_IDLE_TIMEOUT_SECS: u64 = 61;
const MAX_IDLE_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

/// Fly's app-name rules: `[a-z0-9-]`, starts with a letter, ends with a letter or
/// digit, at most 63 characters (one DNS label of `<name>.fly.dev`).
pub fn validate_name(name: &str) -> Result<(), ValidationError> {
    let rule = |text: &str| Err(ValidationError::new("name", name, text));
    if name.is_empty() {
        return rule("must not be empty");
    }
    if name.len() > 63 {
        return rule("at most 63 characters (it becomes <name>.fly.dev)");
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return rule(&format!(
            "only lowercase letters, digits and dashes are allowed (found {bad:?})"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return rule("must start with a lowercase letter");
    }
    if name.ends_with('-') {
        return rule("must end with a letter or digit");
    }
    Ok(())
}

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

pub fn parse_cpu_kind(text: &str) -> Result<CpuKind, ValidationError> {
    match text {
        "shared" => Ok(CpuKind::Shared),
        "performance" => Ok(CpuKind::Performance),
        _ => Err(ValidationError::new(
            "cpu_kind",
            text,
            "must be shared or performance",
        )),
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

/// Memory bounds (MB) of a guest of `cpus` CPUs of `kind` (REFERENCE §4.7).
/// Saturates: resize asks before the CPU count is checked, and any count may come in.
pub fn memory_bounds(kind: CpuKind, cpus: u32) -> (u32, u32) {
    let (min, max) = match kind {
        CpuKind::Shared => (256, 2048),
        CpuKind::Performance => (2048, 8192),
    };
    (cpus.saturating_mul(min), cpus.saturating_mul(max))
}

/// Resolves the guest size: the cpu kind follows the CPU count unless given, and when
/// memory is not given it rises to the kind's minimum (with a note saying so).
pub fn resolve_guest(
    cpus: Option<u32>,
    cpu_kind: Option<&str>,
    memory_mb: Option<u32>,
    config: &SwarmConfig,
    notes: &mut Vec<String>,
) -> Result<GuestSize, ValidationError> {
    let cpus = cpus.unwrap_or(config.default_cpus);
    let kind = match cpu_kind {
        Some(text) => parse_cpu_kind(text)?,
        None if cpus <= 1 => CpuKind::Shared,
        None => CpuKind::Performance,
    };
    let allowed: &[u32] = match kind {
        CpuKind::Shared => &SHARED_CPUS,
        CpuKind::Performance => &PERFORMANCE_CPUS,
    };
    if !allowed.contains(&cpus) {
        let list: Vec<String> = allowed.iter().map(u32::to_string).collect();
        return Err(ValidationError::new(
            "cpus",
            cpus,
            format!("{kind} CPUs come in counts of {}", list.join(", ")),
        ));
    }
    let (min, max) = memory_bounds(kind, cpus);
    let memory_mb = match memory_mb {
        Some(memory) => {
            if memory < min || memory > max {
                return Err(ValidationError::new(
                    "memory",
                    memory,
                    format!("{cpus} {kind} CPU(s) take {min} to {max} MB"),
                ));
            }
            if memory % MEMORY_STEP_MB != 0 {
                return Err(ValidationError::new(
                    "memory",
                    memory,
                    format!("must be a multiple of {MEMORY_STEP_MB} MB"),
                ));
            }
            memory
        }
        None => {
            // The configured default obeys the same step as a given size: Fly refuses
            // anything else, but only after the app, volume and IPs were made.
            if !config.default_memory_mb.is_multiple_of(MEMORY_STEP_MB) {
                return Err(ValidationError::new(
                    "memory",
                    config.default_memory_mb,
                    format!(
                        "the configured default memory must be a multiple of {MEMORY_STEP_MB} MB"
                    ),
                ));
            }
            let default = config.default_memory_mb.clamp(min, max);
            if default != config.default_memory_mb {
                notes.push(format!(
                    "memory set to {default} MB, the {kind} minimum for {cpus} CPU(s) (default is {} MB)",
                    config.default_memory_mb
                ));
            }
            default
        }
    };
    Ok(GuestSize {
        cpu_kind: kind,
        cpus,
        memory_mb,
    })
}

pub fn validate_storage(storage_gb: u32) -> Result<(), ValidationError> {
    if (1..=MAX_STORAGE_GB).contains(&storage_gb) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "storage",
            storage_gb,
            format!("must be 1 to {MAX_STORAGE_GB} GB"),
        ))
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

/// An OCI image reference: `[registry[:port]/]path[:tag][@algo:hex]`, path components
/// lowercase `[a-z0-9]+([._-]|__)…`, tag `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_image(image: &str) -> Result<(), ValidationError> {
    let fail = |rule: &str| Err(ValidationError::new("image", image, rule));
    if image.is_empty() || image.len() > 512 {
        return fail("must be 1 to 512 characters");
    }
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    if let Some(digest) = digest {
        let valid = digest.split_once(':').is_some_and(|(algo, hex)| {
            !algo.is_empty()
                && algo.chars().all(|c| {
                    c.is_ascii_lowercase()
                        || c.is_ascii_digit()
                        || matches!(c, '+' | '.' | '_' | '-')
                })
                && hex.len() >= 32
                && hex.chars().all(|c| c.is_ascii_hexdigit())
        });
        if !valid {
            return fail("digest must look like sha256:<64 hex digits>");
        }
    }
    // A tag is after the last ':' that follows the last '/'.
    let last_slash = rest.rfind('/').map_or(0, |index| index + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(colon) => (
            &rest[..last_slash + colon],
            Some(&rest[last_slash + colon + 1..]),
        ),
        None => (rest, None),
    };
    if let Some(tag) = tag {
        let mut chars = tag.chars();
        let valid = tag.len() <= 128
            && chars
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return fail("tag must be 1-128 of letters, digits, _ . - (not starting with . or -)");
        }
    }
    let mut components: Vec<&str> = name.split('/').collect();
    if components.len() > 1 {
        let first = components[0];
        let is_registry = first.contains('.') || first.contains(':') || first == "localhost";
        if is_registry {
            let host_valid = first
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
                && !first.starts_with(['.', '-', ':']);
            if !host_valid {
                return fail("registry must be a host name with an optional :port");
            }
            components.remove(0);
        }
    }
    if components.is_empty() {
        return fail("needs a repository path");
    }
    for component in components {
        if !valid_path_component(component) {
            return fail(
                "repository path components are lowercase letters and digits, separated by . _ __ or -",
            );
        }
    }
    Ok(())
}

/// True when the image names a version: a digest, or a tag other than `latest`.
pub fn image_is_pinned(image: &str) -> bool {
    if image.contains('@') {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').is_some_and(|(_, tag)| tag != "latest")
}

fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if alnum(byte) {
            index += 1;
            continue;
        }
        // A separator: '.', '_', '__' or one or more '-', always followed by alnum.
        let separator_len = match byte {
            b'_' if bytes.get(index + 1) == Some(&b'_') => 2,
            b'.' | b'_' => 1,
            b'-' => bytes[index..].iter().take_while(|b| **b == b'-').count(),
            _ => return false,
        };
        index += separator_len;
        if !bytes.get(index).is_some_and(|b| alnum(*b)) {
            return false;
        }
    }
    true
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

/// Validates raw create input against the rules and fills defaults from `config`.
/// Returns every broken rule, not only the first.
/// Checks a resize against the workspace's current size by create's rules: the cpu
/// kind follows the CPU count unless given; memory not given is kept when it fits the
/// new guest, else moved to the nearest bound (with a note); storage only grows.
pub fn validate_resize(
    current: &WorkspaceSpec,
    options: &ResizeOptions,
    config: &SwarmConfig,
) -> Result<ResizePlan, Vec<ValidationError>> {
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    if options.cpus.is_none()
        && options.cpu_kind.is_none()
        && options.memory_mb.is_none()
        && options.storage_gb.is_none()
    {
        errors.push(ValidationError::new(
            "resize",
            "",
            "give at least one of --cpus, --cpu-kind, --memory, --storage",
        ));
        return Err(errors);
    }
    let guest_changes = options.cpus.is_some() || options.cpu_kind.is_some();
    let cpu_kind = match (&options.cpu_kind, options.cpus) {
        (Some(kind), _) => Some(kind.clone()),
        // Only memory changes: keep the kind even if the count alone would pick another.
        (None, None) => Some(current.guest.cpu_kind.as_str().to_owned()),
        (None, Some(_)) => None,
    };
    let cpus = options.cpus.or(Some(current.guest.cpus));
    let memory = match options.memory_mb {
        Some(memory) => Some(memory),
        None if guest_changes => {
            let kind = match cpu_kind.as_deref() {
                Some(text) => parse_cpu_kind(text).ok(),
                None if cpus.unwrap_or(1) <= 1 => Some(CpuKind::Shared),
                None => Some(CpuKind::Performance),
            };
            kind.map(|kind| {
                let (min, max) = memory_bounds(kind, cpus.unwrap_or(1));
                let kept = current.guest.memory_mb.clamp(min, max);
                if kept != current.guest.memory_mb {
                    notes.push(format!(
                        "memory set to {kept} MB, the nearest {kind} size for {} CPU(s) (was {} MB)",
                        cpus.unwrap_or(1),
                        current.guest.memory_mb
                    ));
                }
                kept
            })
        }
        None => Some(current.guest.memory_mb),
    };
    let guest = match resolve_guest(cpus, cpu_kind.as_deref(), memory, config, &mut notes) {
        Ok(guest) => Some(guest),
        Err(error) => {
            errors.push(error);
            None
        }
    };
    let storage_gb = options.storage_gb.unwrap_or(current.storage_gb);
    if let Err(error) = validate_storage(storage_gb) {
        errors.push(error);
    } else if storage_gb < current.storage_gb {
        errors.push(ValidationError::new(
            "storage",
            storage_gb,
            format!(
                "volumes only grow: it is {} GB now, give a size of at least that",
                current.storage_gb
            ),
        ));
    }
    match guest {
        Some(guest) if errors.is_empty() => Ok(ResizePlan {
            guest,
            storage_gb,
            notes,
        }),
        _ => Err(errors),
    }
}

pub fn validate_create(
    options: &CreateOptions,
    config: &SwarmConfig,
) -> Result<ValidatedCreate, Vec<ValidationError>> {
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let mut check = |result: Result<(), ValidationError>| {
        if let Err(error) = result {
            errors.push(error);
        }
    };
    check(validate_name(&options.name));
    let region = options
        .region
        .clone()
        .unwrap_or_else(|| config.default_region.clone());
    check(validate_region(&region, config));
    let storage_gb = options.storage_gb.unwrap_or(config.default_storage_gb);
    check(validate_storage(storage_gb));
    let image = options
        .image
        .clone()
        .unwrap_or_else(|| config.default_image.clone());
    check(validate_image(&image));
    check(validate_env(&options.env));
    check(validate_metadata(&options.metadata));
    let dotfiles = options
        .dotfiles
        .clone()
        .or_else(|| config.default_dotfiles.clone());
    if let Some(url) = &dotfiles {
        check(first_boot::validate_dotfiles_url(url));
    }
    if let Some(script) = &options.init {
        check(first_boot::validate_init_script(script));
    }
    let guest = resolve_guest(
        options.cpus,
        options
            .cpu_kind
            .as_deref()
            .or(config.default_cpu_kind.as_deref()),
        options.memory_mb,
        config,
        &mut notes,
    );
    let ip_mode = options.ip.as_deref().map(parse_ip_mode).transpose();
    let idle_timeout = options
        .idle_timeout
        .as_deref()
        .map(parse_idle_timeout)
        .transpose();
    let idle_policy = options
        .idle_policy
        .as_deref()
        .map(crate::suspend::parse_idle_policy)
        .transpose();
    let (guest, ip_mode, idle_timeout, idle_policy) =
        match (guest, ip_mode, idle_timeout, idle_policy) {
            (Ok(guest), Ok(ip_mode), Ok(idle), Ok(policy)) if errors.is_empty() => {
                (guest, ip_mode, idle, policy)
            }
            (guest, ip_mode, idle, policy) => {
                errors.extend(guest.err());
                errors.extend(ip_mode.err());
                errors.extend(idle.err());
                errors.extend(policy.err());
                return Err(errors);
            }
        };
    let idle_policy = idle_policy.unwrap_or(config.default_idle_policy);
    if idle_policy == crate::suspend::IdlePolicy::Suspend {
        crate::suspend::check_suspendable("idle_policy", "suspend", guest)
            .map_err(|error| vec![error])?;
    }
    if !image_is_pinned(&image) {
        notes.push(format!(
            "image {image} is not pinned to a version; pin a tag (e.g. codercom/code-server:4.106.3) so updates and rollbacks are predictable"
        ));
    }
    Ok(ValidatedCreate {
        spec: WorkspaceSpec {
            name: WorkspaceName(options.name.clone()),
            region,
            guest,
            storage_gb,
            image,
            env: options.env.clone(),
            metadata: options.metadata.clone(),
            ip_mode: ip_mode.unwrap_or(config.default_ip_mode),
            idle_timeout_secs: idle_timeout.unwrap_or(config.default_idle_timeout_secs),
            dotfiles,
            init_script: options.init.clone(),
            idle_policy,
            org: config.org.clone(),
            owner: options.owner.clone(),
        },
        notes,
    })
}

/// A move must name a region we offer, other than the one the workspace is in.
pub fn validate_move(
    current: &WorkspaceSpec,
    region: &str,
    config: &SwarmConfig,
) -> Result<(), ValidationError> {
    validate_region(region, config)?;
    if region == current.region {
        return Err(ValidationError::new(
            "region",
            region,
            format!("the workspace is already in {region}; give another region to move it to"),
        ));
    }
    Ok(())
}

/// The version `rollback` returns to: `to`, or the one before the current.
pub fn rollback_target(
    versions: &[ImageVersion],
    to: Option<u32>,
) -> Result<&ImageVersion, ValidationError> {
    let current = versions.last().map(|v| v.version);
    let known = || {
        let list: Vec<String> = versions.iter().map(|v| v.version.to_string()).collect();
        format!(
            "must be one of this workspace's versions ({}); `swarm versions NAME` lists them",
            list.join(", ")
        )
    };
    match to {
        Some(wanted) => {
            let Some(found) = versions.iter().find(|v| v.version == wanted) else {
                return Err(ValidationError::new("version", wanted, known()));
            };
            if Some(wanted) == current {
                return Err(ValidationError::new(
                    "version",
                    wanted,
                    "is the version the workspace runs now; give an earlier one",
                ));
            }
            Ok(found)
        }
        None => versions.iter().rev().nth(1).ok_or_else(|| {
            ValidationError::new(
                "version",
                current.map_or_else(String::new, |c| c.to_string()),
                "the workspace has no earlier version to roll back to",
            )
        }),
    }
}

/// The machine config `rollback --machine` would return to: the one before the last
/// machine change, refused when there is none or the workspace already runs it.
pub fn machine_rollback_target(
    record: &WorkspaceRecord,
) -> Result<&MachineConfig, ValidationError> {
    // The value shown is the config it runs now.
    let guest = record.spec.guest;
    let now = format!(
        "{} with {}x{} {} MB",
        record.spec.image, guest.cpus, guest.cpu_kind, guest.memory_mb
    );
    let Some(previous) = record.previous_machine.as_ref() else {
        return Err(ValidationError::new(
            "machine",
            now,
            "the workspace has no earlier machine config to roll back to: resize, update \
             and rollback each record the config they replace",
        ));
    };
    if previous.same_machine(&record.current_machine("machine_rollback", previous.replaced_at)) {
        return Err(ValidationError::new(
            "machine",
            now,
            "the workspace already runs its previous machine config; nothing to roll back",
        ));
    }
    Ok(previous)
}

/// Fly snapshot ids: `vs_` and letters or digits.
pub fn validate_snapshot_id(id: &str) -> Result<(), ValidationError> {
    let body = id.strip_prefix("vs_").unwrap_or("");
    if body.is_empty() || body.len() > 60 || !body.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ValidationError::new(
            "snapshot",
            id,
            "must be a Fly snapshot id like vs_2Z4k9XyQ7bN1; `swarm snapshot list NAME` lists them",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(name: &str) -> CreateOptions {
        CreateOptions {
            name: name.to_owned(),
            ..CreateOptions::default()
        }
    }

    #[test]
    fn a_name_read_back_is_checked_too() {
        let name: crate::WorkspaceName = serde_json::from_str("\"alice\"").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"alice\"");
        for bad in ["\"../etc\"", "\"Alice\"", "\"\"", "\"a\\nb\""] {
            let error = serde_json::from_str::<crate::WorkspaceName>(bad).unwrap_err();
            assert!(error.to_string().contains("invalid name"), "{bad}: {error}");
        }
    }

    #[test]
    fn names_follow_fly_app_rules() {
        for good in ["a", "alice", "a1", "dev-box-2", &"a".repeat(63)] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Alice",
            "1abc",
            "-abc",
            "abc-",
            "a_b",
            "a.b",
            "ä",
            &"a".repeat(64),
        ] {
            let error = validate_name(bad).expect_err(bad);
            assert_eq!(error.field, "name");
            assert_eq!(error.value, bad);
        }
        let error = validate_name("Alice").expect_err("uppercase");
        assert!(error.to_string().contains("lowercase"), "{error}");
    }

    #[test]
    fn resize_to_a_huge_cpu_count_is_refused_not_overflowed() {
        // Found by the `validate` fuzz target: the kept memory was bounded with
        // `8192 * cpus` before the count was checked, which overflowed.
        let current = validate_create(&options("alice"), &SwarmConfig::default())
            .expect("valid")
            .spec;
        for cpus in [524_289, u32::MAX] {
            let resize = ResizeOptions {
                cpus: Some(cpus),
                ..ResizeOptions::default()
            };
            let errors = validate_resize(&current, &resize, &SwarmConfig::default())
                .expect_err("no such guest");
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(
                (errors[0].field, errors[0].value.clone()),
                ("cpus", cpus.to_string())
            );
        }
        assert_eq!(
            memory_bounds(CpuKind::Performance, u32::MAX),
            (u32::MAX, u32::MAX)
        );
    }

    #[test]
    fn defaults_are_the_design_defaults() {
        let created = validate_create(&options("alice"), &SwarmConfig::default()).expect("valid");
        let spec = created.spec;
        assert_eq!(spec.region, "ams");
        assert_eq!(
            spec.guest,
            GuestSize {
                cpu_kind: CpuKind::Shared,
                cpus: 1,
                memory_mb: 2048
            }
        );
        assert_eq!(spec.storage_gb, 10);
        assert_eq!(spec.image, "codercom/code-server:latest");
        assert_eq!(spec.ip_mode, IpMode::Shared);
        assert_eq!(spec.org, "personal");
        assert!(
            created.notes.iter().any(|note| note.contains("not pinned")),
            "{:?}",
            created.notes
        );
    }

    #[test]
    fn cpus_alone_pick_performance_and_raise_memory_with_a_note() {
        let mut input = options("alice");
        input.cpus = Some(2);
        input.image = Some("codercom/code-server:4.106.3".to_owned());
        let created = validate_create(&input, &SwarmConfig::default()).expect("valid");
        assert_eq!(
            created.spec.guest,
            GuestSize {
                cpu_kind: CpuKind::Performance,
                cpus: 2,
                memory_mb: 4096
            }
        );
        assert_eq!(created.notes.len(), 1, "{:?}", created.notes);
        assert!(created.notes[0].contains("4096"));
    }

    #[test]
    fn cpu_kind_overrides_and_explicit_memory_outside_bounds_names_the_range() {
        let config = SwarmConfig::default();
        let mut notes = Vec::new();
        let guest =
            resolve_guest(Some(2), Some("shared"), None, &config, &mut notes).expect("valid");
        assert_eq!(
            guest,
            GuestSize {
                cpu_kind: CpuKind::Shared,
                cpus: 2,
                memory_mb: 2048
            }
        );
        assert!(notes.is_empty());
        let error =
            resolve_guest(Some(1), None, Some(4096), &config, &mut notes).expect_err("too much");
        assert_eq!(error.field, "memory");
        assert!(error.rule.contains("256 to 2048"), "{error}");
        let error = resolve_guest(
            Some(2),
            Some("performance"),
            Some(2048),
            &config,
            &mut notes,
        )
        .expect_err("too little");
        assert!(error.rule.contains("4096 to 16384"), "{error}");
        let error =
            resolve_guest(Some(1), None, Some(1000), &config, &mut notes).expect_err("step");
        assert!(error.rule.contains("multiple of 256"), "{error}");
        let error = resolve_guest(Some(3), None, None, &config, &mut notes).expect_err("cpus");
        assert_eq!(error.field, "cpus");
        let error =
            resolve_guest(Some(16), Some("shared"), None, &config, &mut notes).expect_err("cpus");
        assert!(error.rule.contains("1, 2, 4, 6, 8"), "{error}");
        let error =
            resolve_guest(None, Some("turbo"), None, &config, &mut notes).expect_err("kind");
        assert_eq!(error.field, "cpu_kind");
        let odd_default = SwarmConfig {
            default_memory_mb: 1000,
            ..SwarmConfig::default()
        };
        let error = resolve_guest(None, None, None, &odd_default, &mut notes).expect_err("default");
        assert_eq!(error.field, "memory");
        assert!(error.rule.contains("multiple of 256"), "{error}");
    }

    /// The configured CPU kind and IP mode apply when a create names none; a create's
    /// own values win.
    #[test]
    fn configured_cpu_kind_and_ip_mode_are_defaults_a_create_overrides() {
        let config = SwarmConfig {
            default_cpu_kind: Some("performance".to_owned()),
            default_ip_mode: IpMode::Private,
            ..SwarmConfig::default()
        };
        let spec = validate_create(&options("alice"), &config)
            .expect("valid")
            .spec;
        assert_eq!(spec.guest.cpu_kind, CpuKind::Performance);
        assert_eq!(spec.ip_mode, IpMode::Private);
        let own = CreateOptions {
            cpu_kind: Some("shared".to_owned()),
            ip: Some("dedicated".to_owned()),
            ..options("bob")
        };
        let spec = validate_create(&own, &config).expect("valid").spec;
        assert_eq!(spec.guest.cpu_kind, CpuKind::Shared);
        assert_eq!(spec.ip_mode, IpMode::Dedicated);
    }

    #[test]
    fn regions_storage_env_and_metadata_rules() {
        let config = SwarmConfig::default();
        assert!(validate_region("fra", &config).is_ok());
        let error = validate_region("xyz", &config).expect_err("region");
        assert!(error.to_string().contains("ams, sea"), "{error}");
        assert!(validate_storage(1).is_ok() && validate_storage(500).is_ok());
        assert!(validate_storage(0).is_err() && validate_storage(501).is_err());
        let env = |key: &str| BTreeMap::from([(key.to_owned(), "v".to_owned())]);
        assert!(validate_env(&env("GIT_AUTHOR")).is_ok());
        assert!(validate_env(&env("_x1")).is_ok());
        for bad in [
            "FLY_APP",
            "fly_region",
            "1ABC",
            "A-B",
            "",
            "HASHED_PASSWORD",
            "PASSWORD",
        ] {
            let error = validate_env(&env(bad)).expect_err(bad);
            assert_eq!(error.field, "env");
        }
        let value = |v: &str| BTreeMap::from([("A".to_owned(), v.to_owned())]);
        assert!(validate_env(&value("x=y; \"quoted\"\tand tabbed, ünïcode")).is_ok());
        for bad in [
            "1\nHASHED_PASSWORD=x",
            "a\rb",
            "\u{1b}[31m",
            "a\0b",
            "\u{85}",
        ] {
            let error = validate_env(&value(bad)).expect_err(bad);
            assert!(error.rule.contains("control characters"), "{error}");
        }
        let meta = |key: &str| BTreeMap::from([(key.to_owned(), "v".to_owned())]);
        assert!(validate_metadata(&meta("team")).is_ok());
        assert!(validate_metadata(&meta("swarm_workspace_id")).is_err());
        assert!(validate_metadata(&meta("has space")).is_err());
    }

    #[test]
    fn image_references() {
        for good in [
            "codercom/code-server:latest",
            "codercom/code-server:4.106.3",
            "code-server",
            "registry-1.docker.io/codercom/code-server:4.x",
            "ghcr.io/org/sub/image_name:v1.2-rc",
            "localhost:5000/img",
            "registry.fly.io/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "a__b/c--d",
        ] {
            assert!(
                validate_image(good).is_ok(),
                "{good}: {:?}",
                validate_image(good)
            );
        }
        for bad in [
            "",
            "Codercom/code-server",
            "img:",
            "img:-x",
            "/img",
            "img/",
            "a..b",
            "img@sha256:xyz",
            "a b",
        ] {
            let error = validate_image(bad).expect_err(bad);
            assert_eq!(error.field, "image");
        }
    }

    #[test]
    fn idle_timeouts() {
        assert_eq!(parse_idle_timeout("90").expect("secs"), 90);
        assert_eq!(parse_idle_timeout("90s").expect("s"), 90);
        assert_eq!(parse_idle_timeout("30m").expect("m"), 1800);
        assert_eq!(parse_idle_timeout("1h30m").expect("hm"), 5400);
        for bad in [
            "60",
            "1m",
            "abc",
            "5x",
            "m",
            "10h5",
            "8d",
            "99999999999999999999h",
        ] {
            let error = parse_idle_timeout(bad).expect_err(bad);
            assert_eq!(error.field, "idle_timeout");
        }
    }

    #[test]
    fn all_broken_rules_are_reported() {
        let input = CreateOptions {
            name: "Bad_Name".to_owned(),
            region: Some("mars".to_owned()),
            storage_gb: Some(0),
            ip: Some("public".to_owned()),
            ..CreateOptions::default()
        };
        let errors = validate_create(&input, &SwarmConfig::default()).expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|error| error.field).collect();
        assert_eq!(fields, ["name", "region", "storage", "ip"]);
    }

    proptest::proptest! {
        #[test]
        fn name_validation_never_panics_and_accepts_only_the_rule(name in "\\PC{0,70}") {
            let valid = validate_name(&name).is_ok();
            let expected = !name.is_empty()
                && name.len() <= 63
                && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && name.starts_with(|c: char| c.is_ascii_lowercase())
                && !name.ends_with('-');
            proptest::prop_assert_eq!(valid, expected);
        }

        #[test]
        fn image_and_timeout_parsing_never_panic(text in "\\PC{0,40}") {
            let _ = validate_image(&text);
            let _ = parse_idle_timeout(&text);
        }
    }
}
