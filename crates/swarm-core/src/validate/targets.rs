//! Where a move, a rollback or a restore goes.

use crate::config::SwarmConfig;
use crate::error::ValidationError;
use crate::model::{ImageVersion, MachineConfig, WorkspaceRecord, WorkspaceSpec};

use super::*;

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
