//! The guest size rules: CPU counts per kind, memory bounds and steps, storage.

use crate::config::SwarmConfig;
use crate::error::ValidationError;
use crate::model::{CpuKind, GuestSize};

const SHARED_CPUS: [u32; 5] = [1, 2, 4, 6, 8];

const PERFORMANCE_CPUS: [u32; 9] = [1, 2, 4, 6, 8, 10, 12, 14, 16];

const MEMORY_STEP_MB: u32 = 256;

const MAX_STORAGE_GB: u32 = 500;

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
