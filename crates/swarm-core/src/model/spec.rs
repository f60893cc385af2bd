//! What the user asks for and what validation makes of it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::*;

/// Raw create input, as the CLI flags or the controller's JSON body give it.
/// Every field but `name` is optional and falls back to the configured default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CreateOptions {
    pub name: String,
    pub region: Option<String>,
    pub cpus: Option<u32>,
    pub cpu_kind: Option<String>,
    /// Memory in MB (`--memory`).
    #[serde(rename = "memory")]
    pub memory_mb: Option<u32>,
    /// Volume size in GB (`--storage`).
    #[serde(rename = "storage")]
    pub storage_gb: Option<u32>,
    pub image: Option<String>,
    /// `--env K=V` pairs, in the order given.
    pub env: BTreeMap<String, String>,
    /// Extra machine metadata (keys must not start with `swarm_`).
    pub metadata: BTreeMap<String, String>,
    /// `shared` (default), `dedicated` or `private`.
    pub ip: Option<String>,
    /// A duration such as `30m`, `1h30m`, `90s` or plain seconds.
    pub idle_timeout: Option<String>,
    /// A dotfiles repository (`https://…`), cloned and installed at boot.
    pub dotfiles: Option<String>,
    /// An init script's text, run at boot after the dotfiles (`--init FILE`).
    pub init: Option<String>,
    /// `stop` (default) or `suspend`: who puts an idle workspace to rest.
    pub idle_policy: Option<String>,
    /// The controller user the workspace is made for (`swarm serve`); set by the
    /// controller from the caller's token, never read from input.
    #[serde(skip)]
    pub owner: Option<String>,
}

/// The validated, complete description of a workspace: what `create` builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceSpec {
    pub name: WorkspaceName,
    pub region: String,
    pub guest: GuestSize,
    pub storage_gb: u32,
    pub image: String,
    pub env: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    pub ip_mode: IpMode,
    pub idle_timeout_secs: u64,
    /// A dotfiles repository's URL, installed at every boot (see `first_boot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dotfiles: Option<String>,
    /// The init script's text, run at every boot after the dotfiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_script: Option<String>,
    /// Absent in records written before it existed (and for `stop`), so they read the same.
    #[serde(default, skip_serializing_if = "crate::model::IdlePolicy::is_stop")]
    pub idle_policy: crate::model::IdlePolicy,
    pub org: String,
    /// The controller user it belongs to; none for a workspace made with the CLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// The result of validating [`CreateOptions`]: the spec plus notes for the user
/// (defaults that were adjusted, advice such as pinning the image tag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatedCreate {
    pub spec: WorkspaceSpec,
    pub notes: Vec<String>,
}
