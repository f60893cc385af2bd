//! Workspace records: the full record as JSON text in `data`, its list columns
//! beside it, all written by one statement.

use sqlx::postgres::PgArguments;
use sqlx::{PgConnection, Postgres, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{PgStore, big, small};
use crate::StoreError;
use crate::common::{RECORD_FORMAT, decode_record, encode_record};
use swarm_core::model::{
    CpuKind, GuestSize, IpMode, WorkspaceRecord, WorkspaceStatus, WorkspaceSummary,
};

// Parameters as in `bind_record`.
const INSERT_WORKSPACE: &str = "INSERT INTO workspaces \
     (id, name, status, data, created_at, updated_at, \
      region, cpu_kind, cpus, memory_mb, storage_gb, url, data_format, owner, ip_mode) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";
const UPDATE_WORKSPACE: &str = "UPDATE workspaces SET \
     name = $2, status = $3, data = $4, created_at = $5, updated_at = $6, \
     region = $7, cpu_kind = $8, cpus = $9, memory_mb = $10, storage_gb = $11, url = $12, \
     data_format = $13, owner = $14, ip_mode = $15 \
     WHERE id = $1";

type Query<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

fn bind_record<'q>(query: Query<'q>, record: &WorkspaceRecord) -> Result<Query<'q>, StoreError> {
    let spec = &record.spec;
    Ok(query
        .bind(record.id)
        .bind(record.name.as_str().to_owned())
        .bind(record.status.as_str())
        .bind(encode_record(record)?)
        .bind(record.created_at)
        .bind(record.updated_at)
        .bind(spec.region.clone())
        .bind(spec.guest.cpu_kind.as_str())
        .bind(big(spec.guest.cpus))
        .bind(big(spec.guest.memory_mb))
        .bind(big(spec.storage_gb))
        .bind(record.url.clone())
        .bind(RECORD_FORMAT)
        .bind(spec.owner.clone())
        .bind(spec.ip_mode.as_str()))
}

/// A unique violation on a workspace write can only be the live-name index.
pub(super) fn map_unique(error: sqlx::Error, name: &str) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::NameTaken(name.to_owned())
        }
        _ => StoreError::Database(error),
    }
}

pub(super) async fn insert_in(
    connection: &mut PgConnection,
    record: &WorkspaceRecord,
) -> Result<(), StoreError> {
    bind_record(sqlx::query(INSERT_WORKSPACE), record)?
        .execute(connection)
        .await
        .map_err(|error| map_unique(error, record.name.as_str()))?;
    Ok(())
}

pub(super) async fn update_in(
    connection: &mut PgConnection,
    record: &WorkspaceRecord,
) -> Result<(), StoreError> {
    bind_record(sqlx::query(UPDATE_WORKSPACE), record)?
        .execute(connection)
        .await
        .map_err(|error| map_unique(error, record.name.as_str()))?;
    Ok(())
}

impl PgStore {
    pub(super) async fn pg_insert_workspace(
        &self,
        record: &WorkspaceRecord,
    ) -> Result<(), StoreError> {
        insert_in(&mut *self.pool.acquire().await?, record).await
    }

    pub(super) async fn pg_update_workspace(
        &self,
        record: &WorkspaceRecord,
    ) -> Result<(), StoreError> {
        update_in(&mut *self.pool.acquire().await?, record).await
    }

    pub(super) async fn pg_workspace_by_name(
        &self,
        name: &str,
    ) -> Result<Option<WorkspaceRecord>, StoreError> {
        let data: Option<String> = sqlx::query_scalar(
            "SELECT data FROM workspaces WHERE name = $1 AND status <> 'deleted'",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        data.as_deref().map(decode_record).transpose()
    }

    pub(super) async fn pg_workspace(
        &self,
        id: Uuid,
    ) -> Result<Option<WorkspaceRecord>, StoreError> {
        let data: Option<String> = sqlx::query_scalar("SELECT data FROM workspaces WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        data.as_deref().map(decode_record).transpose()
    }

    pub(super) async fn pg_list_workspaces(
        &self,
        include_deleted: bool,
    ) -> Result<Vec<WorkspaceRecord>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT data FROM workspaces WHERE $1 OR status <> 'deleted' ORDER BY created_at, id",
        )
        .bind(include_deleted)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|data| decode_record(data)).collect()
    }

    pub(super) async fn pg_list_workspaces_json(
        &self,
        include_deleted: bool,
    ) -> Result<Vec<u8>, StoreError> {
        let rows = sqlx::query(
            "SELECT data_format, id, data FROM workspaces WHERE $1 OR status <> 'deleted' \
             ORDER BY created_at, id",
        )
        .bind(include_deleted)
        .fetch_all(&self.pool)
        .await?;
        let corrupt = |what: String| StoreError::Corrupt(format!("workspace records: {what}"));
        let mut out = Vec::new();
        out.push(b'[');
        for (i, row) in rows.iter().enumerate() {
            let format: i64 = row.try_get("data_format")?;
            let id: Uuid = row.try_get("id")?;
            let data: &str = row.try_get("data")?;
            // Written by this encoding: the stored text is what encoding it prints.
            let text = if format == RECORD_FORMAT {
                std::borrow::Cow::Borrowed(data)
            } else {
                std::borrow::Cow::Owned(encode_record(&decode_record(data)?)?)
            };
            out.extend_from_slice(if i == 0 { b"\n  " } else { b",\n  " });
            crate::pretty::push_pretty(&mut out, text.as_bytes(), 1)
                .map_err(|error| corrupt(format!("record {id}: {error}")))?;
        }
        out.extend_from_slice(if rows.is_empty() { b"]\n" } else { b"\n]\n" });
        Ok(out)
    }

    pub(super) async fn pg_list_summaries(
        &self,
        include_deleted: bool,
    ) -> Result<Vec<WorkspaceSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, status, region, cpu_kind, cpus, memory_mb, storage_gb, url, \
                    created_at, ip_mode \
             FROM workspaces WHERE $1 OR status <> 'deleted' ORDER BY created_at, id",
        )
        .bind(include_deleted)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(summary_of).collect()
    }
}

fn summary_of(row: &sqlx::postgres::PgRow) -> Result<WorkspaceSummary, StoreError> {
    let name: String = row.try_get("name")?;
    let corrupt = |what: &str, value: &str| {
        StoreError::Corrupt(format!("workspace {name}: {what} {value:?}"))
    };
    let status: &str = row.try_get("status")?;
    let cpu_kind: &str = row.try_get("cpu_kind")?;
    let ip_mode: &str = row.try_get("ip_mode")?;
    let created_at: OffsetDateTime = row.try_get("created_at")?;
    Ok(WorkspaceSummary {
        status: WorkspaceStatus::parse(status).ok_or_else(|| corrupt("status", status))?,
        region: row.try_get("region")?,
        guest: GuestSize {
            cpu_kind: CpuKind::parse(cpu_kind).ok_or_else(|| corrupt("cpu kind", cpu_kind))?,
            cpus: small(row.try_get("cpus")?, "cpus")?,
            memory_mb: small(row.try_get("memory_mb")?, "memory_mb")?,
        },
        storage_gb: small(row.try_get("storage_gb")?, "storage_gb")?,
        ip_mode: IpMode::parse(ip_mode).ok_or_else(|| corrupt("ip mode", ip_mode))?,
        url: row.try_get("url")?,
        created_at,
        name: swarm_core::model::WorkspaceName::parse(&name)
            .map_err(|error| StoreError::Corrupt(format!("workspace name: {error}")))?,
    })
}
