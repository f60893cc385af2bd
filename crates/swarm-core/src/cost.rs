//! What a workspace costs on Fly.io, estimated from Fly's published prices
//! (`data/fly-prices.toml`, carried with its source and date). Money is kept in whole
//! hundredths of a cent (`Cost`), so sums and budget checks are exact and `Eq`.

use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::model::{
    CpuKind, GuestSize, IpMode, WorkspaceRecord, WorkspaceStatus, WorkspaceSummary,
};

/// Fly's prices as the repository carries them.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    pub version: u32,
    pub taken: String,
    pub source: String,
    pub region: String,
    pub shared_cpu_month: f64,
    pub performance_cpu_month: f64,
    pub memory_gb_month: f64,
    pub volume_gb_month: f64,
    pub rootfs_gb_month: f64,
    pub image_rootfs_gb: f64,
    pub suspended_memory_gb_month: f64,
    pub snapshot_gb_month: f64,
    pub snapshot_free_gb: u32,
    pub dedicated_ipv4_month: f64,
}

const PRICES_TOML: &str = include_str!("../data/fly-prices.toml");

/// The carried table. It is compiled in, and a unit test parses it, so a table that
/// does not parse never ships; the panic below cannot be reached by any input.
pub static PRICES: LazyLock<PriceTable> = LazyLock::new(|| {
    toml::from_str(PRICES_TOML).expect("data/fly-prices.toml parses (checked by a unit test)")
});

/// An amount of USD, in hundredths of a cent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cost(pub u64);

impl Cost {
    pub const ZERO: Self = Self(0);

    /// To the nearest hundredth of a cent (display rounds up to the cent).
    pub fn from_usd(usd: f64) -> Self {
        if usd.is_finite() && usd > 0.0 {
            // `as` saturates at u64::MAX for a huge value.
            Self((usd * 10_000.0).round() as u64)
        } else {
            Self::ZERO
        }
    }

    pub fn usd(self) -> f64 {
        self.0 as f64 / 10_000.0
    }

    pub fn plus(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }
}

/// `$12.34`: rounded up to the cent.
impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cents = self.0.div_ceil(100);
        write!(f, "${}.{:02}", cents / 100, cents % 100)
    }
}

impl Serialize for Cost {
    /// USD as a number with at most 4 decimals (`12.3401`).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.usd())
    }
}

impl<'de> Deserialize<'de> for Cost {
    /// USD as a number (`budget = 25` or `25.5`); negative or not finite is refused.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let usd = f64::deserialize(deserializer)?;
        if !usd.is_finite() || usd < 0.0 {
            return Err(serde::de::Error::custom(format!(
                "{usd} is not an amount of USD (a number, 0 or more)"
            )));
        }
        Ok(Self::from_usd(usd))
    }
}

/// A month of one workspace in each state Fly bills differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthlyCost {
    /// CPU and memory for the whole month, plus what `stopped` pays.
    pub running: Cost,
    /// The volume, the stopped machine's rootfs and a dedicated IPv4 if any.
    pub stopped: Cost,
    /// `stopped` plus the memory snapshot kept while suspended.
    pub suspended: Cost,
}

/// Which of [`MonthlyCost`]'s rates a workspace pays now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BilledAs {
    Running,
    Stopped,
    Suspended,
    /// Deleted: nothing is left on Fly.
    Nothing,
}

impl MonthlyCost {
    /// The estimate for a workspace of this size, in any state.
    pub fn of(guest: GuestSize, storage_gb: u32, ip_mode: IpMode) -> Self {
        Self::priced(&PRICES, guest, storage_gb, ip_mode)
    }

    pub fn of_record(record: &WorkspaceRecord) -> Self {
        Self::of(
            record.spec.guest,
            record.spec.storage_gb,
            record.spec.ip_mode,
        )
    }

    pub fn priced(prices: &PriceTable, guest: GuestSize, storage_gb: u32, ip_mode: IpMode) -> Self {
        let cpu = match guest.cpu_kind {
            CpuKind::Shared => prices.shared_cpu_month,
            CpuKind::Performance => prices.performance_cpu_month,
        };
        let memory_gb = f64::from(guest.memory_mb) / 1024.0;
        let compute = f64::from(guest.cpus) * cpu + memory_gb * prices.memory_gb_month;
        let ipv4 = match ip_mode {
            IpMode::Dedicated => prices.dedicated_ipv4_month,
            IpMode::Shared | IpMode::Private => 0.0,
        };
        let always = f64::from(storage_gb) * prices.volume_gb_month + ipv4;
        let rootfs = prices.image_rootfs_gb * prices.rootfs_gb_month;
        Self {
            running: Cost::from_usd(compute + always),
            stopped: Cost::from_usd(always + rootfs),
            suspended: Cost::from_usd(
                always + rootfs + memory_gb * prices.suspended_memory_gb_month,
            ),
        }
    }

    /// The rate a workspace in `status` pays. A workspace on its way up (creating,
    /// starting) or down (stopping) is priced as running: the machine is billed until
    /// it has stopped. A failed machine is billed as stopped.
    pub fn billed_as(status: WorkspaceStatus) -> BilledAs {
        match status {
            WorkspaceStatus::Running
            | WorkspaceStatus::Creating
            | WorkspaceStatus::Starting
            | WorkspaceStatus::Stopping => BilledAs::Running,
            WorkspaceStatus::Stopped | WorkspaceStatus::Failed | WorkspaceStatus::Deleting => {
                BilledAs::Stopped
            }
            WorkspaceStatus::Suspended => BilledAs::Suspended,
            WorkspaceStatus::Deleted => BilledAs::Nothing,
        }
    }

