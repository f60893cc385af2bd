//! Machine states, as Fly reports them.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::*;

/// Machine states, as Fly reports them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineState {
    Created,
    Starting,
    Started,
    Stopping,
    Stopped,
    Suspending,
    Suspended,
    Replacing,
    Updating,
    Restarting,
    Destroying,
    Destroyed,
    Failed,
    Other(String),
}

impl MachineState {
    pub fn parse(text: &str) -> Self {
        match text {
            "created" => Self::Created,
            "starting" => Self::Starting,
            "started" => Self::Started,
            "stopping" => Self::Stopping,
            "stopped" => Self::Stopped,
            "suspending" => Self::Suspending,
            "suspended" => Self::Suspended,
            "replacing" => Self::Replacing,
            "updating" => Self::Updating,
            "restarting" => Self::Restarting,
            "destroying" => Self::Destroying,
            "destroyed" => Self::Destroyed,
            "failed" => Self::Failed,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Created => "created",
            Self::Starting => "starting",
            Self::Started => "started",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Suspending => "suspending",
            Self::Suspended => "suspended",
            Self::Replacing => "replacing",
            Self::Updating => "updating",
            Self::Restarting => "restarting",
            Self::Destroying => "destroying",
            Self::Destroyed => "destroyed",
            Self::Failed => "failed",
            Self::Other(text) => text,
        }
    }

    /// The record status this machine state corresponds to.
    pub fn workspace_status(&self) -> WorkspaceStatus {
        match self {
            Self::Started => WorkspaceStatus::Running,
            Self::Created
            | Self::Starting
            | Self::Replacing
            | Self::Updating
            | Self::Restarting => WorkspaceStatus::Starting,
            Self::Stopping | Self::Suspending => WorkspaceStatus::Stopping,
            Self::Stopped => WorkspaceStatus::Stopped,
            Self::Suspended => WorkspaceStatus::Suspended,
            Self::Destroying | Self::Destroyed | Self::Failed | Self::Other(_) => {
                WorkspaceStatus::Failed
            }
        }
    }
}

impl fmt::Display for MachineState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
