//! `swarm cost [NAME]`: each workspace's monthly estimate in every state and what it
//! pays now, with the total. Priced by [`swarm_core::cost`]; only a single workspace's
//! report asks Fly for something (its snapshots), so the whole fleet's costs nothing.

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::provider::Provider;
use crate::swarm::Swarm;
use swarm_core::cost::{BilledAs, Cost, MonthlyCost, PRICES, snapshots_monthly};
use swarm_core::model::{WorkspaceRecord, WorkspaceStatus};
use swarm_store::Store;

/// Where the figures come from, shown with every report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PricesUsed {
    pub source: String,
    pub taken: String,
    pub region: String,
    pub version: u32,
}

/// One workspace's estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceCost {
    pub name: String,
    pub status: WorkspaceStatus,
    /// Which rate it pays now.
    pub billed_as: BilledAs,
    /// A month at that rate.
    pub now: Cost,
    pub monthly: MonthlyCost,
    /// Stored snapshots (GB, summed over their sizes) and their month before the org's
    /// free allowance; only in a one-workspace report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots_gb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<Cost>,
}

/// Every workspace asked for, and the sums.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostReport {
    pub workspaces: Vec<WorkspaceCost>,
    /// A month with every workspace staying in its current state (snapshots included,
    /// after the free allowance, when they were counted).
    pub total_now: Cost,
    /// A month with every workspace running all month: what a budget is held to.
    pub total_running: Cost,
    pub prices: PricesUsed,
}

impl WorkspaceCost {
    pub fn of(record: &WorkspaceRecord) -> Self {
        let monthly = MonthlyCost::of_record(record);
        let billed_as = MonthlyCost::billed_as(record.status);
        Self {
            name: record.name.as_str().to_owned(),
            status: record.status,
            billed_as,
            now: monthly.at(billed_as),
            monthly,
            snapshots_gb: None,
            snapshots: None,
        }
    }
}

impl CostReport {
    /// The report of `records` (deleted ones are left out: they cost nothing).
    pub fn of<'a>(records: impl IntoIterator<Item = &'a WorkspaceRecord>) -> Self {
        let workspaces: Vec<WorkspaceCost> = records
            .into_iter()
            .filter(|r| r.status != WorkspaceStatus::Deleted)
            .map(WorkspaceCost::of)
            .collect();
        Self::summed(workspaces)
    }

    fn summed(workspaces: Vec<WorkspaceCost>) -> Self {
        let snapshot_gb: f64 = workspaces.iter().filter_map(|w| w.snapshots_gb).sum();
        let total_now = workspaces
            .iter()
            .fold(snapshots_monthly(snapshot_gb), |sum, w| sum.plus(w.now));
        let total_running = workspaces
            .iter()
            .fold(Cost::ZERO, |sum, w| sum.plus(w.monthly.running));
        let prices = &*PRICES;
        Self {
            workspaces,
            total_now,
            total_running,
            prices: PricesUsed {
                source: prices.source.clone(),
                taken: prices.taken.clone(),
                region: prices.region.clone(),
                version: prices.version,
            },
        }
    }
}

impl<S: Store, P: Provider> Swarm<S, P> {
    /// Every live workspace's estimate, from the store alone.
    pub async fn costs(&self) -> Result<CostReport> {
        Ok(CostReport::of(&self.list().await?))
    }

    /// One workspace's estimate, with its snapshots (listed on Fly) counted.
    pub async fn cost(&self, name: &str) -> Result<CostReport> {
        let record = self.show(name).await?;
        let mut workspace = WorkspaceCost::of(&record);
        if record.volume_id.is_some() {
            let bytes: u64 = self
                .snapshots(name)
                .await?
                .iter()
                .filter_map(|s| s.size_bytes)
                .sum();
            let gb = bytes as f64 / f64::from(1u32 << 30);
            let prices = &*PRICES;
            workspace.snapshots_gb = Some((gb * 1000.0).round() / 1000.0);
            workspace.snapshots = Some(Cost::from_usd(gb * prices.snapshot_gb_month));
        }
        Ok(CostReport::summed(vec![workspace]))
    }
}
