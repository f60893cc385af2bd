//! The operation journal and the quota check that guards a create or resize, both
//! inside the write's own transaction.

use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::records::{insert_in, update_in};
use super::{PgStore, small};
use crate::common::reservations;
use crate::{JournalWrite, Operation, OperationKind, StepEntry, StoreError};
use swarm_core::model::{CpuKind, GuestSize, IpMode, WorkspaceRecord};
use swarm_core::quota::{QuotaGuard, SIZE_RESERVED_STEP, Usage};

/// Parameters: workspace id, workspace name, kind, owner. Times are the database's
/// `now()`: one per transaction, as the SQLite store writes one time per write.
const INSERT_OPERATION: &str = "INSERT INTO operations \
     (workspace_id, workspace_name, kind, owner, started_at) VALUES ($1, $2, $3, $4, now()) \
     RETURNING id";
/// One journal step, numbered after the operation's last. Parameters: operation id,
/// step, detail (JSON text). Callers hold the operation's row lock ([`lock_operation`]).
const INSERT_STEP: &str = "INSERT INTO operation_steps (operation_id, seq, step, detail, at) \
     VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM operation_steps WHERE operation_id = $1), $2, $3, now())";
const FINISH_OPERATION: &str =
    "UPDATE operations SET finished_at = now(), outcome = $2 WHERE id = $1";
pub(super) const RELEASE_LOCK: &str = "DELETE FROM locks WHERE name = $1 AND owner = $2";

async fn begin_in(
    connection: &mut PgConnection,
    record: &WorkspaceRecord,
    kind: OperationKind,
    owner: &str,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(INSERT_OPERATION)
        .bind(record.id)
        .bind(record.name.as_str().to_owned())
        .bind(kind.as_str())
        .bind(owner)
        .fetch_one(connection)
        .await?)
}

/// Two writers appending to one operation at once would number their steps alike;
/// the operation's row lock makes the second wait for the first's commit.
pub(super) async fn lock_operation(
    connection: &mut PgConnection,
    operation: i64,
) -> Result<(), StoreError> {
    sqlx::query("SELECT 1 FROM operations WHERE id = $1 FOR UPDATE")
        .bind(operation)
        .execute(connection)
        .await?;
    Ok(())
}

pub(super) async fn insert_step(
    connection: &mut PgConnection,
    operation: i64,
    step: &str,
    detail: &serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query(INSERT_STEP)
        .bind(operation)
        .bind(step)
        .bind(detail.to_string())
        .execute(connection)
        .await?;
    Ok(())
}

async fn insert_steps(
    connection: &mut PgConnection,
    operation: i64,
    steps: &[(&str, serde_json::Value)],
) -> Result<(), StoreError> {
    for (step, detail) in steps {
        insert_step(connection, operation, step, detail).await?;
    }
    Ok(())
}

