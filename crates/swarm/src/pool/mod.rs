//! The warm pool (opt-in): Fly apps with a volume, IP addresses and a stopped machine
//! made ahead of time, so `create` skips everything but the workspace's own config and
//! a boot. This is Fly's own advice for fast per-user machines (docs
//! blueprints/warm-pool-user-machines: pre-provision generic entries, claim one, write
//! the user's config; "a pool of *stopped* Machines that you `start` on claim may be
//! the better trade, since stopped Machines cost much less than running ones").
//!
//! What a slot holds. An app (named `swarm-pool-<random>`: it must be named before the
//! user's name is known), a volume of the configured default size, the default IP
//! mode's addresses, and a machine on the configured default image, mounting the
//! volume, created with `skip_launch`. Fly prepares the image on the volume's host
//! while the machine reads `created`, then it reads `stopped` (REFERENCE §4.6) and
//! stays so: it never boots while it waits, so it costs only the volume and its root
//! filesystem (`swarm pool` shows that, from [`swarm_core::cost::PRICES`]).
//!
//! Why an update is fast here. On Fly an update of a *running* machine is a replace
//! (stop, rebuild, boot: REFERENCE §13, ~3 s plus boot; the blueprint's "full Machine
//! restart ~20s" for a running app). A stopped machine has no VM to stop: the update
//! writes a new version (docs machines/machine-states, "Update and versioning
//! behavior") and, without `skip_launch`, boots it, with the image already on the host.
//! So a create from the pool runs: take the slot (one store transaction: the record
//! gets the app, volume, IPs and machine) → grow the volume if asked for more → one
//! machine update carrying the workspace's whole config (password hash, env, size,
//! services, tags), which also starts it → `started`.
//!
//! Safe while waiting. The slot machine has no services (Fly's proxy has nothing to
//! route to it and so nothing to autostart), no env and no password, restart policy
//! `no`, the smallest size. The services, the password hash and the workspace's tags
//! arrive with the adopting update. Every slot has its own machine on its own volume:
//! a volume pins machines to its host and the image cache is per host, so this also
//! warms exactly the host the workspace will use.
//!
//! Safety. The slot's store row is its journal: it is written (state `filling`, app
//! name chosen) under a lock before any Fly call, `app_sent` is recorded before the
//! app's create is sent, each Fly id the moment it is known, `ready` last. A slot is
//! taken by deleting its row in the transaction that gives its app, volume, IPs and
//! machine to the workspace record (see [`crate::Store::take_pool_slot`]), so a slot is
//! never held twice. A crash after the take and before the adopting update leaves a
//! record owning an app whose machine carries no workspace tag: reconcile undoes that
//! create, deleting the app with all it holds. After the update the machine carries
//! the workspace's tags and config: reconcile finishes the create. Either way the slot
//! is owned by the workspace alone and nothing leaks. `reconcile` removes half-made
//! slots (`filling`, `draining`) whose filler is gone, forgets ready slots whose app
//! vanished, and refreshes a ready slot whose image is no longer the configured one
//! (its stopped machine is updated to the new image with `skip_launch`, so Fly
//! prepares it on the host; the slot is `filling` meanwhile, so no create takes it);
//! `pool fill` does the same before topping up. `pool drain` removes every slot it can
//! lock.

use futures::StreamExt as _;

use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::swarm::Swarm;
use swarm_core::config::SwarmConfig;
use swarm_core::cost::{Cost, PRICES};
use swarm_core::model::{IpMode, WorkspaceSpec};
use swarm_core::pool_model::{
    MAX_POOL_SIZE, POOL_APP_PREFIX, PoolDrained, PoolFilled, PoolListing, PoolSlot, PoolSlotState,
    PoolSlotView, PoolWant,
};
use swarm_core::validate::{ValidationError, validate_region};
use swarm_store::Store;

mod build;
mod take;
mod upkeep;

/// Slots made at once by one fill (each is a handful of Fly calls).
const FILL_CONCURRENCY: usize = 4;
/// The lock one fill or drain holds, so two fills do not both top the pool up.
/// (`:` never appears in a workspace name, so it cannot clash with one.)
const POOL_LOCK: &str = "pool:fill";

/// The lock held while one slot is made, taken apart, or settled by reconcile.
fn slot_lock(slot: &PoolSlot) -> String {
    format!("pool:{}", slot.app)
}

/// The IP mode pool slots are filled with: the configured default for `create`.
pub(crate) fn pool_ip_mode() -> IpMode {
    IpMode::Shared
}

impl<S: Store, P: Provider> Swarm<S, P> {
    /// Checks `pool fill` input without changing anything.
    pub fn validate_pool_fill(&self, region: &str, size: u32) -> Result<()> {
        validate_pool_fill(region, size, self.config())
    }

