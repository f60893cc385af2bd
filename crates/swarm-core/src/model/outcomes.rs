//! What the operations return: created, resized, image changed, replaced, deleted and the rest.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::*;

/// The password for a new workspace: shown to the user once, never stored.
/// `Debug` and `Serialize` print it only through [`OneTimePassword::expose`].
#[derive(Clone)]
pub struct OneTimePassword(pub(crate) secrecy::SecretString);

impl OneTimePassword {
    /// The plaintext, for showing to the user once.
    pub fn expose(&self) -> &str {
        use secrecy::ExposeSecret;
        self.0.expose_secret()
    }
}

/// Read back from the controller's answer (`swarm --server`), where it arrives once.
impl<'de> Deserialize<'de> for OneTimePassword {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Self(secrecy::SecretString::from(text)))
    }
}

impl fmt::Debug for OneTimePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneTimePassword([redacted])")
    }
}

/// What `create` returns. Serialising it includes the password (the CLI's `--json` must
/// show it once); it is never logged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Created {
    pub workspace: WorkspaceRecord,
    #[serde(serialize_with = "serialize_password")]
    pub password: OneTimePassword,
    /// Adjusted defaults and advice (e.g. memory raised, image not pinned).
    pub notes: Vec<String>,
}

fn serialize_password<S: serde::Serializer>(
    password: &OneTimePassword,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(password.expose())
}

/// The steps of `create`, reported as they complete (for the CLI's step display).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum CreateStep {
    IntentRecorded {
        id: Uuid,
    },
    App {
        name: String,
        adopted: bool,
    },
    Volume {
        id: String,
        adopted: bool,
    },
    Ips {
        addresses: Vec<String>,
    },
    Machine {
        id: String,
        adopted: bool,
    },
    Started {
        machine_id: String,
    },
    /// A warm-pool slot was taken instead of making app, volume and IPs.
    PoolSlot {
        app: String,
        volume: Option<String>,
        addresses: Vec<String>,
    },
}

/// `resize` input: the raw CLI/REST fields; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResizeOptions {
    pub cpus: Option<u32>,
    pub cpu_kind: Option<String>,
    /// Memory in MB (`--memory`).
    #[serde(rename = "memory")]
    pub memory_mb: Option<u32>,
    /// Volume size in GB (`--storage`); grows only.
    #[serde(rename = "storage")]
    pub storage_gb: Option<u32>,
}

/// A validated resize: the target guest and volume size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResizePlan {
    pub guest: GuestSize,
    pub storage_gb: u32,
    pub notes: Vec<String>,
}

/// What `resize` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resized {
    pub workspace: WorkspaceRecord,
    pub previous_guest: GuestSize,
    pub previous_storage_gb: u32,
    /// False when the workspace already had this size.
    pub changed: bool,
    /// Whether the machine was restarted so it sees the grown volume.
    pub restarted_for_volume: bool,
    pub notes: Vec<String>,
}

/// What `password --rotate` returns. Serialising it includes the new password (shown
/// once); `Debug` never prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordRotated {
    pub workspace: WorkspaceRecord,
    #[serde(serialize_with = "serialize_password")]
    pub password: OneTimePassword,
}

/// What `update` and `rollback` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageChanged {
    pub workspace: WorkspaceRecord,
    /// The version it ran before.
    pub from: Option<u32>,
    /// The version it runs now (the new last entry of `image_versions`).
    pub to: ImageVersion,
}

/// What `rollback --machine` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineRolledBack {
    pub workspace: WorkspaceRecord,
    /// The config it ran before; now `workspace.previous_machine`, so a second
    /// `rollback --machine` returns to it.
    pub from: MachineConfig,
    /// The config it runs now (the one it had before its last machine change).
    pub to: MachineConfig,
    /// The image version recorded when the image changed too (`None` for a size only).
    pub version: Option<ImageVersion>,
    /// The volume snapshot taken first (only when the image changed).
    pub snapshot_before: Option<String>,
}

/// What `move` and `restore` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replaced {
    pub workspace: WorkspaceRecord,
    pub previous_region: String,
    pub previous_volume: Option<String>,
    pub previous_machine: Option<String>,
    /// The resources of the old placement that were removed.
    pub removed: Vec<String>,
}

/// What a start/stop did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    pub workspace: WorkspaceRecord,
    pub previous: WorkspaceStatus,
    /// False when the workspace already was in the requested state.
    pub changed: bool,
}

/// What `delete` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    pub name: String,
    pub id: Uuid,
    /// False when it had already been deleted (delete is repeatable).
    pub changed: bool,
    /// Each resource removed, e.g. `machine 1857156b526dd8`.
    pub removed: Vec<String>,
}

/// Keeps `OneTimePassword` reachable for callers who build `Created` by hand.
impl Created {
    pub fn password(&self) -> &OneTimePassword {
        &self.password
    }
}
