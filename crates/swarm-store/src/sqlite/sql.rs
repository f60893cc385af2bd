//! The statements, the record's list columns, the write transaction and the quota
//! check the writes run inside.

use sqlx::Row;
use uuid::Uuid;

use crate::StoreError;
use crate::common::RECORD_FORMAT;
use swarm_core::model::{
    CpuKind, GuestSize, IpMode, WorkspaceName, WorkspaceRecord, WorkspaceStatus, WorkspaceSummary,
};
use swarm_core::quota::{QuotaGuard, SIZE_RESERVED_STEP, Usage};

use super::*;

// Every column of a `workspaces` row comes from the record, written in one statement,
// so the list columns never disagree with `data`. Parameters as in `bind_record`.
pub(super) const INSERT_WORKSPACE: &str = "INSERT INTO workspaces \
     (id, name, status, data, created_at, updated_at, \
      region, cpu_kind, cpus, memory_mb, storage_gb, url, data_format, owner, ip_mode) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
pub(super) const UPDATE_WORKSPACE: &str = "UPDATE workspaces SET \
     name = ?2, status = ?3, data = ?4, created_at = ?5, updated_at = ?6, \
     region = ?7, cpu_kind = ?8, cpus = ?9, memory_mb = ?10, storage_gb = ?11, url = ?12, \
     data_format = ?13, owner = ?14, ip_mode = ?15 \
     WHERE id = ?1";

/// One journal step, numbered after the operation's last. Parameters: operation id,
/// step, detail (JSON text), time.
pub(super) const INSERT_STEP: &str = "INSERT INTO operation_steps (operation_id, seq, step, detail, at) \
     VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM operation_steps WHERE operation_id = ?1), ?2, ?3, ?4)";

/// Parameters: workspace id, workspace name, kind, owner, time.
pub(super) const INSERT_OPERATION: &str = "INSERT INTO operations \
     (workspace_id, workspace_name, kind, owner, started_at) VALUES (?1, ?2, ?3, ?4, ?5)";
/// Parameters: operation id, time, outcome.
pub(super) const FINISH_OPERATION: &str =
    "UPDATE operations SET finished_at = ?2, outcome = ?3 WHERE id = ?1";
/// Parameters: lock name, owner (only the holder's lock goes).
pub(super) const RELEASE_LOCK: &str = "DELETE FROM locks WHERE name = ?1 AND owner = ?2";

pub(super) fn bind_record<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    record: &WorkspaceRecord,
) -> Result<sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>, StoreError> {
    let spec = &record.spec;
    Ok(query
        .bind(record.id.to_string())
        .bind(record.name.as_str())
        .bind(record.status.as_str())
        .bind(SqliteStore::encode_record(record)?)
        .bind(rfc3339(record.created_at))
        .bind(rfc3339(record.updated_at))
        .bind(spec.region.as_str())
        .bind(spec.guest.cpu_kind.as_str())
        .bind(spec.guest.cpus)
        .bind(spec.guest.memory_mb)
        .bind(spec.storage_gb)
        .bind(record.url.as_str())
        .bind(RECORD_FORMAT)
        .bind(spec.owner.as_deref())
        .bind(spec.ip_mode.as_str()))
}

/// One workspace's list columns, as `list_summaries` selects them.
#[derive(serde::Deserialize)]
pub(super) struct SummaryRow<'a>(
    Uuid,
    WorkspaceName,
    &'a str,
    String,
    &'a str,
    u32,
    u32,
    u32,
    String,
    &'a str,
    &'a str,
);

impl SummaryRow<'_> {
    /// The summary and its id (the tie-break of the list order).
    pub(super) fn into_summary(self) -> Result<(Uuid, WorkspaceSummary), StoreError> {
        let Self(
            id,
            name,
            status,
            region,
            cpu_kind,
            cpus,
            memory_mb,
            storage_gb,
            url,
            created_at,
            ip_mode,
        ) = self;
        let corrupt = |what: &str, value: &str| {
            StoreError::Corrupt(format!("workspace {name}: {what} {value:?}"))
        };
        let status = WorkspaceStatus::parse(status).ok_or_else(|| corrupt("status", status))?;
        let cpu_kind = CpuKind::parse(cpu_kind).ok_or_else(|| corrupt("cpu kind", cpu_kind))?;
        let ip_mode = IpMode::parse(ip_mode).ok_or_else(|| corrupt("ip mode", ip_mode))?;
        Ok((
            id,
            WorkspaceSummary {
                status,
                region,
                guest: GuestSize {
                    cpu_kind,
                    cpus,
                    memory_mb,
                },
                storage_gb,
                ip_mode,
                url,
                created_at: parse_time(created_at)?,
                name,
            },
        ))
    }
}

