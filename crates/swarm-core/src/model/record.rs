//! What the store keeps of a workspace: its status, its image and machine history, the record.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::*;

/// Lifecycle status kept in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceStatus {
    /// The intent is recorded; resources are being made.
    Creating,
    Running,
    Starting,
    Stopping,
    Stopped,
    /// Fly holds a snapshot of its memory; `start` resumes from it.
    Suspended,
    /// Teardown in progress (or interrupted: `reconcile` finishes it).
    Deleting,
    /// Gone from Fly; the record is kept for history and orphan detection.
    Deleted,
    /// Fly reports the machine failed, or it is missing; see `last_error`.
    Failed,
}

impl WorkspaceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Running => "running",
            Self::Starting => "starting",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Suspended => "suspended",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "creating" => Self::Creating,
            "running" => Self::Running,
            "starting" => Self::Starting,
            "stopping" => Self::Stopping,
            "stopped" => Self::Stopped,
            "suspended" => Self::Suspended,
            "deleting" => Self::Deleting,
            "deleted" => Self::Deleted,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

impl fmt::Display for WorkspaceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One image the workspace ran, oldest first. Every image change (create, update,
/// rollback) adds one; rollback returns to one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageVersion {
    pub version: u32,
    pub image: String,
    /// The digest Fly resolved the image to, when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The guest it ran with (absent in records made before versions kept it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<GuestSize>,
    /// The machine version (Fly's ULID) that ran it, once known.
    pub machine_version: Option<String>,
    /// The volume snapshot taken just before the change to this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_before: Option<String>,
    /// Set when this version came from `rollback`: the version it returned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<u32>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl ImageVersion {
    /// What to send to Fly to run exactly this version again: pinned by digest when known.
    pub fn pinned_image(&self) -> String {
        pin_image(&self.image, self.digest.as_deref())
    }
}

/// `image` pinned by `digest` (`name@sha256:…`, the tag dropped), when a digest is known.
fn pin_image(image: &str, digest: Option<&str>) -> String {
    match digest {
        Some(digest) if !image.contains('@') => {
            let name = image
                .rsplit_once(':')
                .filter(|(_, tag)| !tag.contains('/'))
                .map_or(image, |(name, _)| name);
            format!("{name}@{digest}")
        }
        _ => image.to_owned(),
    }
}

/// A machine config the workspace ran: kept in the record as it was before the last
/// machine change (resize, update, rollback, `rollback --machine`), so
/// `rollback --machine` can return to it. The password hash is not part of it: a
/// rollback never brings back an old password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineConfig {
    pub image: String,
    /// The digest the image ran as, when Fly said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub guest: GuestSize,
    /// The image version (`swarm versions`) it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_version: Option<u32>,
    /// The operation that replaced it (`resize`, `update`, `rollback`, `machine_rollback`).
    pub replaced_by: String,
    /// When it was replaced.
    #[serde(with = "time::serde::rfc3339")]
    pub replaced_at: OffsetDateTime,
}

impl MachineConfig {
    /// What to send to Fly to run exactly this image again: pinned by digest when known.
    pub fn pinned_image(&self) -> String {
        pin_image(&self.image, self.digest.as_deref())
    }

    /// True when `other` runs the same image and guest (when and why aside).
    pub fn same_machine(&self, other: &Self) -> bool {
        self.image == other.image && self.digest == other.digest && self.guest == other.guest
    }
}

/// The store's record of one workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceRecord {
    pub id: Uuid,
    pub name: WorkspaceName,
    pub status: WorkspaceStatus,
    pub spec: WorkspaceSpec,
    /// The Fly app holding the workspace, set once our create was sent, the app
    /// adopted, or a pool slot taken. The name for a workspace created the normal way;
    /// a pool slot's own name (chosen before the workspace's name was known) otherwise.
    /// Everything that finds a workspace's resources goes through
    /// [`WorkspaceRecord::app_name`], never by re-deriving it from the name.
    pub app: Option<String>,
    pub volume_id: Option<String>,
    /// Volumes a move or restore replaced, oldest first: Fly keeps their snapshots
    /// for their retention, so `snapshot list` and `restore` still reach them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub former_volumes: Vec<String>,
    pub machine_id: Option<String>,
    pub ips: Vec<IpRecord>,
    pub url: String,
    pub image_versions: Vec<ImageVersion>,
    /// The machine config before the last machine change: what `rollback --machine`
    /// returns to (absent before the first change, and in records made before 0.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_machine: Option<MachineConfig>,
    /// The last failure seen by an operation or by reconcile.
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl WorkspaceRecord {
    /// A new record of `spec` in `status`, with a fresh id, its URL, its first image
    /// version, and nothing on Fly recorded yet.
    pub fn new(spec: WorkspaceSpec, status: WorkspaceStatus, now: OffsetDateTime) -> Self {
        Self {
            id: Uuid::now_v7(),
            name: spec.name.clone(),
            status,
            url: workspace_url(&spec.name, spec.ip_mode),
            image_versions: vec![ImageVersion {
                version: 1,
                image: spec.image.clone(),
                digest: None,
                guest: Some(spec.guest),
                machine_version: None,
                snapshot_before: None,
                rollback_of: None,
                at: now,
            }],
            spec,
            app: None,
            volume_id: None,
            former_volumes: Vec::new(),
            machine_id: None,
            ips: Vec::new(),
            previous_machine: None,
            last_error: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// The Fly app that holds (or will hold) the workspace: the recorded app, or, before
    /// a normal create has recorded it, the app named like the workspace.
    pub fn app_name(&self) -> &str {
        self.app.as_deref().unwrap_or(self.name.as_str())
    }

    /// Name of the workspace's volume, derived from the id so it can be found again
    /// without its Fly id (`^[a-z0-9_]{1,30}$`).
    pub fn volume_name(&self) -> String {
        volume_name_for(self.id)
    }

    /// The machine config the workspace runs now, as the record has it, stamped as
    /// replaced by `operation` (about to change it).
    pub fn current_machine(&self, operation: &str, at: OffsetDateTime) -> MachineConfig {
        let version = self.image_versions.last();
        MachineConfig {
            image: self.spec.image.clone(),
            digest: version
                .filter(|v| v.image == self.spec.image)
                .and_then(|v| v.digest.clone()),
            guest: self.spec.guest,
            image_version: version.map(|v| v.version),
            replaced_by: operation.to_owned(),
            replaced_at: at,
        }
    }

    /// The fields of this record that the list shows.
    pub fn summary(&self) -> WorkspaceSummary {
        WorkspaceSummary {
            name: self.name.clone(),
            status: self.status,
            region: self.spec.region.clone(),
            guest: self.spec.guest,
            storage_gb: self.spec.storage_gb,
            ip_mode: self.spec.ip_mode,
            url: self.url.clone(),
            created_at: self.created_at,
        }
    }
}

/// What `swarm list` shows of a workspace: read from the store's list columns without
/// decoding the whole [`WorkspaceRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkspaceSummary {
    pub name: WorkspaceName,
    pub status: WorkspaceStatus,
    pub region: String,
    pub guest: GuestSize,
    pub storage_gb: u32,
    pub ip_mode: IpMode,
    pub url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `ws_` + the first 16 hex digits of the id.
pub fn volume_name_for(id: Uuid) -> String {
    let hex = id.simple().to_string();
    format!("ws_{}", &hex[..16])
}
