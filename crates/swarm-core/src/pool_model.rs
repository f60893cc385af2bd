//! The warm pool's types: a [`PoolSlot`] (a Fly app with a volume, IPs and a stopped
//! machine, made before any workspace needs it), what `create` may take ([`PoolWant`]),
//! and what the pool commands return. The operations are in `pool.rs`; prices come from
//! the shared model in [`crate::cost`].

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::cost::{Cost, PRICES};
use crate::model::{IpKind, IpMode, IpRecord};

/// Every pool slot's app name starts with this; the rest is random (the app must be
/// named before the workspace's name is known, and Fly app names are global).
pub const POOL_APP_PREFIX: &str = "swarm-pool-";
/// Most slots `pool fill` keeps in one region (each costs money every month).
pub const MAX_POOL_SIZE: u32 = 50;

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
    /// The slot's machine: created with `skip_launch` on the configured image, never
    /// booted, no services and no env until a create adopts it (see `pool.rs`). None
    /// for slots filled before slots held machines (a create then makes one).
    #[serde(default, alias = "warmup_machine")]
    pub machine: Option<String>,
    /// The image prepared on the slot volume's host (the slot machine's image); a slot
    /// whose image is no longer the configured default is replaced by fill/reconcile.
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
            machine: None,
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

    /// What the slot costs per month while it waits, in USD, from the shared price
    /// model ([`crate::cost::PRICES`]): the volume's provisioned size, a dedicated IPv4
    /// if any, and the stopped machine's root filesystem. Nothing for CPU or memory:
    /// the slot machine never runs until a create adopts it.
    pub fn monthly_cost(&self) -> Cost {
        let prices = &*PRICES;
        let volume = if self.volume_id.is_some() {
            f64::from(self.volume_size_gb) * prices.volume_gb_month
        } else {
            0.0
        };
        let ips = self.ips.iter().filter(|ip| ip.kind == IpKind::V4).count() as f64
            * prices.dedicated_ipv4_month;
        let rootfs = if self.machine.is_some() {
            prices.image_rootfs_gb * prices.rootfs_gb_month
        } else {
            0.0
        };
        Cost::from_usd(volume + ips + rootfs)
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
    pub monthly_cost_usd: Cost,
}

/// `pool list`: every slot and what the pool costs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolListing {
    pub slots: Vec<PoolSlotView>,
    /// Slots `create` can take now.
    pub ready: usize,
    pub monthly_cost_usd: Cost,
    /// Where the prices come from and when they were read (`data/fly-prices.toml`).
    pub prices_source: String,
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
