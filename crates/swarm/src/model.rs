//! The workspace domain model: what the user asks for ([`CreateOptions`]), what was
//! validated ([`WorkspaceSpec`]), what the store keeps ([`WorkspaceRecord`]) and what
//! the operations return.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

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

/// A validated workspace name (Fly app-name rules). Also checked when read back (from
/// the store, say): a name that breaks the rules is damage, not a workspace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct WorkspaceName(pub(crate) String);

impl Serialize for WorkspaceName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl TryFrom<String> for WorkspaceName {
    type Error = crate::validate::ValidationError;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        crate::validate::validate_name(&name).map(|()| Self(name))
    }
}

impl WorkspaceName {
    /// Validates `name` against Fly's app-name rules.
    pub fn parse(name: &str) -> Result<Self, crate::validate::ValidationError> {
        crate::validate::validate_name(name).map(|()| Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkspaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Fly's CPU kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuKind {
    Shared,
    Performance,
}

impl CpuKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Performance => "performance",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Shared, Self::Performance]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for CpuKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Guest size of the workspace's machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestSize {
    pub cpu_kind: CpuKind,
    pub cpus: u32,
    pub memory_mb: u32,
}

/// How the workspace is reachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpMode {
    /// Shared IPv4 + dedicated IPv6 (free): `https://<app>.fly.dev`.
    #[default]
    Shared,
    /// Dedicated IPv4 (billed) + IPv6.
    Dedicated,
    /// Private IPv6 only, over Fly's WireGuard network: `http://<app>.internal:8080`.
    Private,
}

impl IpMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Dedicated => "dedicated",
            Self::Private => "private",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Shared, Self::Dedicated, Self::Private]
            .into_iter()
            .find(|mode| mode.as_str() == text)
    }

    /// The IP kinds a workspace in this mode holds.
    pub fn ip_kinds(self) -> &'static [IpKind] {
        match self {
            Self::Shared => &[IpKind::SharedV4, IpKind::V6],
            Self::Dedicated => &[IpKind::V4, IpKind::V6],
            Self::Private => &[IpKind::PrivateV6],
        }
    }
}

impl fmt::Display for IpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Fly's IP address types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IpKind {
    V4,
    V6,
    SharedV4,
    PrivateV6,
}

impl IpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V4 => "v4",
            Self::V6 => "v6",
            Self::SharedV4 => "shared_v4",
            Self::PrivateV6 => "private_v6",
        }
    }
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
    #[serde(default, skip_serializing_if = "crate::suspend::IdlePolicy::is_stop")]
    pub idle_policy: crate::suspend::IdlePolicy,
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

/// One IP address held by the workspace's app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpRecord {
    pub kind: IpKind,
    pub address: String,
    /// Fly's id of a dedicated address (`None` for the shared IPv4).
    pub id: Option<String>,
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

/// The URL at which a workspace is reached.
pub fn workspace_url(name: &WorkspaceName, ip_mode: IpMode) -> String {
    app_url(name.as_str(), ip_mode)
}

/// The URL at which the workspace held by Fly app `app` is reached.
pub fn app_url(app: &str, ip_mode: IpMode) -> String {
    match ip_mode {
        IpMode::Private => format!("http://{app}.internal:8080"),
        IpMode::Shared | IpMode::Dedicated => format!("https://{app}.fly.dev"),
    }
}

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

/// Overall health verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Machine started and code-server answers `/healthz`.
    Healthy,
    /// Machine on its way up (starting, or started but not answering yet).
    Recovering,
    /// Machine stopped, failed, missing, or code-server not answering.
    Unhealthy,
}

/// code-server's `/healthz` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// The URL probed.
    pub url: String,
    /// HTTP status, or `None` when the request failed.
    pub http_status: Option<u16>,
    /// `alive` or `expired` (up but idle).
    pub status: Option<String>,
    /// Epoch milliseconds of the last activity; 0 = none since boot.
    pub last_heartbeat_ms: Option<i64>,
    /// Why the probe failed, when it did.
    pub error: Option<String>,
}

/// `health`'s answer: machine state and HTTP probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub name: String,
    pub status: HealthStatus,
    pub machine_state: Option<MachineState>,
    /// Seconds since the machine last started, when started.
    pub uptime_secs: Option<u64>,
    /// When code-server last saw activity, if it is idle (`expired`).
    #[serde(with = "time::serde::rfc3339::option")]
    pub idle_since: Option<OffsetDateTime>,
    pub probe: Option<ProbeResult>,
    /// Human summary, e.g. "machine started for 300 s; code-server up, idle".
    pub summary: String,
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub timestamp: String,
    pub level: String,
    pub instance: String,
    pub region: String,
    pub message: String,
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

/// One change `reconcile` made or one finding it reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReconcileAction {
    /// An interrupted create whose machine had started: marked running.
    FinishedCreate { name: String, id: Uuid },
    /// An interrupted create rolled back: everything it made was removed.
    UndidCreate {
        name: String,
        id: Uuid,
        removed: Vec<String>,
    },
    /// An interrupted delete finished.
    FinishedDelete {
        name: String,
        id: Uuid,
        removed: Vec<String>,
    },
    /// An interrupted start or stop settled; the record follows Fly.
    SettledOperation {
        name: String,
        operation: String,
        status: WorkspaceStatus,
    },
    /// The record disagreed with Fly; the record now follows Fly.
    StatusDrift {
        name: String,
        from: WorkspaceStatus,
        to: WorkspaceStatus,
        reason: String,
    },
    /// A Fly app carries a deleted workspace's name (and our tags); left alone.
    OrphanApp { app: String, reason: String },
    /// A machine tagged with a workspace id unknown to this store; left alone.
    OrphanMachine {
        app: String,
        machine_id: String,
        workspace_id: String,
    },
    /// An interrupted update, rollback, move or restore whose change had taken effect:
    /// finished (record switched, what it replaced removed).
    FinishedOperation {
        name: String,
        operation: String,
        removed: Vec<String>,
    },
    /// An interrupted update, rollback, move or restore that had not taken effect:
    /// what it had made was removed and the workspace is as before.
    UndidOperation {
        name: String,
        operation: String,
        removed: Vec<String>,
    },
    /// A pool slot that was half-made (fill interrupted), half-removed (drain
    /// interrupted) or whose app vanished: what it held was removed, the slot forgotten.
    PoolSlotRemoved {
        app: String,
        reason: String,
        removed: Vec<String>,
    },
    /// A ready pool slot made for an image no longer configured: its stopped machine
    /// was brought to the configured one (Fly prepared it on the volume's host).
    PoolSlotRefreshed {
        app: String,
        from: String,
        to: String,
    },
    /// Reconcile could not finish this workspace; it will be retried next run.
    Failed { name: String, error: String },
}

/// `reconcile`'s report.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReconcileReport {
    pub checked: usize,
    /// Ready warm-pool slots (each a Fly app with a volume and IPs), after settling.
    pub pool_slots: usize,
    pub actions: Vec<ReconcileAction>,
}

impl ReconcileReport {
    /// True when nothing failed (orphans are findings, not failures).
    pub fn converged(&self) -> bool {
        !self
            .actions
            .iter()
            .any(|action| matches!(action, ReconcileAction::Failed { .. }))
    }
}
