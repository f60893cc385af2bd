//! The warm pool (opt-in): Fly apps with a volume and IP addresses made ahead of time,
//! so `create` skips the slowest part of its critical path (app, then volume and IPs).
//! Fly's own advice for per-user environments is the same: keep apps ready, because
//! creating them is slow.
//!
//! What a slot holds, and why no machine. A slot is an app (named `swarm-pool-<random>`:
//! it must be named before the user's name is known), a volume of the configured
//! default size, and the default IP mode's addresses. It holds no machine. A machine
//! made ahead would have to be adopted by a machine update carrying the user's
//! password hash, env, size and tags, and on Fly an update is a *replace* (p50 3 s,
//! REFERENCE §13.1, plus boot) while creating a machine from an image already
//! prepared in the region costs 0.5 s + 1.5 s (plus boot): the update path is the
//! slower one. A slot machine would also sit behind the public `<app>.fly.dev` with
//! autostart and a throwaway password: more to secure, and its rootfs billed while it
//! waits. So a create from the pool runs: take the slot (one store transaction) →
//! grow the volume if asked for more → machine → started.
//!
//! The image, though, is warmed. The first machine with an image on a host waits while
//! Fly prepares the image there (about 12 s, against 1.5 s once cached: REFERENCE
//! §13.1), which would land on the create that takes a slot on a fresh host. So while a
//! slot is `filling`, after its volume exists, the fill makes a warm-up machine in the
//! slot's app with the configured default image, mounting the slot's volume (a volume
//! pins machines to its host, and the image cache is per host, so this warms exactly
//! the host the workspace's machine will use). It is created with `skip_launch`: it
//! sits in `created` while Fly prepares the image, then reads `stopped` (REFERENCE
//! §4.6), never boots, and carries no env, no secret and no services. The fill waits
//! for `stopped`, destroys it and waits for `destroyed` before writing the slot
//! `ready`, so a ready slot still holds no machine. Every slot is warmed, not one per
//! region: on Fly each volume may sit on another host. Fly may keep the volume's
//! claim a moment after the warm-up is destroyed (REFERENCE S10); the workspace's
//! machine create retries that refusal. The warm-up is tagged `swarm_pool_warmup`
//! (the slot id) and its id recorded in the slot while it exists; a crash leaves it in
//! a `filling` slot, whose app reconcile deletes with all it holds.
//!
//! Safety. The slot's store row is its journal: it is written (state `filling`, app
//! name chosen) under a lock before any Fly call, `app_sent` is recorded before the
//! app's create is sent, each Fly id the moment it is known, `ready` last. A slot is
//! taken by deleting its row in the transaction that gives its app to the workspace
//! record (see [`crate::Store::take_pool_slot`]), so a slot is never held twice.
//! `reconcile` removes half-made slots (`filling`, `draining`) whose filler is gone and
//! forgets ready slots whose app vanished; `pool drain` removes every slot it can lock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt as _;

use crate::config::SwarmConfig;
use crate::error::{Error, Result};
use crate::failpoint::crash_point;
use crate::journal::Journal;
use crate::model::{
    IpMode, IpRecord, MachineState, ReconcileAction, WorkspaceRecord, WorkspaceSpec, app_url,
};
use crate::pool_model::{
    MAX_POOL_SIZE, POOL_APP_PREFIX, PRICES_SOURCE, PoolDrained, PoolFilled, PoolListing, PoolSlot,
    PoolSlotState, PoolSlotView, PoolWant,
};
use crate::provider::{
    Provider, ProviderError, ProviderErrorKind, TAG_POOL_WARMUP, TAG_VERSION, VolumeRequest,
    WarmupRequest,
};
use crate::store::Store;
use crate::swarm::Swarm;
use crate::validate::{ValidationError, validate_region};

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
                monthly_cost_usd: slot.monthly_cost_usd(),
                machine: None,
                slot,
            })
            .collect();
        let ready = slots
            .iter()
            .filter(|view| view.slot.state == PoolSlotState::Ready)
            .count();
        let total: f64 = slots.iter().map(|view| view.monthly_cost_usd).sum();
        Ok(PoolListing {
            slots,
            ready,
            monthly_cost_usd: (total * 100.0).round() / 100.0,
            prices_source: PRICES_SOURCE,
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
        self.warm_slot(slot, volume)
            .await
            .map_err(|e| ("warm-up", e))?;
        crash_point("pool_fill", "after_warmup");
        // `warmup_machine` is cleared and `warmed_image` set in this same write.
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

    /// Has Fly prepare the default image on the host of the slot's volume: a machine
    /// mounting the volume, created with `skip_launch` (it sits in `created` while the
    /// image is prepared, then reads `stopped`: REFERENCE §4.6), then destroyed, and
    /// waited for until `destroyed` so the volume is free again.
    async fn warm_slot(&self, slot: &mut PoolSlot, volume_id: String) -> Result<()> {
        let image = self.config().default_image.clone();
        let hex = slot.id.simple().to_string();
        let request = WarmupRequest {
            name: format!("pool-warmup-{}", &hex[..12]),
            region: slot.region.clone(),
            image: image.clone(),
            volume_id,
            mount_path: self.config().mount_path.clone(),
            metadata: BTreeMap::from([
                (TAG_POOL_WARMUP.to_owned(), slot.id.to_string()),
                (TAG_VERSION.to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
            ]),
        };
        let machine = self.warmup_machine(slot, &request).await?;
        slot.warmup_machine = Some(machine.clone());
        self.save_filling(slot, Some("after_warmup_machine"))
            .await?;
        self.wait_slot_machine(
            slot,
            &machine,
            MachineState::Stopped,
            self.config().start_timeout,
        )
        .await?;
        self.retry("destroy machine", || {
            self.provider().destroy_machine(&slot.app, &machine)
        })
        .await
        .map_err(|error| self.slot_error(error, slot))?;
        self.wait_slot_machine(
            slot,
            &machine,
            MachineState::Destroyed,
            self.config().stop_timeout,
        )
        .await?;
        slot.warmup_machine = None;
        slot.warmed_image = Some(image);
        Ok(())
    }

    /// Creates the warm-up machine, or finds the one an ambiguous create made (by its
    /// tag) before sending again. Returns its id.
    async fn warmup_machine(&self, slot: &PoolSlot, request: &WarmupRequest) -> Result<String> {
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

    /// Waits for the warm-up machine to reach `state`, up to `timeout`.
    async fn wait_slot_machine(
        &self,
        slot: &PoolSlot,
        machine: &str,
        state: MachineState,
        timeout: Duration,
    ) -> Result<()> {
        let waiting = (
            slot.app.as_str(),
            format!("warm-up machine {machine} {state}"),
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
        removed.extend(
            slot.warmup_machine
                .iter()
                .map(|id| format!("warm-up machine {id}")),
        );
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
            let lock = match crate::lock::WorkspaceLock::acquire(
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
                Err(crate::lock::LockError::Busy { .. }) => continue,
                Err(crate::lock::LockError::Store(error)) => return Err(error.into()),
            };
            let result = self.reconcile_slot(&slot).await;
            lock.release().await?;
            match result {
                Ok(Some(action)) => actions.push(action),
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
