//! Filling one slot: its row first, then app, volume, IPs and the stopped machine,
//! each saved in the row the moment Fly answers.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::failpoint::crash_point;
use crate::provider::{
    Provider, ProviderError, ProviderErrorKind, TAG_POOL_WARMUP, TAG_VERSION, VolumeRequest,
    WarmupRequest,
};
use crate::swarm::Swarm;

use super::{pool_ip_mode, slot_lock};
use swarm_core::model::{IpRecord, MachineState};
use swarm_core::pool_model::{PoolSlot, PoolSlotState};
use swarm_store::Store;

impl<S: Store, P: Provider> Swarm<S, P> {
    pub(crate) async fn fill_slot(&self, region: &str) -> Result<PoolSlot> {
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

    pub(crate) fn slot_error(&self, error: ProviderError, slot: &PoolSlot) -> Error {
        Error::from_provider(error, &slot.app, &slot.region, &self.config().regions)
    }

    /// Saves the slot (still `filling`), then checks the crash point `point`.
    pub(crate) async fn save_filling(
        &self,
        slot: &mut PoolSlot,
        point: Option<&str>,
    ) -> Result<()> {
        slot.updated_at = time::OffsetDateTime::now_utc();
        self.store()
            .update_pool_slot(slot, PoolSlotState::Filling)
            .await?;
        if let Some(point) = point {
            crash_point("pool_fill", point);
        }
        Ok(())
    }

    pub(crate) async fn build_slot(
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
    pub(crate) async fn slot_app(&self, slot: &PoolSlot) -> Result<()> {
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

    pub(crate) async fn slot_volume(&self, slot: &PoolSlot) -> Result<String> {
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

    pub(crate) async fn slot_ips(&self, slot: &PoolSlot) -> Result<Vec<IpRecord>> {
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
    pub(crate) async fn slot_machine(&self, slot: &mut PoolSlot, volume_id: String) -> Result<()> {
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

    /// Creates the slot machine, or finds the one an ambiguous create made (by its tag)
    /// before sending again. Returns its id.
    pub(crate) async fn create_slot_machine(
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
    pub(crate) async fn wait_slot_machine(
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
}
