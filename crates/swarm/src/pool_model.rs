//! The warm pool's types: a [`PoolSlot`] (a Fly app with a volume and IPs, made before
//! any workspace needs it), what `create` may take ([`PoolWant`]), and what the pool
//! commands return. The operations are in `pool.rs`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::{IpKind, IpMode, IpRecord};

/// Every pool slot's app name starts with this; the rest is random (the app must be
/// named before the workspace's name is known, and Fly app names are global).
pub const POOL_APP_PREFIX: &str = "swarm-pool-";
/// Most slots `pool fill` keeps in one region (each costs money every month).
pub const MAX_POOL_SIZE: u32 = 50;

/// Fly.io's published prices used for the pool's cost estimate (USD per 30-day month,
/// from <https://fly.io/docs/about/pricing/>, read 2026-12): volumes are billed on
/// provisioned size at $0.15 per GB; a dedicated IPv4 costs $2; the shared IPv4 and
/// IPv6 addresses are free; a stopped machine is billed only for its root filesystem,
/// $0.15 per GB (ready slots hold no machine, see `pool.rs`; the fill's warm-up machine
/// lives seconds and never runs).
pub const VOLUME_USD_PER_GB_MONTH: f64 = 0.15;
/// See [`VOLUME_USD_PER_GB_MONTH`].
pub const DEDICATED_IPV4_USD_MONTH: f64 = 2.0;
/// See [`VOLUME_USD_PER_GB_MONTH`].
pub const ROOTFS_USD_PER_GB_MONTH: f64 = 0.15;
/// Where the prices come from (shown by `pool list --json`).
pub const PRICES_SOURCE: &str = "https://fly.io/docs/about/pricing/ (volumes $0.15/GB-month provisioned, dedicated IPv4 $2/month, shared IPv4 and IPv6 free, stopped-machine rootfs $0.15/GB-month)";

/// Where a slot is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolSlotState {
    /// Being made (or its fill was interrupted: `reconcile` removes it).
    Filling,
    /// Complete; `create` may take it.
    Ready,
    /// Being removed (or its drain was interrupted: `reconcile` finishes it).
    Draining,
}

impl PoolSlotState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Filling => "filling",
            Self::Ready => "ready",
            Self::Draining => "draining",
        }
    }
}

impl std::fmt::Display for PoolSlotState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One slot of the warm pool, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSlot {
    pub id: Uuid,
    /// The Fly app; becomes the app (and URL) of the workspace that takes the slot.
    pub app: String,
    pub state: PoolSlotState,
    pub region: String,
    pub org: String,
    /// The addresses allocated for it (a workspace takes only a slot of its own mode).
    pub ip_mode: IpMode,
    /// Size of the slot's volume; a workspace asking for more grows it, one asking
    /// for less cannot take the slot (volumes never shrink).
    pub volume_size_gb: u32,
    /// True from just before the app's create was sent: from then on the app may exist.
    pub app_sent: bool,
    pub volume_id: Option<String>,
    pub ips: Vec<IpRecord>,
    /// The warm-up machine while it exists (only during the fill; see `pool.rs`).
    #[serde(default)]
    pub warmup_machine: Option<String>,
    /// The image prepared on the slot volume's host by the fill; a create with another
    /// image pays its preparation. None for slots filled before warm-ups existed.
    #[serde(default)]
    pub warmed_image: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl PoolSlot {
    /// A new slot (state `filling`) with a fresh random app name.
    pub fn new(region: &str, org: &str, ip_mode: IpMode, volume_size_gb: u32) -> Self {
        let id = Uuid::new_v4();
        let hex = id.simple().to_string();
        let now = OffsetDateTime::now_utc();
        Self {
            id,
            app: format!("{POOL_APP_PREFIX}{}", &hex[..12]),
            state: PoolSlotState::Filling,
            region: region.to_owned(),
            org: org.to_owned(),
            ip_mode,
            volume_size_gb,
            app_sent: false,
            volume_id: None,
            ips: Vec::new(),
            warmup_machine: None,
            warmed_image: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// The slot volume's name, derived from the slot id so a retried create finds it
    /// (`^[a-z0-9_]{1,30}$`).
    pub fn volume_name(&self) -> String {
        let hex = self.id.simple().to_string();
        format!("pool_{}", &hex[..16])
    }

    /// What the slot costs per month while it waits, in USD (see the price constants).
    pub fn monthly_cost_usd(&self) -> f64 {
        let volume = if self.volume_id.is_some() {
            f64::from(self.volume_size_gb) * VOLUME_USD_PER_GB_MONTH
        } else {
            0.0
        };
        let ips = self.ips.iter().filter(|ip| ip.kind == IpKind::V4).count() as f64
            * DEDICATED_IPV4_USD_MONTH;
        ((volume + ips) * 100.0).round() / 100.0
    }
}

/// What a `create` may take: a ready slot in its region, org and IP mode whose volume
/// is no bigger than asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolWant {
    pub region: String,
    pub org: String,
    pub ip_mode: IpMode,
    pub max_volume_gb: u32,
}

impl PoolWant {
    pub fn matches(&self, slot: &PoolSlot) -> bool {
        slot.state == PoolSlotState::Ready
            && slot.region == self.region
            && slot.org == self.org
            && slot.ip_mode == self.ip_mode
            && slot.volume_size_gb <= self.max_volume_gb
    }
}

/// One slot as `pool list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolSlotView {
    #[serde(flatten)]
    pub slot: PoolSlot,
    /// Always null: slots hold no machine (see `pool.rs`); kept so scripts can rely on it.
    pub machine: Option<String>,
    pub monthly_cost_usd: f64,
}

/// `pool list`: every slot and what the pool costs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolListing {
    pub slots: Vec<PoolSlotView>,
    /// Slots `create` can take now.
    pub ready: usize,
    pub monthly_cost_usd: f64,
    pub prices_source: &'static str,
}

/// `pool fill`: what was made and what the pool holds now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolFilled {
    pub region: String,
    /// The number of ready slots asked for in the region.
    pub size: u32,
    /// The slots made by this fill (none when the region already had enough).
    pub created: Vec<PoolSlot>,
    /// Ready slots in the region now.
    pub ready: usize,
    pub pool: PoolListing,
}

/// `pool drain`: what was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolDrained {
    /// The slot apps removed (each with its volume and IPs).
    pub removed: Vec<String>,
}