/// A connection inside `BEGIN IMMEDIATE`. If it is dropped before `COMMIT` went
/// through (a statement failed, or the future was cancelled: the create runs the
/// volume and IP steps with `try_join`, which drops one when the other fails), the
/// connection is closed, which rolls the transaction back. Back in the pool instead it
/// would keep SQLite's write lock, and every later write (the compensation's journal
/// steps, the lock release) waited out the 15 s busy timeout and failed. sqlx's own
/// `Transaction` has the same hole: it rolls back only when the connection is next used.
pub(super) struct WriteTransaction {
    pub(super) connection: sqlx::pool::PoolConnection<sqlx::Sqlite>,
    pub(super) open: bool,
}

impl Drop for WriteTransaction {
    fn drop(&mut self) {
        if self.open {
            self.connection.close_on_drop();
        }
    }
}

/// Appends journal steps to `operation` inside an open write transaction.
pub(super) async fn insert_steps(
    connection: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>,
    operation: i64,
    steps: &[(&str, serde_json::Value)],
    at: &str,
) -> Result<(), StoreError> {
    for (step, detail) in steps {
        sqlx::query(INSERT_STEP)
            .bind(operation)
            .bind(*step)
            .bind(detail.to_string())
            .bind(at)
            .execute(&mut **connection)
            .await?;
    }
    Ok(())
}

/// Inside an open write transaction (SQLite's write lock held, so no other writer can
/// change the user's total meanwhile): refuses a change that takes the guarded user
/// past a quota. `adding`: a workspace about to be inserted; `reserving`: reservations
/// about to be journaled.
pub(super) async fn check_quota(
    connection: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>,
    guard: &QuotaGuard,
    adding: Option<(Uuid, Usage)>,
    reserving: &[(Uuid, Usage)],
) -> Result<(), StoreError> {
    if guard.quotas.is_unlimited() {
        return Ok(());
    }
    let id_of = |row: &sqlx::sqlite::SqliteRow, column: &str| -> Result<Uuid, StoreError> {
        let text: String = row.try_get(column)?;
        Uuid::parse_str(&text)
            .map_err(|error| StoreError::Corrupt(format!("workspace id {text:?}: {error}")))
    };
    let rows = sqlx::query(
        "SELECT id, cpu_kind, cpus, memory_mb, storage_gb, ip_mode FROM workspaces \
         WHERE owner = ?1 AND status <> 'deleted'",
    )
    .bind(&guard.user)
    .fetch_all(&mut **connection)
    .await?;
    let mut workspaces = rows
        .iter()
        .map(|row| {
            let size = |column: &str| -> Result<u64, StoreError> {
                let value: Option<i64> = row.try_get(column)?;
                value.and_then(|v| u64::try_from(v).ok()).ok_or_else(|| {
                    StoreError::Corrupt(format!("workspace row without a valid {column}"))
                })
            };
            let text = |column: &str| -> Result<String, StoreError> {
                let value: Option<String> = row.try_get(column)?;
                value.ok_or_else(|| StoreError::Corrupt(format!("workspace row without {column}")))
            };
            let small = |column: &str| -> Result<u32, StoreError> {
                u32::try_from(size(column)?)
                    .map_err(|_| StoreError::Corrupt(format!("workspace row's {column}")))
            };
            let cpu_kind = text("cpu_kind")?;
            let ip_mode = text("ip_mode")?;
            let guest = GuestSize {
                cpu_kind: CpuKind::parse(&cpu_kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("cpu kind {cpu_kind:?}")))?,
                cpus: small("cpus")?,
                memory_mb: small("memory_mb")?,
            };
            let ip_mode = IpMode::parse(&ip_mode)
                .ok_or_else(|| StoreError::Corrupt(format!("ip mode {ip_mode:?}")))?;
            Ok((
                id_of(row, "id")?,
                Usage::workspace(guest, small("storage_gb")?, ip_mode),
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    workspaces.extend(adding);
    let rows = sqlx::query(
        "SELECT o.workspace_id, s.detail FROM operations o \
         JOIN operation_steps s ON s.operation_id = o.id \
         WHERE o.finished_at IS NULL AND s.step = ?2 AND o.workspace_id IN \
             (SELECT id FROM workspaces WHERE owner = ?1 AND status <> 'deleted')",
    )
    .bind(&guard.user)
    .bind(SIZE_RESERVED_STEP)
    .fetch_all(&mut **connection)
    .await?;
    let mut reservations = rows
        .iter()
        .map(|row| {
            let detail: String = row.try_get("detail")?;
            let size = serde_json::from_str(&detail)
                .ok()
                .as_ref()
                .and_then(Usage::from_reservation)
                .ok_or_else(|| StoreError::Corrupt(format!("size reservation {detail:?}")))?;
            Ok((id_of(row, "workspace_id")?, size))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    reservations.extend_from_slice(reserving);
    guard
        .quotas
        .check(&guard.user, Usage::total(&workspaces, &reservations))?;
    Ok(())
}

pub(super) fn map_unique(error: sqlx::Error, name: &str) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::NameTaken(name.to_owned())
        }
        _ => StoreError::Database(error),
    }
}
