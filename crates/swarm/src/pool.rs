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

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt as _;

use crate::error::{Error, Result};
use crate::failpoint::crash_point;
use crate::journal::Journal;
use crate::provider::{
    MachineChange, MachineInfo, Provider, ProviderError, ProviderErrorKind, TAG_POOL_WARMUP,
    TAG_VERSION, VolumeRequest, WarmupRequest,
};
use crate::swarm::Swarm;
use swarm_core::config::SwarmConfig;
use swarm_core::cost::{Cost, PRICES};
use swarm_core::model::{
    IpMode, IpRecord, MachineState, ReconcileAction, WorkspaceRecord, WorkspaceSpec, app_url,
};
use swarm_core::pool_model::{
    MAX_POOL_SIZE, POOL_APP_PREFIX, PoolDrained, PoolFilled, PoolListing, PoolSlot, PoolSlotState,
    PoolSlotView, PoolWant,
};
use swarm_core::validate::{ValidationError, validate_region};
use swarm_store::Store;

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

    /// Takes a matching ready slot for the create journaled by `journal`, if there is
    /// one: the record gets the slot's app, URL, volume and IPs in the same store
    /// transaction that removes the slot from the pool.
    pub(crate) async fn take_pool_slot(&self, journal: &Journal<S>) -> Result<Option<PoolSlot>> {
        let want = pool_want(&journal.record().await.spec);
        Ok(journal
            .take_pool_slot(&want, |record, slot| {
                record.app = Some(slot.app.clone());
                record.url = app_url(&slot.app, record.spec.ip_mode);
                record.volume_id = slot.volume_id.clone();
                record.ips = slot.ips.clone();
                record.machine_id = slot.machine.clone();
            })
            .await?)
    }

    /// Whether a ready slot matches `spec` now (a read; the take decides atomically).
    pub(crate) async fn pool_may_serve(&self, spec: &WorkspaceSpec) -> Result<bool> {
        let want = pool_want(spec);
        Ok(self
            .store()
            .pool_slots()
            .await?
            .iter()
            .any(|slot| want.matches(slot)))
    }

    /// The volume of a taken slot, grown to the workspace's size when it asked for more.
    pub(crate) async fn grow_slot_volume(
        &self,
        record: &WorkspaceRecord,
        slot: &PoolSlot,
    ) -> Result<String> {
        let app = record.app_name();
        let Some(volume_id) = record.volume_id.clone() else {
            return Err(Error::InvalidState {
                name: record.name.to_string(),
                status: record.status,
                operation: "create",
                hint: format!("pool slot {} held no volume", slot.app),
            });
        };
        if record.spec.storage_gb > slot.volume_size_gb {
            self.retry("extend volume", || {
                self.provider()
                    .extend_volume(app, &volume_id, record.spec.storage_gb)
            })
            .await
            .map_err(|error| self.provider_error(error, record))?;
        }
        Ok(volume_id)
    }

    /// Gives the taken slot's stopped machine the workspace's whole config and starts
    /// it (one update). The update is repeatable: it carries the full config, so a
    /// retry after an ambiguous failure sends the same again.
    pub(crate) async fn adopt_slot_machine(
        &self,
        record: &WorkspaceRecord,
        machine_id: &str,
        volume_id: &str,
        hashed_password: &str,
    ) -> Result<MachineInfo> {
        let request = self.machine_request(record, volume_id, hashed_password);
        let machine = self
            .retry("update machine", || {
                self.provider()
                    .adopt_machine(record.app_name(), machine_id, &request)
            })
            .await
            .map_err(|error| self.provider_error(error, record))?;
        // Between Fly's answer and the journal's `machine_created`: the machine carries
        // the workspace's tags now, so reconcile finishes this create.
        crash_point("create", "after_slot_update");
        Ok(machine)
    }

    // ---------------------------------------------------------------- fill

    async fn fill_slot(&self, region: &str) -> Result<PoolSlot> {
        let mut slot = PoolSlot::new(
            region,
            &self.config().org,
            pool_ip_mode(),
            self.config().default_storage_gb,
        );
        let lock = self.lock(&slot_lock(&slot), "pool fill").await?;
        self.store().insert_pool_slot(&slot).await?;
        crash_point("pool_fill", "after_intent");
        let result = self.build_slot(&mut slot).await;
        let result = match result {
            Ok(()) => Ok(slot),
            Err((step, error)) => {
                tracing::warn!(app = %slot.app, step, %error, "pool slot failed; removing what was made");
                let cleanup = match self.remove_slot_resources(&slot).await {
                    Ok(removed) => {
                        self.store().delete_pool_slot(slot.id).await?;
                        if removed.is_empty() {
                            "nothing was left behind".to_owned()
                        } else {
                            format!("removed what was made ({})", removed.join(", "))
                        }
                    }
                    Err(cleanup) => format!(
                        "cleanup failed too ({cleanup}); run `swarm reconcile` to remove what remains"
                    ),
                };
                Err(Error::PoolFailed {
                    app: slot.app.clone(),
                    step,
                    source: Box::new(error),
                    cleanup,
                })
            }
        };
        lock.release().await?;
        result
    }

    fn slot_error(&self, error: ProviderError, slot: &PoolSlot) -> Error {
        Error::from_provider(error, &slot.app, &slot.region, &self.config().regions)
    }

    /// Saves the slot (still `filling`), then checks the crash point `point`.
    async fn save_filling(&self, slot: &mut PoolSlot, point: Option<&str>) -> Result<()> {
        slot.updated_at = time::OffsetDateTime::now_utc();
        self.store()
            .update_pool_slot(slot, PoolSlotState::Filling)
            .await?;
        if let Some(point) = point {
            crash_point("pool_fill", point);
        }
        Ok(())
    }

    async fn build_slot(
        &self,
        slot: &mut PoolSlot,
    ) -> std::result::Result<(), (&'static str, Error)> {
        slot.app_sent = true;
        self.save_filling(slot, None)
            .await
            .map_err(|e| ("app", e))?;
        self.slot_app(slot).await.map_err(|e| ("app", e))?;
        crash_point("pool_fill", "after_app");
        let (volume, ips) = tokio::try_join!(
            async { self.slot_volume(slot).await.map_err(|e| ("volume", e)) },
            async { self.slot_ips(slot).await.map_err(|e| ("ips", e)) },
        )?;
        slot.volume_id = Some(volume.clone());
        self.save_filling(slot, Some("after_volume"))
            .await
            .map_err(|e| ("volume", e))?;
        slot.ips = ips;
        self.save_filling(slot, Some("after_ips"))
            .await
            .map_err(|e| ("ips", e))?;
        self.slot_machine(slot, volume)
            .await
            .map_err(|e| ("machine", e))?;
        crash_point("pool_fill", "after_stopped");
        // `warmed_image` is set in this same write.
        slot.state = PoolSlotState::Ready;
        slot.updated_at = time::OffsetDateTime::now_utc();
        self.store()
            .update_pool_slot(slot, PoolSlotState::Filling)
            .await
            .map_err(|e| ("ready", e.into()))?;
        crash_point("pool_fill", "after_ready");
        Ok(())
    }

    /// Creates the slot's app. Its name is fresh and random, so an app of that name in
    /// our organization after an ambiguous failure is our own create's.
    async fn slot_app(&self, slot: &PoolSlot) -> Result<()> {
        let mut attempt = 1;
        loop {
            let error = match self
                .provider()
                .create_app(&slot.app, &slot.org, &slot.id.to_string())
                .await
            {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            let exists = self
                .retry("get app", || self.provider().get_app(&slot.app))
                .await;
            match exists {
                Ok(Some(_)) => return Ok(()),
                Err(lookup) if lookup.kind == ProviderErrorKind::NameTaken => {
                    return Err(Error::NameTaken {
                        name: slot.app.clone(),
                    });
                }
                Ok(None) | Err(_) => {}
            }
            if !self.backoff(attempt, "create app", &error).await {
                return Err(self.slot_error(error, slot));
            }
            attempt += 1;
        }
    }

    async fn slot_volume(&self, slot: &PoolSlot) -> Result<String> {
        let request = VolumeRequest {
            name: slot.volume_name(),
            region: slot.region.clone(),
            size_gb: slot.volume_size_gb,
            source: None,
        };
        let mut attempt = 1;
        loop {
            let listed = self
                .retry("list volumes", || self.provider().list_volumes(&slot.app))
                .await
                .map_err(|error| self.slot_error(error, slot))?;
            if let Some(found) = listed
                .into_iter()
                .find(|volume| volume.name == request.name && volume.is_live())
            {
                return Ok(found.id);
            }
            match self.provider().create_volume(&slot.app, &request).await {
                Ok(volume) => return Ok(volume.id),
                Err(error) if self.backoff(attempt, "create volume", &error).await => attempt += 1,
                Err(error) => return Err(self.slot_error(error, slot)),
            }
        }
    }

    async fn slot_ips(&self, slot: &PoolSlot) -> Result<Vec<IpRecord>> {
        let mut held = Vec::new();
        for kind in slot.ip_mode.ip_kinds() {
            let mut attempt = 1;
            loop {
                let listed = self
                    .retry("list ips", || self.provider().list_ips(&slot.app))
                    .await
                    .map_err(|error| self.slot_error(error, slot))?;
                if let Some(found) = listed.into_iter().find(|ip| ip.kind == *kind) {
                    held.push(found);
                    break;
                }
                match self
                    .provider()
                    .allocate_ip(&slot.app, *kind, &slot.region)
                    .await
                {
                    Ok(ip) => {
                        held.push(ip);
                        break;
                    }
                    Err(error) if self.backoff(attempt, "allocate ip", &error).await => {
                        attempt += 1
                    }
                    Err(error) => return Err(self.slot_error(error, slot)),
                }
            }
        }
        Ok(held)
    }

    /// Creates the slot's machine on the default image, mounting the slot's volume,
    /// with `skip_launch` (it reads `created` while Fly prepares the image on the
    /// volume's host, then `stopped`: REFERENCE §4.6), and waits for `stopped`. It
    /// stays: a create adopts it (see the module doc).
    async fn slot_machine(&self, slot: &mut PoolSlot, volume_id: String) -> Result<()> {
        let image = self.config().default_image.clone();
        let hex = slot.id.simple().to_string();
        let request = WarmupRequest {
            name: format!("pool-{}", &hex[..12]),
            region: slot.region.clone(),
            image: image.clone(),
            volume_id,
            mount_path: self.config().mount_path.clone(),
            metadata: BTreeMap::from([
                (TAG_POOL_WARMUP.to_owned(), slot.id.to_string()),
                (TAG_VERSION.to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
            ]),
        };
        let machine = self.create_slot_machine(slot, &request).await?;
        slot.machine = Some(machine.clone());
        self.save_filling(slot, Some("after_machine")).await?;
        self.wait_slot_machine(
            slot,
            &machine,
            MachineState::Stopped,
            self.config().start_timeout,
        )
        .await?;
        slot.warmed_image = Some(image);
        Ok(())
    }

    /// Whether a ready slot was made for another image than the configured default.
    fn slot_is_stale(&self, slot: &PoolSlot) -> bool {
        slot.state == PoolSlotState::Ready
            && slot.machine.is_some()
            && slot.warmed_image.as_deref() != Some(self.config().default_image.as_str())
    }

    /// Brings a stale slot's stopped machine to the configured image, under the slot's
    /// lock. The slot reads `filling` meanwhile, so no create takes it; a crash leaves
    /// it `filling` with its lock free, and reconcile removes it. Ok(false) when a
    /// create took it first.
    async fn refresh_slot_locked(&self, slot: &PoolSlot) -> Result<bool> {
        let lock = self.lock(&slot_lock(slot), "pool refresh").await?;
        let result = self.refresh_slot(slot).await;
        lock.release().await?;
        result
    }

    async fn refresh_slot(&self, slot: &PoolSlot) -> Result<bool> {
        let (Some(mut slot), Some(machine)) = (
            self.store()
                .pool_slots()
                .await?
                .into_iter()
                .find(|candidate| candidate.id == slot.id),
            slot.machine.clone(),
        ) else {
            return Ok(false);
        };
        slot.state = PoolSlotState::Filling;
        slot.updated_at = time::OffsetDateTime::now_utc();
        if !self
            .store()
            .update_pool_slot(&slot, PoolSlotState::Ready)
            .await?
        {
            return Ok(false);
        }
        let image = self.config().default_image.clone();
        let change = MachineChange {
            image: Some(image.clone()),
            ..MachineChange::default()
        };
        // Stopped, so the update keeps it stopped (`skip_launch`) while Fly prepares
        // the new image on the host.
        self.retry("update machine", || {
            self.provider().update_machine(&slot.app, &machine, &change)
        })
        .await
        .map_err(|error| self.slot_error(error, &slot))?;
        crash_point("pool_refresh", "after_update");
        self.wait_slot_machine(
            &slot,
            &machine,
            MachineState::Stopped,
            self.config().start_timeout,
        )
        .await?;
        slot.warmed_image = Some(image);
        slot.state = PoolSlotState::Ready;
        slot.updated_at = time::OffsetDateTime::now_utc();
        self.store()
            .update_pool_slot(&slot, PoolSlotState::Filling)
            .await?;
        Ok(true)
    }

    /// Creates the slot machine, or finds the one an ambiguous create made (by its tag)
    /// before sending again. Returns its id.
    async fn create_slot_machine(
        &self,
        slot: &PoolSlot,
        request: &WarmupRequest,
    ) -> Result<String> {
        let id = slot.id.to_string();
        let mut sent = false;
        let mut attempt = 1;
        loop {
            if sent {
                let listed = self
                    .retry("list machines", || {
                        self.provider()
                            .list_machines(&slot.app, Some((TAG_POOL_WARMUP, &id)))
                    })
                    .await
                    .map_err(|error| self.slot_error(error, slot))?;
                if let Some(found) = listed.into_iter().find(|machine| {
                    !matches!(
                        machine.state,
                        MachineState::Destroying | MachineState::Destroyed
                    )
                }) {
                    return Ok(found.id);
                }
            }
            sent = true;
            match self
                .provider()
                .create_warmup_machine(&slot.app, request)
                .await
            {
                Ok(machine) => return Ok(machine.id),
                Err(error) if self.backoff(attempt, "create machine", &error).await => attempt += 1,
                Err(error) => return Err(self.slot_error(error, slot)),
            }
        }
    }

    /// Waits for the slot machine to reach `state`, up to `timeout`.
    async fn wait_slot_machine(
        &self,
        slot: &PoolSlot,
        machine: &str,
        state: MachineState,
        timeout: Duration,
    ) -> Result<()> {
        let waiting = (
            slot.app.as_str(),
            format!("pool slot machine {machine} {state}"),
        );
        self.wait_machine_state(&slot.app, machine, state, timeout, waiting, |error| {
            self.slot_error(error, slot)
        })
        .await
    }

    // ---------------------------------------------------------------- removal

    /// Deletes the slot's app (and with it its volume and IPs), then waits until Fly
    /// no longer lists it. Ok with nothing removed when the app was never sent or is
    /// gone. Returns what was removed.
    async fn remove_slot_resources(&self, slot: &PoolSlot) -> Result<Vec<String>> {
        if !slot.app_sent {
            return Ok(Vec::new());
        }
        let exists = self
            .retry("get app", || self.provider().get_app(&slot.app))
            .await;
        match exists {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(Vec::new()),
            // Someone else's app (our create never succeeded): not ours to delete.
            Err(error) if error.kind == ProviderErrorKind::NameTaken => return Ok(Vec::new()),
            Err(error) => return Err(self.slot_error(error, slot)),
        }
        self.retry("delete app", || self.provider().delete_app(&slot.app))
            .await
            .map_err(|error| self.slot_error(error, slot))?;
        let deadline = Instant::now() + self.config().stop_timeout;
        loop {
            match self.provider().get_app(&slot.app).await {
                Ok(None) => break,
                Ok(Some(_)) | Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Ok(Some(_)) => {
                    return Err(Error::Timeout {
                        name: slot.app.clone(),
                        waiting_for: "deleted (its app still exists)".to_owned(),
                        after_secs: self.config().stop_timeout.as_secs(),
                    });
                }
                Err(error) => return Err(self.slot_error(error, slot)),
            }
        }
        let mut removed = vec![format!("app {}", slot.app)];
        removed.extend(slot.machine.iter().map(|id| format!("machine {id}")));
        removed.extend(slot.volume_id.iter().map(|id| format!("volume {id}")));
        removed.extend(slot.ips.iter().map(|ip| format!("ip {}", ip.address)));
        Ok(removed)
    }

    /// Removes one slot under its lock. `Ok(None)` when a create took it first.
    async fn drain_slot(&self, slot: PoolSlot) -> Result<Option<String>> {
        let lock = self.lock(&slot_lock(&slot), "pool drain").await?;
        // Re-read under the lock: a create may have taken it, a fill finished it.
        let Some(mut slot) = self
            .store()
            .pool_slots()
            .await?
            .into_iter()
            .find(|candidate| candidate.id == slot.id)
        else {
            lock.release().await?;
            return Ok(None);
        };
        let from = slot.state;
        slot.state = PoolSlotState::Draining;
        slot.updated_at = time::OffsetDateTime::now_utc();
        if !self.store().update_pool_slot(&slot, from).await? {
            lock.release().await?;
            return Ok(None);
        }
        crash_point("pool_drain", "after_intent");
        self.remove_slot_resources(&slot).await?;
        crash_point("pool_drain", "after_app");
        self.store().delete_pool_slot(slot.id).await?;
        lock.release().await?;
        Ok(Some(slot.app))
    }

    // ---------------------------------------------------------------- reconcile

    /// Settles the pool: removes slots whose fill or drain was interrupted (their
    /// filler is gone: their lock is free), forgets ready slots whose app is gone from
    /// Fly. Slots locked by a live process are left to it. Returns the actions and
    /// the number of ready slots.
    pub(crate) async fn reconcile_pool(&self) -> Result<(Vec<ReconcileAction>, usize)> {
        let mut actions = Vec::new();
        let mut ready = 0;
        for slot in self.store().pool_slots().await? {
            let lock = match swarm_store::lock::WorkspaceLock::acquire(
                self.store_arc(),
                &slot_lock(&slot),
                "reconcile",
                self.config().lock_ttl,
                Duration::ZERO,
            )
            .await
            {
                Ok(lock) => lock,
                // A live fill or drain is working on it.
                Err(swarm_store::lock::LockError::Busy { .. }) => continue,
                Err(swarm_store::lock::LockError::Store(error)) => return Err(error.into()),
            };
            let result = self.reconcile_slot(&slot).await;
            lock.release().await?;
            match result {
                Ok(Some(action)) => {
                    // A slot refreshed onto the configured image is ready again.
                    if matches!(action, ReconcileAction::PoolSlotRefreshed { .. }) {
                        ready += 1;
                    }
                    actions.push(action);
                }
                Ok(None) => ready += 1,
                Err(error) => actions.push(ReconcileAction::Failed {
                    name: slot.app.clone(),
                    error: error.to_string(),
                }),
            }
        }
        Ok((actions, ready))
    }

    async fn reconcile_slot(&self, slot: &PoolSlot) -> Result<Option<ReconcileAction>> {
        // Re-read under the lock: a create may have taken it meanwhile.
        let Some(slot) = self
            .store()
            .pool_slots()
            .await?
            .into_iter()
            .find(|candidate| candidate.id == slot.id)
        else {
            return Ok(None);
        };
        let reason = match slot.state {
            PoolSlotState::Filling => "half-made pool slot (its fill was interrupted)",
            PoolSlotState::Draining => "pool slot whose drain was interrupted",
            PoolSlotState::Ready => {
                let exists = self
                    .retry("get app", || self.provider().get_app(&slot.app))
                    .await;
                match exists {
                    Ok(Some(_)) if self.slot_is_stale(&slot) => {
                        let from = slot.warmed_image.clone().unwrap_or_default();
                        // The caller holds the slot's lock.
                        if !self.refresh_slot(&slot).await? {
                            return Ok(None);
                        }
                        return Ok(Some(ReconcileAction::PoolSlotRefreshed {
                            app: slot.app.clone(),
                            from,
                            to: self.config().default_image.clone(),
                        }));
                    }
                    Ok(Some(_)) => return Ok(None),
                    Ok(None) => "pool slot whose app is gone from Fly",
                    Err(error) if error.kind == ProviderErrorKind::NameTaken => {
                        "pool slot whose app is gone from Fly"
                    }
                    Err(error) => return Err(self.slot_error(error, &slot)),
                }
            }
        };
        let removed = self.remove_slot_resources(&slot).await?;
        self.store().delete_pool_slot(slot.id).await?;
        Ok(Some(ReconcileAction::PoolSlotRemoved {
            app: slot.app.clone(),
            reason: reason.to_owned(),
            removed,
        }))
    }

    /// The app names of every pool slot in the store (for the orphan scan).
    pub(crate) async fn pool_apps(&self) -> Result<std::collections::BTreeSet<String>> {
        Ok(self
            .store()
            .pool_slots()
            .await?
            .into_iter()
            .map(|slot| slot.app)
            .collect())
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