    pub fn at(&self, billed: BilledAs) -> Cost {
        match billed {
            BilledAs::Running => self.running,
            BilledAs::Stopped => self.stopped,
            BilledAs::Suspended => self.suspended,
            BilledAs::Nothing => Cost::ZERO,
        }
    }
}

/// A month of `snapshot_gb` of volume snapshots, after the org's free allowance.
pub fn snapshots_monthly(snapshot_gb: f64) -> Cost {
    let prices = &*PRICES;
    let billed = (snapshot_gb - f64::from(prices.snapshot_free_gb)).max(0.0);
    Cost::from_usd(billed * prices.snapshot_gb_month)
}

impl WorkspaceSummary {
    /// A month at the rate of its current state (the list's COST column).
    pub fn cost_now(&self) -> Cost {
        MonthlyCost::of(self.guest, self.storage_gb, self.ip_mode)
            .at(MonthlyCost::billed_as(self.status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest(cpu_kind: CpuKind, cpus: u32, memory_mb: u32) -> GuestSize {
        GuestSize {
            cpu_kind,
            cpus,
            memory_mb,
        }
    }

    #[test]
    fn the_carried_table_parses_and_names_its_source() {
        let prices = &*PRICES;
        assert_eq!(prices.version, 1);
        assert!(
            prices.source.starts_with("https://fly.io/"),
            "{}",
            prices.source
        );
        assert_eq!(prices.taken, "2026-12-07");
    }

    /// The table reproduces Fly's published preset prices (to the cent), which is
    /// what makes its per-CPU and per-GB split believable for other sizes.
    #[test]
    fn fly_presets_come_out_at_their_published_prices() {
        let running = |kind, cpus, memory_mb| {
            MonthlyCost::of(guest(kind, cpus, memory_mb), 0, IpMode::Shared)
                .running
                .to_string()
        };
        assert_eq!(running(CpuKind::Shared, 1, 256), "$2.02");
        assert_eq!(running(CpuKind::Shared, 1, 512), "$3.32");
        assert_eq!(running(CpuKind::Shared, 1, 1024), "$5.92");
        assert_eq!(running(CpuKind::Shared, 2, 512), "$4.04");
        assert_eq!(running(CpuKind::Performance, 1, 2048), "$32.19");
        // Fly lists $11.11 and $64.39: the linear model is a cent off there.
        assert_eq!(running(CpuKind::Shared, 1, 2048), "$11.12");
        assert_eq!(running(CpuKind::Performance, 2, 4096), "$64.38");
    }

    #[test]
    fn a_stopped_workspace_pays_its_volume_rootfs_and_dedicated_ip() {
        let cost = MonthlyCost::of(guest(CpuKind::Shared, 2, 4096), 10, IpMode::Dedicated);
        // 10 GB x $0.15 + $2 IPv4 + 1 GB rootfs x $0.15.
        assert_eq!(cost.stopped, Cost::from_usd(3.65));
        // + 4 GB of memory snapshot x $0.15.
        assert_eq!(cost.suspended, Cost::from_usd(4.25));
        // 2 x $0.72 + 4 x $5.20 + $1.50 + $2.
        assert_eq!(cost.running, Cost::from_usd(25.74));
        let shared = MonthlyCost::of(guest(CpuKind::Shared, 2, 4096), 10, IpMode::Shared);
        assert_eq!(shared.stopped, Cost::from_usd(1.65));
        assert!(cost.running > cost.suspended && cost.suspended > cost.stopped);
    }

    #[test]
    fn deleted_workspaces_cost_nothing_and_moving_ones_are_priced_as_running() {
        let cost = MonthlyCost::of(guest(CpuKind::Shared, 1, 1024), 1, IpMode::Shared);
        let at = |status| cost.at(MonthlyCost::billed_as(status));
        assert_eq!(at(WorkspaceStatus::Deleted), Cost::ZERO);
        assert_eq!(at(WorkspaceStatus::Starting), cost.running);
        assert_eq!(at(WorkspaceStatus::Failed), cost.stopped);
    }

    #[test]
    fn snapshots_are_free_up_to_the_allowance() {
        assert_eq!(snapshots_monthly(4.0), Cost::ZERO);
        assert_eq!(snapshots_monthly(15.0), Cost::from_usd(0.40));
    }

    #[test]
    fn costs_print_rounded_up_to_the_cent_and_parse_from_usd() {
        assert_eq!(Cost(1).to_string(), "$0.01");
        assert_eq!(Cost(123_400).to_string(), "$12.34");
        assert_eq!(Cost::from_usd(f64::NAN), Cost::ZERO);
        #[derive(Deserialize)]
        struct Budget {
            budget: Cost,
        }
        let parsed: Budget = toml::from_str("budget = 25.5").expect("parses");
        assert_eq!(parsed.budget, Cost::from_usd(25.5));
        let error = toml::from_str::<Budget>("budget = -1.0")
            .err()
            .expect("refused");
        assert!(
            error.to_string().contains("not an amount of USD"),
            "{error}"
        );
    }
}
