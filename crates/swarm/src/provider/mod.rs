//! The seam between the workspace logic and a cloud. [`Provider`] holds the
//! primitives a workspace is made of (app, volume, IPs, machine; their create, get,
//! list, start, stop, delete; health probe; logs); [`crate::Swarm`] composes them into
//! the workspace operations (create, start, stop, delete, health, logs, reconcile)
//! with journaling, adoption and compensation written once. [`FlyProvider`] is the
//! Fly.io implementation over `fly-api`.

pub(crate) mod fly;
mod fly_access;
pub(crate) mod fly_convert;
mod fly_machine_config;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::exec::{ExecCommand, ExecOutput};
use crate::secrets::SecretInfo;
use swarm_core::model::{GuestSize, IpKind, IpRecord, LogLine, MachineState, ProbeResult};

pub use fly::FlyProvider;

/// Machine metadata key holding the workspace id.
pub const TAG_WORKSPACE_ID: &str = "swarm_workspace_id";
/// Machine metadata key holding the workspace name.
pub const TAG_WORKSPACE: &str = "swarm_workspace";
/// Machine metadata key holding the swarm version that made it.
pub const TAG_VERSION: &str = "swarm_version";
/// Machine metadata key of a pool slot's warm-up machine: the slot's id.
pub const TAG_POOL_WARMUP: &str = "swarm_pool_warmup";

/// How a provider call failed, in the terms the workspace logic decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderErrorKind {
    NotFound,
    /// The app name belongs to someone else (Fly app names are global).
    NameTaken,
    /// No capacity in the region.
    Capacity,
    /// Lease held, stale version, or a state that forbids the call (Fly 409/412).
    Conflict,
    RateLimited,
    /// The call may or may not have taken effect (timeout, lost response, 5xx on a create).
    Ambiguous,
    /// Failed without effect, worth retrying (5xx, transport before sending).
    Transient,
    /// The API token is missing or refused.
    Unauthorized,
    /// Fly refused the request as invalid (400/422).
    Invalid,
    /// A wait ran out.
    Timeout,
    Other,
}

/// A provider failure: its kind plus Fly's own words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderError {
    pub kind: ProviderErrorKind,
    pub message: String,
    pub status: Option<u16>,
    pub request_id: Option<String>,
}

impl ProviderError {
    pub fn new(kind: ProviderErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            status: None,
            request_id: None,
        }
    }

    /// Worth another attempt (after looking up what a create may have made).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ProviderErrorKind::Ambiguous
                | ProviderErrorKind::Transient
                | ProviderErrorKind::RateLimited
                | ProviderErrorKind::Conflict
                | ProviderErrorKind::Timeout
        )
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ProviderErrorKind::NotFound
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status}")?;
            if let Some(request_id) = &self.request_id {
                write!(f, ", request {request_id}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl std::error::Error for ProviderError {}

pub type ProviderResult<T> = Result<T, ProviderError>;

/// An app as the provider sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppInfo {
    pub name: String,
    pub status: Option<String>,
}

/// A volume as the provider sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeInfo {
    pub id: String,
    pub name: String,
    pub region: String,
    pub size_gb: u32,
    pub state: String,
    pub attached_machine_id: Option<String>,
}

impl VolumeInfo {
    /// False for volumes on their way out (soft-deleted volumes linger in lists).
    pub fn is_live(&self) -> bool {
        !matches!(
            self.state.as_str(),
            "destroying" | "destroyed" | "scheduling_destroy" | "pending_destroy" | "deleted"
        )
    }
}

/// What a new volume should be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeRequest {
    pub name: String,
    pub region: String,
    pub size_gb: u32,
    /// Where its data comes from; `None` for an empty volume.
    pub source: Option<VolumeSource>,
}

/// The data a new volume starts with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeSource {
    /// A fork of another volume of the app (any region).
    Volume(String),
    /// A restore of one of the app's volume snapshots.
    Snapshot(String),
}

/// A volume snapshot as the provider sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub id: String,
    /// The volume it was taken from (which may since have been replaced).
    pub volume_id: String,
    /// RFC 3339.
    pub created_at: Option<String>,
    pub size_bytes: Option<u64>,
    /// Size of the volume it was taken from; a restore needs at least this much.
    pub volume_size_gb: Option<u32>,
    pub status: Option<String>,
}

