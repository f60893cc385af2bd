//! Workspace records and pool slots: written whole as JSON, listed from columns.

use sqlx::Row;
use uuid::Uuid;

use crate::StoreError;
use crate::common::{RECORD_FORMAT, decode_slot, encode_slot, slot_taken_detail};
use swarm_core::model::{WorkspaceRecord, WorkspaceSummary};
use swarm_core::pool_model::{PoolSlot, PoolSlotState, PoolWant};

use super::*;

/// The queries; [`Store`] (in `store_impl.rs`) names the file and what to do when one fails.
impl SqliteStore {
    pub(super) async fn raw_insert_pool_slot(&self, slot: &PoolSlot) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pool_slots (id, app, state, region, org, ip_mode, volume_size_gb, data, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .bind(slot.id.to_string())
        .bind(slot.app.as_str())
        .bind(slot.state.as_str())
        .bind(slot.region.as_str())
        .bind(slot.org.as_str())
        .bind(slot.ip_mode.as_str())
        .bind(slot.volume_size_gb)
        .bind(encode_slot(slot)?)
        .bind(rfc3339(slot.created_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn raw_update_pool_slot(
        &self,
        slot: &PoolSlot,
        from: PoolSlotState,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE pool_slots SET state = ?2, volume_size_gb = ?3, data = ?4 WHERE id = ?1 AND state = ?5",
        )
        .bind(slot.id.to_string())
        .bind(slot.state.as_str())
        .bind(slot.volume_size_gb)
        .bind(encode_slot(slot)?)
        .bind(from.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    pub(super) async fn raw_delete_pool_slot(&self, id: Uuid) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM pool_slots WHERE id = ?1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn raw_pool_slots(&self) -> Result<Vec<PoolSlot>, StoreError> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT data FROM pool_slots ORDER BY created_at, id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|data| decode_slot(data)).collect()
    }

    pub(super) async fn raw_take_pool_slot(
        &self,
        want: &PoolWant,
        operation: i64,
        adopt: impl FnOnce(&PoolSlot) -> WorkspaceRecord + Send,
    ) -> Result<Option<(PoolSlot, WorkspaceRecord)>, StoreError> {
        // Most creates find no pool at all: a read answers them without taking the
        // write lock (the take below checks again, atomically).
        let any: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM pool_slots \
             WHERE state = 'ready' AND region = ?1 AND org = ?2 AND ip_mode = ?3 AND volume_size_gb <= ?4 \
             LIMIT 1",
        )
        .bind(want.region.as_str())
        .bind(want.org.as_str())
        .bind(want.ip_mode.as_str())
        .bind(want.max_volume_gb)
        .fetch_optional(&self.pool)
        .await?;
        if any.is_none() {
            return Ok(None);
        }
        // BEGIN IMMEDIATE takes SQLite's write lock first: a second take waits (busy
        // timeout) and then sees the row gone. Dropped on an error, the connection is
        // closed, which rolls back (see `WriteTransaction`).
        // The closest size first: the least volume grown, the bigger slots kept.
        let mut transaction = WriteTransaction {
            connection: self.pool.acquire().await?,
            open: true,
        };
        let connection = &mut transaction.connection;
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut **connection)
            .await?;
        let data: Option<String> = sqlx::query_scalar(
            "DELETE FROM pool_slots WHERE id = (\
                 SELECT id FROM pool_slots \
                 WHERE state = 'ready' AND region = ?1 AND org = ?2 AND ip_mode = ?3 AND volume_size_gb <= ?4 \
                 ORDER BY volume_size_gb DESC, created_at, id LIMIT 1) \
             RETURNING data",
        )
        .bind(want.region.as_str())
        .bind(want.org.as_str())
        .bind(want.ip_mode.as_str())
        .bind(want.max_volume_gb)
        .fetch_optional(&mut **connection)
        .await?;
        let Some(data) = data else {
            sqlx::raw_sql("ROLLBACK").execute(&mut **connection).await?;
            transaction.open = false;
            return Ok(None);
        };
        let slot = decode_slot(&data)?;
        let record = adopt(&slot);
        let detail = slot_taken_detail(&slot);
        sqlx::query(INSERT_STEP)
            .bind(operation)
            .bind("pool_slot_taken")
            .bind(detail.to_string())
            .bind(rfc3339(now()))
            .execute(&mut **connection)
            .await?;
        bind_record(sqlx::query(UPDATE_WORKSPACE), &record)?
            .execute(&mut **connection)
            .await
            .map_err(|error| map_unique(error, record.name.as_str()))?;
        sqlx::raw_sql("COMMIT").execute(&mut **connection).await?;
        transaction.open = false;
        Ok(Some((slot, record)))
    }

    pub(super) async fn raw_insert_workspace(
        &self,
        record: &WorkspaceRecord,
    ) -> Result<(), StoreError> {
        bind_record(sqlx::query(INSERT_WORKSPACE), record)?
            .execute(&self.pool)
            .await
            .map_err(|error| map_unique(error, record.name.as_str()))?;
        Ok(())
    }

    pub(super) async fn raw_update_workspace(
        &self,
        record: &WorkspaceRecord,
    ) -> Result<(), StoreError> {
        bind_record(sqlx::query(UPDATE_WORKSPACE), record)?
            .execute(&self.pool)
            .await
            .map_err(|error| map_unique(error, record.name.as_str()))?;
        Ok(())
    }

