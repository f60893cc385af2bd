//! A create's side of the pool: take a ready slot, grow its volume, adopt its machine.

use crate::error::{Error, Result};
use crate::failpoint::crash_point;
use crate::journal::Journal;
use crate::provider::{MachineInfo, Provider};
use crate::swarm::Swarm;

use super::pool_want;
use swarm_core::model::{WorkspaceRecord, WorkspaceSpec, app_url};
use swarm_core::pool_model::PoolSlot;
use swarm_store::Store;

impl<S: Store, P: Provider> Swarm<S, P> {
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
}