/// A machine as the provider sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineInfo {
    pub id: String,
    pub name: String,
    pub state: MachineState,
    pub region: String,
    pub version: Option<String>,
    pub image: Option<String>,
    /// The digest the image reference resolved to, when Fly says.
    pub image_digest: Option<String>,
    /// The guest size in its config, when complete and of a known CPU kind.
    pub guest: Option<GuestSize>,
    pub metadata: BTreeMap<String, String>,
    /// RFC 3339, when Fly last changed the machine (≈ when it last started, for a started one).
    pub updated_at: Option<String>,
}

/// What the workspace's machine should be. The provider turns it into its own
/// config (services, checks, restart policy, autostart…).
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct MachineRequest {
    pub name: String,
    pub region: String,
    pub image: String,
    pub guest: GuestSize,
    /// Complete env, including `HASHED_PASSWORD` (a hash, never the password).
    pub env: BTreeMap<String, String>,
    pub volume_id: String,
    pub mount_path: String,
    pub metadata: BTreeMap<String, String>,
    /// Files Fly writes into the machine at boot (the user's init script).
    pub files: Vec<GuestFile>,
    /// `suspend`: the service's autostop suspends the idle machine.
    pub idle_policy: swarm_core::model::IdlePolicy,
}

/// A file in the machine's config: Fly writes it before the image's entrypoint runs.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct GuestFile {
    pub path: String,
    pub contents: Vec<u8>,
    pub mode: u32,
}

impl fmt::Debug for GuestFile {
    // A user's script: its size tells enough in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuestFile")
            .field("path", &self.path)
            .field("bytes", &self.contents.len())
            .field("mode", &format_args!("{:o}", self.mode))
            .finish()
    }
}

impl fmt::Debug for MachineRequest {
    // The env holds the password hash; keep it out of debug logs all the same.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MachineRequest")
            .field("name", &self.name)
            .field("region", &self.region)
            .field("image", &self.image)
            .field("guest", &self.guest)
            .field("env_keys", &self.env.keys().collect::<Vec<_>>())
            .field("volume_id", &self.volume_id)
            .field("mount_path", &self.mount_path)
            .field("idle_policy", &self.idle_policy)
            .field("metadata", &self.metadata)
            .field("files", &self.files)
            .finish()
    }
}

/// A pool slot's warm-up machine (see `pool.rs`): it mounts the slot's volume, so on
/// Fly it lands on the host the workspace's machine will use, and it is created with
/// `skip_launch`, so Fly only prepares the image there and never boots it. No env
/// (so no secret), no services, no checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WarmupRequest {
    pub name: String,
    pub region: String,
    pub image: String,
    pub volume_id: String,
    pub mount_path: String,
    pub metadata: BTreeMap<String, String>,
}

/// A copy of an existing machine elsewhere: same config (image, env with the password
/// hash, services, checks, guest) but its own region, volume and extra metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CloneRequest {
    pub name: String,
    pub region: String,
    pub volume_id: String,
    /// Added to (or replacing) the source's metadata.
    pub metadata: BTreeMap<String, String>,
}

/// Changes to a machine's config. The provider applies them to the config as the cloud
/// has it and sends the whole result (Fly replaces configs, never patches them), so
/// every setting not named here stays exactly as it is.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MachineChange {
    /// Env keys to set (others are kept).
    pub env: BTreeMap<String, String>,
    pub image: Option<String>,
    pub guest: Option<GuestSize>,
}

impl fmt::Debug for MachineChange {
    // Env values may hold the password hash.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MachineChange")
            .field("env_keys", &self.env.keys().collect::<Vec<_>>())
            .field("image", &self.image)
            .field("guest", &self.guest)
            .finish()
    }
}