    pub(super) async fn raw_workspace_by_name(
        &self,
        name: &str,
    ) -> Result<Option<WorkspaceRecord>, StoreError> {
        let data: Option<String> = sqlx::query_scalar(
            "SELECT data FROM workspaces WHERE name = ?1 AND status <> 'deleted'",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        data.as_deref().map(Self::decode_record).transpose()
    }

    pub(super) async fn raw_workspace(
        &self,
        id: Uuid,
    ) -> Result<Option<WorkspaceRecord>, StoreError> {
        let data: Option<String> = sqlx::query_scalar("SELECT data FROM workspaces WHERE id = ?1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        data.as_deref().map(Self::decode_record).transpose()
    }

    pub(super) async fn raw_list_workspaces(
        &self,
        include_deleted: bool,
    ) -> Result<Vec<WorkspaceRecord>, StoreError> {
        // One row holding every record, sorted here: sqlx hands rows over one by one
        // between threads, and SQLite's sorter spills 10,000 records to a temp file;
        // both dominated `swarm list`. Newline-separated rather than a JSON array:
        // wrapping the joined text in brackets made SQLite copy it once more. The
        // count catches a `data` holding more (or less) than one record.
        let row = sqlx::query(
            "SELECT count(*), group_concat(data, char(10)) FROM workspaces \
             WHERE ?1 OR status <> 'deleted'",
        )
        .bind(include_deleted)
        .fetch_one(&self.pool)
        .await?;
        let count: i64 = row.try_get(0)?;
        // Borrowed from the row: megabytes with 10,000 records, not worth a copy.
        let joined: Option<&str> = row.try_get(1)?;
        let mut records = Self::decode_records(joined.unwrap_or_default(), count)?;
        records.sort_by_key(|a| (a.created_at, a.id));
        Ok(records)
    }

    pub(super) async fn raw_list_workspaces_json(
        &self,
        include_deleted: bool,
    ) -> Result<Vec<u8>, StoreError> {
        // One row, as in list_workspaces; each record behind a header of its format,
        // sort key and byte length, so no separator has to be absent from `data`.
        let row = sqlx::query(
            "SELECT count(*), group_concat(\
                 ifnull(data_format, 0) || ' ' || created_at || ' ' || id || ' ' \
                 || octet_length(data) || ' ' || data, '') \
             FROM workspaces WHERE ?1 OR status <> 'deleted'",
        )
        .bind(include_deleted)
        .fetch_one(&self.pool)
        .await?;
        let count: i64 = row.try_get(0)?;
        let joined: Option<&str> = row.try_get(1)?;
        let mut rest = joined.unwrap_or_default();
        let corrupt = |what: String| StoreError::Corrupt(format!("workspace records: {what}"));
        let current = RECORD_FORMAT.to_string();
        let mut records = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        while !rest.is_empty() {
            let mut fields = rest.splitn(5, ' ');
            let mut field = || fields.next().unwrap_or_default();
            let (format, created_at, id, len) = (field(), field(), field(), field());
            let tail = field();
            let data = len
                .parse()
                .ok()
                .and_then(|len| tail.get(..len))
                .ok_or_else(|| corrupt(format!("bad row header {format} {created_at} {id}")))?;
            rest = &tail[data.len()..];
            let record = if format == current {
                // Written by this encoding: the stored text is what encoding it prints.
                let created_at = parse_time(created_at)?;
                let id = Uuid::parse_str(id)
                    .map_err(|error| corrupt(format!("workspace id {id:?}: {error}")))?;
                (created_at, id, std::borrow::Cow::Borrowed(data))
            } else {
                let record = Self::decode_record(data)?;
                let text = Self::encode_record(&record)?;
                (record.created_at, record.id, std::borrow::Cow::Owned(text))
            };
            records.push(record);
        }
        if i64::try_from(records.len()).ok() != Some(count) {
            return Err(corrupt(format!(
                "{count} rows hold {} records",
                records.len()
            )));
        }
        records.sort_by_key(|(created_at, id, _)| (*created_at, *id));
        // Pretty JSON is about 1.5 times the compact text.
        let mut out = Vec::with_capacity(joined.map_or(0, |j| j.len() / 2 * 3));
        out.push(b'[');
        for (i, (_, id, text)) in records.iter().enumerate() {
            out.extend_from_slice(if i == 0 { b"\n  " } else { b",\n  " });
            crate::pretty::push_pretty(&mut out, text.as_bytes(), 1)
                .map_err(|error| corrupt(format!("record {id}: {error}")))?;
        }
        out.extend_from_slice(if records.is_empty() { b"]\n" } else { b"\n]\n" });
        Ok(out)
    }

    pub(super) async fn raw_list_summaries(
        &self,
        include_deleted: bool,
    ) -> Result<Vec<WorkspaceSummary>, StoreError> {
        // One row again (see list_workspaces), from the list columns only (a covering
        // index). JSON rather than tab-separated text: a region is only checked against
        // the configured list, so no separator is sure to be absent; and a NULL column
        // (a field the backfill did not find) fails to decode instead of vanishing.
        let row = sqlx::query(
            "SELECT json_group_array(json_array(\
                 id, name, status, region, cpu_kind, cpus, memory_mb, storage_gb, url, created_at, \
                 ip_mode)) \
             FROM workspaces WHERE ?1 OR status <> 'deleted'",
        )
        .bind(include_deleted)
        .fetch_one(&self.pool)
        .await?;
        // Borrowed from the row: the array is decoded once, not copied first.
        let array: &str = row.try_get(0)?;
        let rows: Vec<SummaryRow<'_>> = serde_json::from_str(array)
            .map_err(|error| StoreError::Corrupt(format!("workspace list columns: {error}")))?;
        let mut summaries = rows
            .into_iter()
            .map(SummaryRow::into_summary)
            .collect::<Result<Vec<_>, _>>()?;
        summaries.sort_by_key(|a| (a.1.created_at, a.0));
        Ok(summaries.into_iter().map(|(_, summary)| summary).collect())
    }
}