    /// Tops the pool up to `size` ready slots in `region`, making up to
    /// four at once. A slot that fails is removed again; the error of the first
    /// failure is returned after the others finished.
    pub async fn pool_fill(&self, region: &str, size: u32) -> Result<PoolFilled> {
        self.validate_pool_fill(region, size)?;
        let lock = self.lock(POOL_LOCK, "pool fill").await?;
        let org = self.config().org.clone();
        // Slots on an image no longer configured are brought to the current one first.
        for slot in self.store().pool_slots().await? {
            if slot.region == region && self.slot_is_stale(&slot) {
                let refreshed = self.refresh_slot_locked(&slot).await;
                if let Err(error) = refreshed {
                    lock.release().await?;
                    return Err(error);
                }
            }
        }
        let have = self
            .store()
            .pool_slots()
            .await?
            .iter()
            .filter(|slot| {
                // Only ready ones: fills are serialised by the pool lock, so a slot still
                // `filling` now was left by a crashed fill (reconcile removes it).
                slot.region == region
                    && slot.org == org
                    && slot.ip_mode == pool_ip_mode()
                    && slot.state == PoolSlotState::Ready
            })
            .count();
        let need = usize::try_from(size)
            .unwrap_or(usize::MAX)
            .saturating_sub(have);
        let results: Vec<Result<PoolSlot>> = futures::stream::iter(0..need)
            .map(|_| self.fill_slot(region))
            .buffer_unordered(FILL_CONCURRENCY)
            .collect()
            .await;
        lock.release().await?;
        let mut created = Vec::new();
        let mut first_error = None;
        for result in results {
            match result {
                Ok(slot) => created.push(slot),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        created.sort_by_key(|slot| (slot.created_at, slot.id));
        let pool = self.pool_list().await?;
        let ready = pool
            .slots
            .iter()
            .filter(|view| view.slot.region == region && view.slot.state == PoolSlotState::Ready)
            .count();
        Ok(PoolFilled {
            region: region.to_owned(),
            size,
            created,
            ready,
            pool,
        })
    }

    /// Every slot with what it holds and costs.
    pub async fn pool_list(&self) -> Result<PoolListing> {
        let slots: Vec<PoolSlotView> = self
            .store()
            .pool_slots()
            .await?
            .into_iter()
            .map(|slot| PoolSlotView {
                monthly_cost_usd: slot.monthly_cost(),
                slot,
            })
            .collect();
        let ready = slots
            .iter()
            .filter(|view| view.slot.state == PoolSlotState::Ready)
            .count();
        let total = slots
            .iter()
            .fold(Cost::ZERO, |sum, view| sum.plus(view.monthly_cost_usd));
        let prices = &*PRICES;
        Ok(PoolListing {
            slots,
            ready,
            monthly_cost_usd: total,
            prices_source: format!(
                "{} (taken {}, region {}): volume ${}/GB-month, stopped machine rootfs ${}/GB-month x {} GB, dedicated IPv4 ${}/month, no CPU or memory while stopped",
                prices.source,
                prices.taken,
                prices.region,
                prices.volume_gb_month,
                prices.rootfs_gb_month,
                prices.image_rootfs_gb,
                prices.dedicated_ipv4_month
            ),
        })
    }

    /// Removes every slot (its app, volume and IPs). Slots being taken by a create at
    /// the same moment go to that create instead.
    pub async fn pool_drain(&self) -> Result<PoolDrained> {
        let lock = self.lock(POOL_LOCK, "pool drain").await?;
        let mut removed = Vec::new();
        let mut first_error = None;
        for slot in self.store().pool_slots().await? {
            match self.drain_slot(slot).await {
                Ok(Some(app)) => removed.push(app),
                Ok(None) => {}
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        lock.release().await?;
        match first_error {
            Some(error) => Err(error),
            None => Ok(PoolDrained { removed }),
        }
    }
}

/// Checks `pool fill` input: a region offered, 1 to [`MAX_POOL_SIZE`] slots.
pub fn validate_pool_fill(region: &str, size: u32, config: &SwarmConfig) -> Result<()> {
    let mut errors = Vec::new();
    if let Err(error) = validate_region(region, config) {
        errors.push(error);
    }
    if !(1..=MAX_POOL_SIZE).contains(&size) {
        errors.push(ValidationError {
            field: "size",
            value: size.to_string(),
            rule: format!(
                "must be 1 to {MAX_POOL_SIZE} slots per region (`swarm pool drain` empties the pool)"
            ),
        });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(errors))
    }
}

/// Whether `app` is named like a pool slot's app.
pub(crate) fn is_pool_app(app: &str) -> bool {
    app.starts_with(POOL_APP_PREFIX)
}

/// The slots a create of `spec` may take.
fn pool_want(spec: &WorkspaceSpec) -> PoolWant {
    PoolWant {
        region: spec.region.clone(),
        org: spec.org.clone(),
        ip_mode: spec.ip_mode,
        max_volume_gb: spec.storage_gb,
    }
}