/// The cloud primitives a workspace is made of. Every method is one provider call (or
/// a short wait loop); retries after ambiguous failures and compensation are the
/// caller's ([`crate::Swarm`]) business, so they are written once for any provider.
pub trait Provider: Send + Sync + 'static {
    /// A short label for the store (which cloud endpoint records belong to).
    fn endpoint(&self) -> String;

    /// `Ok(None)` when no app has this name; [`ProviderErrorKind::NameTaken`] when it
    /// exists outside our organization.
    fn get_app(&self, name: &str) -> impl Future<Output = ProviderResult<Option<AppInfo>>> + Send;
    /// Creates the app under `idempotency_key` (the id of the workspace or pool slot
    /// it is for). Repeating the key and name answers with the app the first create
    /// made, so a repeat is safe and an app of this name that refuses our key
    /// ([`ProviderErrorKind::NameTaken`]) is certainly not ours.
    fn create_app(
        &self,
        name: &str,
        org: &str,
        idempotency_key: &str,
    ) -> impl Future<Output = ProviderResult<AppInfo>> + Send;
    /// Deletes the app and (by cascade) all it holds. Ok when already gone.
    fn delete_app(&self, name: &str) -> impl Future<Output = ProviderResult<()>> + Send;
    fn list_apps(&self, org: &str) -> impl Future<Output = ProviderResult<Vec<AppInfo>>> + Send;

    fn list_volumes(
        &self,
        app: &str,
    ) -> impl Future<Output = ProviderResult<Vec<VolumeInfo>>> + Send;
    fn create_volume(
        &self,
        app: &str,
        request: &VolumeRequest,
    ) -> impl Future<Output = ProviderResult<VolumeInfo>> + Send;
    /// Ok when already gone; [`ProviderErrorKind::Conflict`] while still bound to a machine.
    fn delete_volume(&self, app: &str, id: &str)
    -> impl Future<Output = ProviderResult<()>> + Send;

    fn list_ips(&self, app: &str) -> impl Future<Output = ProviderResult<Vec<IpRecord>>> + Send;
    fn allocate_ip(
        &self,
        app: &str,
        kind: IpKind,
        region: &str,
    ) -> impl Future<Output = ProviderResult<IpRecord>> + Send;
    /// Ok when already released.
    fn release_ip(
        &self,
        app: &str,
        ip: &IpRecord,
    ) -> impl Future<Output = ProviderResult<()>> + Send;

    /// Machines of the app, optionally only those whose metadata has `tag = value`.
    fn list_machines(
        &self,
        app: &str,
        tag: Option<(&str, &str)>,
    ) -> impl Future<Output = ProviderResult<Vec<MachineInfo>>> + Send;
    fn get_machine(
        &self,
        app: &str,
        id: &str,
    ) -> impl Future<Output = ProviderResult<Option<MachineInfo>>> + Send;
    fn create_machine(
        &self,
        app: &str,
        request: &MachineRequest,
    ) -> impl Future<Output = ProviderResult<MachineInfo>> + Send;
    /// Creates a machine that is never started (`skip_launch`); see [`WarmupRequest`].
    /// It reads `created` while Fly prepares the image, then `stopped`.
    fn create_warmup_machine(
        &self,
        app: &str,
        request: &WarmupRequest,
    ) -> impl Future<Output = ProviderResult<MachineInfo>> + Send;
    /// Gives an existing stopped machine (a pool slot's) the whole config `request`
    /// describes, as `create_machine` would send it, and starts it: one update, no
    /// `skip_launch`. On a stopped machine with the image already on its host this is
    /// a config write and a boot, not a replace (see fly-sim's `update_machine`).
    fn adopt_machine(
        &self,
        app: &str,
        id: &str,
        request: &MachineRequest,
    ) -> impl Future<Output = ProviderResult<MachineInfo>> + Send;
    fn start_machine(&self, app: &str, id: &str)
    -> impl Future<Output = ProviderResult<()>> + Send;
    /// Cordons (`true`) or uncordons the machine: while cordoned, Fly's proxy neither
    /// routes to it nor autostarts it. Repeatable.
    fn cordon_machine(
        &self,
        app: &str,
        id: &str,
        cordoned: bool,
    ) -> impl Future<Output = ProviderResult<()>> + Send;
    /// `force`: SIGKILL instead of a graceful stop.
    fn stop_machine(
        &self,
        app: &str,
        id: &str,
        force: bool,
    ) -> impl Future<Output = ProviderResult<()>> + Send;
    /// Suspends a started machine: Fly snapshots its memory (or stops it, when it
    /// cannot be snapshotted). `start` resumes it.
    fn suspend_machine(
        &self,
        app: &str,
        id: &str,
    ) -> impl Future<Output = ProviderResult<()>> + Send;
    /// Destroys the machine whatever its state. Ok when already gone.
    fn destroy_machine(
        &self,
        app: &str,
        id: &str,
    ) -> impl Future<Output = ProviderResult<()>> + Send;
    /// Applies `change` to the machine's current config and replaces it. A started
    /// machine restarts with the new config; a stopped one stays stopped.
    fn update_machine(
        &self,
        app: &str,
        id: &str,
        change: &MachineChange,
    ) -> impl Future<Output = ProviderResult<MachineInfo>> + Send;
    /// Grows the volume to `size_gb`; returns whether the machine must restart to see it.
    fn extend_volume(
        &self,
        app: &str,
        id: &str,
        size_gb: u32,
    ) -> impl Future<Output = ProviderResult<bool>> + Send;
    /// Takes a snapshot of the volume; returns it when Fly already lists it.
    fn create_snapshot(
        &self,
        app: &str,
        volume_id: &str,
    ) -> impl Future<Output = ProviderResult<Option<SnapshotInfo>>> + Send;
    /// The volume's snapshots, oldest first.
    fn list_snapshots(
        &self,
        app: &str,
        volume_id: &str,
    ) -> impl Future<Output = ProviderResult<Vec<SnapshotInfo>>> + Send;
    /// Creates (and starts) a machine from `source`'s current config; see [`CloneRequest`].
    fn clone_machine(
        &self,
        app: &str,
        source: &str,
        request: &CloneRequest,
    ) -> impl Future<Output = ProviderResult<MachineInfo>> + Send;
    /// Restarts the machine (e.g. after a volume extension).
    fn restart_machine(
        &self,
        app: &str,
        id: &str,
    ) -> impl Future<Output = ProviderResult<()>> + Send;
    /// Waits until the machine is in `state`, up to `timeout` ([`ProviderErrorKind::Timeout`]).
    fn wait_machine(
        &self,
        app: &str,
        id: &str,
        state: MachineState,
        timeout: Duration,
    ) -> impl Future<Output = ProviderResult<()>> + Send;

    /// code-server's `GET /healthz` through the app's public address.
    fn probe(&self, app: &str) -> impl Future<Output = ProbeResult> + Send;
    /// The last `limit` log lines of the app.
    fn logs(
        &self,
        app: &str,
        limit: usize,
    ) -> impl Future<Output = ProviderResult<Vec<LogLine>>> + Send;
    /// New log lines as they come, until the stream is dropped.
    fn follow_logs(&self, app: &str) -> BoxStream<'static, ProviderResult<LogLine>>;

    /// Runs a command on a started machine, once (a command may have effects, so an
    /// ambiguous failure is not repeated). [`ProviderErrorKind::Conflict`] when the
    /// machine is not started.
    fn exec_machine(
        &self,
        app: &str,
        id: &str,
        command: &ExecCommand<'_>,
    ) -> impl Future<Output = ProviderResult<ExecOutput>> + Send;
    /// The app's secrets by name (never their values).
    fn list_secrets(
        &self,
        app: &str,
    ) -> impl Future<Output = ProviderResult<Vec<SecretInfo>>> + Send;
    /// Sets one app secret; the app's new secrets version. Repeatable.
    fn set_secret(
        &self,
        app: &str,
        key: &str,
        value: &secrecy::SecretString,
    ) -> impl Future<Output = ProviderResult<u64>> + Send;
    /// Removes one app secret; the new secrets version, or `None` when the app has no
    /// secret of that name (already gone: repeatable).
    fn unset_secret(
        &self,
        app: &str,
        key: &str,
    ) -> impl Future<Output = ProviderResult<Option<u64>>> + Send;

    /// Counts of the provider's API calls so far (for `/metrics`), if it keeps any.
    fn call_counts(&self) -> Option<fly_api::CallCounts> {
        None
    }
}
