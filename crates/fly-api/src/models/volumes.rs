//! Volumes (REST `/v1/apps/{app}/volumes`).

use serde::{Deserialize, Serialize};

use super::{Extra, HostStatus, MachineGuest, string_enum};

string_enum! {
    /// A volume's state (Fly docs "Volume states").
    VolumeState {
        Creating = "creating",
        Created = "created",
        Extending = "extending",
        Restoring = "restoring",
        Hydrating = "hydrating",
        Enabling = "enabling",
        Recovering = "recovering",
        Destroying = "destroying",
        Destroyed = "destroyed",
        SchedulingDestroy = "scheduling_destroy",
        PendingDestroy = "pending_destroy",
        Failed = "failed",
    }
}

impl VolumeState {
    /// Deleted or on its way out.
    pub fn is_deleted(&self) -> bool {
        matches!(
            self,
            VolumeState::Destroying
                | VolumeState::Destroyed
                | VolumeState::SchedulingDestroy
                | VolumeState::PendingDestroy
        )
    }
}

/// Body of `POST /v1/apps/{app}/volumes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateVolumeRequest {
    /// `^[a-z0-9_]{1,30}$`.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_gb: Option<u32>,
    /// Restore from this snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// Fork this volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_volume_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_unique_zone: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_zone_app_wide: Option<bool>,
    /// Days, 1..=60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_retention: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_backup_enabled: Option<bool>,
    /// Placement hint: the guest that will mount it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute: Option<MachineGuest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fstype: Option<String>,
}

/// A volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default = "unknown_state")]
    pub state: VolumeState,
    #[serde(default)]
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(default)]
    pub size_gb: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attached_machine_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attached_alloc_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fstype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_retention: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_backup_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_status: Option<HostStatus>,
    /// `local` or `cache`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_total: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_used: Option<u64>,
    #[serde(flatten)]
    pub extra: Extra,
}

fn unknown_state() -> VolumeState {
    VolumeState::Other(String::new())
}

impl Volume {
    /// The machine holding it, treating Fly's empty string as none.
    pub fn attached_machine(&self) -> Option<&str> {
        self.attached_machine_id
            .as_deref()
            .filter(|id| !id.is_empty())
    }
}

/// Answer to `PUT /volumes/{id}/extend`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtendVolumeResponse {
    pub volume: Volume,
    #[serde(default)]
    pub needs_restart: bool,
}

/// Body of `PUT /volumes/{id}/extend`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ExtendVolumeRequest {
    pub size_gb: u32,
}

/// A snapshot of a volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeSnapshot {
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Bytes of the volume it was taken from (flyctl prints it with `humanize.IBytes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
}
