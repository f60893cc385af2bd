//! `resize`: the new size, checked against the current one.

use crate::config::SwarmConfig;
use crate::error::ValidationError;
use crate::model::{CpuKind, ResizeOptions, ResizePlan, WorkspaceSpec};

use super::*;

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
