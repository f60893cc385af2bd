//! The journal: operations and their steps, written in as few transactions as the
//! create path allows; and the leases (locks), API tokens and events.

use std::time::Duration;

use sqlx::Row;
use uuid::Uuid;

use crate::common::reservations;
use crate::{
    ApiTokenRecord, EventRecord, JournalWrite, LockHolder, Operation, OperationKind, StepEntry,
    StoreError,
};
use swarm_core::model::WorkspaceRecord;
use swarm_core::quota::{QuotaGuard, Usage};

use super::*;

impl SqliteStore {
    pub(super) async fn raw_begin_operation(
        &self,
        record: &WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
    ) -> Result<i64, StoreError> {
        // `execute`, not `INSERT … RETURNING` with `fetch_one`: that hands back the id
        // from the first row and drops the statement, so a failed commit (disk full)
        // went unseen and the journal entry the caller relies on was never written.
        let id = sqlx::query(INSERT_OPERATION)
            .bind(record.id.to_string())
            .bind(record.name.as_str())
            .bind(kind.as_str())
            .bind(owner)
            .bind(rfc3339(now()))
            .execute(&self.pool)
            .await?
            .last_insert_rowid();
        Ok(id)
    }

    /// Opens a write transaction: `BEGIN IMMEDIATE` holds SQLite's write lock from
    /// the start. Open from before BEGIN is sent: cancelled while waiting for it, the
    /// statement still runs to its end on sqlx's worker thread.
    pub(super) async fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        let mut transaction = WriteTransaction {
            connection: self.pool.acquire().await?,
            open: true,
        };
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut *transaction.connection)
            .await?;
        Ok(transaction)
    }

    pub(super) async fn commit(mut transaction: WriteTransaction) -> Result<(), StoreError> {
        sqlx::raw_sql("COMMIT")
            .execute(&mut *transaction.connection)
            .await?;
        transaction.open = false;
        Ok(())
    }

    pub(super) async fn raw_write_journal(
        &self,
        operation: i64,
        write: JournalWrite<'_>,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        let connection = &mut transaction.connection;
        let at = rfc3339(now());
        insert_steps(connection, operation, &write.steps, &at).await?;
        if let Some(record) = write.record {
            bind_record(sqlx::query(UPDATE_WORKSPACE), record)?
                .execute(&mut **connection)
                .await
                .map_err(|error| map_unique(error, record.name.as_str()))?;
        }
        if let Some(outcome) = write.finish {
            sqlx::query(FINISH_OPERATION)
                .bind(operation)
                .bind(&at)
                .bind(outcome)
                .execute(&mut **connection)
                .await?;
        }
        if let Some((name, owner)) = write.release_lock {
            sqlx::query(RELEASE_LOCK)
                .bind(name)
                .bind(owner)
                .execute(&mut **connection)
                .await?;
        }
        Self::commit(transaction).await
    }

    pub(super) async fn raw_begin_operation_with(
        &self,
        record: &WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
        steps: &[(&str, serde_json::Value)],
        quota: Option<&QuotaGuard>,
    ) -> Result<i64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let connection = &mut transaction.connection;
        let at = rfc3339(now());
        if let Some(guard) = quota {
            check_quota(connection, guard, None, &reservations(record, steps)).await?;
        }
        let operation = sqlx::query(INSERT_OPERATION)
            .bind(record.id.to_string())
            .bind(record.name.as_str())
            .bind(kind.as_str())
            .bind(owner)
            .bind(&at)
            .execute(&mut **connection)
            .await?
            .last_insert_rowid();
        insert_steps(connection, operation, steps, &at).await?;
        bind_record(sqlx::query(UPDATE_WORKSPACE), record)?
            .execute(&mut **connection)
            .await
            .map_err(|error| map_unique(error, record.name.as_str()))?;
        Self::commit(transaction).await?;
        Ok(operation)
    }

    pub(super) async fn raw_insert_workspace_and_begin(
        &self,
        record: &WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
        steps: &[(&str, serde_json::Value)],
        quota: Option<&QuotaGuard>,
    ) -> Result<i64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let connection = &mut transaction.connection;
        let at = rfc3339(now());
        if let Some(guard) = quota {
            let adding = (record.id, Usage::of(record));
            check_quota(
                connection,
                guard,
                Some(adding),
                &reservations(record, steps),
            )
            .await?;
        }
        bind_record(sqlx::query(INSERT_WORKSPACE), record)?
            .execute(&mut **connection)
            .await
            .map_err(|error| map_unique(error, record.name.as_str()))?;
        let operation = sqlx::query(INSERT_OPERATION)
            .bind(record.id.to_string())
            .bind(record.name.as_str())
            .bind(kind.as_str())
            .bind(owner)
            .bind(&at)
            .execute(&mut **connection)
            .await?
            .last_insert_rowid();
        insert_steps(connection, operation, steps, &at).await?;
        Self::commit(transaction).await?;
        Ok(operation)
    }

    pub(super) async fn raw_finish_operation(
        &self,
        operation: i64,
        outcome: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(FINISH_OPERATION)
            .bind(operation)
            .bind(rfc3339(now()))
            .bind(outcome)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn raw_unfinished_operations(&self) -> Result<Vec<Operation>, StoreError> {
        let rows = sqlx::query("SELECT * FROM operations WHERE finished_at IS NULL ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::decode_operation).collect()
    }

    pub(super) async fn raw_operation_steps(
        &self,
        operation: i64,
    ) -> Result<Vec<StepEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, step, detail, at FROM operation_steps WHERE operation_id = ?1 ORDER BY seq",
        )
        .bind(operation)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let detail: String = row.try_get("detail")?;
                let at: String = row.try_get("at")?;
                Ok(StepEntry {
                    at: parse_time(&at)?,
                    seq: row.try_get("seq")?,
                    step: row.try_get("step")?,
                    detail: serde_json::from_str(&detail)
                        .map_err(|error| StoreError::Corrupt(format!("step detail: {error}")))?,
                })
            })
            .collect()
    }

    pub(super) async fn raw_operations_of(
        &self,
        workspace_id: Uuid,
    ) -> Result<Vec<Operation>, StoreError> {
        let rows = sqlx::query("SELECT * FROM operations WHERE workspace_id = ?1 ORDER BY id")
            .bind(workspace_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::decode_operation).collect()
    }

    pub(super) async fn raw_try_lock(
        &self,
        name: &str,
        owner: &str,
        operation: &str,
        ttl: Duration,
    ) -> Result<Option<LockHolder>, StoreError> {
        let now = now();
        let now_ms = unix_ms(now);
        let taken = sqlx::query(
            "INSERT INTO locks (name, owner, pid, operation, acquired_at, expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, pid = excluded.pid,
                 operation = excluded.operation, acquired_at = excluded.acquired_at,
                 expires_at_ms = excluded.expires_at_ms
             WHERE locks.expires_at_ms < ?7 OR locks.owner = excluded.owner",
        )
        .bind(name)
        .bind(owner)
        .bind(i64::from(std::process::id()))
        .bind(operation)
        .bind(rfc3339(now))
        .bind(now_ms.saturating_add(ttl_ms(ttl)))
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if taken == 1 {
            return Ok(None);
        }
        let row =
            sqlx::query("SELECT owner, pid, operation, acquired_at FROM locks WHERE name = ?1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else {
            // Released between our two statements: report busy once; the caller retries.
            return Ok(Some(LockHolder {
                owner: String::new(),
                pid: 0,
                operation: "unknown".to_owned(),
                acquired_at: now,
            }));
        };
        let pid: i64 = row.try_get("pid")?;
        let acquired_at: String = row.try_get("acquired_at")?;
        Ok(Some(LockHolder {
            owner: row.try_get("owner")?,
            pid: u32::try_from(pid).unwrap_or(0),
            operation: row.try_get("operation")?,
            acquired_at: parse_time(&acquired_at)?,
        }))
    }

    pub(super) async fn raw_renew_lock(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let expires = unix_ms(now()).saturating_add(ttl_ms(ttl));
        let renewed =
            sqlx::query("UPDATE locks SET expires_at_ms = ?3 WHERE name = ?1 AND owner = ?2")
                .bind(name)
                .bind(owner)
                .bind(expires)
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(renewed == 1)
    }

    pub(super) async fn raw_insert_api_token(
        &self,
        token: &ApiTokenRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, user, admin, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(&token.id)
        .bind(&token.user)
        .bind(token.admin)
        .bind(&token.hash)
        .bind(rfc3339(token.created_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn raw_api_token_by_hash(
        &self,
        hash: &str,
    ) -> Result<Option<ApiTokenRecord>, StoreError> {
        let row =
            sqlx::query("SELECT id, user, admin, hash, created_at FROM api_tokens WHERE hash = ?1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| {
            Ok(ApiTokenRecord {
                id: row.try_get("id")?,
                user: row.try_get("user")?,
                admin: row.try_get("admin")?,
                hash: row.try_get("hash")?,
                created_at: parse_time(row.try_get("created_at")?)?,
            })
        })
        .transpose()
    }

    pub(super) async fn raw_insert_event(&self, event: &EventRecord) -> Result<i64, StoreError> {
        let id = sqlx::query(
            "INSERT INTO events (workspace, owner, at, actor, action, outcome, detail) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(&event.workspace)
        .bind(&event.owner)
        .bind(rfc3339(event.at))
        .bind(&event.actor)
        .bind(&event.action)
        .bind(&event.outcome)
        .bind(event.detail.to_string())
        .execute(&self.pool)
        .await?
        .last_insert_rowid();
        Ok(id)
    }

    pub(super) async fn raw_events_of(
        &self,
        name: &str,
        owner: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, workspace, owner, at, actor, action, outcome, detail FROM events \
             WHERE workspace = ?1 AND owner IS ?2 ORDER BY id DESC LIMIT ?3",
        )
        .bind(name)
        .bind(owner)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let mut events = rows
            .into_iter()
            .map(|row| {
                let detail: String = row.try_get("detail")?;
                Ok(EventRecord {
                    id: row.try_get("id")?,
                    workspace: row.try_get("workspace")?,
                    owner: row.try_get("owner")?,
                    at: parse_time(row.try_get("at")?)?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    outcome: row.try_get("outcome")?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        events.reverse();
        Ok(events)
    }

    pub(super) async fn raw_release_lock(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query(RELEASE_LOCK)
            .bind(name)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
