//! The warm pool's slots. A take deletes the slot's row with `FOR UPDATE SKIP
//! LOCKED`, so two creates in any processes never take the same slot.

use uuid::Uuid;

use super::journal::{insert_step, lock_operation};
use super::records::update_in;
use super::{PgStore, big};
use crate::StoreError;
use crate::common::{decode_slot, encode_slot, slot_taken_detail};
use swarm_core::model::WorkspaceRecord;
use swarm_core::pool_model::{PoolSlot, PoolSlotState, PoolWant};

impl PgStore {
    pub(super) async fn pg_insert_pool_slot(&self, slot: &PoolSlot) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pool_slots (id, app, state, region, org, ip_mode, volume_size_gb, data, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(slot.id)
        .bind(slot.app.clone())
        .bind(slot.state.as_str())
        .bind(slot.region.clone())
        .bind(slot.org.clone())
        .bind(slot.ip_mode.as_str())
        .bind(big(slot.volume_size_gb))
        .bind(encode_slot(slot)?)
        .bind(slot.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn pg_update_pool_slot(
        &self,
        slot: &PoolSlot,
        from: PoolSlotState,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE pool_slots SET state = $2, volume_size_gb = $3, data = $4 WHERE id = $1 AND state = $5",
        )
        .bind(slot.id)
        .bind(slot.state.as_str())
        .bind(big(slot.volume_size_gb))
        .bind(encode_slot(slot)?)
        .bind(from.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    pub(super) async fn pg_delete_pool_slot(&self, id: Uuid) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM pool_slots WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn pg_pool_slots(&self) -> Result<Vec<PoolSlot>, StoreError> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT data FROM pool_slots ORDER BY created_at, id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|data| decode_slot(data)).collect()
    }

    pub(super) async fn pg_take_pool_slot(
        &self,
        want: &PoolWant,
        operation: i64,
        adopt: impl FnOnce(&PoolSlot) -> WorkspaceRecord + Send,
    ) -> Result<Option<(PoolSlot, WorkspaceRecord)>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let connection = transaction.connection();
        // The closest size first: the least volume grown, the bigger slots kept. A
        // slot another take has locked is skipped, not waited for.
        let data: Option<String> = sqlx::query_scalar(
            "DELETE FROM pool_slots WHERE id = (\
                 SELECT id FROM pool_slots \
                 WHERE state = 'ready' AND region = $1 AND org = $2 AND ip_mode = $3 AND volume_size_gb <= $4 \
                 ORDER BY volume_size_gb DESC, created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING data",
        )
        .bind(want.region.clone())
        .bind(want.org.clone())
        .bind(want.ip_mode.as_str())
        .bind(big(want.max_volume_gb))
        .fetch_optional(&mut *connection)
        .await?;
        let Some(data) = data else {
            transaction.rollback().await?;
            return Ok(None);
        };
        let slot = decode_slot(&data)?;
        let record = adopt(&slot);
        lock_operation(connection, operation).await?;
        insert_step(
            connection,
            operation,
            "pool_slot_taken",
            &slot_taken_detail(&slot),
        )
        .await?;
        update_in(connection, &record).await?;
        transaction.commit().await?;
        Ok(Some((slot, record)))
    }
}
