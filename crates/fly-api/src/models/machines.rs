//! Machines (REST `/v1/apps/{app}/machines`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Extra, string_enum};

string_enum! {
    /// A machine's state (Fly docs "Machine states").
    MachineState {
        Created = "created",
        Starting = "starting",
        Started = "started",
        Stopping = "stopping",
        Stopped = "stopped",
        Suspending = "suspending",
        Suspended = "suspended",
        Restarting = "restarting",
        Updating = "updating",
        Replacing = "replacing",
        Replaced = "replaced",
        Migrated = "migrated",
        Destroying = "destroying",
        Destroyed = "destroyed",
        Failed = "failed",
        LaunchFailed = "launch_failed",
        Creating = "creating",
        /// Wait-only pseudo state: any settled state.
        Settled = "settled",
    }
}

impl MachineState {
    /// States a machine stays in until someone acts.
    pub fn is_persistent(&self) -> bool {
        matches!(
            self,
            MachineState::Created
                | MachineState::Started
                | MachineState::Stopped
                | MachineState::Suspended
                | MachineState::Failed
        )
    }

    /// Gone or going (fly-go `IsActive` is the opposite).
    pub fn is_destroyed_or_destroying(&self) -> bool {
        matches!(self, MachineState::Destroyed | MachineState::Destroying)
    }
}

string_enum! {
    /// Health of the host a machine or volume lives on.
    HostStatus { Ok = "ok", Unknown = "unknown", Unreachable = "unreachable" }
}

string_enum! {
    /// Restart policy after the main process exits.
    RestartPolicy { No = "no", Always = "always", OnFailure = "on-failure" }
}

/// What the proxy does with an idle machine. Fly accepts a string or (older) a bool and
/// answers with a bool for `off`/`stop`; we accept both and always send the string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Autostop {
    Off,
    Stop,
    Suspend,
    Other(String),
}

impl Autostop {
    pub fn as_str(&self) -> &str {
        match self {
            Autostop::Off => "off",
            Autostop::Stop => "stop",
            Autostop::Suspend => "suspend",
            Autostop::Other(s) => s,
        }
    }
}

impl Serialize for Autostop {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Autostop {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Bool(false) => Autostop::Off,
            Raw::Bool(true) => Autostop::Stop,
            Raw::Text(t) => match t.as_str() {
                "off" => Autostop::Off,
                "stop" => Autostop::Stop,
                "suspend" => Autostop::Suspend,
                _ => Autostop::Other(t),
            },
        })
    }
}

/// CPU, memory and GPU of a machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineGuest {
    /// `shared` or `performance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_args: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_dedication_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_mb: Option<u32>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Process start overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineInit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_size_mb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_args: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One public port of a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachinePort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_port: Option<u16>,
    /// `tls`, `http`, `pg_tls`, `proxy_proto`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handlers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_https: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_options: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_options: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_proto_options: Option<serde_json::Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Load-balancing limits of a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineServiceConcurrency {
    /// `connections` or `requests`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hard_limit: Option<u32>,
}

/// An HTTP header for checks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineHttpHeader {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub values: Vec<String>,
}

/// A health check, as a service check or a top-level named check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineCheck {
    /// `tcp` or `http`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Go duration, e.g. `15s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `http` or `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_skip_verify: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<MachineHttpHeader>>,
    /// Top-level checks only: `informational` or `readiness`.
    #[serde(rename = "kind", default, skip_serializing_if = "Option::is_none")]
    pub check_kind: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A service routed by Fly's proxy to `internal_port`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineService {
    /// `tcp` or `udp`.
    #[serde(default)]
    pub protocol: String,
    #[serde(default)]
    pub internal_port: u16,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<MachinePort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autostop: Option<Autostop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autostart: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_machines_running: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<MachineServiceConcurrency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<MachineCheck>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_instance_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_instance_description: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A volume mounted into the machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineMount {
    /// Volume id, `vol_…`.
    #[serde(default)]
    pub volume: String,
    #[serde(default)]
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_gb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_threshold_percent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_size_gb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_gb_limit: Option<u32>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Restart policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineRestart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<RestartPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
}

/// A file written into the machine at boot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineFile {
    /// Absolute path inside the machine.
    #[serde(default)]
    pub guest_path: String,
    /// Base64 of the content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// How the machine is stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StopConfig {
    /// e.g. `SIGTERM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Go duration, e.g. `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// A machine's configuration. Update sends the whole config (it is not a patch), so
/// fields this crate does not model are kept in `extra` and sent back as received.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineConfig {
    /// Image reference, e.g. `codercom/code-server:4.96.4`.
    #[serde(default)]
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<MachineGuest>,
    /// Deprecated preset name (`shared-cpu-1x`), instead of `guest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<MachineService>,
    /// Named top-level checks.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, MachineCheck>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MachineMount>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<MachineRestart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<MachineInit>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<MachineFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_config: Option<StopConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_destroy: Option<bool>,
    /// `hourly`, `daily`, `weekly`, `monthly`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Everything else Fly sent (processes, dns, metrics, rootfs, …), kept verbatim.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Body of `POST /v1/apps/{app}/machines`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateMachineRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub config: MachineConfig,
    /// Create in `created` without booting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_launch: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_service_registration: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_secrets: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_secrets_version: Option<u64>,
    /// Create holding a lease of this many seconds; its nonce comes back in `Machine::nonce`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ttl: Option<u64>,
}

