//! Configuration with the project's defaults (DESIGN §2). The CLI fills it from its
//! config file, env and flags; everything has a default.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The regions offered by default.
pub const DEFAULT_REGIONS: [&str; 9] = [
    "ams", "sea", "sjc", "ewr", "ord", "syd", "hkg", "nrt", "fra",
];
/// Where the volume is mounted; code-server opens this folder.
pub const DEFAULT_MOUNT_PATH: &str = "/home/coder/project";
pub const DEFAULT_IMAGE: &str = "codercom/code-server:latest";
/// The Machines API of real Fly.io.
pub const REAL_FLY_MACHINES_URL: &str = "https://api.machines.dev";

/// Settings for the `Swarm` operations (crate `swarm`). `Default` gives the DESIGN §2 defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SwarmConfig {
    /// Region used when none is given.
    pub default_region: String,
    /// Regions a workspace may be created in.
    pub regions: Vec<String>,
    pub default_image: String,
    pub default_cpus: u32,
    /// CPU kind used when none is given; `None` picks it by the CPU count.
    pub default_cpu_kind: Option<String>,
    pub default_memory_mb: u32,
    pub default_storage_gb: u32,
    /// code-server exits after this long without activity (must be > 60 s).
    pub default_idle_timeout_secs: u64,
    /// The dotfiles repository of a create that names none (`dotfiles` in the config).
    pub default_dotfiles: Option<String>,
    /// Who puts an idle workspace to rest when `create` is not told.
    pub default_idle_policy: crate::model::IdlePolicy,
    /// How a workspace is reachable when no `ip` is given.
    pub default_ip_mode: crate::model::IpMode,
    /// Fly organization slug.
    pub org: String,
    pub mount_path: String,
    /// Base URL for the `/healthz` probe. `None`: `https://<app>.fly.dev`. With a value
    /// (e.g. the local Fly's address), requests go there with `Host: <app>.fly.dev`.
    pub probe_base_url: Option<String>,
    /// Which Fly this store belongs to (the Machines API base URL, or a label such as
    /// `local`). The store refuses to be used against another Fly, so records made
    /// against the local Fly are never mixed up with real ones.
    pub fly_endpoint: String,
    /// Lease length of a workspace lock; renewed every third of it while held.
    #[serde(with = "duration_secs")]
    pub lock_ttl: Duration,
    /// How long a second operation on a busy workspace waits before failing.
    #[serde(with = "duration_secs")]
    pub lock_wait: Duration,
    /// How long create/start waits for the machine to reach `started`.
    #[serde(with = "duration_secs")]
    pub start_timeout: Duration,
    /// How long stop waits for `stopped`, and delete for each resource to go.
    #[serde(with = "duration_secs")]
    pub stop_timeout: Duration,
    /// Attempts per step when Fly answers with a retryable or ambiguous failure
    /// (on top of the client's own retries of safe calls).
    pub step_attempts: u32,
    /// First delay between step attempts; doubles each time, capped at 5 s.
    #[serde(with = "duration_millis")]
    pub step_backoff: Duration,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        Self {
            default_region: "ams".to_owned(),
            regions: DEFAULT_REGIONS
                .iter()
                .map(|region| (*region).to_owned())
                .collect(),
            default_image: DEFAULT_IMAGE.to_owned(),
            default_cpus: 1,
            default_cpu_kind: None,
            default_memory_mb: 2048,
            default_storage_gb: 10,
            default_idle_timeout_secs: 30 * 60,
            default_dotfiles: None,
            default_idle_policy: crate::model::IdlePolicy::Stop,
            default_ip_mode: crate::model::IpMode::default(),
            org: "personal".to_owned(),
            mount_path: DEFAULT_MOUNT_PATH.to_owned(),
            probe_base_url: None,
            fly_endpoint: REAL_FLY_MACHINES_URL.to_owned(),
            lock_ttl: Duration::from_secs(30),
            lock_wait: Duration::from_secs(60),
            start_timeout: Duration::from_secs(300),
            stop_timeout: Duration::from_secs(120),
            step_attempts: 6,
            step_backoff: Duration::from_millis(500),
        }
    }
}

mod duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(value.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(deserializer)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

mod duration_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(deserializer)?))
    }
}