/// Inside the write's transaction: waits for every other guarded writer of the same
/// user (an advisory lock on the user, held to the commit, in any process on any
/// host), then refuses a change that takes the user past a quota.
async fn check_quota(
    connection: &mut PgConnection,
    guard: &QuotaGuard,
    adding: Option<(Uuid, Usage)>,
    reserving: &[(Uuid, Usage)],
) -> Result<(), StoreError> {
    if guard.quotas.is_unlimited() {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('swarm quota ' || $1, 0))")
        .bind(&guard.user)
        .execute(&mut *connection)
        .await?;
    // Read committed: these statements start after the lock was granted, so they see
    // everything the previous holder committed.
    let rows = sqlx::query(
        "SELECT id, cpu_kind, cpus, memory_mb, storage_gb, ip_mode FROM workspaces \
         WHERE owner = $1 AND status <> 'deleted'",
    )
    .bind(&guard.user)
    .fetch_all(&mut *connection)
    .await?;
    let mut workspaces = rows
        .iter()
        .map(|row| {
            let cpu_kind: String = row.try_get("cpu_kind")?;
            let ip_mode: String = row.try_get("ip_mode")?;
            let guest = GuestSize {
                cpu_kind: CpuKind::parse(&cpu_kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("cpu kind {cpu_kind:?}")))?,
                cpus: small(row.try_get("cpus")?, "cpus")?,
                memory_mb: small(row.try_get("memory_mb")?, "memory_mb")?,
            };
            let ip_mode = IpMode::parse(&ip_mode)
                .ok_or_else(|| StoreError::Corrupt(format!("ip mode {ip_mode:?}")))?;
            let storage = small(row.try_get("storage_gb")?, "storage_gb")?;
            Ok((
                row.try_get::<Uuid, _>("id")?,
                Usage::workspace(guest, storage, ip_mode),
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    workspaces.extend(adding);
    let rows = sqlx::query(
        "SELECT o.workspace_id, s.detail FROM operations o \
         JOIN operation_steps s ON s.operation_id = o.id \
         WHERE o.finished_at IS NULL AND s.step = $2 AND o.workspace_id IN \
             (SELECT id FROM workspaces WHERE owner = $1 AND status <> 'deleted')",
    )
    .bind(&guard.user)
    .bind(SIZE_RESERVED_STEP)
    .fetch_all(&mut *connection)
    .await?;
    let mut reserved = rows
        .iter()
        .map(|row| {
            let detail: String = row.try_get("detail")?;
            let size = serde_json::from_str(&detail)
                .ok()
                .as_ref()
                .and_then(Usage::from_reservation)
                .ok_or_else(|| StoreError::Corrupt(format!("size reservation {detail:?}")))?;
            Ok((row.try_get::<Uuid, _>("workspace_id")?, size))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    reserved.extend_from_slice(reserving);
    guard
        .quotas
        .check(&guard.user, Usage::total(&workspaces, &reserved))?;
    Ok(())
}

fn decode_operation(row: &sqlx::postgres::PgRow) -> Result<Operation, StoreError> {
    let kind: String = row.try_get("kind")?;
    Ok(Operation {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        workspace_name: row.try_get("workspace_name")?,
        kind: OperationKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("operation kind {kind:?}")))?,
        owner: row.try_get("owner")?,
        started_at: row.try_get("started_at")?,
        outcome: row.try_get("outcome")?,
    })
}

const OPERATION_COLUMNS: &str =
    "SELECT id, workspace_id, workspace_name, kind, owner, started_at, outcome FROM operations";

impl PgStore {
    pub(super) async fn pg_begin_operation(
        &self,
        record: &WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
    ) -> Result<i64, StoreError> {
        begin_in(&mut *self.pool.acquire().await?, record, kind, owner).await
    }

    pub(super) async fn pg_write_journal(
        &self,
        operation: i64,
        write: JournalWrite<'_>,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        let connection = transaction.connection();
        lock_operation(connection, operation).await?;
        insert_steps(connection, operation, &write.steps).await?;
        if let Some(record) = write.record {
            update_in(connection, record).await?;
        }
        if let Some(outcome) = write.finish {
            sqlx::query(FINISH_OPERATION)
                .bind(operation)
                .bind(outcome)
                .execute(&mut *connection)
                .await?;
        }
        if let Some((name, owner)) = write.release_lock {
            sqlx::query(RELEASE_LOCK)
                .bind(name)
                .bind(owner)
                .execute(&mut *connection)
                .await?;
        }
        transaction.commit().await
    }

    pub(super) async fn pg_begin_operation_with(
        &self,
        record: &WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
        steps: &[(&str, serde_json::Value)],
        quota: Option<&QuotaGuard>,
    ) -> Result<i64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let connection = transaction.connection();
        if let Some(guard) = quota {
            check_quota(connection, guard, None, &reservations(record, steps)).await?;
        }
        let operation = begin_in(connection, record, kind, owner).await?;
        insert_steps(connection, operation, steps).await?;
        update_in(connection, record).await?;
        transaction.commit().await?;
        Ok(operation)
    }

    pub(super) async fn pg_insert_workspace_and_begin(
        &self,
        record: &WorkspaceRecord,
        kind: OperationKind,
        owner: &str,
        steps: &[(&str, serde_json::Value)],
        quota: Option<&QuotaGuard>,
    ) -> Result<i64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let connection = transaction.connection();
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
        insert_in(connection, record).await?;
        let operation = begin_in(connection, record, kind, owner).await?;
        insert_steps(connection, operation, steps).await?;
        transaction.commit().await?;
        Ok(operation)
    }

    pub(super) async fn pg_finish_operation(
        &self,
        operation: i64,
        outcome: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(FINISH_OPERATION)
            .bind(operation)
            .bind(outcome)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub(super) async fn pg_unfinished_operations(&self) -> Result<Vec<Operation>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{OPERATION_COLUMNS} WHERE finished_at IS NULL ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_operation).collect()
    }

    pub(super) async fn pg_operations_of(
        &self,
        workspace_id: Uuid,
    ) -> Result<Vec<Operation>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{OPERATION_COLUMNS} WHERE workspace_id = $1 ORDER BY id"
        )))
        .bind(workspace_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_operation).collect()
    }

    pub(super) async fn pg_operation_steps(
        &self,
        operation: i64,
    ) -> Result<Vec<StepEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, step, detail, at FROM operation_steps WHERE operation_id = $1 ORDER BY seq",
        )
        .bind(operation)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let detail: String = row.try_get("detail")?;
                Ok(StepEntry {
                    at: row.try_get("at")?,
                    seq: row.try_get("seq")?,
                    step: row.try_get("step")?,
                    detail: serde_json::from_str(&detail)
                        .map_err(|error| StoreError::Corrupt(format!("step detail: {error}")))?,
                })
            })
            .collect()
    }
}