/// Body of `POST /v1/apps/{app}/machines/{id}`: the full new config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateMachineRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub config: MachineConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_launch: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_service_registration: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_secrets: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_secrets_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ttl: Option<u64>,
    /// Optimistic concurrency: rejected with 409 when the machine moved past this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<String>,
}

/// The image a machine runs, resolved.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// Something that happened to a machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// e.g. `launch`, `start`, `stop`, `exit`, `update`.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub status: String,
    /// `user`, `flyd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<serde_json::Value>,
}

/// A health check result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckStatus {
    #[serde(default)]
    pub name: String,
    /// `passing`, `warning`, `critical`.
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// A machine as Fly reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default = "unknown_state")]
    pub state: MachineState,
    #[serde(default)]
    pub region: String,
    /// Deprecated alias of `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<MachineConfig>,
    /// Sent instead of `config` when the host is not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_config: Option<MachineConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_ref: Option<ImageRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<MachineEvent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_status: Option<HostStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cordoned: Option<bool>,
    /// Lease nonce, only on create with `lease_ttl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The current lease, with `include_leases`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<serde_json::Value>,
}

fn unknown_state() -> MachineState {
    MachineState::Other(String::new())
}

impl Machine {
    /// The config, falling back to `incomplete_config` when the host is unhealthy.
    pub fn config(&self) -> Option<&MachineConfig> {
        self.config.as_ref().or(self.incomplete_config.as_ref())
    }
}

/// Filters for `GET /v1/apps/{app}/machines`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListMachines {
    pub include_deleted: bool,
    pub region: Option<String>,
    /// e.g. `["started", "stopped"]`.
    pub state: Vec<String>,
    /// `metadata.{key}=value` filters.
    pub metadata: Vec<(String, String)>,
    /// Leave out configs (faster for big apps).
    pub summary: bool,
}

/// Body of `POST /machines/{id}/stop`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StopRequest {
    /// e.g. `SIGTERM`, `SIGKILL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Go duration, e.g. `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// Answer to `POST /machines/{id}/start`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StartResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_state: Option<MachineState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrated: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_host: Option<String>,
}

/// One `/wait` call.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitRequest {
    /// States to wait for (empty: Fly's default, `started`).
    pub states: Vec<MachineState>,
    /// Seconds the server blocks; clamped to 1..=60.
    pub timeout_secs: u64,
    /// Scope to one machine version (Fly requires it when waiting for `stopped`).
    pub version: Option<String>,
}

impl Default for WaitRequest {
    fn default() -> Self {
        WaitRequest {
            states: vec![MachineState::Started],
            timeout_secs: 60,
            version: None,
        }
    }
}

/// Answer to `/wait`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WaitResponse {
    #[serde(default)]
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<MachineState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn autostop_accepts_bool_and_string_and_sends_string() {
        let s: MachineService =
            serde_json::from_value(json!({"protocol":"tcp","internal_port":8080,"autostop":false}))
                .unwrap();
        assert_eq!(s.autostop, Some(Autostop::Off));
        let s: MachineService =
            serde_json::from_value(json!({"protocol":"tcp","internal_port":8080,"autostop":true}))
                .unwrap();
        assert_eq!(s.autostop, Some(Autostop::Stop));
        assert_eq!(serde_json::to_value(&s).unwrap()["autostop"], json!("stop"));
        let s: MachineService = serde_json::from_value(
            json!({"protocol":"tcp","internal_port":8080,"autostop":"suspend"}),
        )
        .unwrap();
        assert_eq!(s.autostop, Some(Autostop::Suspend));
    }

    #[test]
    fn unknown_state_is_kept() {
        let m: Machine = serde_json::from_value(json!({"id":"1","state":"hibernating"})).unwrap();
        assert_eq!(m.state, MachineState::Other("hibernating".into()));
        assert_eq!(
            serde_json::to_value(&m.state).unwrap(),
            json!("hibernating")
        );
        let m: Machine = serde_json::from_value(json!({"id":"1","state":"started"})).unwrap();
        assert_eq!(m.state, MachineState::Started);
    }

    #[test]
    fn config_round_trips_unknown_fields() {
        let raw = json!({
            "image": "codercom/code-server:4.96.4",
            "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 2048, "persist_rootfs": "never"},
            "env": {"A": "1"},
            "services": [{"protocol": "tcp", "internal_port": 8080, "autostop": "stop", "autostart": true,
                "ports": [{"port": 443, "handlers": ["tls", "http"]}, {"port": 80, "handlers": ["http"], "force_https": true}],
                "concurrency": {"type": "connections", "soft_limit": 20, "hard_limit": 25}}],
            "checks": {"alive": {"type": "http", "port": 8080, "path": "/healthz", "interval": "15s", "kind": "readiness"}},
            "mounts": [{"volume": "vol_1", "path": "/home/coder/project"}],
            "metadata": {"swarm_workspace": "w1"},
            "restart": {"policy": "on-failure", "max_retries": 3},
            "dns": {"skip_registration": true},
            "processes": [{"cmd": ["x"]}],
            "stop_config": {"signal": "SIGTERM", "timeout": "10s"},
            "auto_destroy": false
        });
        let config: MachineConfig = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(
            config.extra.get("dns"),
            Some(&json!({"skip_registration": true}))
        );
        assert_eq!(serde_json::to_value(&config).unwrap(), raw);
    }
}
