//! Keeping the pool sound: refreshing stale slots, draining, and reconcile's pass
//! over slots left half made by a dead process.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::failpoint::crash_point;
use crate::provider::{MachineChange, Provider, ProviderErrorKind};
use crate::swarm::Swarm;

use super::slot_lock;
use swarm_core::model::{MachineState, ReconcileAction};
use swarm_core::pool_model::{PoolSlot, PoolSlotState};
use swarm_store::Store;

impl<S: Store, P: Provider> Swarm<S, P> {
    /// Whether a ready slot was made for another image than the configured default.
    pub(crate) fn slot_is_stale(&self, slot: &PoolSlot) -> bool {
        slot.state == PoolSlotState::Ready
            && slot.machine.is_some()
            && slot.warmed_image.as_deref() != Some(self.config().default_image.as_str())
    }

    /// Brings a stale slot's stopped machine to the configured image, under the slot's
    /// lock. The slot reads `filling` meanwhile, so no create takes it; a crash leaves
    /// it `filling` with its lock free, and reconcile removes it. Ok(false) when a
    /// create took it first.
    pub(crate) async fn refresh_slot_locked(&self, slot: &PoolSlot) -> Result<bool> {
        let lock = self.lock(&slot_lock(slot), "pool refresh").await?;
        let result = self.refresh_slot(slot).await;
        lock.release().await?;
        result
    }

    pub(crate) async fn refresh_slot(&self, slot: &PoolSlot) -> Result<bool> {
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

    /// Deletes the slot's app (and with it its volume and IPs), then waits until Fly
    /// no longer lists it. Ok with nothing removed when the app was never sent or is
    /// gone. Returns what was removed.
    pub(crate) async fn remove_slot_resources(&self, slot: &PoolSlot) -> Result<Vec<String>> {
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
    pub(crate) async fn drain_slot(&self, slot: PoolSlot) -> Result<Option<String>> {
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

    pub(crate) async fn reconcile_slot(&self, slot: &PoolSlot) -> Result<Option<ReconcileAction>> {
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
