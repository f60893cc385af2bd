//! Between Fly's wire models and the provider's terms: errors, IPs, machines, volumes,
//! snapshots, log lines.

use fly_api::Error as FlyError;
use fly_api::models::{IpAddressType, Machine, MachineGuest, Volume, VolumeSnapshot};

use super::{MachineInfo, ProviderError, ProviderErrorKind, SnapshotInfo, VolumeInfo};
use swarm_core::model::{CpuKind, GuestSize, IpKind, LogLine, MachineState};

pub(crate) fn map_error(error: FlyError) -> ProviderError {
    let kind = if error.is_name_taken() {
        ProviderErrorKind::NameTaken
    } else if error.status() == Some(401) || matches!(error, FlyError::Config(_)) {
        ProviderErrorKind::Unauthorized
    } else if error.is_capacity() {
        ProviderErrorKind::Capacity
    } else if error.is_not_found() {
        ProviderErrorKind::NotFound
    } else if error.is_rate_limited() {
        ProviderErrorKind::RateLimited
    } else if error.is_ambiguous() {
        ProviderErrorKind::Ambiguous
    } else if error.is_retryable() {
        ProviderErrorKind::Transient
    } else if error.is_conflict() || error.is_precondition_failed() {
        ProviderErrorKind::Conflict
    } else if matches!(error.status(), Some(400 | 422)) {
        ProviderErrorKind::Invalid
    } else {
        ProviderErrorKind::Other
    };
    ProviderError {
        kind,
        status: error.status(),
        request_id: error.request_id().map(str::to_owned),
        message: error.to_string(),
    }
}

pub(crate) fn ip_kind(kind: &IpAddressType) -> Option<IpKind> {
    Some(match kind {
        IpAddressType::V4 => IpKind::V4,
        IpAddressType::V6 => IpKind::V6,
        IpAddressType::SharedV4 => IpKind::SharedV4,
        IpAddressType::PrivateV6 => IpKind::PrivateV6,
        _ => return None,
    })
}

pub(crate) fn ip_type(kind: IpKind) -> IpAddressType {
    match kind {
        IpKind::V4 => IpAddressType::V4,
        IpKind::V6 => IpAddressType::V6,
        IpKind::SharedV4 => IpAddressType::SharedV4,
        IpKind::PrivateV6 => IpAddressType::PrivateV6,
    }
}

pub(crate) fn machine_info(machine: Machine) -> MachineInfo {
    let config = machine.config();
    MachineInfo {
        state: MachineState::parse(machine.state.as_str()),
        image: config.map(|config| config.image.clone()),
        metadata: config
            .map(|config| config.metadata.clone())
            .unwrap_or_default(),
        guest: config
            .and_then(|config| config.guest.as_ref())
            .and_then(guest_size),
        image_digest: machine.image_ref.and_then(|image| image.digest),
        id: machine.id,
        name: machine.name,
        region: machine.region,
        version: machine.version.or(machine.instance_id),
        updated_at: machine.updated_at,
    }
}

pub(crate) fn guest_size(guest: &MachineGuest) -> Option<GuestSize> {
    let cpu_kind = match guest.cpu_kind.as_deref()? {
        "shared" => CpuKind::Shared,
        "performance" => CpuKind::Performance,
        _ => return None,
    };
    Some(GuestSize {
        cpu_kind,
        cpus: guest.cpus?,
        memory_mb: guest.memory_mb?,
    })
}

pub(crate) fn volume_info(volume: Volume) -> VolumeInfo {
    VolumeInfo {
        state: volume.state.as_str().to_owned(),
        attached_machine_id: volume.attached_machine().map(str::to_owned),
        id: volume.id,
        name: volume.name,
        region: volume.region,
        size_gb: volume.size_gb,
    }
}

pub(crate) fn snapshot_info(volume_id: &str, snapshot: VolumeSnapshot) -> SnapshotInfo {
    SnapshotInfo {
        id: snapshot.id,
        volume_id: volume_id.to_owned(),
        created_at: snapshot.created_at,
        size_bytes: snapshot.size,
        // Fly gives bytes; a restore needs whole GB, at least the source's size.
        volume_size_gb: snapshot
            .volume_size
            .and_then(|bytes| u32::try_from(bytes.div_ceil(1 << 30)).ok()),
        status: snapshot.status,
    }
}

pub(crate) fn fly_state(state: &MachineState) -> fly_api::models::MachineState {
    fly_api::models::MachineState::from(state.as_str())
}

pub(crate) fn log_line(entry: fly_api::models::LogEntry) -> LogLine {
    LogLine {
        timestamp: entry.timestamp,
        level: entry.level,
        instance: entry.instance,
        region: entry.region,
        message: entry.message,
    }
}
